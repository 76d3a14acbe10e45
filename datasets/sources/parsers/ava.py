"""AVA v2.2 action detection (MaCLR Sec. 4.4, Table 5): boxes, label map, exclusions, keyframes.

Official formats (research.google.com/ava/download.html):
- `annotations/ava_{train,val}_v2.2.csv`: rows `video_id,timestamp,x1,y1,x2,y2,action_id,person_id`,
  no header; box corners normalised to [0, 1]; one row per (person box, action) at 1 fps keyframes;
- `annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt`: the label map of the 60
  evaluated classes, `item { name: "..." id: N }` (the full v2.2 list has 80);
- `annotations/ava_{train,val}_excluded_timestamps_v2.2.csv`: `video_id,timestamp` keyframes
  left out of training and evaluation.
Videos: `videos_15min/<video_id>.<ext>`, the 15-minute segment (seconds 900-1800 of each movie)
that the annotations cover, as trimmed by the common AVA preprocessing (mmaction2, SlowFast);
keyframe timestamp t is at second t - 900 of that file (`KEYFRAME_OFFSET`).

Policy: a malformed row stops parsing with an error naming file and line; excluded keyframes
and actions outside the label map are removed as the official evaluation removes them, and
their counts are reported (`filter_boxes`). MaCLR Sec. 4.4: "mean Average Precision over 60
classes".
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from core.errors import AnnotationError
from datasets.sources.official import Entry
from datasets.sources.annotations import lines, read_text

BOX_COLUMNS = ["video_id", "timestamp", "x1", "y1", "x2", "y2", "action_id", "person_id"]
KEYFRAME_OFFSET = 900  # AVA annotates seconds 900..1800 of each movie
# The 60 evaluated classes: the ids of ava_action_list_v2.2_for_activitynet_2019.pbtxt (also
# listed as _AVA_LABELS_60 in tensorflow/models' AVA evaluation).
AVA_60_CLASS_IDS = frozenset([
    1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 20, 22, 24, 26, 27, 28, 29, 30, 34, 36, 37,
    38, 41, 43, 45, 46, 47, 48, 49, 51, 52, 54, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68,
    69, 70, 72, 73, 74, 76, 77, 78, 79, 80,
])  # fmt: skip
LABEL_MAP = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"


def parse_label_map(path: str | Path) -> dict[int, str]:
    """id -> name of a pbtxt label map (`item { name: "..." id: N [label_type: ...] }`)."""
    path = Path(path)
    text = read_text(path, "AVA label map")
    items = re.findall(r"item\s*\{(.*?)\}", text, flags=re.S)
    if not items:
        raise AnnotationError(f"{path}: no 'item {{ ... }}' entry")
    out = {}
    for body in items:
        name = re.search(r'name:\s*"([^"]*)"', body)
        ident = re.search(r"\bid:\s*(\d+)", body)
        if not name or not ident:
            raise AnnotationError(f"{path}: item without name or id: {body.strip()!r}")
        if int(ident.group(1)) in out:
            raise AnnotationError(f"{path}: id {ident.group(1)} appears twice")
        out[int(ident.group(1))] = name.group(1)
    return out


def read_boxes(path: str | Path) -> pd.DataFrame:
    """The rows of an AVA box CSV as a DataFrame (BOX_COLUMNS); malformed rows named by line."""
    path = Path(path)
    rows = []
    for n, line in lines(path, "AVA box file"):
        parts = line.split(",")
        try:
            if len(parts) != 8 or not parts[0]:
                raise ValueError
            x1, y1, x2, y2 = (float(p) for p in parts[2:6])
            row = [parts[0], int(parts[1]), x1, y1, x2, y2, int(parts[6]), int(parts[7])]
        except ValueError:
            raise AnnotationError(f"{path}:{n}: expected 'video_id,timestamp,x1,y1,x2,y2,action_id,person_id', got {line!r}") from None
        if not (0 <= x1 <= x2 <= 1 and 0 <= y1 <= y2 <= 1):
            raise AnnotationError(f"{path}:{n}: box corners must satisfy 0 <= x1 <= x2 <= 1 and 0 <= y1 <= y2 <= 1, got {line!r}")
        rows.append(row)
    return pd.DataFrame(rows, columns=BOX_COLUMNS)


def read_excluded(path: str | Path) -> set[tuple[str, int]]:
    path = Path(path)
    out = set()
    for n, line in lines(path, "AVA excluded timestamps"):
        parts = line.split(",")
        if len(parts) != 2 or not parts[1].strip().isdigit():
            raise AnnotationError(f"{path}:{n}: expected 'video_id,timestamp', got {line!r}")
        out.add((parts[0], int(parts[1])))
    return out


def filter_boxes(boxes: pd.DataFrame, excluded: set[tuple[str, int]], class_ids) -> tuple[pd.DataFrame, dict]:
    """Boxes left after removing excluded keyframes and actions outside `class_ids`, with counts."""
    keys = list(zip(boxes["video_id"], boxes["timestamp"]))
    is_excluded = pd.Series([k in excluded for k in keys], index=boxes.index, dtype=bool)
    in_classes = boxes["action_id"].isin(set(class_ids))
    kept = boxes[~is_excluded & in_classes].reset_index(drop=True)
    return kept, {"rows": len(boxes), "excluded_keyframe_rows": int(is_excluded.sum()),
                  "outside_label_map_rows": int((~is_excluded & ~in_classes).sum()), "kept_rows": len(kept)}


def keyframes(boxes: pd.DataFrame, fps: float = 1.0) -> pd.DataFrame:
    """One row per annotated keyframe: video_id, timestamp, second (in the 15-min file), frame."""
    kf = boxes[["video_id", "timestamp"]].drop_duplicates().sort_values(["video_id", "timestamp"]).reset_index(drop=True)
    kf["second"] = kf["timestamp"] - KEYFRAME_OFFSET
    kf["frame"] = (kf["second"] * fps).round().astype(int)
    return kf


def annotation_paths(root: str | Path, split: str) -> dict[str, Path]:
    ann = Path(root) / "annotations"
    return {"boxes": ann / f"ava_{split}_v2.2.csv", "label_map": ann / LABEL_MAP,
            "excluded": ann / f"ava_{split}_excluded_timestamps_v2.2.csv"}


def load_split(root: str | Path, split: str) -> tuple[pd.DataFrame, dict[int, str], dict]:
    """The evaluated boxes of one split, the label map, and the filtering counts."""
    paths = annotation_paths(root, split)
    label_map = parse_label_map(paths["label_map"])
    boxes, counts = filter_boxes(read_boxes(paths["boxes"]), read_excluded(paths["excluded"]), label_map)
    return boxes, label_map, counts


def parse_ava(root: str | Path, split: str) -> list[Entry]:
    """One manifest row per video of the split's box file (label -1: the labels are per box)."""
    root = Path(root)
    boxes = read_boxes(annotation_paths(root, split)["boxes"])
    entries = []
    for vid in sorted(boxes["video_id"].unique()):
        found = sorted((root / "videos_15min").glob(f"{vid}.*"))
        rel = found[0].relative_to(root).as_posix() if found else f"videos_15min/{vid}.mp4"
        entries.append(Entry(vid, rel, -1, "", split))
    return entries
