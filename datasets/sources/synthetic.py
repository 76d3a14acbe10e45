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
from datasets.transcodes.transcode import FF_QP2LAMBDA


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
    frames = _draw(background, objects, num_frames)
    if rng.random() < 0.5:  # a class holds a motion and its mirror image (see class_patterns)
        frames = frames[:, :, ::-1].copy()
    return frames


def _draw(background: np.ndarray, objects: list[tuple[np.ndarray, np.ndarray]], num_frames: int) -> np.ndarray:
    """Frames of square textured `objects` (texture, (num_frames, 2) top-left path) pasted over a
    static `background`; positions wrap around the frame edges."""
    height, width = background.shape[:2]
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for i in range(num_frames):
        frame = background.copy()
        for texture, path in objects:
            rows = np.arange(texture.shape[0])
            y, x = np.round(path[i]).astype(int)
            frame[np.ix_((y + rows) % height, (x + rows) % width)] = texture
        frames[i] = frame.astype(np.uint8)
    return frames


CONTAINER_CODECS = {
    # container suffix -> (PyAV codec, pixel format, options)
    # MPEG-4 Part 2, as UCF101 / HMDB51 ship, at constant quantiser 2 (ffmpeg's -q:v 2; a bare
    # "qscale" option is ignored, and the default rate control blurs the frames more and more).
    ".avi": ("mpeg4", "yuv420p", {"flags": "+qscale", "global_quality": str(2 * FF_QP2LAMBDA)}),
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


# -- The "shortcut" world: appearance is a shortcut, motion is the label ----------------------------
#
# Classes differ in direction, speed, trajectory shape and periodicity, with comparable mean
# speeds (about 2 pixels per frame), so that no single flow statistic (mean speed, mean direction)
# separates them. Appearance (background texture and colour, object textures, sizes and start
# positions) is drawn per video and is unrelated to the class: two clips of one video share it,
# so instance discrimination on RGB alone can succeed by matching appearance, which says nothing
# about the label. Every class is closed under horizontal mirroring, as in `class_patterns`.


@dataclass(frozen=True)
class Trajectory:
    """One class's motion. `shape`: straight (drift at `speed` along `angle`), circle (orbit of
    radius `amplitude`), zigzag (drift plus a triangle wave of `amplitude` across it) or
    oscillate (back and forth along `angle`, no drift); `period` in frames for the periodic ones."""

    shape: str
    angle: float = 0.0
    speed: float = 0.0
    amplitude: float = 0.0
    period: float = 0.0


RIGHT, DOWN, UP = 0.0, math.pi / 2, 3 * math.pi / 2
SHORTCUT_CLASSES = (
    Trajectory("straight", RIGHT, speed=2.0),
    Trajectory("straight", DOWN, speed=2.0),
    Trajectory("straight", UP, speed=2.0),
    Trajectory("straight", RIGHT, speed=4.0),
    Trajectory("circle", amplitude=5.0, period=12),
    Trajectory("circle", amplitude=8.0, period=24),
    Trajectory("zigzag", RIGHT, speed=1.5, amplitude=4.0, period=8),
    Trajectory("zigzag", DOWN, speed=1.5, amplitude=4.0, period=8),
    Trajectory("oscillate", RIGHT, amplitude=6.0, period=12),
    Trajectory("oscillate", DOWN, amplitude=6.0, period=12),
)


def trajectory_classes(num_classes: int) -> list[Trajectory]:
    """The first `num_classes` classes of the shortcut world (same list for every dataset)."""
    if num_classes > len(SHORTCUT_CLASSES):
        raise ValueError(f"the shortcut world has {len(SHORTCUT_CLASSES)} motion-defined classes, asked for {num_classes}")
    return list(SHORTCUT_CLASSES[:num_classes])


def _triangle(phase: np.ndarray) -> np.ndarray:
    """Triangle wave of period 1 and amplitude 1."""
    return 4 * np.abs(phase - np.floor(phase + 0.5)) - 1


def trajectory_path(trajectory: Trajectory, t: np.ndarray, start: np.ndarray, phase: float) -> np.ndarray:
    """Positions (len(t), 2) as float (y, x) at moving times `t` (frames, held during still stretches)."""
    along = np.array([math.sin(trajectory.angle), math.cos(trajectory.angle)])
    across = np.array([along[1], -along[0]])
    t = t[:, None]
    cycles = t / trajectory.period + phase if trajectory.period else t
    if trajectory.shape == "straight":
        return start + t * trajectory.speed * along
    if trajectory.shape == "circle":
        angle = 2 * math.pi * cycles
        return start + trajectory.amplitude * np.concatenate([np.sin(angle), np.cos(angle)], axis=1)
    if trajectory.shape == "zigzag":
        return start + t * trajectory.speed * along + trajectory.amplitude * _triangle(cycles) * across
    if trajectory.shape == "oscillate":
        return start + trajectory.amplitude * np.sin(2 * math.pi * cycles) * along
    raise ValueError(f"unknown trajectory shape {trajectory.shape!r}")


def render_shortcut_frames(trajectory: Trajectory, num_frames: int, height: int, width: int, seed: int,
                           num_objects: int = 3, object_size: float = 1 / 3, still_fraction: float = 0.25) -> np.ndarray:
    """Frames (num_frames, height, width, 3) uint8 of the shortcut world: `num_objects` textured
    boxes moving by `trajectory` over a static background. Per video, at random: the background's
    colour and texture scale, each object's texture, start and phase, one still stretch (a quarter
    of the frames), and a left-right mirror.

    The background is a low-contrast texture around one random colour and the objects are
    high-contrast textures a third of the short side wide, so that the motion is visible to a
    small network at a few dozen pixels; appearance still identifies the video (its colour, its
    textures) and says nothing about the class. Objects have one size in every video: a size
    drawn per video would be a cue that RGB and motion inputs share (a flow-edge map shows the
    object's outline) and that says nothing about the class. Three objects, so that a training
    crop (about half the frame) nearly always shows one: with one object, half of the crops show
    no motion at all.

    The defaults are those of the first mini world; a scale profile sets its own under the
    fixture's `world_options` (`num_objects`, `object_size` as a fraction of the short side,
    `still_fraction` of the frames held still)."""
    rng = np.random.default_rng(seed)
    still_length = int(num_frames * still_fraction)
    still_start = int(rng.integers(0, num_frames - still_length + 1))
    moving = np.ones(num_frames)
    moving[still_start : still_start + still_length] = 0.0
    t = np.concatenate([[0.0], np.cumsum(moving[1:])])
    short = min(height, width)
    colour = rng.uniform(40, 215, size=3)
    texture = _smooth_texture(rng, height, width, cell=int(rng.integers(max(3, short // 10), max(4, short // 3))))
    background = np.clip(colour + 0.3 * (texture - 128), 0, 255)
    objects = []
    for _ in range(num_objects):
        size = max(5, int(short * object_size))
        texture = np.clip(1.5 * (_smooth_texture(rng, size, size, cell=max(2, size // 4)) - 128) + 128, 0, 255)
        start = rng.uniform(0, 1, size=2) * np.array([height, width])
        objects.append((texture, trajectory_path(trajectory, t, start, float(rng.random()))))
    frames = _draw(background, objects, num_frames)
    if rng.random() < 0.5:  # each class holds a motion and its mirror image
        frames = frames[:, :, ::-1].copy()
    return frames


def render_world_video(world: str, class_index: int, num_classes: int, num_frames: int, height: int, width: int,
                       seed: int, world_options: dict | None = None) -> np.ndarray:
    """Frames of one video of class `class_index` in fixture `world`: `straight` (the smoke
    fixtures: straight motion by direction and speed) or `shortcut` (see above, with the
    profile's `world_options`)."""
    if world == "straight":
        if world_options:
            raise ValueError(f"the straight world takes no world_options, got {sorted(world_options)}")
        return render_frames(class_patterns(num_classes)[class_index], num_frames, height, width, seed=seed)
    if world == "shortcut":
        return render_shortcut_frames(trajectory_classes(num_classes)[class_index], num_frames, height, width, seed=seed,
                                      **(world_options or {}))
    raise ValueError(f"unknown fixture world {world!r}; known: straight, shortcut")
