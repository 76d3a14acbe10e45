"""The datasets the suite knows, by id.

A dataset id names one manifest (`results/<scale>/manifests/<id>.csv`). `directory` is the
folder under the data root (`--config data_root=DIR` at full scale; the generated fixtures at
smoke scale) that holds the dataset in its official layout.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    directory: str
    description: str
    parent: str | None = None  # a subset dataset is derived from its parent's manifest


DATASETS: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> None:
    if info.id in DATASETS:
        raise ValueError(f"dataset id {info.id!r} registered twice")
    DATASETS[info.id] = info


for _split in (1, 2, 3):
    register(DatasetInfo(f"ucf101_split{_split}", "UCF101", f"UCF101, official train/test split {_split}"))
    register(DatasetInfo(f"hmdb51_split{_split}", "HMDB51", f"HMDB51, official 70/30 split {_split}"))
register(DatasetInfo("k400", "Kinetics400", "Kinetics-400 train and validation"))
register(
    DatasetInfo(
        "k400_mini",
        "Kinetics400",
        "K400-mini (MaCLR §4.1): a fixed seeded subset of K400 train, 60k of ~240k videos at full scale",
        parent="k400",
    )
)
