"""Clips for training and evaluation: visual clips decoded from video, motion clips read from
the motion cache, both cut by the same `ClipPlan` semantics (datasets.clips.sampling).

The CPU path decodes with PyAV (`datasets.clips.decode`); with `decoder: dali` the DALI pipeline
(`datasets.clips.dali_decode`) decodes the same planned frames and crops on the GPU.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

from datasets.clips.dali_decode import DaliClipLoader
from datasets.clips.decode import load_clip
from datasets.clips.sampling import ClipPlan, ClipSpec


def clip_spec(section: dict, temporal_views: int = 1, spatial_views: int = 1) -> ClipSpec:
    """ClipSpec from a config's `clip:` section."""
    c = section["clip"] if "clip" in section else section
    return ClipSpec(int(c["num_frames"]), int(c["stride"]), int(c["crop_size"]), int(c["short_side"]), temporal_views, spatial_views)


def clip_augmentation(augment: dict, crop_size: int) -> v2.Compose:
    """Colour jitter (brightness, contrast, saturation), grayscale and Gaussian blur, each with its
    probability in `augment`; one set of random parameters per clip, since v2 transforms draw
    once per call for all frames of a (T, C, H, W) tensor. Expects floats in [0, 1]."""
    strength = float(augment["color_strength"])
    kernel = max(3, int(0.1 * crop_size) // 2 * 2 + 1)  # ~10% of the crop, odd (SimCLR's choice)
    return v2.Compose([
        v2.RandomApply([v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength)], p=augment["color_p"]),
        v2.RandomGrayscale(p=augment["grayscale_p"]),
        v2.RandomApply([v2.GaussianBlur(kernel, sigma=tuple(augment.get("blur_sigma", (0.1, 2.0))))], p=augment.get("blur_p", 0.0)),
    ])


_DALI_LOADERS: dict = {}


def load_visual_clip(path: str | Path, plan: ClipPlan, spec: ClipSpec, decoder: str = "cpu") -> torch.Tensor:
    """uint8 (3, T, crop, crop) of one planned clip, decoded by PyAV (`cpu`) or DALI (`dali`:
    NVDEC on a GPU, DALI's CPU decoder otherwise). Both paths cut the same frames and crops."""
    if decoder == "cpu":
        return load_clip(path, plan, spec, use_cache=True)
    if decoder == "dali":
        device = "gpu" if torch.cuda.is_available() else "cpu"
        loader = _DALI_LOADERS.get((spec, device))
        if loader is None:  # one pipeline per clip spec and process
            loader = _DALI_LOADERS[(spec, device)] = DaliClipLoader(spec, device=device, batch_size=1)
        return loader.load([str(path)], [plan])[0].cpu()
    raise ValueError(f"unknown decoder {decoder!r}; known: cpu, dali")


def normalize(clip: torch.Tensor, mean, std) -> torch.Tensor:
    mean = torch.as_tensor(mean, dtype=clip.dtype).view(-1, 1, 1, 1)
    std = torch.as_tensor(std, dtype=clip.dtype).view(-1, 1, 1, 1)
    return (clip - mean) / std


def motion_clip(motion: np.ndarray, plan: ClipPlan, spec: ClipSpec, scale: float) -> torch.Tensor:
    """Float (C, T, crop, crop) from a cached motion array (N, C, H, W), already at `short_side`.

    A horizontal flip of a flow field also negates its x component; the caller decides whether
    to flip (MaCLR skips augmentations on motion inputs).
    """
    top, left = plan.crop
    c = spec.crop_size
    x = torch.from_numpy(motion[list(plan.indices), :, top : top + c, left : left + c].astype(np.float32))
    if x.shape[-2:] != (c, c):
        raise ValueError(f"motion crop {c} at {plan.crop} outside cached motion of size {motion.shape[-2:]}")
    if plan.flip:
        x = x.flip(-1)
        if x.shape[1] == 2:
            x[:, 0] = -x[:, 0]
    return (x * scale).permute(1, 0, 2, 3).contiguous()
