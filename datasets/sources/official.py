"""Parsers of the official annotation layouts of UCF101, HMDB51 and Kinetics-400.

Each parser turns a dataset root into `Entry` rows (video id, path relative to the root, label,
split). They check the annotation files' syntax and name the file and line of any malformed
row; whether each video exists and decodes is checked afterwards by `datasets.manifests.manifest`.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from core.errors import AnnotationError, MissingInputError
from datasets.sources.annotations import lines, read_text, require


@dataclass(frozen=True)
class Entry:
    video_id: str
    path: str  # relative to the dataset root
    label: int
    label_name: str
    split: str  # train | test | val
    # Optional, for rows that are a part of a video or carry every annotator's label:
    window_s: tuple[float, float] | None = None  # the row's seconds of the video (VidSitu's 2-second events)
    label_set: str | None = None  # ";"-joined class indices of all annotators' labels (VidSitu val, -1: not a class)


# --------------------------------------------------------------------------------------- UCF101
UCF101_VIDEOS, UCF101_LISTS = "UCF-101", "ucfTrainTestlist"


def parse_ucf101(root: str | Path, split: int) -> list[Entry]:
    """UCF101 layout: `UCF-101/<Class>/v_<Class>_gXX_cYY.avi` and `ucfTrainTestlist/` with
    `classInd.txt` ("1 ApplyEyeMakeup"), `trainlist0N.txt` ("<Class>/<file>.avi <label>") and
    `testlist0N.txt` ("<Class>/<file>.avi")."""
    root = Path(root)
    lists = require(root / UCF101_LISTS, "UCF101 annotation folder")
    class_file = lists / "classInd.txt"
    classes: dict[str, int] = {}
    for n, line in lines(class_file, "UCF101 class index"):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(f"{class_file}:{n}: expected '<index> <ClassName>', got {line!r}")
        classes[parts[1]] = int(parts[0]) - 1
    entries: list[Entry] = []
    for split_name, list_name in (("train", f"trainlist0{split}.txt"), ("test", f"testlist0{split}.txt")):
        list_file = lists / list_name
        for n, line in lines(list_file, f"UCF101 split {split} list"):
            parts = line.split()
            rel = parts[0]
            class_name = rel.split("/")[0]
            if len(parts) > 2 or "/" not in rel or class_name not in classes:
                raise AnnotationError(f"{list_file}:{n}: expected '<Class>/<video>.avi [label]' with a class of classInd.txt, got {line!r}")
            label = classes[class_name]
            if len(parts) == 2:
                try:
                    given = int(parts[1])
                except ValueError:
                    raise AnnotationError(f"{list_file}:{n}: class label {parts[1]!r} is not an integer; write "
                                          f"'<Class>/<video>.avi <label>' with the class's index in classInd.txt") from None
                if given - 1 != label:
                    raise AnnotationError(f"{list_file}:{n}: label {parts[1]} disagrees with class {class_name} ({label + 1})")
            entries.append(Entry(Path(rel).stem, f"{UCF101_VIDEOS}/{rel}", label, class_name, split_name))
    return entries


# --------------------------------------------------------------------------------------- HMDB51
HMDB_TAGS = {"1": "train", "2": "test", "0": None}  # 0: not used in this split
HMDB51_SPLITS = "testTrainMulti_7030_splits"


def parse_hmdb51(root: str | Path, split: int) -> list[Entry]:
    """HMDB51 layout: `<class>/<video>.avi` and `testTrainMulti_7030_splits/<class>_test_split<N>.txt`
    with lines "<video>.avi <tag>", tag 1 = train, 2 = test, 0 = unused. Classes are indexed in
    alphabetical order, as the split files are usually enumerated."""
    root = Path(root)
    split_dir = require(root / HMDB51_SPLITS, "HMDB51 split folder")
    split_files = sorted(split_dir.glob(f"*_test_split{split}.txt"))
    if not split_files:
        raise MissingInputError(f"no HMDB51 split-{split} files (*_test_split{split}.txt) in {split_dir}")
    class_names = sorted(f.name[: -len(f"_test_split{split}.txt")] for f in split_files)
    entries: list[Entry] = []
    for label, class_name in enumerate(class_names):
        split_file = split_dir / f"{class_name}_test_split{split}.txt"
        for n, line in lines(split_file, "HMDB51 split file"):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in HMDB_TAGS:
                raise AnnotationError(f"{split_file}:{n}: expected '<video>.avi <0|1|2>', got {line!r}")
            split_name = HMDB_TAGS[parts[1]]
            if split_name is not None:
                entries.append(Entry(Path(parts[0]).stem, f"{class_name}/{parts[0]}", label, class_name, split_name))
    return entries


# --------------------------------------------------------------------------------- Kinetics-400
K400_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
K400_ANNOTATIONS = "annotations"
K400_SPLITS = {"train": ("train.csv", "train"), "val": ("validate.csv", "val")}  # split: (annotation file, video folder)


def k400_video_name(youtube_id: str, start: int, end: int) -> str:
    return f"{youtube_id}_{start:06d}_{end:06d}.mp4"


def parse_kinetics400(root: str | Path) -> list[Entry]:
    """Kinetics-400 layout: `annotations/{train,validate}.csv` with the header
    `label,youtube_id,time_start,time_end,split[,is_cc]` and videos
    `{train,val}/<youtube_id>_<start:06d>_<end:06d>.mp4`. Labels are indexed alphabetically."""
    root = Path(root)
    rows: list[tuple[str, dict]] = []
    for split_name, (csv_name, _) in K400_SPLITS.items():
        ann = root / K400_ANNOTATIONS / csv_name
        reader = csv.DictReader(io.StringIO(read_text(ann, f"Kinetics-400 {split_name} annotations"), newline=""))
        missing = [c for c in K400_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise AnnotationError(f"{ann}: header lacks column(s) {missing}; expected {','.join(K400_COLUMNS)}")
        for n, row in enumerate(reader, 2):
            try:
                int(float(row["time_start"])), int(float(row["time_end"]))
            except (TypeError, ValueError):
                raise AnnotationError(f"{ann}:{n}: time_start/time_end are not numbers: {row}") from None
            if not row["label"] or not row["youtube_id"]:
                raise AnnotationError(f"{ann}:{n}: empty label or youtube_id: {row}")
            rows.append((split_name, row))
    classes = {name: i for i, name in enumerate(sorted({row["label"] for s, row in rows if s == "train"}))}
    entries = []
    for split_name, row in rows:
        if row["label"] not in classes:
            raise AnnotationError(f"Kinetics-400 {split_name} label {row['label']!r} does not occur in train.csv")
        name = k400_video_name(row["youtube_id"], int(float(row["time_start"])), int(float(row["time_end"])))
        entries.append(Entry(Path(name).stem, f"{K400_SPLITS[split_name][1]}/{name}", classes[row["label"]], row["label"], split_name))
    return entries
