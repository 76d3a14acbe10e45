"""Parsers of the official annotation formats of the datasets beyond UCF101, HMDB51 and Kinetics-400.

Each parser turns a dataset root in its official layout into `datasets.official.Entry` rows and
follows the same policy as `datasets.official`: a missing annotation file or a malformed row
stops preparation with an error naming the file and line (`core.errors.AnnotationError`,
`MissingInputError`); whether each video exists and decodes is checked afterwards, and a video
that is missing, empty, truncated or too short goes to the quarantine report by name
(`datasets.manifest.build_manifest`, or `something.build_frame_manifest` for frame folders).
A variable-frame-rate video is kept as a frame sequence, except in AVA, whose keyframes are
timestamps: there it is quarantined ("variable frame rate"; `datasets.manifest.TIME_INDEXED`).

`PARSERS` maps a dataset id (datasets/registry.py) to its parser (root -> entries);
`datasets.manifest.entries_for` falls back to it, so `python -m datasets.manifest` writes the
manifest and quarantine report of every dataset. `FRAME_FOLDER_BUILDERS` names the datasets
stored as frame folders and the builder that probes them. `python -m datasets.parsers.prepare`
writes AVA's evaluated boxes next to its manifest.
"""
from __future__ import annotations

from datasets.parsers.ava import parse_ava
from datasets.parsers.diving48 import parse_diving48
from datasets.parsers.something import build_frame_manifest, parse_ssv1, parse_ssv2
from datasets.parsers.vidsitu import parse_vidsitu

PARSERS = {
    "ssv2": parse_ssv2,
    "ssv1": parse_ssv1,
    "diving48": parse_diving48,
    "vidsitu": parse_vidsitu,
    "ava_train": lambda root: parse_ava(root, "train"),
    "ava_val": lambda root: parse_ava(root, "val"),
}

# Datasets stored as JPEG frame folders, probed by their own builder (same columns and policy).
FRAME_FOLDER_BUILDERS = {"ssv1": build_frame_manifest}
