"""Clips for training and evaluation: a manifest row and a `ClipPlan` in, a network input out.

`ClipReader` decodes visual clips from the videos (or their transcodes), augments and normalises
them; `MotionClipReader` cuts motion clips from the motion cache. Both follow the plan semantics
of `datasets.clips.sampling`, so a plan cuts the same frames and crop from either.

The CPU path decodes with PyAV (`datasets.clips.decode`); with decoder `dali` the DALI pipeline
(`datasets.clips.dali_decode`) decodes the same planned frames and crops on the GPU. In training,
a `dali` reader's clips are deferred and decoded a batch at a time by DALI's own pipeline
(`datasets.clips.dali_feed`, `ClipReader.finish`); called directly, it decodes one clip.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from datasets.clips.dali_decode import DaliClipLoader
from datasets.clips.decode import load_clip
from datasets.clips.sampling import ClipPlan, ClipSpec, resized_hw
from datasets.motion.flow import load_motion

if TYPE_CHECKING:
    from torchvision.transforms import v2

DECODERS = ("cpu", "dali")


def clip_spec(section: dict, temporal_views: int = 1, spatial_views: int = 1) -> ClipSpec:
    """ClipSpec from a config's `clip:` section."""
    c = section["clip"] if "clip" in section else section
    return ClipSpec(int(c["num_frames"]), int(c["stride"]), int(c["crop_size"]), int(c["short_side"]), temporal_views, spatial_views)


def clip_augmentation(augment: dict, crop_size: int) -> v2.Compose:
    """Colour jitter (brightness, contrast, saturation), grayscale and Gaussian blur, each with its
    probability in `augment`; one set of random parameters per clip, since v2 transforms draw
    once per call for all frames of a (T, C, H, W) tensor. Expects floats in [0, 1]."""
    # Imported here, not with the module: torchvision adds seconds to every job's start, and the
    # jobs that only embed clips (SVM, linear, retrieval) never augment.
    from torchvision.transforms import v2

    strength = float(augment["color_strength"])
    kernel = max(3, int(0.1 * crop_size) // 2 * 2 + 1)  # ~10% of the crop, odd (SimCLR's choice)
    return v2.Compose([
        v2.RandomApply([v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength)], p=augment["color_p"]),
        v2.RandomGrayscale(p=augment["grayscale_p"]),
        v2.RandomApply([v2.GaussianBlur(kernel, sigma=tuple(augment.get("blur_sigma", (0.1, 2.0))))], p=augment.get("blur_p", 0.0)),
    ])


_DALI_LOADERS: dict = {}
# Set by `datasets.clips.dali_feed` while a sample is built for DALI's batched pipeline: a `dali`
# ClipReader then returns a placeholder and logs the clip, which the pipeline decodes in batches.
_DEFERRED: dict = {"log": None}


class DeferredClip:
    """What a `dali` ClipReader logs for a clip while deferred: the file, the plan and the seed its
    augmentation draws from when the decoded clip is finished (`ClipReader.finish`)."""

    def __init__(self, reader: "ClipReader", path: Path, plan: ClipPlan, seed: int, placeholder: torch.Tensor):
        self.reader, self.path, self.plan, self.seed, self.placeholder = reader, path, plan, seed, placeholder


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
    raise ValueError(f"unknown decoder {decoder!r}; known: {', '.join(DECODERS)}")


def normalize(clip: torch.Tensor, mean, std) -> torch.Tensor:
    # on the clip's device: the batched DALI pipeline finishes NVDEC's clips on the GPU
    mean = torch.as_tensor(mean, dtype=clip.dtype, device=clip.device).view(-1, 1, 1, 1)
    std = torch.as_tensor(std, dtype=clip.dtype, device=clip.device).view(-1, 1, 1, 1)
    return (clip - mean) / std


def motion_clip(motion: np.ndarray, plan: ClipPlan, spec: ClipSpec, scale: float) -> torch.Tensor:
    """Float (C, T, crop, crop) from a cached motion array (N, C, H, W), already at `short_side`;
    only the planned frames of a memory-mapped array are read.

    A horizontal flip of a flow field also negates its x component; the caller decides whether
    to flip (MaCLR skips augmentations on motion inputs).
    """
    if plan.resize_to(spec) != spec.short_side:  # the cache holds one scale: a jittered plan cannot cut it
        raise ValueError(f"motion clip planned at short side {plan.short_side}; the motion cache is at {spec.short_side}")
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


def start_frame(row) -> int:
    """The video frame a manifest row starts at: its `start_frame` where the row is a window of its
    video (VidSitu's events), else 0."""
    start = getattr(row, "start_frame", 0)
    return 0 if start is None or pd.isna(start) else int(start)


