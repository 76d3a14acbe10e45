"""A checkpoint of a variant's seeded random start, in the contract every protocol reads
(CONTRIBUTING.md, "Checkpoints"): the runs whose specs name no pretraining (`pretrain: none`),
such as the Scratch baselines (methods/random_init) and CMD Table 6's regularised training, which
a protocol then trains from these weights. No data is read and no step is taken.

    python -m methods.training.random_start --method random_init --variant scratch_c3d --scale smoke \\
        --out results/smoke/pretrain/random_init/scratch_c3d/none
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.config import method_config
from core.errors import SuiteError
from core.io import write_json
from core.provenance import git_commit, initialisation
from methods.training.checkpoint import write_transfer_checkpoint
from methods.training.registry import method_class
from methods.training.resume import seed_everything

NO_PRETRAINING = "none"  # the pretraining-set id of the specs' rows that have none


def write_random_start(method: str, variant: str, scale: str, out: Path, seed: int | None = None) -> Path:
    """Seed, build the variant's model and write its transfer checkpoint (and a summary) to `out`."""
    cfg = method_config(method, scale, variant)
    if seed is not None:
        cfg["seed"] = seed
    seed = int(cfg.get("seed", 0))
    seed_everything(seed)  # the initial weights follow from the seed, as a pretraining's do
    task = method_class(method)(cfg)
    provenance = {"method": method, "variant": variant, "pretrain": NO_PRETRAINING, "scale": scale, "seed": seed,
                  "flow_estimator": None, "motion_estimator": None, "initialisation": initialisation(cfg, seed),
                  "git_commit": git_commit(), "fingerprint": None, "videos": 0,
                  # a baseline is evaluated with the recipe of the method it is compared with (protocols.cli.recipe_owner)
                  "recipe_method": cfg.get("input_from") or method}
    out.mkdir(parents=True, exist_ok=True)
    write_transfer_checkpoint(out / "checkpoint.pt", task.transfer_encoder(), provenance, cfg, task.extra_transfer_encoders())
    write_json(out / "summary.json", {"epochs": 0, "steps": 0, **provenance})
    return out / "checkpoint.pt"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--seed", type=int, default=None, help="the initialisation's seed (default: the config's)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        print(write_random_start(args.method, args.variant, args.scale, args.out, args.seed))
    except SuiteError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
