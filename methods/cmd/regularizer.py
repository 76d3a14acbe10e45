"""CMD Table 6 (§4.2, "Ablation: motion prediction as regularization"): supervised action
recognition trained from scratch on the evaluation dataset, with the motion prediction task of
Eq. (2) as an auxiliary loss weighted 0.2.

The fine-tuning protocol trains it (protocols/finetune.py asks the checkpoint's method for its
`finetune_task`): the same recipe, test views and Scratch start as Table 2's Scratch rows, so a row
pair differs only in the auxiliary term. Each training sample is a CMD sample of the labelled
training video (the RGB clip, the motion vectors of the 8 frames after it and three same-video
negative windows, `CMDPretrainData`), with the recipe's augmentations for the clip.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ConfigError
from methods.cmd.data import CMDPretrainData
from methods.training.method import TrainingTask


def regularised_objective(classification: torch.Tensor, motion: torch.Tensor, weight: float) -> torch.Tensor:
    """CMD §4.2 (Table 6): L = L_cls + w * J_M, J_M the pointwise InfoNCE of Eq. (2), "The weight of
    the pointwise InfoNCE loss (i.e., Eq. (2)) is set to 0.2"."""
    return classification + weight * motion


class MotionRegularisedClassifier(TrainingTask):
    """The V-Network with dropout and a linear classifier (the fine-tuning protocol's head), plus
    CMD's motion branch (predictor, M-Network, heads g^M_1, g^M_2) reading the same feature map."""

    def __init__(self, cmd: nn.Module, cfg: dict, v_state: dict, num_classes: int, dropout: float):
        super().__init__()
        if cfg["motion"]["loss"] != "infonce" or list(cfg["tasks"]) != ["motion"]:
            raise ConfigError(f"methods/cmd/config.yaml variant {cfg.get('variant')!r}: the Table 6 regulariser is "
                              f"Eq. (2) alone (`tasks: [motion]`, `motion.loss: infonce`)")
        self.weight = float(cfg["regularizer_weight"])
        self.cmd = cmd  # methods.cmd.model.CMD of `cfg`
        self.cmd.v_net.load_state_dict(v_state)  # the checkpoint's seeded random start
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.cmd.v_net.out_dim, num_classes))

    def logits(self, clip: torch.Tensor) -> torch.Tensor:
        return self.head(self.cmd.v_net(clip))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.cmd.v_net.forward_features(batch["clip"])
        logits = self.head(self.cmd.v_net.pool(x).flatten(1))
        return {"cross_entropy": F.cross_entropy(logits, batch["label"]), "motion": self.cmd.motion_term(x, batch)}

    def total_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return regularised_objective(terms["cross_entropy"], terms["motion"], self.weight)


class LabelledCMDData(CMDPretrainData):
    """CMD samples of labelled videos: each sample also holds its video's `label`."""

    def __getitem__(self, index: int) -> dict:
        sample = super().__getitem__(index)
        sample["label"] = torch.tensor(int(self.videos.iloc[index].label))
        return sample


def regularised_finetune_task(build_cmd, cfg: dict, checkpoint: dict, train: pd.DataFrame, root: Path,
                              cache: Path | None, settings: dict, num_classes: int, seed: int):
    """(task, dataset) of a Table 6 run under the fine-tuning recipe `settings` (its augmentations
    and dropout); `cache` is the evaluation dataset's compressed-domain cache, `build_cmd(cfg)` the
    CMD model whose motion branch regularises."""
    if cache is None:
        raise ConfigError(f"CMD variant {cfg.get('variant')!r} fine-tunes with motion prediction, which reads the "
                          f"evaluation dataset's compressed-domain cache: pass --motion-cache DIR (rule cmd_compressed)")
    cfg = {**cfg, "augment": settings["augment"]}
    task = MotionRegularisedClassifier(build_cmd(cfg), cfg, checkpoint["encoder"]["state_dict"], num_classes,
                                       float(settings["dropout"]))
    return task, LabelledCMDData(train, root, cache, cfg, seed)
