"""Official layout -> manifest, with a quarantine report for every unusable video.

Policy for bad input (documented in the README):
- an annotation file that is missing or has a malformed line stops preparation with an error
  naming the file and line (a broken annotation is never half-used);
- a video that is missing, cannot be opened, decodes fewer frames than its container declares
  (truncated), or is shorter than `min_frames` (one clip of the longest consumer) is left out of
  the manifest and written, with the reason, to `<dataset>.quarantine.csv`; the log names each;
- `strict: true` in the scale profile turns any quarantined video into an error instead.
- a variable-frame-rate video (`datasets.clips.decode.frame_timing`) is kept: its consumers sample
  frame indices, i.e. treat it as a sequence of decoded frames, which is what the papers' frame
  strides count. Its row records the decoded frame count, the mean rate of its timestamps
  ((frames - 1) / their span; containers disagree on the rate they report for such streams) and
  duration = frames / that rate, and the log names it. AVI stores a variable rate as
  dropped-frame slots that its header counts as frames; such slots are not taken for truncation.
  Consumers that need time (AVA's keyframe timestamps) quarantine it instead, with reason
  "variable frame rate" (`TIME_INDEXED`); the `h264_cfr` transcode re-times it to constant rate.

One code path for every dataset: UCF101, HMDB51 and Kinetics-400 are parsed by
`datasets.sources.official`, SSv2, SSv1, Diving48, VidSitu and AVA by
`datasets.sources.parsers.PARSERS` (the frame folders of `datasets.sources.parsers.FRAME_FOLDERS`,
SSv1's, probed by `build_frame_manifest`); AVA's evaluated boxes are a separate step
(`python -m datasets.sources.parsers.prepare`).

    python -m datasets.manifests.manifest --dataset ucf101_split1 --root DIR --scale smoke --out M.csv --quarantine Q.csv
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from core.config import load_scale
from core.errors import SuiteError
from core.io import write_csv
from datasets.clips.decode import frame_timing, scan_video, video_info
from datasets.sources.layout import check_root
from datasets.sources.official import Entry, parse_hmdb51, parse_kinetics400, parse_ucf101
from datasets.sources.parsers import FRAME_FOLDERS, PARSERS

MANIFEST_COLUMNS = ["video_id", "path", "label", "label_name", "split", "num_frames", "fps", "width", "height", "duration"]
QUARANTINE_COLUMNS = ["video_id", "path", "reason"]
# Written only for datasets whose rows have them (CONTRIBUTING.md, "Manifest schema"): the first frame
# of a row that is a window of its video, and every annotator's label of a row.
OPTIONAL_COLUMNS = ["start_frame", "label_set"]
# Datasets whose annotations locate things by timestamp, so a frame index must map to a time:
# their variable-frame-rate videos are quarantined ("variable frame rate").
TIME_INDEXED = frozenset({"ava_train", "ava_val", "ava"})


def probe(path: Path, verify: bool, reject_vfr: bool = False) -> dict:
    """Container facts of one video (`datasets.clips.decode.video_info`); with `verify`, every frame is
    decoded and counted, and a video that decodes fewer frames than its container declares is
    reported as truncated. A variable-frame-rate video gets the mean rate of its timestamps and
    `variable_frame_rate: True` (see the module docstring); with `reject_vfr` it is refused.
    Raises a SuiteError whose message is the reason."""
    if verify:  # container facts, timestamps and the decoded count from one pass over the file
        info = scan_video(path)
        timing = info["timing"]
    else:
        info = video_info(path)
        timing = frame_timing(path)
    if timing.variable and reject_vfr:
        raise SuiteError(f"variable frame rate: frame intervals {timing.min_interval * 1000:.1f} to "
                         f"{timing.max_interval * 1000:.1f} ms; this dataset's annotations are timestamps "
                         f"(transcode with h264_cfr first)")
    declared = info["num_frames"]
    if timing.variable:
        # AVI counts dropped-frame slots (gaps in the timestamps) among its frames.
        declared = min(declared, timing.num_frames)
        info["num_frames"] = declared
    if verify:
        if info["decode_error"] is not None:
            raise info["decode_error"]
        decoded = info["decoded_frames"]
        if decoded < declared:
            raise SuiteError(f"truncated: container declares {declared} frames, {decoded} decode")
        info["num_frames"] = decoded
        info["duration"] = decoded / info["fps"] if info["fps"] else info["duration"]
    if timing.variable:
        info["fps"] = timing.mean_fps
        info["duration"] = info["num_frames"] / info["fps"] if info["fps"] else info["duration"]
    out = {k: info[k] for k in ("num_frames", "fps", "width", "height", "duration")}
    out["variable_frame_rate"] = timing.variable
    return out


def entries_for(dataset: str, root: Path) -> list[Entry]:
    """The annotated videos of `dataset` under `root`: UCF101, HMDB51 and Kinetics-400 by
    `datasets.sources.official`, every other dataset by its parser in
    `datasets.sources.parsers.PARSERS`."""
    if dataset.startswith("ucf101_split"):
        return parse_ucf101(root, int(dataset.removeprefix("ucf101_split")))
    if dataset.startswith("hmdb51_split"):
        return parse_hmdb51(root, int(dataset.removeprefix("hmdb51_split")))
    if dataset == "k400":
        return parse_kinetics400(root)
    if dataset in PARSERS:
        return PARSERS[dataset](root)
    raise SuiteError(f"no official-layout parser for dataset {dataset!r} (parsers: ucf101_split<k>, "
                     f"hmdb51_split<k>, k400, {', '.join(sorted(PARSERS))})")


def probe_entries(dataset: str, entries: list[Entry], root: Path, min_frames: int,
                  verify: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`build_manifest`, or `build_frame_manifest` for a dataset stored as JPEG folders (SSv1)."""
    if dataset in FRAME_FOLDERS:
        return build_frame_manifest(entries, root, min_frames, FRAME_FOLDERS[dataset])
    return build_manifest(entries, root, min_frames, verify, reject_vfr=dataset in TIME_INDEXED)


