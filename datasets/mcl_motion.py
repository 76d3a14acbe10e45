"""MCL's motion inputs: TV-L1 flow, motion boundaries, motion maps and motion-focused sampling.

Paper: Li et al., "Motion-Focused Contrastive Learning of Video Representations" (MCL, ICCV
2021), Sec. 3.1 (motion estimation) and Sec. 3.2 (motion-focused video augmentation). Facts the
paper omits are taken from its public code, YihengZhang-CV/MCL-Motion-Focused-Contrastive-Learning
("official code" below), or are our choice; each is said where it is used.

Per-video cache (`extract_video`, run by `python -m datasets.mcl_motion` through
`datasets.motion_cache.run_extraction`, rule `mcl_motion` in
datasets/motion_inputs.smk): `results/<scale>/motion/tvl1/<dataset>/<video_id>.npz` holding
- `motion`   (N, H, W) float16: the ST-motion of the whole video, one Eq. (1) map per frame;
- `t_motion` (N,) float32: its T-motion (Eq. 2), used by temporal sampling;
- `flow`     (N, H, W, 2) uint8 (optional): the TV-L1 flow (u, v) quantised as the official code
  stores it (`dataset/process_data/process_video.py::compute_TVL1`): clipped to +-20 px, mapped
  linearly to 0..255 (`dequantise_flow` inverts it).

Variable frame rate: kept, as a sequence of decoded frames. Flow i is between decoded frames i
and i+1 whatever their timestamps (the official code reads frames one after the other with
OpenCV, which does the same), so one motion map per decoded frame, indexed as the clip sampler
indexes frames. On such a video a frame pair spans a varying time, so motion magnitudes vary with
it; the summary lists these videos under `variable_frame_rate` (`datasets.decode.frame_timing`).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from core.errors import VideoDecodeError
from datasets.sampling import (
    ClipPlan,
    ClipSpec,
    clip_indices,
    random_start,
    resized_hw,
    valid_starts,
)

# Official code, process_video.py::compute_TVL1: flow is clipped to +-20 px before quantising.
FLOW_BOUND = 20.0
# Sec. 3.2: "We then take the 90th-percentile in the motion map as a threshold."
SPATIAL_PERCENTILE = 90.0
# Sec. 3.2: "One bounding box that covers the 80% pixels with higher value than the threshold".
SPATIAL_COVERAGE = 0.8


# --------------------------------------------------------------------------------------------
# Sec. 3.1: motion estimation
# --------------------------------------------------------------------------------------------
def tvl1_flow(frames: np.ndarray) -> np.ndarray:
    """TV-L1 optical flow of each frame of a video, (N, H, W, 2) float32 as (u, v).

    MCL Sec. 3.1: flow (u_i, v_i) is the displacement between frame i and frame i+1, by TV-L1
    [Zach et al.]; "for the last frame, we manually set (u_N, v_N) = (u_{N-1}, v_{N-1})".
    The solver is OpenCV contrib's Dual TV-L1 with its default parameters, as the official code
    calls it (`cv2.optflow.DualTVL1OpticalFlow_create()`); the paper states none. Frames are
    converted to grey levels (TV-L1 works on intensity). `frames`: (N, H, W, 3) uint8 RGB, N >= 2.
    """
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (N, H, W, 3), got {frames.shape}")
    if len(frames) < 2:
        raise ValueError(f"TV-L1 flow needs at least 2 frames, got {len(frames)}")
    solver = cv2.optflow.DualTVL1OpticalFlow_create()
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    flow = np.empty(frames.shape[:3] + (2,), dtype=np.float32)
    for i in range(len(frames) - 1):
        flow[i] = solver.calc(grey[i], grey[i + 1], None)
    flow[-1] = flow[-2]
    return flow


def motion_boundaries(flow: np.ndarray) -> np.ndarray:
    """Motion boundaries (du/dx, du/dy, dv/dx, dv/dy), shape (..., 4, H, W), of flow (..., H, W, 2).

    MCL Sec. 3.1, after Dalal et al. [6]: the x- and y-derivatives of the optical flow. The
    derivative operator is not stated in the paper; our choice: central differences (one-sided
    at the borders), numpy.gradient. (The official code, sts/motion_sts.py, convolves with
    unnormalised 3x3 Prewitt kernels, i.e. 6x a smoothed central difference; a constant factor
    that the relative thresholds of Sec. 3.2 do not see.)
    """
    flow = np.asarray(flow, dtype=np.float32)
    u, v = flow[..., 0], flow[..., 1]
    du_dy, du_dx = np.gradient(u, axis=(-2, -1))
    dv_dy, dv_dx = np.gradient(v, axis=(-2, -1))
    return np.stack([du_dx, du_dy, dv_dx, dv_dy], axis=-3)


def motion_map(flow: np.ndarray) -> np.ndarray:
    """Motion map m_i of Eq. (1) of MCL: sqrt of the sum of the squared four motion boundaries.

    m_i = sqrt((du_i/dx)^2 + (du_i/dy)^2 + (dv_i/dx)^2 + (dv_i/dy)^2), per pixel.
    `flow` (..., H, W, 2) -> (..., H, W) float32. Stacked over the frames of a video (or clip)
    it is the ST-motion m^ST (Sec. 3.1).
    """
    mb = motion_boundaries(flow)
    return np.sqrt(np.sum(mb * mb, axis=-3)).astype(np.float32)


def s_and_t_motion(m_st: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """S-motion and T-motion of Eq. (2) of MCL: m^S = P_t(m^ST) in R^{HxW}, m^T = P_s(m^ST) in R^N.

    Both are average poolings ("S-motion and T-motion averagely pool the motion map through
    temporal dimension and spatial dimension"): m^S is the mean over frames, m^T the mean over
    pixels. `m_st`: (N, H, W).
    """
    m_st = np.asarray(m_st, dtype=np.float32)
    if m_st.ndim != 3:
        raise ValueError(f"ST-motion must be (N, H, W), got shape {m_st.shape}")
    return m_st.mean(axis=0), m_st.mean(axis=(1, 2))


def quantise_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Flow to uint8 as the official code stores it: clip to +-bound, (f + bound) * 255 / (2 bound), round."""
    q = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))
    return np.round(q).astype(np.uint8)


