"""Which videos of each dataset are there: present, listed in the official annotations, quarantined
by preparation, with the ids of the missing ones, and a stable fingerprint of the data.

    python -m datasets.fingerprint --config scale=full data_root=/data
    python -m datasets.fingerprint --config scale=smoke --datasets ucf101_split1 k400

The fingerprint is SHA-256 over the sorted `video_id<TAB>size` of the listed videos that are
present (core.provenance.video_fingerprint): no mtimes and no paths, so the same files on another
machine give the same fingerprint. Every metrics file records it for its evaluation data
(`eval_data_fingerprint`), so a table says which data its numbers came from. Quarantined videos come
from `results/<scale>/manifests/<dataset>.quarantine.csv` once preparation has run. The report is
printed and written as JSON to --out (default `results/<scale>/fingerprints.json`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from core.config import load_scale
from core.errors import SuiteError
from core.io import write_json
from core.provenance import video_fingerprint
from datasets.manifests.manifest import entries_for
from datasets.sources.registry import DATASETS, dataset_info

ROOT = Path(__file__).resolve().parent.parent


def dataset_report(dataset: str, root: Path, quarantine: Path | None = None) -> dict:
    """Present / listed / quarantined videos of `dataset` under `root`, the missing ids and the fingerprint."""
    listed = {e.video_id: e.path for e in entries_for(dataset, root)}
    present = {v: (root / p).stat().st_size for v, p in listed.items() if (root / p).exists()}
    quarantined = None
    if quarantine is not None and quarantine.exists():
        quarantined = sorted(map(str, pd.read_csv(quarantine)["video_id"]))
    return {"dataset": dataset, "root": str(root), "listed": len(listed), "present": len(present),
            "missing_ids": sorted(set(listed) - set(present)),
            "quarantined": None if quarantined is None else len(quarantined), "quarantined_ids": quarantined,
            "fingerprint": video_fingerprint(present.items())}


def default_datasets(root_of) -> list[str]:
    """Every dataset that is not a subset of another or an average of others and whose folder exists."""
    return [d for d, info in DATASETS.items() if info.parent is None and not info.averages and root_of(d).is_dir()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE", help="scale=NAME data_root=DIR, as for snakemake")
    parser.add_argument("--datasets", nargs="*", help="dataset ids (default: every top-level dataset whose folder exists)")
    parser.add_argument("--out", type=Path, help="JSON report (default results/<scale>/fingerprints.json)")
    args = parser.parse_args(argv)
    config = dict(item.split("=", 1) for item in args.config if "=" in item)
    bad = [item for item in args.config if "=" not in item]
    if bad:
        parser.error(f"--config: {bad[0]!r} is not KEY=VALUE")
    scale = config.get("scale", "smoke")
    try:
        profile = load_scale(scale)
        results = Path(f"results/{scale}")
        if profile.get("data_source") == "fixtures":
            data_root = Path(config.get("data_root") or results / "data")
        elif config.get("data_root"):
            data_root = Path(config["data_root"])
        else:
            parser.error(f"scale {scale!r} reads real datasets: pass --config data_root=DIR")

        def root_of(dataset: str) -> Path:
            return data_root / dataset_info(dataset).directory

        datasets = args.datasets or default_datasets(root_of)
        if not datasets:
            raise SuiteError(f"no dataset folder under {data_root} (known: {', '.join(sorted(DATASETS))})")
        reports = [dataset_report(d, root_of(d), results / "manifests" / f"{d}.quarantine.csv") for d in datasets]
    except SuiteError as exc:
        sys.exit(f"error: {exc}")
    for r in reports:
        quarantined = "not prepared" if r["quarantined"] is None else r["quarantined"]
        print(f"{r['dataset']}: {r['present']} present / {r['listed']} listed / {quarantined} quarantined, "
              f"fingerprint {r['fingerprint']}")
        if r["missing_ids"]:
            print(f"  missing ({len(r['missing_ids'])}): {' '.join(r['missing_ids'])}")
    write_json(args.out or results / "fingerprints.json", {"scale": scale, "data_root": str(data_root), "datasets": reports})


if __name__ == "__main__":
    main()
