"""Optimizers and learning-rate schedules, built from a config's `optimizer:` section.

    optimizer:
      name: sgd | adam | adamw
      lr: 0.4                # peak learning rate
      momentum: 0.9          # sgd
      nesterov: false        # sgd
      betas: [0.9, 0.999]    # adam / adamw
      weight_decay: 0.0001
      warmup_epochs: 5       # linear warm-up to lr ...
      warmup_start_lr: 0.001 # ... from this value (PySlowFast); without it, from lr / warm-up steps
      schedule: cosine | step | constant
      milestones: [30, 60]   # step: epochs at which lr is multiplied by gamma
      gamma: 0.1             # step
      final_lr: 0.0          # cosine: the value it decays to

Each method's config cites the paper (or names the source) of each value it sets.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch

from core.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "step", "constant")


def build_optimizer(params: Iterable, cfg: dict) -> torch.optim.Optimizer:
    """The optimizer `cfg["name"]` over `params` (parameters or parameter groups)."""
    name = str(cfg.get("name", "sgd")).lower()
    lr, decay = float(cfg["lr"]), float(cfg.get("weight_decay", 0.0))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(cfg.get("momentum", 0.0)),
                               nesterov=bool(cfg.get("nesterov", False)), weight_decay=decay)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, betas=tuple(cfg.get("betas", (0.9, 0.999))), weight_decay=decay)
    raise ConfigError(f"optimizer.name must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def learning_rate(cfg: dict, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """Learning rate at optimisation step `step` (0-based): linear warm-up over `warmup_epochs`
    from `warmup_start_lr` to `lr`, then the `schedule` (cosine decay to `final_lr` over the
    remaining steps; step decay by `gamma` at each epoch of `milestones`; or constant)."""
    peak = float(cfg["lr"])
    warmup = int(float(cfg.get("warmup_epochs", 0)) * steps_per_epoch)
    if step < warmup:
        if cfg.get("warmup_start_lr") is None:
            return peak * (step + 1) / warmup  # from lr/warmup, reaching lr on the last warm-up step
        start = float(cfg["warmup_start_lr"])
        return start + (peak - start) * step / warmup  # PySlowFast's warm-up, from warmup_start_lr
    schedule = str(cfg.get("schedule", "cosine"))
    if schedule == "cosine":
        final = float(cfg.get("final_lr", 0.0))
        progress = (step - warmup) / max(1, total_steps - warmup)
        return final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        epoch = step / max(1, steps_per_epoch)
        passed = sum(1 for milestone in cfg.get("milestones", []) if epoch >= float(milestone))
        return peak * float(cfg.get("gamma", 0.1)) ** passed
    if schedule == "constant":
        return peak
    raise ConfigError(f"optimizer.schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's lr, keeping a group's own `lr_scale` (e.g. a head trained faster)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * float(group.get("lr_scale", 1.0))
