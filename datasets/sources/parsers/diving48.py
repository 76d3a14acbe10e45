"""Diving48 (V1 annotations): `Diving48_vocab.json`, `Diving48_train.json`, `Diving48_test.json`.

The vocabulary is a list with one entry per class: the class's [takeoff, somersault, twist,
flight] sub-labels (class index = position). Each split file is a list of
{"vid_name", "label", "start_frame", "end_frame"}; videos are `rgb/<vid_name>.mp4`, already
trimmed to the dive (start/end frames refer to the untrimmed source and are only checked for
order). Controllable Augmentations Sec. 4.1 evaluates on "V1 test set of Diving-48".
"""
from __future__ import annotations

from pathlib import Path

from core.errors import AnnotationError
from datasets.sources.official import Entry
from datasets.sources.annotations import json_list, read_json

SPLITS = {"train": "Diving48_train.json", "test": "Diving48_test.json"}


def parse_diving48(root: str | Path) -> list[Entry]:
    root = Path(root)
    vocab_file = root / "Diving48_vocab.json"
    vocab = read_json(vocab_file, "Diving48 vocabulary")
    if not isinstance(vocab, list) or not all(isinstance(v, list) for v in vocab):
        raise AnnotationError(f"{vocab_file}: expected a list of [takeoff, somersault, twist, flight] lists")
    names = [" / ".join(str(p) for p in v) for v in vocab]
    entries = []
    for split, name in SPLITS.items():
        path = root / name
        for i, item in enumerate(json_list(path, f"Diving48 {split} list", ("vid_name", "label", "start_frame", "end_frame"))):
            label = item["label"]
            if not isinstance(label, int) or not 0 <= label < len(names):
                raise AnnotationError(f"{path}: item {i} ({item['vid_name']}): label {label!r} outside 0..{len(names) - 1}")
            if not (isinstance(item["start_frame"], int) and isinstance(item["end_frame"], int)) or item["end_frame"] < item["start_frame"]:
                raise AnnotationError(f"{path}: item {i} ({item['vid_name']}): bad start/end frames {item['start_frame']!r}, {item['end_frame']!r}")
            vid = str(item["vid_name"])
            entries.append(Entry(vid, f"rgb/{vid}.mp4", label, names[label], split))
    return entries
