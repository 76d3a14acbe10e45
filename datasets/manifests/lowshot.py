"""Low-shot subsets of UCF101 train (MaCLR Sec. 4.2, Table 3b).

"We evaluate using the Full Training protocol on the UCF101 dataset starting from just 1% of its
training data (1 video per class) and gradually increase that to 100% (9.5k videos)"; Table 3b
columns: 1, 5, 20, 40, 60, 80, 100 %. The paper does not say how subsets are drawn; our choice,
consistent with "1% (1 video per class)":
- class-balanced: each class keeps max(1, round(pct / 100 * n_c)) of its n_c train videos;
- seeded: each class's videos are put in one random order (numpy default_rng(seed), classes in
  label order, videos sorted by id before shuffling), independent of pct;
- nested: a subset is the first k videos of that order, k non-decreasing in pct, so each larger
  subset contains every smaller one.
Test rows are kept unchanged (evaluation always uses the full test split).

    python -m datasets.manifests.lowshot --parent results/smoke/manifests/ucf101_split1.csv --pct 5 --out ..._lowshot_5.csv
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import load_scale
from core.io import write_csv

PERCENTS = (1, 5, 20, 40, 60, 80, 100)  # MaCLR Table 3b


def per_class_count(n: int, pct: float) -> int:
    return n if pct >= 100 else min(n, max(1, round(pct / 100 * n)))


def lowshot_subset(manifest: pd.DataFrame, pct: float, seed: int) -> pd.DataFrame:
    """Train rows of the pct % subset (see module doc) followed by all non-train rows."""
    if not 0 < pct <= 100:
        raise ValueError(f"low-shot percentage must be in (0, 100], got {pct}")
    train = manifest[manifest["split"] == "train"]
    rng = np.random.default_rng(seed)
    kept = []
    for _, group in sorted(train.groupby("label"), key=lambda g: g[0]):
        order = group.sort_values("video_id").iloc[rng.permutation(len(group))]
        kept.append(order.iloc[: per_class_count(len(group), pct)])
    subset = pd.concat(kept) if kept else train.iloc[:0]
    return pd.concat([subset, manifest[manifest["split"] != "train"]]).reset_index(drop=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parent", required=True, type=Path, help="UCF101 split manifest")
    parser.add_argument("--pct", required=True, type=float, help=f"percentage of train videos; Table 3b: {PERCENTS}")
    parser.add_argument("--scale", default="smoke", help="scale profile whose `seed` draws the subsets")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if not args.parent.exists():
        parser.error(f"--parent {args.parent} does not exist")
    seed = int(load_scale(args.scale).get("seed", 0))
    write_csv(args.out, lowshot_subset(pd.read_csv(args.parent, dtype={"video_id": str}), args.pct, seed))


if __name__ == "__main__":
    main()
