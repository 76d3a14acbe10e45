"""Transcode videos to the codec profiles that consumers of the DAG need (DESIGN, data flow step 2).

Profiles (PyAV encoders; no ffmpeg binary is needed):
- `h264_cfr`: constant-frame-rate H.264 (yuv420p) in MP4, for NVDEC (DALI's "mixed" decoder).
- `vp9`: lossless VP9 in WebM, for DALI's CPU decoder in CI (it reads only VP8, VP9 and MJPEG).
  Frames already in yuv420p are encoded without a colour round trip, so decoding the transcode
  gives the same pixels as decoding the source.
- `mpeg4_gop12`: MPEG-4 Part 2 in AVI with a fixed GOP of 12 and no B-frames (every I-frame is
  followed by 11 P-frames; scene-cut I-frames disabled), quantiser 1 (the `-q:v 1` of
  CoViAR-style preprocessing): the compressed-domain input of CMD §4.1 (I-frames and motion vectors).

Every output keeps the source's decoded frame count and its average frame rate: frames are
re-timestamped 0, 1, 2, ... at that rate, and the output is decoded again to check both. A
variable-frame-rate source (`datasets.clips.decode.frame_timing`) becomes constant-rate: its
frames are kept one for one (none dropped or repeated, so frame indices still name the same
frames) at the mean rate of its timestamps, the fps its manifest row records
(`datasets.manifests.manifest`); the summary lists such videos under `retimed_variable_frame_rate`.
H.264 and MPEG-4 need even frame sizes; an odd height or width loses its last row or column, and
the result says so.

CLI (used by datasets/transcode.smk):
    python -m datasets.transcodes.transcode --manifest M.csv --root DATASET_ROOT --codec vp9 \
        --out-dir results/smoke/transcode/vp9/ucf101 --summary .../_summary.json
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from core.errors import VideoDecodeError
from core.io import atomic_path, write_json
from datasets.clips.decode import _iter_frames, _open, count_frames, fps_fraction, frame_timing


@dataclass(frozen=True)
class Profile:
    codec: str  # PyAV / libavcodec encoder name
    container: str  # libavformat muxer name
    ext: str
    options: dict = field(default_factory=dict)  # encoder AVOptions
    gop_size: int | None = None
    max_b_frames: int | None = None


FF_QP2LAMBDA = 118  # libavutil's lambda per quantiser step; -q:v N sets global_quality = N * 118

PROFILES: dict[str, Profile] = {
    "h264_cfr": Profile("libx264", "mp4", "mp4", {"crf": "18", "preset": "veryfast"}),
    "vp9": Profile("libvpx-vp9", "webm", "webm", {"lossless": "1", "deadline": "realtime", "cpu-used": "8"}),
    "mpeg4_gop12": Profile(
        "mpeg4",
        "avi",
        "avi",
        {"flags": "+qscale", "global_quality": str(1 * FF_QP2LAMBDA), "sc_threshold": "1000000000"},
        gop_size=12,
        max_b_frames=0,
    ),
}


def _fps_close(a: Fraction, b: Fraction) -> bool:
    return abs(float(a) - float(b)) <= 1e-3 * float(b)


def _even_frame(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """`frame` as yuv420p of size (height, width), cropping a trailing odd row/column."""
    if frame.width == width and frame.height == height:
        return frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
    rgb = frame.to_ndarray(format="rgb24")[:height, :width]
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
        format="yuv420p"
    )


def transcode(src: str | os.PathLike, dst: str | os.PathLike, profile: str) -> dict:
    """Transcode `src` to `dst` (written atomically) with one of `PROFILES`.

    Returns {"num_frames", "fps", "width", "height", "bytes", "seconds", "cropped_to_even",
    "variable_frame_rate"} (the source's).
    Raises VideoDecodeError naming the file when the source cannot be decoded or when the output
    does not have the source's frame count and frame rate.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown transcode profile {profile!r}; known: {sorted(PROFILES)}")
    prof = PROFILES[profile]
    src, dst = Path(src), Path(dst)
    t0 = time.perf_counter()
    rate = fps_fraction(src)
    timing = frame_timing(src)
    if timing.variable and timing.mean_fps > 0:
        rate = Fraction(timing.mean_fps).limit_denominator(1001)
    n = 0
    with atomic_path(dst) as tmp:
        with _open(src) as inp, av.open(str(tmp), "w", format=prof.container) as out:
            in_ctx = inp.streams.video[0].codec_context
            width, height = in_ctx.width - in_ctx.width % 2, in_ctx.height - in_ctx.height % 2
            if width == 0 or height == 0:
                raise VideoDecodeError(f"{src}: frame size {in_ctx.width}x{in_ctx.height} too small")
            stream = out.add_stream(prof.codec, rate=rate, options=dict(prof.options))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = 1 / rate
            if prof.gop_size is not None:
                stream.codec_context.gop_size = prof.gop_size
            if prof.max_b_frames is not None:
                stream.codec_context.max_b_frames = prof.max_b_frames
            for frame in _iter_frames(src, inp):
                frame = _even_frame(frame, width, height)
                frame.pts, frame.time_base = n, 1 / rate
                frame.pict_type = av.video.frame.PictureType.NONE
                out.mux(stream.encode(frame))
                n += 1
            if n == 0:
                raise VideoDecodeError(f"{src}: no decodable frame")
            out.mux(stream.encode(None))
        got_n, got_rate = count_frames(tmp), fps_fraction(tmp)
        if got_n != n or not _fps_close(got_rate, rate):
            raise VideoDecodeError(
                f"{src}: transcode to {profile} gave {got_n} frames at {float(got_rate):.4f} fps, "
                f"expected {n} frames at {float(rate):.4f} fps"
            )
    return {
        "num_frames": n,
        "fps": float(rate),
        "width": width,
        "height": height,
        "bytes": dst.stat().st_size,
        "seconds": time.perf_counter() - t0,
        "cropped_to_even": (width, height) != (in_ctx.width, in_ctx.height),
        "variable_frame_rate": timing.variable,
    }


def write_synthetic_video(
    path: str | os.PathLike,
    num_frames: int = 30,
    width: int = 64,
    height: int = 48,
    fps: Fraction | int = 25,
    codec: str = "mpeg4",
    container: str | None = None,
    options: dict | None = None,
    pts_steps: tuple[int, ...] = (1,),
) -> np.ndarray:
    """Write a video whose frame i is identifiable, and return its RGB frames (N, H, W, 3).

    Frame i: grey background of level 16 + 7 * (i % 32), and a 8x8 white square moving right
    by 2 pixels per frame (row 8). The level lets a test read the frame index back from a decoded
    frame (`frame_index_of`) despite codec noise; the square gives motion.
    Frame i lasts `pts_steps[i % len(pts_steps)]` ticks of 1 / `fps`: the default (1,) is
    constant-rate; `write_vfr_video` makes a variable-rate one.
    """
    path = Path(path)
    rate = Fraction(fps)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format=container or path.suffix.lstrip(".")) as out:
            if options is None and codec == "mpeg4":
                options = {"flags": "+qscale", "global_quality": str(2 * FF_QP2LAMBDA)}
            stream = out.add_stream(codec, rate=rate, options=dict(options or {}))
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
            stream.time_base = 1 / rate
            pts = 0
            for i in range(num_frames):
                img = np.full((height, width, 3), 16 + 7 * (i % 32), dtype=np.uint8)
                x = (2 * i) % max(width - 8, 1)
                img[8:16, x : x + 8] = 255
                frames[i] = img
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts, frame.time_base = pts, 1 / rate
                pts += pts_steps[i % len(pts_steps)]
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
    return frames


