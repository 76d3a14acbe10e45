"""CMD's compressed-domain inputs: I-frames and motion-vector maps, cached per video.

Paper: Huang et al., "Self-supervised Video Representation Learning by Context and Motion
Decoupling" (CMD, CVPR 2021). Sec. 2.2: videos are encoded as CoViAR does, "where every I-frame
is followed by 11 consecutive P-frames" (the text says "MPEG-2 Part2"; CoViAR's reencode.sh, which
the CMD code's README points to, encodes MPEG-4 Part 2: `-c:v mpeg4`). The suite's transcode
profile `mpeg4_gop12` (datasets/transcodes/transcode.py) produces that stream: MPEG-4 Part 2,
GOP 12, no B-frames. What a training sample reads from them (Sec. 3.2-3.3, 4.1) is planned by
`methods.cmd.sampling`.

Extraction decodes the stream once with PyAV, asking the decoder to export its motion vectors
(`flags2=+export_mvs`); I-frames are kept as RGB, P-frames only as their vectors. Per-video cache
(`extract_video`, rule `cmd_compressed` in datasets/motion_inputs.smk):
`results/<scale>/motion/compressed/<dataset>/<video_id>.arrays/` (one memory-mapped `.npy` per
array, `datasets.motion.cache`) holding
- `iframes` (K, H, W, 3) uint8 and `iframe_indices` (K,) int32 (frame numbers, 0-based);
- `mv` (N, ceil(H/g), ceil(W/g), 2) float16: per frame, the forward displacement (dx, dy) in pixels
  of each g x g cell (g = `grid`, 4 by default, finer than any MPEG-4 block), 0 on I-frames and
  intra-coded blocks; `grid` and `pict_types` (N,) uint8 (1 = I, 2 = P) alongside.

Sign convention: a vector is where the block moved to, minus where it came from in the previous
frame (dst - src), so a square moving right by k px/frame gives (+k, 0), the same sense as optical
flow. CoViAR's loader stores src - dst; normalisation (`normalise_mv`) is symmetric, so only the
sign differs.

Variable frame rate: refused. A motion vector is a displacement over one frame interval, and
Sec. 4.1's "next 8 consecutive frames" assume a constant one; the rule reads the `mpeg4_gop12`
transcode, which is constant-rate by construction (`datasets.transcodes.transcode` re-times every
frame). A variable-rate file given directly (`datasets.clips.decode.frame_timing`) fails with
reason "variable frame rate" and is quarantined by name in the summary.
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from core.errors import VideoDecodeError
from datasets.clips.decode import frame_timing
from datasets.clips.sampling import ClipPlan, ClipSpec, resized_hw
from datasets.motion.cache import extraction_parser, run_extraction, write_arrays

GRID = 4
PICT_I, PICT_P, PICT_B = 1, 2, 3
# CoViAR dataset.py (chaoyuaw/pytorch-coviar), which CMD's README names as its loader:
# `clip_and_scale(img, 20)`, i.e. vectors clipped to +-20 px. CMD's own code (alibaba/Deep-Vision,
# Context-Motion-Decoupling dataset/transforms.py MNormalize) clamps to +-10 px and divides by 10
# instead: a paper-versus-code difference in tables/discrepancies.yaml (`cmd_mv_values`).
MV_BOUND = 20.0


def frame_mv_map(vectors: np.ndarray, height: int, width: int, grid: int = GRID) -> np.ndarray:
    """Motion-vector map (ceil(H/grid), ceil(W/grid), 2) float32 of one frame from FFmpeg's vectors.

    `vectors`: the structured array of PyAV's MOTION_VECTORS side data (fields source, w, h,
    src_x, src_y, dst_x, dst_y, motion_x, motion_y, motion_scale). Each block (w x h, centred on
    dst) gets the forward displacement dst - src = -motion / motion_scale (sub-pixel precise).
    Only vectors that reference a past frame (source < 0) are used; cells no vector covers are 0.
    """
    out = np.zeros((math.ceil(height / grid), math.ceil(width / grid), 2), np.float32)
    if vectors is None or len(vectors) == 0:
        return out
    v = vectors[vectors["source"] < 0]
    scale = np.maximum(v["motion_scale"].astype(np.float32), 1.0)
    dx = -v["motion_x"].astype(np.float32) / scale
    dy = -v["motion_y"].astype(np.float32) / scale
    x0 = (v["dst_x"].astype(np.int64) - v["w"] // 2) // grid
    y0 = (v["dst_y"].astype(np.int64) - v["h"] // 2) // grid
    x1 = (v["dst_x"].astype(np.int64) + (v["w"].astype(np.int64) + 1) // 2 + grid - 1) // grid
    y1 = (v["dst_y"].astype(np.int64) + (v["h"].astype(np.int64) + 1) // 2 + grid - 1) // grid
    for i in range(len(v)):
        out[max(y0[i], 0):max(y1[i], 0), max(x0[i], 0):max(x1[i], 0)] = (dx[i], dy[i])
    return out


def extract_compressed(path: str | os.PathLike, grid: int = GRID, codec: str | None = "mpeg4") -> dict:
    """I-frames and per-frame motion-vector maps of a video, decoding it once (see module doc).

    Raises VideoDecodeError naming the file when it is missing, empty, undecodable or truncated
    mid-stream, has no frame, is not in `codec` (None: any), or holds B-frames (CMD Sec. 2.2: I- and
    P-frames only; transcode with the `mpeg4_gop12` profile first).
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: video file is empty (0 bytes)")
    iframes, iframe_indices, mvs, types = [], [], [], []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream")
            stream = container.streams.video[0]
            if codec and stream.codec_context.name != codec:
                raise VideoDecodeError(
                    f"{path}: codec {stream.codec_context.name!r}, expected {codec!r} "
                    f"(transcode with the mpeg4_gop12 profile)")
            stream.codec_context.options = {"flags2": "+export_mvs"}
            for i, frame in enumerate(container.decode(stream)):
                kind = int(frame.pict_type)
                if kind == PICT_B:
                    raise VideoDecodeError(f"{path}: frame {i} is a B-frame; CMD expects I- and P-frames only "
                                           f"(transcode with the mpeg4_gop12 profile)")
                types.append(kind)
                if kind == PICT_I:
                    iframes.append(frame.to_ndarray(format="rgb24"))
                    iframe_indices.append(i)
                side = frame.side_data.get("MOTION_VECTORS") if kind == PICT_P else None
                mvs.append(frame_mv_map(side.to_ndarray() if side is not None else None,
                                        frame.height, frame.width, grid))
    except av.FFmpegError as e:
        raise VideoDecodeError(f"{path}: decoding failed: {e}") from e
    if not mvs:
        raise VideoDecodeError(f"{path}: no decodable frame")
    if not iframes:
        raise VideoDecodeError(f"{path}: no I-frame decoded")
    return {
        "iframes": np.stack(iframes),
        "iframe_indices": np.asarray(iframe_indices, np.int32),
        "mv": np.stack(mvs).astype(np.float16),
        "pict_types": np.asarray(types, np.uint8),
        "grid": np.int32(grid),
    }


