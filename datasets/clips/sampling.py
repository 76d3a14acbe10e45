"""Clip specification and the frame / crop choices shared by the CPU and DALI decoders.

Everything here is pure numpy: a `ClipPlan` names exactly which frames of a video to decode,
where to crop them after resizing, and whether to flip them. `datasets.clips.decode` (PyAV) and
`datasets.clips.dali_decode` (DALI) both execute plans, so the two pipelines see the same pixels for
the same seed and `ClipSpec`.

Conventions (applied in this order by both decoders):
1. decode the frames `plan.indices` (0-based, in presentation order; repeats allowed);
2. resize every frame so that its shorter side is `spec.short_side` (`resized_hw`), or the plan's own
   `short_side` where training jitters the scale (`random_short_side`);
3. crop a `crop_size` x `crop_size` window at `plan.crop` = (top, left) of the resized frame;
4. flip horizontally when `plan.flip`.

Multi-view testing follows PySlowFast (facebookresearch/SlowFast):
- temporal views: `slowfast/datasets/decoder.py::get_start_end_idx` with `use_offset=False`,
  start_i = floor(delta * i / num_clips), delta = max(num_frames - clip_span, 0);
- spatial views: `slowfast/datasets/transform.py::uniform_crop`, index 0 / 1 / 2 = top-or-left
  end / centre / bottom-or-right end along the longer side, centre offset = ceil((L - crop) / 2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClipSpec:
    """What one clip is: `num_frames` frames `stride` apart, resized and cropped.

    `temporal_views` x `spatial_views` clips are taken per video at test time.
    """

    num_frames: int
    stride: int
    crop_size: int
    short_side: int
    temporal_views: int = 10
    spatial_views: int = 3

    def __post_init__(self) -> None:
        for name in ("num_frames", "stride", "crop_size", "short_side", "temporal_views"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ClipSpec.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.spatial_views not in (1, 3):
            raise ValueError(f"ClipSpec.spatial_views must be 1 or 3, got {self.spatial_views!r}")
        if self.crop_size > self.short_side:
            raise ValueError(
                f"ClipSpec.crop_size ({self.crop_size}) exceeds short_side ({self.short_side})"
            )

    @property
    def span(self) -> int:
        """Number of consecutive video frames one clip covers."""
        return (self.num_frames - 1) * self.stride + 1


@dataclass(frozen=True)
class ClipPlan:
    """Exactly which frames to decode, where to crop (after resizing) and whether to flip."""

    indices: tuple[int, ...]
    crop: tuple[int, int]  # (top, left) in the resized frame
    flip: bool = False
    short_side: int | None = None  # this clip's resize when it is not the spec's (training scale jitter)

    def resize_to(self, spec: ClipSpec) -> int:
        """The short side the planned frames are resized to."""
        return self.short_side or spec.short_side

    @property
    def indices_array(self) -> np.ndarray:
        return np.asarray(self.indices, dtype=np.int64)


def clip_indices(start: int, spec: ClipSpec) -> np.ndarray:
    """Frame indices of the clip starting at `start`: start + stride * arange(num_frames)."""
    return int(start) + spec.stride * np.arange(spec.num_frames, dtype=np.int64)


def valid_starts(num_video_frames: int, spec: ClipSpec) -> int:
    """Number of starts whose whole clip lies inside the video (0 when the video is too short)."""
    return max(int(num_video_frames) - spec.span + 1, 0)


def random_start(
    num_video_frames: int,
    spec: ClipSpec,
    rng: np.random.Generator,
    allowed: np.ndarray | None = None,
) -> int:
    """A start drawn uniformly from 0..num_video_frames - span.

    `allowed`, when given, is a boolean mask over starts (e.g. from motion thresholding); the
    start is then drawn uniformly among the valid starts where it is True. Entries beyond the
    last valid start are ignored; a mask shorter than the number of valid starts counts as False
    for the missing entries.
    """
    n_valid = valid_starts(num_video_frames, spec)
    if n_valid == 0:
        raise ValueError(
            f"no valid clip start: video has {num_video_frames} frames, clip spans {spec.span} "
            f"({spec.num_frames} frames, stride {spec.stride})"
        )
    if allowed is None:
        return int(rng.integers(0, n_valid))
    mask = np.asarray(allowed, dtype=bool).reshape(-1)[:n_valid]
    candidates = np.flatnonzero(mask)
    if candidates.size == 0:
        raise ValueError(
            f"no allowed clip start among {n_valid} valid starts "
            f"(video of {num_video_frames} frames, clip span {spec.span})"
        )
    return int(candidates[rng.integers(0, candidates.size)])


def test_starts(num_video_frames: int, spec: ClipSpec) -> list[int]:
    """`spec.temporal_views` starts spread uniformly over the video.

    PySlowFast's multi-view test sampling (`get_start_end_idx`, use_offset=False):
    start_i = floor(delta * i / temporal_views), delta = num_video_frames - span.
    Raises ValueError when the video is shorter than one clip.
    """
    if valid_starts(num_video_frames, spec) == 0:
        raise ValueError(
            f"no valid clip start: video has {num_video_frames} frames, clip spans {spec.span}"
        )
    delta = int(num_video_frames) - spec.span
    return [(delta * i) // spec.temporal_views for i in range(spec.temporal_views)]


test_starts.__test__ = False  # a library function, not a pytest test, when imported into tests


def resized_hw(height: int, width: int, short_side: int) -> tuple[int, int]:
    """Frame size after resizing the shorter side to `short_side`, keeping the aspect ratio.

    The longer side is floor(long * short_side / short), as PySlowFast's `random_short_side_scale_jitter`.
    """
    if height <= 0 or width <= 0 or short_side <= 0:
        raise ValueError(f"bad sizes: height={height}, width={width}, short_side={short_side}")
    if height <= width:
        return short_side, int(math.floor(width * short_side / height))
    return int(math.floor(height * short_side / width)), short_side


def _check_crop(height: int, width: int, crop_size: int) -> None:
    if crop_size > height or crop_size > width:
        raise ValueError(f"crop {crop_size} does not fit in a {height}x{width} frame")


def spatial_crop_offsets(
    height: int, width: int, crop_size: int, spatial_views: int
) -> list[tuple[int, int]]:
    """(top, left) of the test-time crops, PySlowFast's `uniform_crop` convention.

    3 views: the two ends and the centre along the longer side (order: top-or-left, centre,
    bottom-or-right), centred on the shorter side; 1 view: the centre crop.
    """
    _check_crop(height, width, crop_size)
    top_c = math.ceil((height - crop_size) / 2)
    left_c = math.ceil((width - crop_size) / 2)
    if spatial_views == 1:
        return [(top_c, left_c)]
    if spatial_views != 3:
        raise ValueError(f"spatial_views must be 1 or 3, got {spatial_views}")
    if height > width:
        return [(0, left_c), (top_c, left_c), (height - crop_size, left_c)]
    return [(top_c, 0), (top_c, left_c), (top_c, width - crop_size)]


def random_crop_offset(
    height: int, width: int, crop_size: int, rng: np.random.Generator
) -> tuple[int, int]:
    """(top, left) drawn uniformly over every crop that fits, both ends included."""
    _check_crop(height, width, crop_size)
    top = int(rng.integers(0, height - crop_size + 1))
    left = int(rng.integers(0, width - crop_size + 1))
    return top, left


def plan_train_clip(
    num_video_frames: int,
    frame_hw_after_resize: tuple[int, int],
    spec: ClipSpec,
    rng: np.random.Generator,
    allowed: np.ndarray | None = None,
    flip_p: float = 0.5,
    short_side: int | None = None,
) -> ClipPlan:
    """One training clip: random start (within `allowed`), random crop, horizontal flip with
    probability `flip_p` (0 where labels name left and right, as Something-Something's do).
    With `short_side` (a jittered scale, `random_short_side`) the frames are resized to it, and
    `frame_hw_after_resize` is the frame size at that short side.

    The generator is drawn in this order: start, crop (top, left), flip (drawn whatever `flip_p`).
    """
    start = random_start(num_video_frames, spec, rng, allowed)
    height, width = frame_hw_after_resize
    crop = random_crop_offset(height, width, spec.crop_size, rng)
    flip = bool(rng.random() < flip_p)
    return ClipPlan(tuple(int(i) for i in clip_indices(start, spec)), crop, flip, short_side)


def random_short_side(jitter: tuple[int, int] | list[int], spec: ClipSpec, rng: np.random.Generator) -> int:
    """A training clip's short side, uniform over the integers of `jitter` = [low, high] (the scale
    jitter of the short side: PySlowFast's `random_short_side_scale_jitter`, HCML D.2's [256, 320]);
    the crop must fit at the low end."""
    low, high = (int(v) for v in jitter)
    if not spec.crop_size <= low <= high:
        raise ValueError(f"short-side jitter [{low}, {high}]: needs crop_size ({spec.crop_size}) <= low <= high")
    return int(rng.integers(low, high + 1))


def plan_test_clips(
    num_video_frames: int, frame_hw_after_resize: tuple[int, int], spec: ClipSpec
) -> list[ClipPlan]:
    """The temporal_views x spatial_views test clips, temporal-major (view t*S + s), unflipped."""
    height, width = frame_hw_after_resize
    crops = spatial_crop_offsets(height, width, spec.crop_size, spec.spatial_views)
    plans = []
    for start in test_starts(num_video_frames, spec):
        indices = tuple(int(i) for i in clip_indices(start, spec))
        plans.extend(ClipPlan(indices, crop, False) for crop in crops)
    return plans
