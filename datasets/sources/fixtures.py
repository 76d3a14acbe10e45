"""Fixture datasets in the official layouts of UCF101, HMDB51 and Kinetics-400.

The suite cannot download datasets, so at smoke scale it generates its own: real class names,
real file naming and annotation formats, and the originals' codecs (MPEG-4 Part 2 in AVI for
UCF101 and HMDB51, H.264 in MP4 for Kinetics), filled with synthetic videos whose class is
defined by motion only (`datasets.sources.synthetic`). Sizes come from the scale profile's `fixtures:`.

`bad_files: true` also writes the kinds of bad input real datasets have — a truncated video,
a video shorter than one clip, an annotation row whose video is missing — so that preparation's
quarantine policy runs in every smoke DAG.

    python -m datasets.sources.fixtures --dataset ucf101 --root results/smoke/data/UCF101 --scale smoke
"""
from __future__ import annotations

import argparse
import csv
import io
import string
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.config import load_scale
from core.io import write_bytes, write_json, write_text
from datasets.sources import fixtures_extra
from datasets.sources.official import k400_video_name
from datasets.sources.synthetic import render_world_video, write_video

UCF101_CLASSES = [
    "ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling", "BalanceBeam", "BandMarching",
    "BaseballPitch", "Basketball", "BasketballDunk", "BenchPress", "Biking", "Billiards",
    "BlowDryHair", "BlowingCandles", "BodyWeightSquats", "Bowling", "BoxingPunchingBag", "BoxingSpeedBag",
    "BreastStroke", "BrushingTeeth",
]  # fmt: skip
HMDB51_CLASSES = [
    "brush_hair", "cartwheel", "catch", "chew", "clap", "climb", "climb_stairs", "dive", "draw_sword",
    "dribble", "drink", "eat", "fall_floor", "fencing", "flic_flac", "golf", "handstand", "hit", "hug", "jump",
]  # fmt: skip
K400_CLASSES = [
    "abseiling", "air drumming", "answering questions", "applauding", "applying cream", "archery",
    "arm wrestling", "arranging flowers", "assembling computer", "auctioning", "baby waking up",
    "baking cookies", "balloon blowing", "bandaging", "barbequing", "bartending", "beatboxing",
    "bee keeping", "belly dancing", "bench pressing",
]  # fmt: skip


def _video(path: Path, class_index: int, num_classes: int, cfg: dict, seed: int, num_frames: int | None = None) -> None:
    """One video of the profile's fixture `world` (default `straight`, the smoke world; see
    datasets/sources/synthetic.py)."""
    frames = render_world_video(cfg.get("world", "straight"), class_index, num_classes, num_frames or cfg["frames"],
                                cfg["height"], cfg["width"], seed=seed, world_options=cfg.get("world_options"))
    write_video(path, frames, cfg["fps"])