def in_video(row, plan: ClipPlan) -> ClipPlan:
    """`plan`, whose frame indices count from the row's first frame, in the frames of its video."""
    start = start_frame(row)
    return plan if start == 0 else dataclasses.replace(plan, indices=tuple(int(i) + start for i in plan.indices))


class ClipReader:
    """Normalised float (3, T, crop, crop) clips of manifest rows, one `ClipPlan` at a time.

    The video is `<root>/<row.path>`, or with `video_dir` its transcode `<video_dir>/<video_id>.mp4`
    (the H.264 CFR copies DALI's NVDEC path decodes). The planned clip is decoded by `decoder`,
    scaled to [0, 1], colour-augmented when `augment` (a config's `augment:` section, see
    `clip_augmentation`) is given, and normalised by `mean` / `std`. The augmentations draw from
    torch's global generator, so callers seed it per sample.
    """

    def __init__(self, root: str | Path, spec: ClipSpec, mean, std, *, video_dir: str | Path | None = None,
                 decoder: str = "cpu", augment: dict | None = None):
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; known: {', '.join(DECODERS)}")
        self.root, self.spec, self.mean, self.std, self.decoder = Path(root), spec, mean, std, decoder
        self.video_dir = Path(video_dir) if video_dir else None
        self.augment = clip_augmentation(augment, spec.crop_size) if augment is not None else None

    def path(self, row) -> Path:
        return self.video_dir / f"{row.video_id}.mp4" if self.video_dir else self.root / row.path

    def num_frames(self, row) -> int:
        return int(row.num_frames)

    def frame_hw(self, row, short_side: int | None = None) -> tuple[int, int]:
        """Frame size after the short-side resize (the spec's, or a jittered `short_side`), the space
        plan crops live in."""
        return resized_hw(row.height, row.width, short_side or self.spec.short_side)

    def __call__(self, row, plan: ClipPlan) -> torch.Tensor:
        plan = in_video(row, plan)
        log = _DEFERRED["log"]
        if self.decoder == "dali" and log is not None:
            # One draw stands for the augmentation's: the batched pipeline augments the decoded clip
            # later, from this seed, so a sample stays a function of (seed, epoch, index); without
            # augmentation nothing is drawn, as on the per-clip path.
            seed = int(torch.randint(0, 2**31 - 1, ())) if self.augment is not None else 0
            placeholder = torch.tensor(len(log), dtype=torch.int64)
            log.append(DeferredClip(self, self.path(row), plan, seed, placeholder))
            return placeholder
        clip = load_visual_clip(self.path(row), plan, self.spec, self.decoder)
        return self._finish(clip, self.augment)

    def finish(self, clip: torch.Tensor, seed: int) -> torch.Tensor:
        """A decoded uint8 clip of a deferred request, augmented from its seed and normalised."""
        if self.augment is None:
            return self._finish(clip, None)
        # The CPU generator only (the transforms draw their parameters there), restored after, so
        # the training's own random streams, on the CPU and the GPU, are untouched.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            return self._finish(clip, self.augment)

    def _finish(self, clip: torch.Tensor, augment) -> torch.Tensor:
        clip = clip.float().div_(255.0)
        if augment is not None:  # v2 transforms take (T, C, H, W)
            clip = augment(clip.permute(1, 0, 2, 3)).permute(1, 0, 2, 3)
        return normalize(clip, self.mean, self.std)


class MotionClipReader:
    """Float (C, T, crop, crop) motion clips of manifest rows, cut from the per-video motion cache
    (`datasets.motion.flow`, stored at `spec.short_side`) and multiplied by `scale`; the motion
    counterpart of `ClipReader`, without augmentation. The cache is memory-mapped, so a clip reads
    only its own frames; the last video's map is kept, since callers cut several clips of one video
    in a row."""

    def __init__(self, cache_dir: str | Path, spec: ClipSpec, scale: float):
        self.cache_dir, self.spec, self.scale = cache_dir, spec, float(scale)
        self._video_id, self._motion = None, None

    def __getstate__(self) -> dict:
        # Pickled into worker processes without the kept maps (pickling a map copies its data).
        return {**self.__dict__, "_video_id": None, "_motion": None}

    def video(self, row) -> tuple[np.ndarray, np.ndarray]:
        """(motion (N, C, H, W), frame_mean (N,)) of the row's video."""
        if self._video_id != row.video_id:
            self._motion, self._video_id = load_motion(self.cache_dir, row.video_id), row.video_id
        return self._motion

    def num_frames(self, row) -> int:
        """Frames of the row that have both a video frame and a motion frame."""
        return min(int(row.num_frames), len(self.video(row)[0]) - start_frame(row))

    def frame_hw(self, row) -> tuple[int, int]:
        return tuple(self.video(row)[0].shape[-2:])

    def __call__(self, row, plan: ClipPlan) -> torch.Tensor:
        return motion_clip(self.video(row)[0], in_video(row, plan), self.spec, self.scale)
