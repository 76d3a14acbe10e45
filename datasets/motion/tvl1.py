"""MCL's motion inputs: TV-L1 flow, motion boundaries and motion maps, cached per video.

Paper: Li et al., "Motion-Focused Contrastive Learning of Video Representations" (MCL, ICCV
2021), Sec. 3.1 (motion estimation); the motion-focused sampling of Sec. 3.2 that reads these
maps is `methods.mcl.sampling`. Facts the
paper omits are taken from its public code, YihengZhang-CV/MCL-Motion-Focused-Contrastive-Learning
("official code" below), or are our choice; each is said where it is used.

Per-video cache (`extract_video`, run by `python -m datasets.motion.tvl1` through
`datasets.motion.cache.run_extraction`, rule `mcl_motion` in
datasets/motion_inputs.smk): `results/<scale>/motion/tvl1/<dataset>/<video_id>.arrays/` (one
memory-mapped `.npy` per array, `datasets.motion.cache`) holding
- `motion`   (N, H, W) float16: the ST-motion of the whole video, one Eq. (1) map per frame;
- `t_motion` (N,) float32: its T-motion (Eq. 2) from the float32 maps;
- `motion_frame_mean` (N,) float16: the mean of each stored float16 `motion` frame, the T-motion
  temporal sampling (`methods.mcl.sampling`) reads; stored so that a sample need not read every
  frame of the video, and finite exactly when `motion` is;
- `flow`     (N, H, W, 2) uint8 (optional): the TV-L1 flow (u, v) quantised as the official code
  stores it (`dataset/process_data/process_video.py::compute_TVL1`): clipped to +-20 px, mapped
  linearly to 0..255 (`dequantise_flow` inverts it).

Variable frame rate: kept, as a sequence of decoded frames. Flow i is between decoded frames i
and i+1 whatever their timestamps (the official code reads frames one after the other with
OpenCV, which does the same), so one motion map per decoded frame, indexed as the clip sampler
indexes frames. On such a video a frame pair spans a varying time, so motion magnitudes vary with
it; the summary lists these videos under `variable_frame_rate` (`datasets.clips.decode.frame_timing`).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from core.errors import VideoDecodeError
from datasets.clips.decode import decode_all, frame_timing
from datasets.clips.sampling import resized_hw
from datasets.motion.cache import extraction_parser, run_extraction, write_arrays

# Official code, process_video.py::compute_TVL1: flow is clipped to +-20 px before quantising.
FLOW_BOUND = 20.0


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


def write_motion_cache(out: str | os.PathLike, motion: np.ndarray, t_motion: np.ndarray | None = None,
                       flow: np.ndarray | None = None) -> None:
    """Write one video's `tvl1` cache (see module doc): ST-motion (N, H, W) stored as float16, its
    per-frame means, T-motion (N,) (from `motion` when None) and the quantised flow if given."""
    motion = np.asarray(motion).astype(np.float16)
    if t_motion is None:
        t_motion = np.asarray(motion, np.float32).mean(axis=tuple(range(1, motion.ndim)))
    # As methods.mcl.sampling computed it from the whole float16 array, so plans are unchanged.
    frame_mean = motion.mean(axis=tuple(range(1, motion.ndim)))
    arrays = {"motion": motion, "t_motion": np.asarray(t_motion, np.float32), "motion_frame_mean": frame_mean}
    if flow is not None:
        arrays["flow"] = flow
    write_arrays(out, **arrays)


def extract_video(path: str | os.PathLike, out: str | os.PathLike, short_side: int | None = None,
                  store_flow: bool = True) -> dict:
    """Compute and cache (atomically, via core.io) the MCL motion of one video; return its stats.

    Frames are decoded with the shared decoder, optionally resized to `short_side` (the official
    code resizes Kinetics to a short side of 256 before flow, process_video.py; UCF101 is used as
    shipped). Raises VideoDecodeError naming the file if it cannot be decoded or has < 2 frames.
    """
    path = Path(path)
    started = time.perf_counter()
    frames = np.asarray(decode_all(path))
    if len(frames) < 2:
        raise VideoDecodeError(f"{path}: {len(frames)} decodable frame(s); TV-L1 flow needs at least 2")
    frames = _resize_frames(frames, short_side)
    flow = tvl1_flow(frames)
    m_st = motion_map(flow)
    _, m_t = s_and_t_motion(m_st)
    write_motion_cache(out, m_st, m_t, quantise_flow(flow) if store_flow else None)
    return {"frames": int(len(frames)), "height": int(frames.shape[1]), "width": int(frames.shape[2]),
            "seconds": time.perf_counter() - started, "variable_frame_rate": frame_timing(path).variable}


def main(argv: list[str] | None = None) -> int:
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
