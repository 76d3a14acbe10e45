"""MCL's motion-focused video augmentation (Sec. 3.2): clips and crops drawn where the motion is.

Paper: Li et al., "Motion-Focused Contrastive Learning of Video Representations" (MCL, ICCV
2021), Sec. 3.2. It reads the ST-motion and T-motion cached by `datasets.motion.tvl1` (Sec. 3.1)
and returns plans of the shared clip sampler (`datasets.clips.sampling.ClipPlan`), so any clip
reader cuts them. Facts the paper omits are taken from its public code,
YihengZhang-CV/MCL-Motion-Focused-Contrastive-Learning ("official code" below), or are our
choice; each is said where it is used.
"""
from __future__ import annotations

import numpy as np

from datasets.clips.sampling import ClipPlan, ClipSpec, clip_indices, random_start, resized_hw, valid_starts
from datasets.motion.tvl1 import s_and_t_motion

# Sec. 3.2: "We then take the 90th-percentile in the motion map as a threshold."
SPATIAL_PERCENTILE = 90.0
# Sec. 3.2: "One bounding box that covers the 80% pixels with higher value than the threshold".
SPATIAL_COVERAGE = 0.8


def clip_level_motion(t_motion: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """Clip-level motion of every candidate clip of a video, (num_valid_starts,) float32.

    MCL Sec. 3.2: "the movement of each clip is measured by averaging the frame-level movement in
    m^T" (Sec. 1: "a 3D average pooling on the spatio-temporal motion map"; the same number, as
    every frame has the same size). Candidate clips are all clips that fit in the video, one per
    start frame; a clip's frames are those the shared sampler takes (`clip_indices`: num_frames
    frames `stride` apart). The paper does not say whether the skipped frames count; our choice:
    only the sampled frames.
    """
    t_motion = np.asarray(t_motion, dtype=np.float32).reshape(-1)
    n = valid_starts(len(t_motion), spec)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    idx = np.arange(n)[:, None] + clip_indices(0, spec)[None, :]
    return t_motion[idx].mean(axis=1)


def motion_focused_starts(t_motion: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """Boolean mask over clip starts: clip-level motion above the video's median (MCL Sec. 3.2).

    "We take the median across all the candidate clips in an identical video as a threshold, and
    randomly select one clip with magnitude above the threshold." When no clip is strictly above
    the median (every clip moves equally, e.g. a static video), every clip is allowed: the paper
    does not cover this case; our choice keeps plain random sampling there. Feed the mask to
    `datasets.clips.sampling.random_start(..., allowed=mask)`.
    (The official code, dataset/video_dataset.py, applies this sampling to 70% of the samples and
    uniform sampling to the rest; the paper does not say so, and this function follows the paper.)
    """
    clip_motion = clip_level_motion(t_motion, spec)
    if clip_motion.size == 0:
        return np.zeros(0, dtype=bool)
    mask = clip_motion > np.median(clip_motion)
    return mask if mask.any() else np.ones_like(mask)


def crop_coverage(mask: np.ndarray, crop_h: int, crop_w: int) -> np.ndarray:
    """Fraction of the True pixels of `mask` inside each crop_h x crop_w window.

    Returns (H - crop_h + 1, W - crop_w + 1) float64, indexed by the window's (top, left); all
    zeros when the mask is empty. Computed exactly with a summed-area table.
    """
    mask = np.asarray(mask, dtype=np.float64)
    height, width = mask.shape
    if not (0 < crop_h <= height and 0 < crop_w <= width):
        raise ValueError(f"crop {crop_h}x{crop_w} does not fit in a {height}x{width} map")
    sat = np.zeros((height + 1, width + 1))
    sat[1:, 1:] = mask.cumsum(0).cumsum(1)
    inside = sat[crop_h:, crop_w:] - sat[:-crop_h, crop_w:] - sat[crop_h:, :-crop_w] + sat[:-crop_h, :-crop_w]
    total = mask.sum()
    return inside / total if total > 0 else np.zeros_like(inside)


def motion_focused_crop(
    s_motion: np.ndarray,
    crop_h: int,
    crop_w: int,
    rng: np.random.Generator,
    percentile: float = SPATIAL_PERCENTILE,
    coverage: float = SPATIAL_COVERAGE,
) -> tuple[int, int]:
    """(top, left) of a crop_h x crop_w box chosen from the S-motion map (MCL Sec. 3.2).

    "We then take the 90th-percentile in the motion map as a threshold. One bounding box that
    covers the 80% pixels with higher value than the threshold is randomly selected."
    The pixels strictly above the `percentile` threshold form the motion mask; the box is drawn
    uniformly among all boxes of the given size that contain at least `coverage` of them. Where
    no box of this size reaches `coverage` (motion spread wider than the box), the box is drawn
    among those of maximal coverage; where no pixel is above the threshold (flat map), among all
    boxes. Both fallbacks are our choice (the paper omits them). The official code
    (dataset/augmentations/augmentation_util.py::get_cor) measures coverage of the bounding box
    of the top-10% pixels on a 7x7 grid by 40 random tries; we count the pixels exactly.
    """
    s_motion = np.asarray(s_motion, dtype=np.float32)
    threshold = np.percentile(s_motion, percentile)
    cov = crop_coverage(s_motion > threshold, crop_h, crop_w)
    best = cov.max()
    if best <= 0:
        candidates = np.ones_like(cov, dtype=bool)
    elif best >= coverage:
        candidates = cov >= coverage
    else:
        candidates = cov >= best
    tops, lefts = np.nonzero(candidates)
    k = int(rng.integers(0, tops.size))
    return int(tops[k]), int(lefts[k])


def resize_map(m: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 2-D map resized to (height, width) with area averaging (bilinear when enlarging)."""
    import cv2

    m = np.asarray(m, dtype=np.float32)
    if m.shape == (height, width):
        return m
    shrink = height <= m.shape[0] and width <= m.shape[1]
    return cv2.resize(m, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def plan_motion_focused_clip(
    motion: np.ndarray,
    spec: ClipSpec,
    rng: np.random.Generator,
    temporal: bool = True,
    spatial: bool = True,
    frame_motion: np.ndarray | None = None,
) -> ClipPlan:
    """One training tubelet of MCL's motion-focused augmentation, as a shared-sampler ClipPlan.

    `motion`: the cached ST-motion of the whole video (N, H, W). Temporal sampling (Sec. 3.2,
    "TA" in Table 1) draws the start among clips above the median clip-level motion; spatial
    cropping ("SA") computes the S-motion of the chosen clip, resized to the frame size after the
    shared short-side resize, and picks a `spec.crop_size` box by `motion_focused_crop`; the same
    (top, left) applies to every frame of the clip ("we crop the same region of each frame in the
    clip"). With `temporal` / `spatial` off, that step is the shared sampler's uniform choice.
    The flip is drawn with p = 0.5 as the shared sampler does (Sec. 3.2 lists "mirror" among the
    further augmentations). Draw order: start, crop, flip.
    `frame_motion`: the per-frame means of `motion` (the cache's `motion_frame_mean`); when given,
    only the chosen clip's frames of `motion` are read, so a memory-mapped cache costs one clip.
    """
    motion = np.asarray(motion)
    num_frames = len(motion)
    if temporal:
        frame_motion = motion.mean(axis=(1, 2)) if frame_motion is None else np.asarray(frame_motion)
        allowed = motion_focused_starts(frame_motion, spec)
    else:
        allowed = None
    start = random_start(num_frames, spec, rng, allowed)
    indices = clip_indices(start, spec)
    height, width = resized_hw(motion.shape[1], motion.shape[2], spec.short_side)
    if spatial:
        s_motion, _ = s_and_t_motion(motion[indices])
        crop = motion_focused_crop(resize_map(s_motion, height, width), spec.crop_size, spec.crop_size, rng)
    else:
        crop = (int(rng.integers(0, height - spec.crop_size + 1)), int(rng.integers(0, width - spec.crop_size + 1)))
    flip = bool(rng.random() < 0.5)
    return ClipPlan(tuple(int(i) for i in indices), crop, flip)
