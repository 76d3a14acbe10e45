"""AVA's evaluated boxes, next to its manifest (the manifest itself is
`datasets.manifests.manifest`'s).

The manifest and quarantine report of every dataset of `datasets.sources.parsers.PARSERS` come
from `python -m datasets.manifests.manifest` (one code path, same policy). AVA also needs the
boxes that are evaluated: excluded keyframes and classes outside the label map removed (counts
logged), kept only for videos of the manifest, each with its keyframe's frame index at the
video's fps. That mapping from seconds to frames holds at a constant frame rate only: AVA's
manifests quarantine variable-frame-rate videos (reason "variable frame rate",
`datasets.manifests.manifest.TIME_INDEXED`).

    python -m datasets.sources.parsers.prepare --dataset ava_val --root DIR --manifest M.csv --out M.boxes.csv
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from core.errors import SuiteError
from core.io import write_csv
from datasets.sources.parsers.ava import keyframes, load_split

AVA_DATASETS = ("ava_train", "ava_val", "ava")
# The annotation splits of each dataset id: `ava` (the detection protocol's) holds both.
AVA_SPLITS = {"ava_train": ("train",), "ava_val": ("val",), "ava": ("train", "val")}


def ava_boxes(dataset: str, root: Path, manifest: pd.DataFrame) -> pd.DataFrame:
    """The evaluated boxes of `dataset` (ava_train | ava_val | ava) for the videos of `manifest`,
    with `frame` and the annotation `split` each box comes from."""
    parts = []
    for split in AVA_SPLITS[dataset]:
        boxes, _, counts = load_split(root, split)
        print(f"[{dataset}] {split} boxes: {counts}", file=sys.stderr)
        parts.append(boxes.assign(split=split))
    boxes = pd.concat(parts, ignore_index=True)
    boxes = boxes[boxes["video_id"].isin(set(manifest["video_id"]))]
    fps = dict(zip(manifest["video_id"], manifest["fps"]))
    frames = {vid: keyframes(group, fps[vid]).set_index("timestamp")["frame"] for vid, group in boxes.groupby("video_id")}
    return boxes.assign(frame=[int(frames[v][t]) for v, t in zip(boxes["video_id"], boxes["timestamp"])])


def write_ava_boxes(dataset: str, root: Path, manifest: pd.DataFrame, out: Path) -> None:
    write_csv(out, ava_boxes(dataset, root, manifest))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=AVA_DATASETS)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--manifest", required=True, type=Path, help="the dataset's manifest (datasets.manifests.manifest)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"--root: dataset root {args.root} does not exist (at full scale pass --config data_root=DIR)")
    if not args.manifest.is_file():
        parser.error(f"--manifest: no such file {args.manifest}")
    try:
        manifest = pd.read_csv(args.manifest, dtype={"video_id": str})
        boxes = ava_boxes(args.dataset, args.root, manifest)
    except SuiteError as exc:
        sys.exit(f"error: {exc}")
    write_csv(args.out, boxes)
    print(f"[{args.dataset}] {len(boxes)} boxes of {boxes['video_id'].nunique()} videos in {args.out}")


if __name__ == "__main__":
    main()
