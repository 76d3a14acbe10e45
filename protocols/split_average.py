"""The metrics of one evaluation averaged over a dataset's official splits (HCML Table 7, A.2: "the
average accuracy over all 3 splits on UCF-101"): the per-split metrics files in, one metrics file of
the same protocol out.

Each accuracy the protocol writes and every split holds is the mean over the splits; `splits` records
each split's metrics file, its SHA-256 and its accuracies, so the average is traceable to its runs.
Any other field that differs between the splits (the manifest's hash, its videos) is kept as the list
of the splits' values, in split order; one that agrees is kept as is. Train and test videos are counted
over all splits (so one test video's share of the mean is about 100 / num_test_videos).

    python -m protocols.split_average --protocol finetune --scale smoke --out ucf101_3splits.json \
        split1.json split2.json split3.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import MetricsError, SuiteError
from core.io import write_json
from core.provenance import file_hash
from tables.metrics import check_metrics, check_provenance, read_metrics, writes

# Video counts, summed over the splits.
SUMMED = ("num_train_videos", "num_test_videos")


def average_splits(paths: list[Path], protocol: str, scale: str) -> dict:
    """The mean metrics of the per-split metrics files `paths` of `protocol` at `scale`.

    Refused by name: fewer than two files, splits evaluated with different views or clips, or a
    split run with another pretraining checkpoint (the average is of one model's transfers)."""
    if len(paths) < 2:
        raise MetricsError(f"a split average needs two or more metrics files, got {[str(p) for p in paths]}")
    runs = [read_metrics(p, protocol, scale) for p in paths]
    for key in ("views", "clip", "checkpoint_sha256"):
        values = [r.get(key) for r in runs]
        if any(v != values[0] for v in values):
            raise MetricsError(f"{', '.join(map(str, paths))}: the splits differ in {key!r} ({values}); "
                               f"an average is of one model evaluated alike on each split")
    accuracies = sorted(k for k in set.intersection(*(set(r) for r in runs)) if writes(protocol, k))
    out = {}
    for key in sorted(set().union(*runs)):
        if writes(protocol, key):
            continue  # an accuracy: averaged below when every split holds it
        values = [r.get(key) for r in runs]
        out[key] = values[0] if all(v == values[0] for v in values) else values
    out.update({k: sum(int(r[k]) for r in runs) for k in SUMMED if all(k in r for r in runs)})
    out.update({k: sum(r[k] for r in runs) / len(runs) for k in accuracies})
    out["splits"] = [{"metrics_file": str(p), "metrics_sha256": file_hash(p), **{k: r[k] for k in accuracies}}
                     for p, r in zip(paths, runs)]
    check_metrics(out, protocol, "split average (not written)", scale)
    return check_provenance(out, "split average (not written)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("splits", nargs="+", type=Path, help="the per-split metrics files, in split order")
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--scale", required=True)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        metrics = average_splits(args.splits, args.protocol, args.scale)
    except SuiteError as exc:
        sys.exit(f"error: {exc}")
    write_json(args.out, metrics)
    print(f"{args.protocol}: mean top-1 {metrics.get('top1', float('nan')):.1f}% over {len(args.splits)} splits -> {args.out}")


if __name__ == "__main__":
    main()
