"""HCML's training with labels on a target dataset (§3.3, suppl. D.2), as Tables 1, 2, 3, 5 and 6
train "from scratch": the self-supervised phase (progressive, level by level; skipped without
self-supervision) and then the joint phase of Eq. (5), L_classification + lambda L_reconstruct +
sum_l gamma^l L^l_contrastive, both on the shared engine. The recipe (epochs, warm-up, batch,
learning rate, clip) is the protocol's section of the scale profile."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from core.config import deep_merge
from datasets.clips.reader import ClipReader, clip_spec
from datasets.clips.sampling import plan_test_clips
from methods.hcml.data import HCMLClips
from methods.hcml.losses import joint_objective
from methods.hcml.model import HCML
from methods.training.engine import RunSettings, fit
from methods.training.method import TrainingTask


class JointTraining(TrainingTask):
    """Eq. (5): the classifier on the fused backbone (Z^l = F^l + g^l(P^l)) plus, with
    self-supervision, every level's self-supervised term, weighted by lambda and gamma^l."""

    def __init__(self, hcml: HCML, num_classes: int):
        super().__init__()
        self.hcml = hcml
        self.head = nn.Linear(hcml.net.out_dim, num_classes)

    def logits(self, clip: torch.Tensor) -> torch.Tensor:
        return self.head(self.hcml.net(clip))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hcml = self.hcml
        if not hcml.self_supervised:
            return {"classification": F.cross_entropy(self.logits(batch["clip"]), batch["label"])}
        pooled, motion = hcml.net.forward_with_motion(batch["clip"])
        terms = {"classification": F.cross_entropy(self.head(pooled), batch["label"])}
        terms.update(hcml.self_supervised_terms(batch["clip"], motion, hcml.supervised_levels()))
        return terms

    def total_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg = self.hcml.cfg
        contrastive = {int(name[len("contrastive"):]): t for name, t in terms.items() if name.startswith("contrastive")}
        return joint_objective(terms["classification"], terms.get("reconstruct"), contrastive,
                               float(cfg["lambda_reconstruct"]), {int(k): float(v) for k, v in cfg["gamma"].items()})


def recipe_config(cfg: dict, settings: dict) -> dict:
    """The method config with the recipe's clip (Something: 32 x 1 frames, D.2) merged over it."""
    return deep_merge(cfg, {"clip": settings["clip"]}) if settings.get("clip") else cfg


def phase_settings(settings: dict, phase: str, batch: int, seed: int, title: str) -> RunSettings:
    """RunSettings of one phase: `<phase>_epochs`, `<phase>_warmup_epochs` and the shared optimizer."""
    optimizer = {"name": "sgd", "lr": settings["lr"], "momentum": settings["momentum"],
                 "weight_decay": settings["weight_decay"], "schedule": "cosine",
                 "warmup_epochs": settings[f"{phase}_warmup_epochs"], "warmup_start_lr": settings.get("warmup_start_lr")}
    return RunSettings(epochs=int(settings[f"{phase}_epochs"]), batch_size=batch, optimizer=optimizer, seed=seed,
                       grad_clip_norm=float(settings["grad_clip_norm"]) if settings.get("grad_clip_norm") else None,
                       max_steps_per_epoch=int(settings["max_steps_per_epoch"]) if settings.get("max_steps_per_epoch") else None,
                       drop_last=False, title=title)


def build_from_checkpoint(cfg: dict, checkpoint: dict, seed: int) -> HCML:
    """HCML of `cfg` (seeded side branch) with the checkpoint's backbone weights."""
    torch.manual_seed(seed)
    hcml = HCML(cfg)
    hcml.net.load_state_dict(checkpoint["encoder"]["state_dict"])
    return hcml


def self_supervised_phase(hcml: HCML, data: HCMLClips, settings: dict, batch: int, seed: int) -> HCML:
    """The progressive self-supervised phase (§3.2) for `ss_epochs`; every parameter learns again
    after it (the engine's last stage left the levels below it frozen)."""
    if hcml.self_supervised and int(settings["ss_epochs"]) > 0:
        fit(hcml, data, phase_settings(settings, "ss", batch, seed, "HCML self-supervised phase"))
    for p in hcml.parameters():
        p.requires_grad_(True)
    return hcml


def train_with_labels(cfg: dict, checkpoint: dict, train: pd.DataFrame, root: Path, settings: dict,
                      num_classes: int, seed: int) -> JointTraining:
    """The checkpoint's backbone (a seeded random start for the specs' `pretrain: none` rows), the
    self-supervised phase where the variant has self-supervision and `ss_epochs` > 0, then the joint
    phase; returns the trained model (its `logits` for the test)."""
    cfg = recipe_config(cfg, settings)
    hcml = build_from_checkpoint(cfg, checkpoint, seed)
    data = HCMLClips(train, root, cfg, seed)
    batch = min(int(settings["batch_size"]), len(data))
    self_supervised_phase(hcml, data, settings, batch, seed)
    model = JointTraining(hcml, num_classes)
    fit(model, data, phase_settings(settings, "joint", batch, seed, "HCML joint training (Eq. 5)"))
    return model


@torch.no_grad()
def level_features(hcml: HCML, videos: pd.DataFrame, root: Path, level: int, device: torch.device,
                   batch_size: int = 16) -> torch.Tensor:
    """(videos, C) motion features P of hierarchy level `level` (0, 1, 2), one clip per video (the
    test sampler's single view: first position, centre crop), averaged over time and space: what
    Table 1's classifier and Table 5's kNN read."""
    cfg = hcml.cfg
    spec = clip_spec(cfg["clip"], temporal_views=1, spatial_views=1)
    reader = ClipReader(root, spec, cfg["normalize_mean"], cfg["normalize_std"])
    hcml.eval().to(device)
    features = []
    rows = list(videos.itertuples())
    for start in range(0, len(rows), batch_size):
        clips = []
        for row in rows[start:start + batch_size]:
            (plan,) = plan_test_clips(reader.num_frames(row), reader.frame_hw(row), spec)
            clips.append(reader(row, plan))
        _, motion = hcml.net.forward_with_motion(torch.stack(clips).to(device), stop_after=hcml.levels[level])
        features.append(motion[hcml.levels[level]].mean(dim=(2, 3, 4)).cpu())
    return torch.cat(features)
