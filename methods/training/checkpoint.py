"""The one writer of the checkpoint every protocol reads (CONTRIBUTING.md, "Checkpoints").

What an encoder reads comes from the checkpoint's `input` block, never from a method's config
keys, so a protocol evaluates any method's checkpoint without importing the method.
"""
from __future__ import annotations

from pathlib import Path

from core.errors import ConfigError
from core.io import torch_save
from methods.training.method import INPUT_KINDS, TransferEncoder


def input_block(kind: str, clip: dict, mean=None, std=None, scale: float = 1.0) -> dict:
    """What the transferred encoder reads: the input `kind` (one of INPUT_KINDS), its clip
    (num_frames, stride, crop_size, short_side), the RGB normalisation, or the factor a
    precomputed input is multiplied by."""
    if kind not in INPUT_KINDS:
        raise ConfigError(f"unknown encoder input {kind!r}; known: {', '.join(INPUT_KINDS)}")
    return {
        "kind": kind,
        "modality": "rgb" if kind == "rgb" else "motion",
        "motion_kind": None if kind == "rgb" else kind,
        "clip": {k: int(clip[k]) for k in ("num_frames", "stride", "crop_size", "short_side")},
        "mean": None if mean is None else [float(v) for v in mean],
        "std": None if std is None else [float(v) for v in std],
        "motion_scale": float(scale),
    }


def plain(obj):
    """Plain Python values (dicts, lists, numbers, strings), so a checkpoint loads with
    `weights_only=True`."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def transfer_checkpoint(encoder: TransferEncoder, provenance: dict, cfg: dict) -> dict:
    return {
        "encoder": {"backbone": encoder.backbone, "width_multiplier": float(encoder.width_multiplier),
                    "in_channels": int(encoder.in_channels), "state_dict": encoder.module.state_dict()},
        "input": plain(encoder.input),
        "provenance": plain(provenance),
        "config": plain(cfg),
    }


def write_transfer_checkpoint(path: str | Path, encoder: TransferEncoder, provenance: dict, cfg: dict) -> None:
    torch_save(path, transfer_checkpoint(encoder, provenance, cfg))