def build_manifest(entries: list[Entry], root: Path, min_frames: int, verify: bool,
                   reject_vfr: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe each entry; usable ones go to the manifest, the rest to the quarantine report.
    Variable-frame-rate videos are kept and named on stderr, or quarantined with `reject_vfr`."""
    return _probe_each(entries, root, min_frames, lambda path: probe(path, verify, reject_vfr), "probing videos")


def probe_frame_folder(folder: Path, fps: float) -> dict:
    """num_frames, fps, width, height, duration of a folder of frames 00001.jpg ... 0000N.jpg.

    Raises SuiteError with the reason when the folder is missing or empty, a frame cannot be
    read, or the numbering has a gap (a lost or truncated extraction)."""
    import cv2

    if not folder.is_dir():
        raise SuiteError("frame folder not found")
    frames = sorted(folder.glob("*.jpg"))
    if not frames:
        raise SuiteError("frame folder holds no .jpg frame")
    numbers = [int(f.stem) for f in frames if f.stem.isdigit()]
    if numbers != list(range(1, len(frames) + 1)):
        raise SuiteError(f"frame numbering is not 00001..{len(frames):05d} (missing or stray frames)")
    first = cv2.imread(str(frames[0]))
    if first is None:
        raise SuiteError(f"cannot read frame {frames[0].name}")
    return {"num_frames": len(frames), "fps": fps, "width": int(first.shape[1]), "height": int(first.shape[0]),
            "duration": len(frames) / fps, "variable_frame_rate": False}


def build_frame_manifest(entries: list[Entry], root: Path, min_frames: int,
                         fps: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`build_manifest` for datasets stored as frame folders extracted at `fps`: same columns and policy."""
    return _probe_each(entries, root, min_frames, lambda folder: probe_frame_folder(folder, fps),
                       "probing frame folders")


def _probe_each(entries: list[Entry], root: Path, min_frames: int, probe_one,
                desc: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Manifest and quarantine report of `entries`; `probe_one(root / path)` returns a manifest
    row's facts plus `variable_frame_rate`, or raises a SuiteError whose message is the reason."""
    rows, quarantined = [], []
    seen: set[str] = set()
    for entry in tqdm(entries, desc=desc, unit="video"):
        if entry.video_id in seen:
            quarantined.append({"video_id": entry.video_id, "path": entry.path, "reason": "duplicate video id in annotations"})
            continue
        seen.add(entry.video_id)
        try:
            info = probe_one(root / entry.path)
            if entry.window_s is not None:
                info = in_window(info, entry.window_s)
            if info["num_frames"] < min_frames:
                raise SuiteError(f"too short: {info['num_frames']} frames < {min_frames} needed for one clip")
        except SuiteError as exc:
            quarantined.append({"video_id": entry.video_id, "path": entry.path, "reason": str(exc)})
            continue
        if info.pop("variable_frame_rate"):
            print(f"variable frame rate, kept as a frame sequence at {info['fps']:.3f} fps on average: {entry.path}",
                  file=sys.stderr)
        facts = {k: v for k, v in entry.__dict__.items() if k != "window_s" and v is not None}
        rows.append({**facts, **info})
    optional = [c for c in OPTIONAL_COLUMNS if any(c in row for row in rows)]
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS + optional)
    return manifest, pd.DataFrame(quarantined, columns=QUARANTINE_COLUMNS)


def in_window(info: dict, window_s: tuple[float, float]) -> dict:
    """A video's facts for the rows' window of seconds [start, end): its first frame
    (`start_frame`), its frame count and duration. A window past the video's end is an error."""
    start, end = (int(round(t * info["fps"])) for t in window_s)
    end = min(end, info["num_frames"])
    if start >= end:
        raise SuiteError(f"window {window_s[0]:g}-{window_s[1]:g} s lies past the video's {info['num_frames']} frames")
    return {**info, "start_frame": start, "num_frames": end - start, "duration": (end - start) / info["fps"]}


def prepare(dataset: str, root: Path, profile: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    prep = profile["preparation"]
    entries = entries_for(dataset, root)
    manifest, quarantine = probe_entries(dataset, entries, root, int(prep["min_frames"]), bool(prep["verify_decode"]))
    for row in quarantine.itertuples():
        print(f"[{dataset}] quarantined {row.path}: {row.reason}", file=sys.stderr)
    if len(quarantine) and prep.get("strict"):
        raise SuiteError(f"{dataset}: {len(quarantine)} unusable video(s) and strict preparation; first: {quarantine.iloc[0].path}: {quarantine.iloc[0].reason}")
    if manifest.empty:
        raise SuiteError(f"{dataset}: no usable video under {root}")
    return manifest, quarantine


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--quarantine", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        check_root(args.dataset, args.root)
        manifest, quarantine = prepare(args.dataset, args.root, load_scale(args.scale))
    except SuiteError as exc:
        sys.exit(f"error: {exc}")
    write_csv(args.quarantine, quarantine)
    write_csv(args.out, manifest)
    print(f"[{args.dataset}] {len(manifest)} videos in {args.out}; {len(quarantine)} quarantined -> {args.quarantine}")


if __name__ == "__main__":
    main()