def write_vfr_video(path: str | os.PathLike, num_frames: int = 30, codec: str = "libx264", **kwargs) -> np.ndarray:
    """A variable-frame-rate `write_synthetic_video`: frame durations alternate 1/30 s and 1/15 s
    (30 frames span 1.43 s: 20.2 fps on average). H.264 (single-threaded x264, so the bytes are
    reproducible) or MPEG-4 Part 2, in MP4, Matroska or AVI (by the file's suffix)."""
    if codec == "libx264":
        kwargs.setdefault("options", {"crf": "18", "preset": "veryfast", "threads": "1"})
    return write_synthetic_video(path, num_frames, fps=30, codec=codec, pts_steps=(1, 2), **kwargs)


def frame_index_of(frame: np.ndarray) -> int:
    """The index (mod 32) of a `write_synthetic_video` frame, read from its background level."""
    level = float(np.median(frame[-8:, :, :]))
    return int(round((level - 16) / 7))


# ---------------------------------------------------------------------------------------------
# Batch over a manifest (the Snakemake rule)


def transcode_manifest(
    manifest: Path, root: Path, profile: str, out_dir: Path, summary: Path
) -> dict:
    """Transcode every video of a manifest into out_dir/<video_id>.<ext>, then write a summary.

    Videos whose output exists already are skipped (an interrupted run resumes). A video that
    fails is named in the error; the others already done stay on disk.
    """
    from tqdm import tqdm

    if profile not in PROFILES:
        raise SystemExit(f"--codec: unknown profile {profile!r}; known: {sorted(PROFILES)}")
    if not manifest.is_file():
        raise SystemExit(f"--manifest: {manifest} not found")
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"video_id", "path", "num_frames"} - set(rows[0].keys() if rows else ())
    if rows and missing:
        raise SystemExit(f"{manifest}: missing columns {sorted(missing)}")
    ext = PROFILES[profile].ext
    done = transcoded = 0
    frames = 0
    seconds = 0.0
    cropped = []
    retimed = []
    t0 = time.perf_counter()
    for row in tqdm(rows, desc=f"transcode {profile} {manifest.stem}", unit="video"):
        dst = out_dir / f"{row['video_id']}.{ext}"
        if dst.is_file():
            done += 1
            continue
        src = root / row["path"]
        info = transcode(src, dst, profile)
        if info["num_frames"] != int(row["num_frames"]):
            dst.unlink()
            raise VideoDecodeError(
                f"{src}: decodes to {info['num_frames']} frames but the manifest {manifest} "
                f"says {row['num_frames']}"
            )
        transcoded += 1
        frames += info["num_frames"]
        seconds += info["seconds"]
        if info["cropped_to_even"]:
            cropped.append(row["video_id"])
        if info["variable_frame_rate"]:
            retimed.append(row["video_id"])
    result = {
        "profile": profile,
        "manifest": str(manifest),
        "out_dir": str(out_dir),
        "num_videos": len(rows),
        "transcoded": transcoded,
        "skipped_existing": done,
        "cropped_to_even": cropped,
        "retimed_variable_frame_rate": retimed,
        "frames_transcoded": frames,
        "wall_seconds": time.perf_counter() - t0,
        "frames_per_second": frames / seconds if seconds > 0 else None,
        "videos_per_second": transcoded / seconds if seconds > 0 else None,
    }
    write_json(summary, result)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", type=Path, required=True, help="manifest CSV")
    ap.add_argument("--root", type=Path, required=True, help="dataset root the paths are relative to")
    ap.add_argument("--codec", required=True, choices=sorted(PROFILES))
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--summary", type=Path, required=True)
    args = ap.parse_args(argv)
    if not args.root.is_dir():
        ap.error(f"--root: {args.root} is not a directory")
    result = transcode_manifest(args.manifest, args.root, args.codec, args.out_dir, args.summary)
    print(
        f"{result['transcoded']} transcoded, {result['skipped_existing']} already done, "
        f"{result['frames_per_second'] or 0:.1f} frames/s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
