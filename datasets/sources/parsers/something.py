"""Something-Something V2 (videos) and V1 (frame folders), official annotation formats.

SSv2 (20BN download): `labels/labels.json` maps each class (its template with the brackets
removed, "Putting something on a surface") to its index as a string; `labels/train.json` and
`labels/validation.json` are lists of {"id", "label", "template", "placeholders"}; videos are
`20bn-something-something-v2/<id>.webm`. The class of an item is its template without "[" and "]".

SSv1: `something-something-v1-labels.csv` lists one class per line (index = line order);
`something-something-v1-{train,validation}.csv` hold `<id>;<class name>` lines; each video is a
folder of JPEG frames `20bn-something-something-v1/<id>/00001.jpg, 00002.jpg, ...` extracted at
12 fps (the dataset's documentation; the frame rate is not stored in the files).
"""
from __future__ import annotations

from pathlib import Path

from core.errors import AnnotationError
from datasets.sources.official import Entry
from datasets.sources.annotations import json_list, lines, read_json

SSV2_VIDEOS = "20bn-something-something-v2"
SSV2_SPLITS = {"train": "train.json", "val": "validation.json"}
SSV1_FRAMES = "20bn-something-something-v1"
SSV1_SPLITS = {"train": "something-something-v1-train.csv", "val": "something-something-v1-validation.csv"}
SSV1_FPS = 12.0


def ssv2_class(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def parse_ssv2(root: str | Path) -> list[Entry]:
    root = Path(root)
    labels_file = root / "labels" / "labels.json"
    classes = read_json(labels_file, "SSv2 label list")
    if not isinstance(classes, dict):
        raise AnnotationError(f"{labels_file}: expected an object mapping class name to index")
    try:
        classes = {name: int(index) for name, index in classes.items()}
    except (TypeError, ValueError):
        raise AnnotationError(f"{labels_file}: class indices must be integers") from None
    entries = []
    for split, name in SSV2_SPLITS.items():
        path = root / "labels" / name
        for i, item in enumerate(json_list(path, f"SSv2 {split} list", ("id", "template"))):
            class_name = ssv2_class(str(item["template"]))
            if class_name not in classes:
                raise AnnotationError(f"{path}: item {i} (id {item['id']}): template {item['template']!r} is not a class of {labels_file.name}")
            vid = str(item["id"])
            entries.append(Entry(vid, f"{SSV2_VIDEOS}/{vid}.webm", classes[class_name], class_name, split))
    return entries


def parse_ssv1(root: str | Path) -> list[Entry]:
    root = Path(root)
    label_file = root / "something-something-v1-labels.csv"
    classes = {line: i for i, (_, line) in enumerate(lines(label_file, "SSv1 label list"))}
    entries = []
    for split, name in SSV1_SPLITS.items():
        path = root / name
        for n, line in lines(path, f"SSv1 {split} list"):
            parts = line.split(";")
            if len(parts) != 2 or not parts[0].strip().isdigit() or parts[1] not in classes:
                raise AnnotationError(f"{path}:{n}: expected '<id>;<class of {label_file.name}>', got {line!r}")
            vid = parts[0].strip()
            entries.append(Entry(vid, f"{SSV1_FRAMES}/{vid}", classes[parts[1]], parts[1], split))
    return entries