def normalise_mv(mv: np.ndarray, bound: float = MV_BOUND) -> np.ndarray:
    """Motion-vector values to network inputs, as CoViAR's loader does (CMD's README names it).

    chaoyuaw/pytorch-coviar dataset.py: `clip_and_scale(img, 20)` = int32(mv * 127.5 / 20),
    `+ 128`, clipped to 0..255 as uint8, then `/ 255 - 0.5`: about mv / 40 within [-0.5, 0.5],
    vectors beyond +-20 px saturating. CMD's own code clamps to +-10 px and divides by 10 (the
    register's `cmd_mv_values`; the paper states neither), which is not done here.
    """
    q = np.trunc(np.asarray(mv, np.float32) * (127.5 / bound)) + 128
    return np.clip(q, 0, 255).astype(np.uint8).astype(np.float32) / 255.0 - 0.5


def flip_mv(mv: np.ndarray) -> np.ndarray:
    """Horizontal flip of motion-vector maps (..., H, W, 2): mirror the columns and negate dx."""
    out = np.ascontiguousarray(np.asarray(mv)[..., ::-1, :]).copy()
    out[..., 0] = -out[..., 0]
    return out


def dense_mv(mv_grid: np.ndarray, height: int, width: int, grid: int) -> np.ndarray:
    """Grid-cell maps (..., h, w, 2) to per-pixel maps (..., height, width, 2)."""
    dense = np.repeat(np.repeat(np.asarray(mv_grid, np.float32), grid, axis=-3), grid, axis=-2)
    return dense[..., :height, :width, :]