def dequantise_flow(q: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Inverse of `quantise_flow` (to within one quantisation step, 2 * bound / 255 px)."""
    return q.astype(np.float32) * (2 * bound / 255.0) - bound


# --------------------------------------------------------------------------------------------
# Sec. 3.2: motion-focused video augmentation
# --------------------------------------------------------------------------------------------
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
    `datasets.sampling.random_start(..., allowed=mask)`.
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
    """
    motion = np.asarray(motion)
    num_frames = len(motion)
    allowed = motion_focused_starts(motion.mean(axis=(1, 2)), spec) if temporal else None
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


# --------------------------------------------------------------------------------------------
# Per-video cache
# --------------------------------------------------------------------------------------------
def _resize_frames(frames: np.ndarray, short_side: int | None) -> np.ndarray:
    import cv2

    if not short_side:
        return frames
    height, width = resized_hw(frames.shape[1], frames.shape[2], short_side)
    if (height, width) == frames.shape[1:3]:
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def extract_video(path: str | os.PathLike, out: str | os.PathLike, short_side: int | None = None,
                  store_flow: bool = True) -> dict:
    """Compute and cache (atomically, via core.io) the MCL motion of one video; return its stats.

    Frames are decoded with the shared decoder, optionally resized to `short_side` (the official
    code resizes Kinetics to a short side of 256 before flow, process_video.py; UCF101 is used as
    shipped). Raises VideoDecodeError naming the file if it cannot be decoded or has < 2 frames.
    """
    from core.io import save_npz
    from datasets.decode import decode_all, frame_timing

    path = Path(path)
    started = time.perf_counter()
    frames = np.asarray(decode_all(path))
    if len(frames) < 2:
        raise VideoDecodeError(f"{path}: {len(frames)} decodable frame(s); TV-L1 flow needs at least 2")
    frames = _resize_frames(frames, short_side)
    flow = tvl1_flow(frames)
    m_st = motion_map(flow)
    _, m_t = s_and_t_motion(m_st)
    arrays = {"motion": m_st.astype(np.float16), "t_motion": m_t.astype(np.float32)}
    if store_flow:
        arrays["flow"] = quantise_flow(flow)
    save_npz(out, **arrays)
    return {"frames": int(len(frames)), "height": int(frames.shape[1]), "width": int(frames.shape[2]),
            "seconds": time.perf_counter() - started, "variable_frame_rate": frame_timing(path).variable}


def main(argv: list[str] | None = None) -> int:
    from datasets.motion_cache import extraction_parser, run_extraction

    parser = extraction_parser("Cache MCL's TV-L1 motion maps (Sec. 3.1) for every video of a manifest.",
                               "dataset root the manifest's paths are relative to")
    parser.add_argument("--short-side", type=int, default=0, help="resize frames to this short side first (0: keep)")
    parser.add_argument("--no-flow", action="store_true", help="do not store the quantised flow")
    args = parser.parse_args(argv)
    return run_extraction(
        "tvl1", args.manifest, args.root, args.out_dir, args.summary,
        lambda src, dst: extract_video(src, dst, args.short_side or None, not args.no_flow),
        limit=args.limit, strict=args.strict,
    )


if __name__ == "__main__":
    sys.exit(main())
