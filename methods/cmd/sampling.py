"""CMD's training samples (Sec. 3.2, 3.3, 4.1): the RGB clip, its I-frame, and the motion-vector
windows after it (positive) and elsewhere in the video (negatives), as shared-sampler plans.

Paper: Huang et al., "Self-supervised Video Representation Learning by Context and Motion
Decoupling" (CMD, CVPR 2021). The I-frames and motion vectors these plans index are cached by
`datasets.motion.compressed`, which also cuts a motion-vector plan into a network input (`mv_clip`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.clips.sampling import (ClipPlan, ClipSpec, clip_indices, random_crop_offset, random_start,
                                     spatial_crop_offsets, test_starts)

# Sec. 4.1: "we predict motion dynamics in the next 8 consecutive frames".
MOTION_FRAMES = 8
# Sec. 4.1: "we sample one positive clip and three negative clips of motion vector maps from the same video".
NUM_NEGATIVES = 3
# Table 1 "Period": the motion target lies after the clip (future, the paper's setting) or inside it (current).
PERIODS = ("future", "current")


def choose_iframe(iframe_indices: np.ndarray, start: int, span: int, rng: np.random.Generator | None) -> int:
    """The I-frame "surrounding the clip" (Sec. 3.2) of the clip covering frames start ... start +
    span - 1: with `rng` (training) one drawn uniformly among the I-frames inside the span; without
    (test views) the one nearest the span's centre, inside the span where there is one. If none lies
    inside (GOP longer than the span), the one nearest the centre (our choice; the paper omits it)."""
    iframes = np.asarray(iframe_indices, np.int64)
    if iframes.size == 0:
        raise ValueError("no I-frame in the video")
    inside = iframes[(iframes >= start) & (iframes < start + span)]
    if inside.size and rng is not None:
        return int(inside[rng.integers(0, inside.size)])
    candidates = inside if inside.size else iframes
    return int(candidates[np.argmin(np.abs(candidates - (start + span // 2)))])


def motion_start(start: int, span: int, motion_frames: int, period: str = "future") -> int:
    """First frame of the motion window of a clip (Sec. 4.1, "the next 8 consecutive frames"):
    right after the span (`future`), or centred in it (`current`, Table 1 "Current")."""
    if period not in PERIODS:
        raise ValueError(f"motion period {period!r} is not one of {', '.join(PERIODS)}")
    return start + span if period == "future" else start + max(span - motion_frames, 0) // 2


@dataclass(frozen=True)
class CMDTestView:
    """One test view of the I-Network and M-Network: the RGB clip the view stands for, its I-frame
    and its motion window (the view's crop, unflipped)."""

    clip: ClipPlan
    iframe: int
    motion: ClipPlan


def plan_cmd_test_views(num_frames: int, iframe_indices: np.ndarray, frame_hw_after_resize: tuple[int, int],
                        spec: ClipSpec, motion_frames: int = MOTION_FRAMES, period: str = "future") -> list[CMDTestView]:
    """The temporal_views x spatial_views test views (temporal-major, as `plan_test_clips`) of the
    I-Network and M-Network, fed as in pretraining (`plan_cmd_sample`): view t is the RGB clip at
    PySlowFast's t-th uniform start (`test_starts`) among the starts that leave `motion_frames`
    frames after the span, as pretraining's starts do; its I-frame is `choose_iframe` without
    randomness (the one inside the span nearest its centre) and its motion vectors the window of
    `motion_start` (the 8 frames after the span). Spatial view s takes the s-th of the uniform crops
    (`spatial_crop_offsets`) for both; nothing is flipped. With the retrieval protocol's 10 x 3
    views, each video's I-Network feature is the mean over 10 I-frames (one per temporal view; two
    views may share an I-frame when a GOP is longer than their distance) x 3 crops, its M-Network
    feature the mean over the 10 windows of 8 frames after the 10 clips x 3 crops.
    Raises ValueError when the video is shorter than a clip plus its motion window."""
    span = spec.span
    usable = num_frames - motion_frames
    if usable < span:
        raise ValueError(f"video of {num_frames} frames is shorter than a CMD test view "
                         f"({span} clip frames + {motion_frames} motion frames)")
    height, width = frame_hw_after_resize
    crops = spatial_crop_offsets(height, width, spec.crop_size, spec.spatial_views)
    views = []
    for start in test_starts(usable, spec):
        indices = tuple(int(i) for i in clip_indices(start, spec))
        iframe = choose_iframe(iframe_indices, int(start), span, None)
        pos = motion_start(int(start), span, motion_frames, period)
        for crop in crops:
            views.append(CMDTestView(ClipPlan(indices, crop, False), iframe,
                                     ClipPlan(tuple(range(pos, pos + motion_frames)), crop, False)))
    return views


@dataclass(frozen=True)
class CMDSample:
    """What one CMD training sample reads from a video (Sec. 3.2, 3.3, 4.1)."""

    clip: ClipPlan  # the RGB clip (V-Network input)
    iframe: int  # frame number of the I-frame (I-Network input)
    motion: ClipPlan  # positive motion-vector clip: the frames after the clip, clip's crop and flip
    negatives: tuple[ClipPlan, ...]  # motion-vector clips at other times of the same video


def plan_cmd_sample(
    num_frames: int,
    iframe_indices: np.ndarray,
    frame_hw_after_resize: tuple[int, int],
    spec: ClipSpec,
    rng: np.random.Generator,
    motion_frames: int = MOTION_FRAMES,
    num_negatives: int = NUM_NEGATIVES,
    period: str = "future",
) -> CMDSample:
    """Sample one CMD training example.

    - Clip: `spec` (Sec. 4.1: "Each video clip consists of 16 frames with a temporal stride of 4"),
      start drawn by the shared sampler among starts that leave `motion_frames` frames after it.
    - I-frame: "a random I-frame surrounding the clip" (Sec. 3.2): drawn uniformly among the
      I-frames inside the clip's span; if none (GOP longer than the span), the one nearest the
      clip's centre (our choice; the paper omits the case).
    - Positive motion: "motion dynamics in the next 8 consecutive frames" (Sec. 4.1): frames
      start + span ... start + span + 7, with the clip's crop and flip ("cropping and flipping
      parameters are consistent for positive (video clip, motion vectors) pairs").
    - Negatives: `num_negatives` windows of `motion_frames` consecutive frames of the same video
      ("one positive clip and three negative clips of motion vector maps from the same video"),
      starts drawn uniformly, without replacement where possible, among windows that do not
      overlap the positive one (our choice; the paper does not say how they are placed), each with
      its own random crop and flip.
    Raises ValueError when the video is shorter than span + motion_frames (+ a distinct negative).
    Draw order: clip start, clip crop, clip flip, I-frame, negative starts, their crops and flips.
    """
    if period not in PERIODS:
        raise ValueError(f"motion period {period!r} is not one of {', '.join(PERIODS)}")
    span = spec.span
    n_starts = num_frames - span - motion_frames + 1
    if n_starts < 1:
        raise ValueError(f"video of {num_frames} frames is shorter than a CMD sample "
                         f"({span} clip frames + {motion_frames} motion frames)")
    start = random_start(num_frames, spec, rng, allowed=np.arange(num_frames) < n_starts)
    height, width = frame_hw_after_resize
    crop = random_crop_offset(height, width, spec.crop_size, rng)
    flip = bool(rng.random() < 0.5)
    clip = ClipPlan(tuple(int(i) for i in clip_indices(start, spec)), crop, flip)

    iframe = choose_iframe(iframe_indices, start, span, rng)
    pos = motion_start(start, span, motion_frames, period)
    motion = ClipPlan(tuple(range(pos, pos + motion_frames)), crop, flip)
    windows = np.arange(num_frames - motion_frames + 1)
    others = windows[np.abs(windows - pos) >= motion_frames]
    if others.size == 0:
        others = windows[windows != pos]
    if others.size == 0:
        raise ValueError(f"video of {num_frames} frames has no motion window besides the positive one")
    starts = rng.choice(others, size=num_negatives, replace=others.size < num_negatives)
    negatives = []
    for s in starts:
        neg_crop = random_crop_offset(height, width, spec.crop_size, rng)
        negatives.append(ClipPlan(tuple(range(int(s), int(s) + motion_frames)), neg_crop, bool(rng.random() < 0.5)))
    return CMDSample(clip, iframe, motion, tuple(negatives))
