"""Synthetic videos whose class is defined by motion alone.

Each video shows textured objects moving over a random static background. The background, the
objects' textures and colours, and their start positions are drawn per video, so appearance
carries no class information; the class fixes only the motion: the direction, speed or
trajectory of the objects. A method that learns motion has something to find; one that learns
appearance does not. The suite's fixture datasets (UCF101, HMDB51, Kinetics-400 layouts) are
made of these videos.
"""
from __future__ import annotations

import math
from fractions import Fraction
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.io import atomic_path


@dataclass(frozen=True)
class MotionPattern:
    """How the objects of one class move: straight, in direction `angle`, at `speed`."""

    angle: float  # radians, image coordinates: 0 right, pi/2 down
    speed: float  # pixels per frame


def class_patterns(num_classes: int) -> list[MotionPattern]:
    """The first `num_classes` motion patterns of a fixed list (same list for every dataset).

    A class is a direction and a speed of straight motion, so any short clip that shows motion
    shows its class. Every class is closed under horizontal mirroring, since horizontal flipping
    is a standard augmentation and must not turn one class into another: each video is mirrored
    at random (`render_frames`), so "horizontal" covers left and right, and a diagonal both of
    its mirror images. Directions: horizontal, down, up, down-diagonal, up-diagonal; speeds 1.5
    and 3 pixels per frame.
    """
    directions = (0.0, math.pi / 2, 3 * math.pi / 2, math.pi / 4, 7 * math.pi / 4)
    patterns = [MotionPattern(angle, speed) for speed in (1.5, 3.0) for angle in directions]
    if num_classes > len(patterns):
        raise ValueError(f"at most {len(patterns)} motion-defined classes are available, asked for {num_classes}")
    return patterns[:num_classes]


def _smooth_texture(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Random colour texture: coarse noise upsampled, so it has structure at scale `cell`."""
    gh, gw = max(2, height // cell + 2), max(2, width // cell + 2)
    coarse = rng.uniform(0, 255, size=(gh, gw, 3))
    ys = np.linspace(0, gh - 1.001, height)
    xs = np.linspace(0, gw - 1.001, width)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    tex = (
        coarse[y0][:, x0] * (1 - fy) * (1 - fx)
        + coarse[y0 + 1][:, x0] * fy * (1 - fx)
        + coarse[y0][:, x0 + 1] * (1 - fy) * fx
        + coarse[y0 + 1][:, x0 + 1] * fy * fx
    )
    fine = rng.normal(0, 18, size=(height, width, 3))  # fine grain, so edges and flow are well posed
    return np.clip(tex + fine, 0, 255)


def _trajectory(pattern: MotionPattern, num_frames: int, start: np.ndarray, still: tuple[int, int]) -> np.ndarray:
    """Object top-left positions (num_frames, 2) as float (y, x); the objects hold still during
    frames [still[0], still[1]) (so motion thresholding has static stretches to skip)."""
    moving = np.ones(num_frames)
    moving[still[0] : still[1]] = 0.0
    t = np.concatenate([[0.0], np.cumsum(moving[1:])])[:, None]
    return start + t * pattern.speed * np.array([math.sin(pattern.angle), math.cos(pattern.angle)])


def render_frames(
    pattern: MotionPattern,
    num_frames: int,
    height: int,
    width: int,
    seed: int,
    num_objects: int = 2,
) -> np.ndarray:
    """Frames (num_frames, height, width, 3) uint8 of `num_objects` textured boxes moving by `pattern`.

    Positions wrap around the frame edges, so objects stay in view for any video length. Each
    video has one still stretch (a quarter of its frames, at a random place), as real videos have
    moments without motion. Half of the videos are mirrored left to right.
    """
    rng = np.random.default_rng(seed)
    still_length = num_frames // 4
    still_start = int(rng.integers(0, num_frames - still_length + 1))
    still = (still_start, still_start + still_length)
    background = _smooth_texture(rng, height, width, cell=max(4, min(height, width) // 6))
    size = max(6, min(height, width) // 4)
    objects = []
    for _ in range(num_objects):
        texture = _smooth_texture(rng, size, size, cell=max(2, size // 3))
        start = rng.uniform(0, 1, size=2) * np.array([height, width])
        objects.append((texture, _trajectory(pattern, num_frames, start, still)))
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    rows = np.arange(size)
    for i in range(num_frames):
        frame = background.copy()
        for texture, path in objects:
            y, x = np.round(path[i]).astype(int)
            ys = (y + rows) % height
            xs = (x + rows) % width
            frame[np.ix_(ys, xs)] = texture
        frames[i] = frame.astype(np.uint8)
    if rng.random() < 0.5:  # a class holds a motion and its mirror image (see class_patterns)
        frames = frames[:, :, ::-1].copy()
    return frames


CONTAINER_CODECS = {
    # container suffix -> (PyAV codec, pixel format, options)
    ".avi": ("mpeg4", "yuv420p", {"qscale": "2"}),  # MPEG-4 Part 2, as UCF101 / HMDB51 ship
    # H.264, as Kinetics ships. Lossless (qp 0): x264's bitstream is not always identical from
    # run to run, but lossless frames decode to the same pixels, so smoke results reproduce.
    ".mp4": ("libx264", "yuv420p", {"qp": "0", "preset": "veryfast", "x264-params": "threads=1:lookahead-threads=1"}),
}


def write_video(path: str | Path, frames: np.ndarray, fps: int) -> None:
    """Encode `frames` (T, H, W, 3) uint8 to `path`, codec chosen by the file suffix; atomic."""
    import av

    path = Path(path)
    if path.suffix not in CONTAINER_CODECS:
        raise ValueError(f"{path}: no fixture codec for suffix {path.suffix!r}; known: {sorted(CONTAINER_CODECS)}")
    codec, pix_fmt, options = CONTAINER_CODECS[path.suffix]
    height, width = frames.shape[1:3]
    with atomic_path(path) as tmp:
        fmt = {".avi": "avi", ".mp4": "mp4"}[path.suffix]
        with av.open(str(tmp), mode="w", format=fmt) as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.options = dict(options)
            stream.codec_context.thread_count = 1  # one thread: fixtures must be reproducible
            for index, frame in enumerate(frames):
                video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
                video_frame.pts, video_frame.time_base = index, Fraction(1, fps)
                for packet in stream.encode(video_frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
