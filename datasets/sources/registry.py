"""The datasets the suite knows, by id.

A dataset id names one manifest (`results/<scale>/manifests/<id>.csv`). `directory` is the
folder under the data root (`--config data_root=DIR` at full scale; the generated fixtures at
smoke scale) that holds the dataset in its official layout.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    directory: str
    description: str
    parent: str | None = None  # a subset dataset is derived from its parent's manifest
    averages: tuple[str, ...] = ()  # an average of evaluations on these datasets: no manifest of its own


DATASETS: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> None:
    if info.id in DATASETS:
        raise ValueError(f"dataset id {info.id!r} registered twice")
    DATASETS[info.id] = info


def dataset_info(dataset: str) -> DatasetInfo:
    """The registered dataset `dataset`; an unknown id (a typo in a target path, say) is one line
    naming it and the known ids."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r} (datasets/sources/registry.py); known: {', '.join(sorted(DATASETS))}")
    return DATASETS[dataset]


for _split in (1, 2, 3):
    register(DatasetInfo(f"ucf101_split{_split}", "UCF101", f"UCF101, official train/test split {_split}"))
    register(DatasetInfo(f"hmdb51_split{_split}", "HMDB51", f"HMDB51, official 70/30 split {_split}"))
# HCML Table 7 (A.2): UCF101 accuracy averaged over the three official splits (protocols/split_average.py)
register(DatasetInfo("ucf101_3splits", "UCF101", "UCF101, mean of the evaluations on splits 1-3",
                     averages=("ucf101_split1", "ucf101_split2", "ucf101_split3")))
register(DatasetInfo("k400", "Kinetics400", "Kinetics-400 train and validation"))
register(
    DatasetInfo(
        "k400_mini",
        "Kinetics400",
        "K400-mini (MaCLR §4.1): a fixed seeded subset of K400 train, 60k of ~240k videos at full scale",
        parent="k400",
    )
)

# Datasets prepared by datasets/sources/parsers/ (rules in datasets/more_datasets.smk).
register(DatasetInfo("ssv2", "SomethingSomethingV2", "Something-Something V2 train and validation (MaCLR Table 4a)"))
register(DatasetInfo("ssv1", "SomethingSomethingV1", "Something-Something V1 train and validation, frame folders (HCML)"))
register(DatasetInfo("diving48", "Diving48", "Diving48 V1 train and test (Controllable Augmentations Sec. 4.1)"))
register(DatasetInfo("vidsitu", "VidSitu", "VidSitu verb prediction, one row per 2-second event (MaCLR Table 4b)"))
register(DatasetInfo("ava_train", "AVA", "AVA v2.2 train videos; boxes in ava_train.boxes.csv (MaCLR Table 5)"))
register(DatasetInfo("ava_val", "AVA", "AVA v2.2 validation videos; boxes in ava_val.boxes.csv (MaCLR Table 5)"))
register(DatasetInfo("ava", "AVA", "AVA v2.2 detection: train and validation videos, boxes of both in ava.boxes.csv "
                                   "(MaCLR Table 5's evaluation set; protocols/detection.py)"))
register(DatasetInfo("k400_val", "Kinetics400", "Kinetics-400 validation split only", parent="k400"))
# The suite has no ImageNet: pretraining set `imagenet` is the K400 train videos, read one frame per
# sample by methods/supervised's 2D stand-in (smoke), or not read at all where a variant loads the
# public ImageNet checkpoint and takes 0 steps (full). Every cell it feeds names it.
register(DatasetInfo("imagenet", "Kinetics400", "ImageNet stand-in: the K400 train videos (methods/supervised)",
                     parent="k400"))
for _pct in (1, 5, 20, 40, 60, 80, 100):
    register(DatasetInfo(f"ucf101_lowshot_{_pct}", "UCF101",
                         f"UCF101 split 1 with {_pct}% of train, class-balanced and nested (MaCLR Table 3b)",
                         parent="ucf101_split1"))
