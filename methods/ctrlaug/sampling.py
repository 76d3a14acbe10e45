"""Controllable Augmentations' position transformations tau_p (Qian et al. 2022, §3, §3.1, §4.2):
which frames and which spatial box each view of a video reads, as shared-sampler `ClipPlan`s, with
the recorded parameters (the view's box in video coordinates) that Eq. (1) turns into the
correspondence matrix S_k.

- The global view v: `global_frames` frames sparsely sampled over the whole video (§4.2, "we
  sparsely sample 16 frames"), one per equal segment (TSN-style: random inside its segment in
  training, its centre at test; our choice, the paper says only "sparsely"), with "weak spatial
  cropping": a square box of side `global_scale` x the short side, at a random place, flipped with
  p = 0.5.
- The K local clips v_k: `num_frames` consecutive frames `stride` apart whose central timestamp
  lies in [(k-1)T/K, kT/K] (§3.1), each "spatially cropped within the global view" (§4.2): a
  square box of side `local_scale` x the global box's side, at a random place inside it, with its
  own flip.

A box is (t0, t1, y0, x0, y1, x1, flip) in video coordinates: time in frames (a clip of span L
starting at s covers [s, s + L); the sparse global view covers [0, T)), space in pixels of the
frame resized to `short_side`. Views are decoded by the shared `ClipReader` at the box's crop and
resized to the network input afterwards (methods/ctrlaug/data.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.clips.sampling import ClipPlan

BOX_FIELDS = ("t0", "t1", "y0", "x0", "y1", "x1", "flip")


@dataclass(frozen=True)
class View:
    """One planned view: the frames and square crop to decode (`plan`, crop side `crop`), and its
    recorded position parameters `box` (BOX_FIELDS)."""

    plan: ClipPlan
    crop: int
    box: tuple[float, ...]


@dataclass(frozen=True)
class CtrlAugSample:
    global_view: View
    local_views: tuple[View, ...]


def sparse_indices(num_frames: int, count: int, rng: np.random.Generator | None) -> tuple[int, ...]:
    """`count` frames, one per equal segment of [0, num_frames): random inside it with `rng`, its
    centre frame without. Frames repeat when the video has fewer frames than segments."""
    if num_frames < 1:
        raise ValueError("video has no frames")
    edges = np.arange(count + 1) * num_frames / count
    lo = np.floor(edges[:-1]).astype(np.int64)
    hi = np.maximum(np.ceil(edges[1:]).astype(np.int64) - 1, lo)
    if rng is None:
        picked = np.floor((edges[:-1] + edges[1:]) / 2).astype(np.int64)
    else:
        picked = lo + np.floor(rng.random(count) * (hi - lo + 1)).astype(np.int64)
    return tuple(int(i) for i in np.clip(picked, 0, num_frames - 1))


def segment(k: int, num_clips: int, num_frames: int) -> tuple[float, float]:
    """§3.1: the range [(k-1)T/K, kT/K] clip k's central timestamp lies in (k is 1-based)."""
    return (k - 1) * num_frames / num_clips, k * num_frames / num_clips


def local_start(num_frames: int, span: int, k: int, num_clips: int, rng: np.random.Generator) -> int:
    """Start of local clip k (1-based), drawn uniformly among the starts s whose clip [s, s + span)
    lies in the video and whose centre s + span / 2 lies in clip k's segment (§3.1).
    Raises ValueError when no such start exists (a video too short for K clips of this span)."""
    lo, hi = segment(k, num_clips, num_frames)
    starts = np.arange(0, num_frames - span + 1)
    centres = starts + span / 2
    allowed = starts[(centres >= lo) & (centres <= hi)]
    if allowed.size == 0:
        raise ValueError(f"video of {num_frames} frames has no {span}-frame clip centred in segment {k} of {num_clips} "
                         f"([{lo:g}, {hi:g}]); it needs at least {span} frames and segments of room for the clip")
    return int(allowed[rng.integers(0, allowed.size)])


def square_box(height: int, width: int, side: int, rng: np.random.Generator,
               within: tuple[int, int, int] | None = None) -> tuple[int, int]:
    """(top, left) of a side x side box drawn uniformly inside the frame, or inside the square
    `within` = (top, left, side) when given."""
    top0, left0, room_h, room_w = (0, 0, height, width) if within is None else (within[0], within[1], within[2], within[2])
    if side > room_h or side > room_w:
        raise ValueError(f"a {side}-pixel box does not fit in {room_h}x{room_w}")
    return top0 + int(rng.integers(0, room_h - side + 1)), left0 + int(rng.integers(0, room_w - side + 1))


def plan_ctrlaug_sample(num_frames: int, frame_hw: tuple[int, int], *, global_frames: int, global_scale: tuple[float, float],
                        local_frames: int, local_stride: int, local_scale: tuple[float, float], num_clips: int,
                        rng: np.random.Generator) -> CtrlAugSample:
    """The global view and the `num_clips` local clips of one training sample (module docstring).
    `frame_hw` is the frame size after the short-side resize; scales are (min, max) of a box's side
    relative to the frame's short side (global) or to the global box's side (local).
    Draw order: global frames, global side, place, flip; then per clip: start, side, place, flip."""
    height, width = frame_hw
    span = (local_frames - 1) * local_stride + 1
    if num_frames < span:
        raise ValueError(f"video of {num_frames} frames is shorter than one local clip ({span} frames)")
    indices = sparse_indices(num_frames, global_frames, rng)
    g_side = max(1, int(round(min(height, width) * rng.uniform(*global_scale))))
    g_top, g_left = square_box(height, width, g_side, rng)
    g_flip = bool(rng.random() < 0.5)
    global_view = View(ClipPlan(indices, (g_top, g_left), g_flip), g_side,
                       (0.0, float(num_frames), g_top, g_left, g_top + g_side, g_left + g_side, float(g_flip)))
    locals_ = []
    for k in range(1, num_clips + 1):
        start = local_start(num_frames, span, k, num_clips, rng)
        side = max(1, int(round(g_side * rng.uniform(*local_scale))))
        top, left = square_box(height, width, side, rng, within=(g_top, g_left, g_side))
        flip = bool(rng.random() < 0.5)
        frames = tuple(range(start, start + span, local_stride))
        locals_.append(View(ClipPlan(frames, (top, left), flip), side,
                            (float(start), float(start + span), top, left, top + side, left + side, float(flip))))
    return CtrlAugSample(global_view, tuple(locals_))
