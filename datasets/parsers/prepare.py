"""Official layout -> manifest + quarantine report for the datasets of `datasets.parsers.PARSERS`.

Same outputs and policy as `datasets.manifest` (see its docstring): malformed annotations stop
with an error naming file and line; unusable videos go to the quarantine report, by name;
`preparation.strict` in the scale profile turns a quarantine into an error. SSv1's frame
folders are probed by `something.build_frame_manifest`. For AVA the evaluated boxes (excluded
keyframes and classes outside the label map removed, counts logged) are also written, with the
keyframe's frame index, to `<out>.boxes.csv` next to the manifest.

    python -m datasets.parsers.prepare --dataset ssv2 --root DIR --scale smoke --out M.csv --quarantine Q.csv
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.config import load_scale
from core.errors import SuiteError
from core.io import write_csv
from datasets.manifest import build_manifest
from datasets.parsers import PARSERS
from datasets.parsers.something import build_frame_manifest


def prepare(dataset: str, root: Path, profile: dict):
    prep = profile["preparation"]
    entries = PARSERS[dataset](root)
    build = build_frame_manifest if dataset == "ssv1" else (
        lambda e, r, m: build_manifest(e, r, m, bool(prep["verify_decode"])))
    manifest, quarantine = build(entries, root, int(prep["min_frames"]))
    for row in quarantine.itertuples():
        print(f"[{dataset}] quarantined {row.path}: {row.reason}", file=sys.stderr)
    if len(quarantine) and prep.get("strict"):
        raise SuiteError(f"{dataset}: {len(quarantine)} unusable video(s) and strict preparation; "
                         f"first: {quarantine.iloc[0].path}: {quarantine.iloc[0].reason}")
    if manifest.empty:
        raise SuiteError(f"{dataset}: no usable video under {root}")
    return manifest, quarantine


def write_ava_boxes(dataset: str, root: Path, manifest, out: Path) -> None:
    from datasets.parsers.ava import keyframes, load_split

    boxes, _, counts = load_split(root, dataset.removeprefix("ava_"))
    print(f"[{dataset}] boxes: {counts}", file=sys.stderr)
    boxes = boxes[boxes["video_id"].isin(set(manifest["video_id"]))]
    fps = dict(zip(manifest["video_id"], manifest["fps"]))
    frames = {vid: keyframes(group, fps[vid]).set_index("timestamp")["frame"] for vid, group in boxes.groupby("video_id")}
    boxes = boxes.assign(frame=[int(frames[v][t]) for v, t in zip(boxes["video_id"], boxes["timestamp"])])
    write_csv(out.with_suffix(".boxes.csv"), boxes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(PARSERS))
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--quarantine", required=True, type=Path)
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"dataset root {args.root} does not exist (at full scale pass --config data_root=DIR)")
    try:
        manifest, quarantine = prepare(args.dataset, args.root, load_scale(args.scale))
        if args.dataset.startswith("ava_"):
            write_ava_boxes(args.dataset, args.root, manifest, args.out)
    except SuiteError as exc:
        sys.exit(f"error: {exc}")
    write_csv(args.quarantine, quarantine)
    write_csv(args.out, manifest)
    print(f"[{args.dataset}] {len(manifest)} videos in {args.out}; {len(quarantine)} quarantined -> {args.quarantine}")


if __name__ == "__main__":
    main()