def mv_clip(mv_grid: np.ndarray, grid: int, frame_hw: tuple[int, int], plan: ClipPlan, spec: ClipSpec) -> np.ndarray:
    """Network input (T, crop, crop, 2) float32 of the motion vectors a plan names.

    Same geometry as the RGB clip of a shared-sampler plan: per-pixel maps, resized so the
    short side is `spec.short_side` (nearest neighbour: vectors are not interpolated across
    blocks), cropped at `plan.crop`, flipped (dx negated) if `plan.flip`, then `normalise_mv`.
    Vector values are not rescaled with the frame, as CoViAR does not (it resizes vector maps
    like images).
    """
    import cv2

    height, width = frame_hw
    out_h, out_w = resized_hw(height, width, spec.short_side)
    top, left = plan.crop
    maps = dense_mv(np.asarray(mv_grid)[plan.indices_array], height, width, grid)
    maps = np.stack([cv2.resize(m, (out_w, out_h), interpolation=cv2.INTER_NEAREST) for m in maps])
    maps = maps[:, top:top + spec.crop_size, left:left + spec.crop_size]
    if plan.flip:
        maps = flip_mv(maps)
    return normalise_mv(maps)


def extract_video(path: str | os.PathLike, out: str | os.PathLike, grid: int = GRID, codec: str | None = "mpeg4") -> dict:
    """Extract and cache (atomically, via core.io) the I-frames and vectors of one video; its stats."""
    started = time.perf_counter()
    timing = frame_timing(path)
    if timing.variable:
        raise VideoDecodeError(f"{path}: variable frame rate (frame intervals {timing.min_interval * 1000:.1f} to "
                               f"{timing.max_interval * 1000:.1f} ms); transcode with the mpeg4_gop12 profile")
    arrays = extract_compressed(path, grid, codec)
    write_arrays(out, **arrays)
    kinds = arrays["pict_types"]
    return {"frames": int(len(kinds)), "iframes": int((kinds == PICT_I).sum()),
            "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = extraction_parser("Cache CMD's I-frames and motion vectors (Sec. 2.2) for every video of a manifest.",
                               "folder holding the MPEG-4 (mpeg4_gop12) videos")
    parser.add_argument("--grid", type=int, default=GRID, help="cell size in pixels of the stored vector maps")
    parser.add_argument("--any-codec", action="store_true", help="accept codecs other than MPEG-4 Part 2")
    parser.add_argument("--transcoded", default="", metavar="EXT",
                        help="read <root>/<video_id><EXT> (a transcode folder, e.g. EXT=.avi) instead of the manifest's path")
    args = parser.parse_args(argv)

    def extract(src: Path, dst: Path) -> dict:
        if args.transcoded:
            src = Path(args.root) / f"{dst.stem}{args.transcoded}"
        return extract_video(src, dst, args.grid, None if args.any_codec else "mpeg4")

    return run_extraction("compressed", args.manifest, args.root, args.out_dir, args.summary, extract,
                          limit=args.limit, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
