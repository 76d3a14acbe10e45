"""Supervised pretraining: a backbone and a linear classifier trained with cross-entropy on the
labels of the pretraining set, on the shared engine, and the backbone transferred as every method's
is (config.yaml says which rows it serves and cites the recipe).

Two ways to reach a 3D network from 2D supervision, both I3D's inflation (methods/backbones/public.py):
- `train_backbone: r2d50` with `frames_per_sample: 1`: a 2D ResNet-50 trained on single frames (the
  smoke profile's ImageNet stand-in) is inflated into `backbone` when the checkpoint is written;
- `init: public_checkpoint`: a public checkpoint (torchvision's ImageNet ResNet-50, pytorchvideo's
  K400 slow_r50, torchvision's r3d_18) is mapped into the training backbone first, file from
  --init-weights (methods/rules.smk: <data_root>/pretrained/<its file name>).
"""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import AnnotationError, ConfigError
from datasets.clips.reader import ClipReader, clip_spec
from methods.backbones import build_backbone
from methods.backbones.public import (PUBLIC_CHECKPOINTS, factorised_temporal_identity, load_public_checkpoint,
                                      map_state_dict)
from methods.random_init.baseline import compared_input
from methods.training.checkpoint import input_block
from methods.training.method import DataSources, PretrainMethod, TransferEncoder
from protocols.finetune import TrainClips

INITS = ("scratch", "public_checkpoint")


def public_entry(cfg: dict):
    name = cfg.get("public_checkpoint")
    if name not in PUBLIC_CHECKPOINTS:
        raise ConfigError(f"methods/supervised/config.yaml variant {cfg.get('variant')!r}: `init: public_checkpoint` "
                          f"needs `public_checkpoint` naming one of {', '.join(PUBLIC_CHECKPOINTS)}, got {name!r}")
    return PUBLIC_CHECKPOINTS[name]


class Supervised(PretrainMethod):
    name = "supervised"

    @staticmethod
    def transfer_settings(cfg: dict) -> dict:
        """Read as the method it is compared with reads its transferred encoder (`input_from`)."""
        return compared_input(cfg)

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        init = cfg.get("init", "scratch")
        if init not in INITS:
            raise ConfigError(f"methods/supervised/config.yaml: init must be one of {', '.join(INITS)}, got {init!r}")
        self.input = self.transfer_settings(cfg)
        width = self.input["width_multiplier"]
        self.trained_name = cfg.get("train_backbone") or cfg["backbone"]
        self.backbone = build_backbone(self.trained_name, width_multiplier=width, in_channels=3)
        if init == "public_checkpoint":
            public_entry(cfg)
            load_public_checkpoint(self.backbone, cfg["init_checkpoint"], cfg["public_checkpoint"])
        self.head: nn.Module | None = None  # sized by the pretraining set's classes (pretrain_dataset)

    @staticmethod
    def pretrain_inputs(cfg: dict) -> list[str]:
        return ["rgb"]

    @staticmethod
    def init_weights_file(cfg: dict) -> str | None:
        return public_entry(cfg).file if cfg.get("init", "scratch") == "public_checkpoint" else None

    @staticmethod
    def stand_in(cfg: dict, pretrain: str) -> str | None:
        if pretrain != "imagenet" or cfg.get("init", "scratch") == "public_checkpoint":
            return None
        inflated = f", inflated into {cfg['backbone']}" if cfg.get("train_backbone") else ""
        return (f"ImageNet stand-in: 2D {cfg.get('train_backbone') or cfg['backbone']} trained on single frames "
                f"of the K400 train videos with their labels{inflated}")

    @staticmethod
    def describe(cfg: dict, pretrain: str) -> str:
        epochs = cfg["epochs"].get(pretrain)
        inflated = f", inflated into {cfg['backbone']}" if cfg.get("train_backbone") else ""
        if cfg.get("init") == "public_checkpoint" and not epochs:
            return f"supervised {pretrain}: {cfg['public_checkpoint']} loaded into {cfg.get('train_backbone') or cfg['backbone']}{inflated}, no training step"
        start = (f"from {cfg['public_checkpoint']}" if cfg.get("init") == "public_checkpoint"
                 else f"from scratch (seed {cfg.get('seed', 0)})")
        what = Supervised.stand_in(cfg, pretrain) or f"supervised {cfg['backbone']} on {pretrain} labels"
        return f"{what}, {start}, {epochs} epochs, batch {cfg['batch_size']}"

    def train_spec(self):
        clip = dict(self.input["clip"])
        if self.cfg.get("frames_per_sample"):
            clip["num_frames"] = int(self.cfg["frames_per_sample"])
        return clip_spec(clip)

    def pretrain_dataset(self, manifest: pd.DataFrame, sources: DataSources, seed: int) -> TrainClips:
        unlabelled = manifest[manifest["label"] < 0]
        if not unlabelled.empty:
            raise AnnotationError(f"supervised pretraining needs labels; video {unlabelled['video_id'].iloc[0]} "
                                  f"({len(unlabelled)} in all) has none")
        num_classes = int(manifest["label"].max()) + 1
        self.head = nn.Sequential(nn.Dropout(float(self.cfg["dropout"])), nn.Linear(self.backbone.out_dim, num_classes))
        reader = ClipReader(sources.root, self.train_spec(), self.input["mean"], self.input["std"],
                            video_dir=sources.video_dir, decoder=self.cfg.get("decoder", "cpu"), augment=self.cfg["augment"])
        return TrainClips(manifest, reader, seed)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Cross-entropy of the classifier on the backbone's pooled features."""
        return {"cross_entropy": F.cross_entropy(self.head(self.backbone(batch["clip"])), batch["label"])}

    def transferred_backbone(self) -> nn.Module:
        """The trained backbone, or its I3D inflation into `backbone` when a 2D network was trained."""
        if self.trained_name == self.cfg["backbone"]:
            return self.backbone
        target = build_backbone(self.cfg["backbone"], width_multiplier=self.input["width_multiplier"], in_channels=3)
        target.load_state_dict(map_state_dict(target, self.backbone.state_dict(), "suite", f"trained {self.trained_name}",
                                              fill=factorised_temporal_identity))
        return target

    def transfer_encoder(self) -> TransferEncoder:
        return TransferEncoder(backbone=self.cfg["backbone"], width_multiplier=self.input["width_multiplier"], in_channels=3,
                               module=self.transferred_backbone(),
                               input=input_block("rgb", self.input["clip"], self.input["mean"], self.input["std"]))
