"""What a dataset root must hold before its preparation can start.

Checked when Snakemake builds the DAG at full scale (core/common.smk), so that a wrong or
incomplete `data_root` is one error naming what was looked for and where, before any job runs.
UCF101, HMDB51 and Kinetics-400 list their video folders and annotation files; for the other
datasets only the root folder is checked (their parsers name a missing file when preparation runs).
"""
from __future__ import annotations

from pathlib import Path

from core.errors import MissingInputError
from datasets.sources.official import HMDB51_SPLITS, K400_ANNOTATIONS, K400_SPLITS, UCF101_LISTS, UCF101_VIDEOS
from datasets.sources.registry import dataset_info


def required_paths(dataset: str) -> list[str]:
    """Paths under the root of `dataset` that its preparation reads first: a trailing '/' marks a
    folder, a '*' a pattern that must match a file. A subset (k400_mini, ucf101_lowshot_<pct>)
    needs what its parent needs."""
    dataset = dataset_info(dataset).parent or dataset
    if dataset.startswith("ucf101_split"):
        split = dataset.removeprefix("ucf101_split")
        return [f"{UCF101_VIDEOS}/", *(f"{UCF101_LISTS}/{name}.txt" for name in ("classInd", f"trainlist0{split}", f"testlist0{split}"))]
    if dataset.startswith("hmdb51_split"):
        return [f"{HMDB51_SPLITS}/*_test_split{dataset.removeprefix('hmdb51_split')}.txt"]
    if dataset == "k400":
        return [*(f"{K400_ANNOTATIONS}/{csv_name}" for csv_name, _ in K400_SPLITS.values()),
                *(f"{folder}/" for _, folder in K400_SPLITS.values())]
    return []


def _present(root: Path, required: str) -> bool:
    if "*" in required:
        return any(root.glob(required))
    return (root / required).is_dir() if required.endswith("/") else (root / required).is_file()


def check_root(dataset: str, root: str | Path) -> None:
    """Raise MissingInputError if `root` lacks a path of `required_paths(dataset)`, naming each."""
    root = Path(root)
    required = required_paths(dataset)
    layout = f" with {', '.join(required)}" if required else ""
    if not root.is_dir():
        raise MissingInputError(f"dataset {dataset!r}: no folder {root} (looked for it in the official layout{layout})")
    missing = [path for path in required if not _present(root, path)]
    if missing:
        raise MissingInputError(f"dataset {dataset!r}: {root} lacks {', '.join(missing)} (the official layout has {', '.join(required)})")
