"""MaCLR's two pathways (§3.3), each an encoder with a momentum copy (§3.1)."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from datasets.motion import KINDS
from methods.backbones import build_backbone


class Encoder(nn.Module):
    """Backbone -> projection head -> L2-normalised embedding."""

    def __init__(self, backbone: nn.Module, embedding_dim: int):
        super().__init__()
        self.backbone = backbone
        width = backbone.out_dim
        # The paper gives only the 128-d output; MoCo v2's 2-layer MLP head (our choice).
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, embedding_dim))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(clip)), dim=1)


def build_pathway_backbone(cfg: dict, pathway: str) -> nn.Module:
    """The backbone of `pathway` ("visual" or "motion") as the config specifies it."""
    section = cfg[pathway]
    in_channels = 3 if pathway == "visual" else KINDS[section["input"]]
    return build_backbone(section["backbone"], width_multiplier=float(section["width_multiplier"]), in_channels=in_channels)


class Pathways(nn.ModuleDict):
    """Encoders by pathway name; one forward call embeds a dict of clips (so DDP can wrap it)."""

    def forward(self, clips: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: encoder(clips[name]) for name, encoder in self.items()}


class MaCLR(nn.Module):
    """Online and momentum encoders of the pathways a variant uses."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.pathways = list(cfg["pathways"])
        self.online = Pathways({p: Encoder(build_pathway_backbone(cfg, p), cfg["embedding_dim"]) for p in self.pathways})
        self.momentum = copy.deepcopy(self.online)
        for p in self.momentum.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def keys(self, clips: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.momentum(clips)