def make_ucf101(root: Path, cfg: dict, seed: int) -> dict:
    """Groups g01-g07 hold the split-1 test videos, as in UCF101; splits 2 and 3 test on g08-g14
    and g15-g21, so every split has train and test videos of every class. Above 21 videos per
    class a group holds several clips, as UCF101's groups do."""
    classes = UCF101_CLASSES[: cfg["num_classes"]]
    per_class = cfg["videos_per_class"]
    if per_class > 99:
        raise ValueError("UCF101 fixtures: at most 99 videos per class (clip numbers have two digits)")
    lists = {f"{kind}0{s}": [] for kind in ("trainlist", "testlist") for s in (1, 2, 3)}
    jobs = []
    for label, name in enumerate(classes):
        # Spread videos over the 25 groups so that each split's test groups get some.
        groups = np.linspace(1, 21, per_class).round().astype(int)
        for i, group in enumerate(groups):
            rel = f"{name}/v_{name}_g{group:02d}_c{i + 1:02d}.avi"
            jobs.append((root / "UCF-101" / rel, label))
            for s, test_groups in ((1, range(1, 8)), (2, range(8, 15)), (3, range(15, 22))):
                if group in test_groups:
                    lists[f"testlist0{s}"].append(rel)
                else:
                    lists[f"trainlist0{s}"].append(f"{rel} {label + 1}")
    for n, (path, label) in enumerate(tqdm(jobs, desc="UCF101 fixtures", unit="video")):
        _video(path, label, len(classes), cfg, seed=seed * 100003 + n)
    ann = root / "ucfTrainTestlist"
    write_text(ann / "classInd.txt", "".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    for name, lines in lists.items():
        write_text(ann / f"{name}.txt", "".join(line + "\n" for line in lines))
    return {"videos": len(jobs), "classes": len(classes)}


def make_hmdb51(root: Path, cfg: dict, seed: int) -> dict:
    """Each split tags every video 1 (train), 2 (test) or 0 (unused), in HMDB51's 70/30 proportions
    on a fixture-sized scale, rotating which videos are tested from split to split."""
    classes = HMDB51_CLASSES[: cfg["num_classes"]]
    per_class = cfg["videos_per_class"]
    num_test = max(1, round(0.3 * per_class))
    n = 0
    for label, name in enumerate(tqdm(classes, desc="HMDB51 fixtures", unit="class")):
        files = [f"Fixture_{i:03d}_{name}_f_cm_np1_fr_med_0.avi" for i in range(per_class)]
        for i, file in enumerate(files):
            _video(root / name / file, label, len(classes), cfg, seed=seed * 100003 + 50000 + n)
            n += 1
        for split in (1, 2, 3):
            test = {(i + (split - 1) * num_test) % per_class for i in range(num_test)}
            lines = [f"{file} {2 if i in test else 1}" for i, file in enumerate(files)]
            write_text(root / "testTrainMulti_7030_splits" / f"{name}_test_split{split}.txt", "\n".join(lines) + "\n")
    return {"videos": n, "classes": len(classes)}


def _youtube_id(rng: np.random.Generator) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(rng.choice(list(alphabet), size=11))


def make_kinetics400(root: Path, cfg: dict, seed: int) -> dict:
    classes = K400_CLASSES[: cfg["num_classes"]]
    rng = np.random.default_rng(seed)
    report = {"videos": 0, "classes": len(classes), "bad_files": []}
    for split, csv_name, per_class in (
        ("train", "train.csv", cfg["train_per_class"]),
        ("val", "validate.csv", cfg["val_per_class"]),
    ):
        rows = []
        for label, name in enumerate(classes):
            for _ in range(per_class):
                start = int(rng.integers(0, 300))
                rows.append((name, _youtube_id(rng), start, start + 10, label))
        for n, (name, ytid, start, end, label) in enumerate(tqdm(rows, desc=f"Kinetics-400 {split} fixtures", unit="video")):
            _video(root / split / k400_video_name(ytid, start, end), label, len(classes), cfg, seed=seed * 100003 + 80000 + n + (0 if split == "train" else 10000))
        if split == "train" and cfg.get("bad_files"):
            report["bad_files"] = _bad_kinetics_files(root, rows, cfg, rng)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        writer.writerows((name, ytid, start, end, split) for name, ytid, start, end, _ in rows)
        write_text(root / "annotations" / csv_name, buf.getvalue())
        report["videos"] += len(rows)
    return report


def _bad_kinetics_files(root: Path, rows: list, cfg: dict, rng: np.random.Generator) -> list[dict]:
    """Append three bad train rows: a truncated file, a too-short video and a missing file."""
    name = K400_CLASSES[0]
    bad = []
    for kind in ("truncated", "too_short", "missing"):
        ytid = _youtube_id(rng)
        rows.append((name, ytid, 0, 10, 0))
        path = root / "train" / k400_video_name(ytid, 0, 10)
        if kind == "truncated":
            _video(path, 0, cfg["num_classes"], cfg, seed=7)
            data = path.read_bytes()
            write_bytes(path, data[: len(data) // 3])
        elif kind == "too_short":
            _video(path, 0, cfg["num_classes"], cfg, seed=8, num_frames=3)
        bad.append({"kind": kind, "path": str(path.relative_to(root))})
    return bad


MAKERS = {"ucf101": make_ucf101, "hmdb51": make_hmdb51, "k400": make_kinetics400}
# Folder under the data root -> fixture key, for every dataset the suite can generate.
FIXTURE_DIRECTORIES = {
    "UCF101": "ucf101", "HMDB51": "hmdb51", "Kinetics400": "k400",
    "SomethingSomethingV2": "ssv2", "SomethingSomethingV1": "ssv1", "Diving48": "diving48", "VidSitu": "vidsitu", "AVA": "ava",
}


def make(dataset: str, root: Path, cfg: dict, seed: int) -> dict:
    """Generate fixture `dataset` under `root`; the formats beyond UCF101/HMDB51/K400 live in
    datasets/sources/fixtures_extra.py."""
    if dataset in MAKERS:
        return MAKERS[dataset](Path(root), cfg, seed)
    return fixtures_extra.make(dataset, root, cfg, seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(FIXTURE_DIRECTORIES.values()))
    parser.add_argument("--root", required=True, type=Path, help="dataset root to create")
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--done", type=Path, help="marker file to write when finished")
    args = parser.parse_args(argv)
    profile = load_scale(args.scale)
    fixtures = profile.get("fixtures", {})
    if args.dataset not in fixtures:
        parser.error(f"scale profile {args.scale!r} defines no fixtures for {args.dataset!r} (key fixtures.{args.dataset})")
    try:
        report = make(args.dataset, args.root, fixtures[args.dataset], int(profile.get("seed", 0)))
    except ValueError as err:
        parser.error(f"scale profile {args.scale!r}: {err}")
    if args.done:
        write_json(args.done, {"dataset": args.dataset, "scale": args.scale, **report})


if __name__ == "__main__":
    main()
