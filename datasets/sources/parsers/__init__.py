"""Parsers of the official annotation formats of the datasets beyond UCF101, HMDB51 and Kinetics-400.

Each parser turns a dataset root in its official layout into `datasets.sources.official.Entry`
rows and follows the same policy as `datasets.sources.official`: a missing annotation file or a
malformed row stops preparation with an error naming the file and line
(`core.errors.AnnotationError`, `MissingInputError`); whether each video exists and decodes is
checked afterwards, and a video that is missing, empty, truncated or too short goes to the
quarantine report by name (`datasets.manifests.manifest.build_manifest`, or `build_frame_manifest`
there for frame folders). A variable-frame-rate video is kept as a frame sequence, except in AVA,
whose keyframes are timestamps: there it is quarantined ("variable frame rate";
`datasets.manifests.manifest.TIME_INDEXED`).

`PARSERS` maps a dataset id (datasets/sources/registry.py) to its parser (root -> entries);
`datasets.manifests.manifest.entries_for` falls back to it, so `python -m
datasets.manifests.manifest` writes the manifest and quarantine report of every dataset.
`FRAME_FOLDERS` names the datasets stored as frame folders, with their frame rate.
`python -m datasets.sources.parsers.prepare` writes AVA's evaluated boxes next to its manifest.
"""
from __future__ import annotations

from datasets.sources.parsers.ava import parse_ava
from datasets.sources.parsers.diving48 import parse_diving48
from datasets.sources.parsers.something import SSV1_FPS, parse_ssv1, parse_ssv2
from datasets.sources.parsers.vidsitu import parse_vidsitu

PARSERS = {
    "ssv2": parse_ssv2,
    "ssv1": parse_ssv1,
    "diving48": parse_diving48,
    "vidsitu": parse_vidsitu,
    "ava_train": lambda root: parse_ava(root, "train"),
    "ava_val": lambda root: parse_ava(root, "val"),
    "ava": lambda root: parse_ava(root, "train") + parse_ava(root, "val"),  # the detection protocol's both splits
}

# Datasets stored as JPEG frame folders, and their frame rate (not stored in the files).
FRAME_FOLDERS = {"ssv1": SSV1_FPS}
