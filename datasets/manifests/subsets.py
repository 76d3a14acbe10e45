"""K400-mini: a fixed, seeded subset of the Kinetics-400 train manifest; and the ImageNet stand-in
(`--subset imagenet`): the K400 train videos, for methods/supervised's 2D stand-in.

MaCLR §4.1: "we compare different variants of MaCLR trained for 100 epochs on a subset of 60k
videos ("K400-mini")". The paper does not say how the subset is drawn; ours is a uniform random
sample without replacement, seed from the scale profile, of the usable train videos (after
quarantine), sorted by video id so the file is stable. At full scale its size is 60000; at smoke
it is the same fraction (60k / ~240k = 0.25) of the fixture's train set.

    python -m datasets.manifests.subsets --parent results/smoke/manifests/k400.csv --scale smoke --out results/smoke/manifests/k400_mini.csv
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import load_scale
from core.errors import ConfigError
from core.io import write_csv


def k400_mini(parent: pd.DataFrame, size: int | None, fraction: float | None, seed: int) -> pd.DataFrame:
    train = parent[parent["split"] == "train"].sort_values("video_id").reset_index(drop=True)
    if size is None:
        if fraction is None:
            raise ConfigError("k400_mini needs `size` or `fraction` in the scale profile")
        size = max(1, round(fraction * len(train)))
    if size > len(train):
        raise ConfigError(f"k400_mini size {size} exceeds the {len(train)} usable K400 train videos")
    chosen = np.random.default_rng(seed).choice(len(train), size=size, replace=False)
    return train.iloc[np.sort(chosen)].reset_index(drop=True)


def imagenet_standin(parent: pd.DataFrame) -> pd.DataFrame:
    """The K400 train videos, sorted by id: frames of labelled videos for the 2D stand-in of ImageNet
    supervision (methods/supervised); no test or validation video is in it."""
    return parent[parent["split"] == "train"].sort_values("video_id").reset_index(drop=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parent", required=True, type=Path)
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--subset", choices=("k400_mini", "imagenet"), default="k400_mini")
    args = parser.parse_args(argv)
    profile = load_scale(args.scale)
    if args.subset == "imagenet":
        subset = imagenet_standin(pd.read_csv(args.parent))
    else:
        spec = profile.get("k400_mini", {})
        subset = k400_mini(pd.read_csv(args.parent), spec.get("size"), spec.get("fraction"), int(profile.get("seed", 0)))
    write_csv(args.out, subset)
    print(f"{args.subset}: {len(subset)} videos -> {args.out}")


if __name__ == "__main__":
    main()
