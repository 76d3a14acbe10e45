"""The random-initialisation baseline: the network a protocol trains from its seeded random weights,
written as a checkpoint in the contract every protocol reads (CONTRIBUTING.md, "Checkpoints"), so
the "Scratch" rows of every paper are runs of the same protocols as the pretrained rows.

It has no pretraining data and takes no step: rule `random_start` (methods.training.random_start)
writes its checkpoint.
"""
from __future__ import annotations

from core.config import method_config
from core.errors import ConfigError
from methods.backbones import build_backbone
from methods.training.checkpoint import input_block
from methods.training.method import PretrainMethod, TransferEncoder


def compared_input(cfg: dict) -> dict:
    """The width, clip and normalisation of the method named by `input_from`, at the same scale."""
    source = cfg.get("input_from")
    if not source:
        raise ConfigError(f"methods/random_init/config.yaml variant {cfg.get('variant')!r}: no `input_from` method")
    other = method_config(source, cfg["scale"])
    if "width_multiplier" not in other and "visual" in other:  # MaCLR: its transferred Visual pathway
        other = other["visual"]
    return {"width_multiplier": float(other["width_multiplier"]), "clip": other["clip"],
            "mean": other["normalize_mean"], "std": other["normalize_std"]}


class RandomInit(PretrainMethod):
    name = "random_init"
    pretrains = False  # only rule `random_start` writes its checkpoints (pretraining set `none`)

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
