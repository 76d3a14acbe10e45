"""The random-initialisation baseline: the network a protocol trains from its seeded random weights,
written as a checkpoint in the contract every protocol reads (CONTRIBUTING.md, "Checkpoints"), so
the "Scratch" rows of every paper are runs of the same protocols as the pretrained rows.

It has no pretraining data and takes no step; `write_random_start` is the whole run:

    python -m methods.random_init.baseline --variant scratch_c3d --scale smoke --out results/smoke/pretrain/random_init/scratch_c3d/none
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.config import method_config
from core.errors import ConfigError, SuiteError
from core.io import write_json
from core.provenance import git_commit, initialisation
from methods.backbones import build_backbone
from methods.training.checkpoint import input_block, write_transfer_checkpoint
from methods.training.method import PretrainMethod, TransferEncoder
from methods.training.resume import seed_everything

NO_PRETRAINING = "none"  # the pretraining-set id of the specs' baseline rows


def compared_input(cfg: dict) -> dict:
    """The width, clip and normalisation of the method named by `input_from`, at the same scale."""
    source = cfg.get("input_from")
    if not source:
        raise ConfigError(f"methods/random_init/config.yaml variant {cfg.get('variant')!r}: no `input_from` method")
    other = method_config(source, cfg["scale"])
    return {"width_multiplier": float(other["width_multiplier"]), "clip": other["clip"],
            "mean": other["normalize_mean"], "std": other["normalize_std"]}


class RandomInit(PretrainMethod):
    name = "random_init"
    pretrains = False  # the DAG writes its checkpoint with rule `random_start`, not `pretrain`

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        self.input = compared_input(cfg)
        self.backbone = build_backbone(cfg["backbone"], width_multiplier=self.input["width_multiplier"], in_channels=3)

    @staticmethod
    def pretrain_inputs(cfg: dict) -> list[str]:
        return []

    @staticmethod
    def describe(cfg: dict, pretrain: str) -> str:
        return f"random initialisation of {cfg['backbone']} (seed {cfg.get('seed', 0)}), read as {cfg['input_from']} reads it"

    def transfer_encoder(self) -> TransferEncoder:
        return TransferEncoder(backbone=self.cfg["backbone"], width_multiplier=self.input["width_multiplier"], in_channels=3,
                               module=self.backbone,
                               input=input_block("rgb", self.input["clip"], self.input["mean"], self.input["std"]))


def write_random_start(variant: str, scale: str, out: Path, seed: int | None = None) -> Path:
    """Seed, build the variant's backbone and write its checkpoint (and a summary) to `out`."""
    cfg = method_config("random_init", scale, variant)
    if seed is not None:
        cfg["seed"] = seed
    seed = int(cfg.get("seed", 0))
    seed_everything(seed)  # the initial weights follow from the seed, as a pretraining's do
    task = RandomInit(cfg)
    provenance = {"method": "random_init", "variant": variant, "pretrain": NO_PRETRAINING, "scale": scale, "seed": seed,
                  "flow_estimator": None, "motion_estimator": None, "initialisation": initialisation(cfg, seed),
                  "git_commit": git_commit(), "fingerprint": None, "videos": 0,
                  # evaluated with the recipe of the method it is compared with (protocols.cli.recipe_owner)
                  "recipe_method": cfg["input_from"]}
    out.mkdir(parents=True, exist_ok=True)
    write_transfer_checkpoint(out / "checkpoint.pt", task.transfer_encoder(), provenance, cfg)
    write_json(out / "summary.json", {"epochs": 0, "steps": 0, **provenance})
    return out / "checkpoint.pt"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--seed", type=int, default=None, help="the initialisation's seed (default: the config's)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        print(write_random_start(args.variant, args.scale, args.out, args.seed))
    except SuiteError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
