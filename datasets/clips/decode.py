"""CPU clip loading with PyAV, with the same semantics as the DALI path (`datasets.clips.dali_decode`).

A clip is produced from a `datasets.clips.sampling.ClipPlan` in four steps, identical in both paths:
decode the planned frame indices (0-based, presentation order, repeats allowed) as RGB
(`to_rgb`: the YUV -> RGB conversion of DALI's CPU decoder); resize
each frame so its shorter side is `spec.short_side` (`datasets.clips.sampling.resized_hw`) with
bilinear interpolation, half-pixel centres and no antialiasing (torch
`interpolate(mode="bilinear", align_corners=False, antialias=False)`, which is what DALI's
`fn.resize(interp_type=INTERP_LINEAR, antialias=False)` computes), rounded to the nearest uint8;
crop `crop_size` x `crop_size` at `plan.crop` = (top, left); flip horizontally if `plan.flip`.

A clip is decoded from the keyframe at or before its first frame (`decode_frames`), its frames
named by the rank of their timestamps among those of the stream (read once per video by demuxing),
and unrequested non-reference frames are not decoded; streams whose timestamps cannot name
frames are decoded sequentially from the start.

Every failure (missing, empty, undecodable, truncated file, too few frames) raises
`core.errors.VideoDecodeError` naming the file.

Variable frame rate: a clip is a sequence of decoded frames, and frame indices count decoded
frames in presentation order whatever their timestamps; a stride of k frames (the papers' "temporal
stride") is k decoded frames, so on a variable-rate video it spans a varying time. The frame
rate of a video is read nowhere here. `frame_timing` tells a constant-rate stream from a
variable-rate one, for the consumers that care (see their module docstrings).
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from av.video.reformatter import VideoReformatter

from core.errors import VideoDecodeError
from datasets.clips.sampling import ClipPlan, ClipSpec, resized_hw

# YUV -> RGB conversion flags for libswscale (values of swscale.h): bilinear chroma
# upsampling over the full chroma resolution with accurate rounding. With them PyAV's RGB frames
# equal those of DALI's CPU video decoder bit for bit (checked on VP9 in tests/test_dali.py);
# PyAV's default (SWS_BILINEAR alone) differs by up to ~40 levels at sharp colour edges.
SWS_BILINEAR, SWS_FULL_CHR_H_INT, SWS_ACCURATE_RND = 0x2, 0x2000, 0x40000
RGB_CONVERSION_FLAGS = SWS_BILINEAR | SWS_FULL_CHR_H_INT | SWS_ACCURATE_RND

# Upper bound on the decoded frames `decode_all` keeps in memory (all videos together).
DEFAULT_CACHE_BYTES = 256 * 2**20


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise VideoDecodeError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: video file is empty (0 bytes)")


def _open(path: Path):
    _check_file(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise VideoDecodeError(f"{path}: cannot open video: {e}") from e
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{path}: no video stream")
    return container


# Decoder threads per stream; 0 lets FFmpeg choose (one per core). See `set_decode_threads`.
_DECODE_THREADS = 0


def set_decode_threads(threads: int) -> None:
    """Threads each PyAV decoder uses (0: FFmpeg's choice, one per core). Data-loader workers
    that already run one per core, and benchmarks that compare loaders per core, set 1."""
    global _DECODE_THREADS
    _DECODE_THREADS = max(0, int(threads))


def _configure(stream) -> None:
    stream.thread_type = "AUTO"
    if _DECODE_THREADS:
        stream.codec_context.thread_count = _DECODE_THREADS


def _iter_frames(path: Path, container):
    """Decoded frames of the first video stream, in presentation order; errors name the file."""
    stream = container.streams.video[0]
    _configure(stream)
    try:
        yield from container.decode(stream)
    except (av.FFmpegError, OSError) as e:
        raise VideoDecodeError(f"{path}: decoding failed: {e}") from e


_REFORMATTERS = threading.local()


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as uint8 RGB (H, W, 3), converted as DALI's decoder does.

    One reformatter per thread: `VideoFrame.to_ndarray` builds a new swscale context for every
    frame, whose set-up with these flags costs more than the conversion itself."""
    reformatter = getattr(_REFORMATTERS, "rgb", None)
    if reformatter is None:
        reformatter = _REFORMATTERS.rgb = VideoReformatter()
    return reformatter.reformat(frame, format="rgb24", interpolation=RGB_CONVERSION_FLAGS).to_ndarray()


def count_frames(path: str | os.PathLike) -> int:
    """Number of frames that actually decode (slow: decodes the whole video)."""
    path = Path(path)
    with _open(path) as container:
        return sum(1 for _ in _iter_frames(path, container))


def _container_facts(container) -> dict:
    """fps, the container's frame count (0 when it has none), width, height, codec and duration
    (None when the container has none) of the first video stream, read from the headers."""
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = None
    return {
        "num_frames": int(stream.frames or 0),
        "fps": float(rate) if rate else 0.0,
        "width": int(stream.codec_context.width),
        "height": int(stream.codec_context.height),
        "duration": duration,
        "codec": stream.codec_context.name,
    }


def _with_duration(facts: dict, num_frames: int) -> dict:
    duration = facts["duration"]
    if duration is None or duration <= 0:
        duration = num_frames / facts["fps"] if facts["fps"] else 0.0
    return {**facts, "num_frames": num_frames, "duration": float(duration)}


def video_info(path: str | os.PathLike, exact: bool = False) -> dict:
    """num_frames, fps, width, height, duration (s) and codec name of a video.

    `num_frames` is the container's count when it has one; otherwise (WebM, some MKV/MP4), or
    always when `exact=True`, the frames are decoded and counted, in the same open as the
    container's facts are read. Use `exact=True` where the header may lie (truncated AVI files
    keep the count of the original).
    """
    path = Path(path)
    with _open(path) as container:
        facts = _container_facts(container)
        num_frames = facts["num_frames"]
        if exact or num_frames <= 0:
            num_frames = sum(1 for _ in _iter_frames(path, container))
    if num_frames <= 0:
        raise VideoDecodeError(f"{path}: no decodable frame")
    return _with_duration(facts, num_frames)


def decode_frames(
    path: str | os.PathLike, indices, use_cache: bool = False
) -> np.ndarray:
    """RGB frames at `indices` (any order, repeats allowed) as uint8 (T, H, W, 3).

    Frame i is the i-th frame of a sequential decode, in presentation order. The decoder seeks to
    the keyframe at or before the first requested frame and decodes forward to the last one,
    dropping unrequested frames that nothing references (`_decode_seeking`); where timestamps
    cannot name frames it decodes every frame from the start (`_decode_sequential`). Both give
    the same frames bit for bit (tests/test_seek_decode.py).
    Raises VideoDecodeError naming the file when it is missing, empty, undecodable, or ends
    (e.g. truncated) before the largest requested index. With `use_cache`, a video already in
    `decode_all`'s LRU cache is served from it, and a clip spanning at least half of a video that
    fits the cache decodes the whole video into it, which pays off when several clips come from
    the same short video (two views of one video per sample).
    """
    path = Path(path)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise ValueError(f"{path}: no frame index requested")
    if idx.min() < 0:
        raise ValueError(f"{path}: negative frame index {int(idx.min())}")
    last = int(idx.max())
    if path.is_dir():  # a frame-folder dataset (Something-V1): the same clip semantics, frame i = file i+1
        return read_frame_folder(path, idx)
    if use_cache:
        frames = _CACHE.get(_file_key(path))
        if frames is None and _worth_caching(path, idx):
            frames = decode_all(path)
        if frames is not None:
            if last >= len(frames):
                raise VideoDecodeError(
                    f"{path}: frame {last} requested but the video decodes to {len(frames)} frames"
                )
            return frames[idx]
    kept = _decode_seeking(path, idx)
    if kept is None:
        kept = _decode_sequential(path, idx)
    return np.stack([kept[i] for i in idx.tolist()])


def read_frame_folder(folder: Path, idx: np.ndarray) -> np.ndarray:
    """RGB frames at `idx` of a folder of JPEG frames 00001.jpg ... (Something-V1's official layout;
    frame i is file i + 1), as uint8 (T, H, W, 3). Raises VideoDecodeError naming the frame file
    that is missing or unreadable."""
    import cv2

    frames = {}
    for i in sorted(set(idx.tolist())):
        file = folder / f"{i + 1:05d}.jpg"
        image = cv2.imread(str(file)) if file.is_file() else None
        if image is None:
            raise VideoDecodeError(f"{file}: frame {i} of frame folder {folder} is missing or unreadable")
        frames[i] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.stack([frames[i] for i in idx.tolist()])


def _decode_sequential(path: Path, idx: np.ndarray) -> dict[int, np.ndarray]:
    """The requested frames by decoding from the first frame up to the largest index."""
    last = int(idx.max())
    wanted = set(idx.tolist())
    kept: dict[int, np.ndarray] = {}
    n = 0
    with _open(path) as container:
        for i, frame in enumerate(_iter_frames(path, container)):
            n = i + 1
            if i in wanted:
                kept[i] = to_rgb(frame)
            if i >= last:
                break
    if last >= n:
        raise VideoDecodeError(
            f"{path}: frame {last} requested but the video decodes to only {n} frames "
            f"(truncated or too short)"
        )
    return kept


@dataclass(frozen=True)
class _StreamIndex:
    """Presentation timestamps of a video stream's frames, read by demuxing (no decoding).

    `pts[i]` is the timestamp of frame i (the stored frames' timestamps, sorted), `key_pts`
    those of the keyframes, sorted. `seekable` is False where timestamps cannot name frames, so
    only a sequential decode counts them: a frame without a timestamp, two frames with the same
    one, or an AVI stream with reordered frames (packed B-frames in MPEG-4 Part 2 AVI: the
    decoder re-times the frames it unpacks, so their timestamps do not follow the packets')."""

    pts: np.ndarray
    key_pts: np.ndarray
    seekable: bool
    frame_bytes: int  # of one decoded RGB frame


# Indexes of recently read videos (a few kB each), so clips of one video demux it once.
_INDEX_CACHE_SIZE = 1024
_INDEXES: OrderedDict[tuple, _StreamIndex] = OrderedDict()
_INDEX_LOCK = threading.Lock()
# Keyframes tried, latest first, when a demuxer's seek lands after the requested frame.
_SEEK_ATTEMPTS = 3


def _file_key(path: Path) -> tuple:
    _check_file(path)
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _read_index(path: Path) -> _StreamIndex:
    pts: list[int] = []
    keys: list[int] = []
    reordered = complete = False
    with _open(path) as container:
        stream = container.streams.video[0]
        frame_bytes = stream.codec_context.width * stream.codec_context.height * 3
        avi = "avi" in container.format.name.split(",")
        try:
            for packet in container.demux(stream):
                # AVI's dropped-frame slots are empty packets and edit lists mark packets to
                # discard: neither is a decoded frame.
                if packet.size == 0 or packet.is_discard:
                    continue
                if packet.pts is None:
                    break
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
                reordered |= packet.dts is not None and packet.dts != packet.pts
            else:
                complete = True
        except (av.FFmpegError, OSError):
            complete = False  # the sequential decode reports the damage, naming the file
    stamps = np.sort(np.asarray(pts, dtype=np.int64))
    seekable = complete and len(keys) > 0 and np.unique(stamps).size == stamps.size and not (avi and reordered)
    return _StreamIndex(stamps, np.sort(np.asarray(keys, dtype=np.int64)), seekable, frame_bytes)


def _stream_index(path: Path) -> _StreamIndex:
    key = _file_key(path)
    with _INDEX_LOCK:
        index = _INDEXES.get(key)
        if index is not None:
            _INDEXES.move_to_end(key)
            return index
    index = _read_index(path)
    with _INDEX_LOCK:
        _INDEXES[key] = index
        while len(_INDEXES) > _INDEX_CACHE_SIZE:
            _INDEXES.popitem(last=False)
    return index


def clear_index_cache() -> None:
    """Forget the stream indexes of `_stream_index` (benchmarks time the cold path with it)."""
    with _INDEX_LOCK:
        _INDEXES.clear()


def _worth_caching(path: Path, idx: np.ndarray) -> bool:
    """Whether decoding the whole video into `decode_all`'s cache costs at most twice the clip:
    the clip spans at least half of the video's frames and the video fits the cache."""
    index = _stream_index(path)
    n = len(index.pts)
    if n == 0:
        return True  # let decode_all report the file
    fits = n * index.frame_bytes <= _CACHE.max_bytes
    # Resident: every video is decoded once and served from memory after (configure_cache).
    return fits and (_CACHE.resident or 2 * (int(idx.max()) - int(idx.min()) + 1) >= n)


class _Landed(Exception):
    """A seek landed after the requested frame: try an earlier keyframe."""


def _decode_seeking(path: Path, idx: np.ndarray) -> dict[int, np.ndarray] | None:
    """The requested frames decoded from the keyframe at or before the first one (by seeking to
    it, unless it starts the stream), or None when the sequential decode must be used: a stream
    whose timestamps do not name frames, or a decode that does not match the index (a missing,
    repeated or unknown timestamp, a seek that does not land on a keyframe, an error or an early
    end of stream; the sequential decode then names the damage)."""
    index = _stream_index(path)
    first, last = int(idx.min()), int(idx.max())
    if not index.seekable or last >= len(index.pts):
        return None
    target = int(index.pts[first])
    keys = index.key_pts[: np.searchsorted(index.key_pts, target, side="right")][::-1]
    if keys.size == 0:
        return None  # no keyframe before the clip: only the sequential decode can tell its frames
    wanted = set(idx.tolist())
    with _open(path) as container:
        stream = container.streams.video[0]
        _configure(stream)
        for key in keys[:_SEEK_ATTEMPTS].tolist():
            try:
                # within the first GOP, the stream is read from its start without a seek
                seek = key > index.pts[0]
                return _decode_from_keyframe(container, stream, key, target, index.pts, wanted, last, seek)
            except _Landed:
                continue
            except (av.FFmpegError, OSError, LookupError):
                return None
    return None


def _decode_from_keyframe(container, stream, key: int, target: int, pts: np.ndarray,
                          wanted: set, last: int, seek: bool = True) -> dict[int, np.ndarray]:
    """Seek to keyframe `key` (or start at the stream's first packet) and decode forward to frame `last`, naming each frame by the rank
    of its timestamp in `pts`. Raises _Landed when the seek lands after `target` and LookupError
    when the decoded frames stop matching the index.

    A packet whose frame is not requested is decoded with `skip_frame = NONREF`: the decoder then
    drops it if no other frame references it (B-frames outside a pyramid), which cannot change
    any other frame; reference frames are decoded as always."""
    if seek:
        container.seek(key, backward=True, any_frame=False, stream=stream)
    ctx = stream.codec_context
    kept: dict[int, np.ndarray] = {}
    start = None
    previous = -1
    for packet in container.demux(stream):
        if start is None:
            if packet.size == 0:
                continue
            if not packet.is_keyframe or packet.pts is None:
                raise LookupError("seek did not land on a keyframe")
            if packet.pts > target:
                raise _Landed()
            start = packet.pts
        if packet.pts is not None:
            r = int(np.searchsorted(pts, packet.pts))
            requested = r < len(pts) and pts[r] == packet.pts and r in wanted
            ctx.skip_frame = "DEFAULT" if requested or packet.pts == start else "NONREF"
        for frame in packet.decode():
            if frame.pts is None:
                raise LookupError("decoded frame without a timestamp")
            if frame.pts < start:
                continue  # an open GOP's leading pictures, which reference frames before the seek
            i = int(np.searchsorted(pts, frame.pts))
            # frames come in presentation order, each with an indexed timestamp: anything else
            # means timestamps do not name frames here
            if i <= previous or i >= len(pts) or pts[i] != frame.pts:
                raise LookupError("decoded frames do not follow the index")
            previous = i
            if i in wanted:
                kept[i] = to_rgb(frame)
            if i >= last:
                if len(kept) < len(wanted):  # a requested frame did not come out of the decoder
                    raise LookupError("a requested frame was not decoded")
                return kept
    raise LookupError("stream ended before the last requested frame")


class _FrameCache:
    """LRU cache of whole decoded videos, bounded by total bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.resident = False  # whether every clip's whole video is decoded into the cache
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value: np.ndarray) -> None:
        if value.nbytes > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


_CACHE = _FrameCache(DEFAULT_CACHE_BYTES)


def set_cache_limit(max_bytes: int) -> None:
    """Bound the memory of `decode_all`'s cache (0 disables caching) and empty it."""
    _CACHE.max_bytes = int(max_bytes)
    _CACHE.clear()


def configure_cache(section: dict | None) -> None:
    """Apply a scale profile's `decode_cache:` section to this process's cache of decoded videos.

        decode_cache: {resident: true, max_mb: 512}

    `resident`: the first clip of a video decodes the whole video into the cache and every later
    clip of it is cut from memory, so a dataset that fits `max_mb` is decoded once per process
    (the mini profile's multi-epoch runs on 2 cores, where decoding is most of a step's data time).
    The frames are the same bit for bit (sequential and seeking decodes agree,
    tests/test_seek_decode.py). Without the section: the default policy (`_worth_caching`)."""
    section = section or {}
    unknown = set(section) - {"resident", "max_mb"}
    if unknown:
        raise ValueError(f"decode_cache: unknown keys {sorted(unknown)} (known: resident, max_mb)")
    set_cache_limit(int(float(section.get("max_mb", DEFAULT_CACHE_BYTES / 2**20)) * 2**20))
    _CACHE.resident = bool(section.get("resident", False))


def decode_all(path: str | os.PathLike) -> np.ndarray:
    """Every frame of a video as uint8 (N, H, W, 3), cached by (path, size, mtime).

    The cache holds at most `DEFAULT_CACHE_BYTES` (see `set_cache_limit`); a video larger than
    that is decoded but not cached. The returned array is read-only (it is shared).
    """
    path = Path(path)
    key = _file_key(path)
    frames = _CACHE.get(key)
    if frames is not None:
        return frames
    with _open(path) as container:
        decoded = [to_rgb(f) for f in _iter_frames(path, container)]
    if not decoded:
        raise VideoDecodeError(f"{path}: no decodable frame")
    frames = np.stack(decoded)
    frames.setflags(write=False)
    _CACHE.put(key, frames)
    return frames


def resize_short_side(frames: torch.Tensor, short_side: int) -> torch.Tensor:
    """Resize uint8 (T, 3, H, W) frames so the shorter side is `short_side`.

    Bilinear, align_corners=False (half-pixel centres), antialias=False, rounded to nearest:
    the arithmetic of DALI's `fn.resize(interp_type=INTERP_LINEAR, antialias=False)`.
    """
    h, w = frames.shape[-2:]
    size = resized_hw(h, w, short_side)
    if size == (h, w):
        return frames
    out = F.interpolate(
        frames.float(), size=size, mode="bilinear", align_corners=False, antialias=False
    )
    return out.round_().clamp_(0, 255).to(torch.uint8)


def frames_to_clip(frames: np.ndarray, plan: ClipPlan, spec: ClipSpec) -> torch.Tensor:
    """uint8 (T, H, W, 3) decoded frames -> uint8 (3, T, crop, crop): resize, crop, flip."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # T, 3, H, W
    x = resize_short_side(x, plan.resize_to(spec))
    top, left = plan.crop
    c = spec.crop_size
    if top < 0 or left < 0 or top + c > x.shape[-2] or left + c > x.shape[-1]:
        raise ValueError(
            f"crop {c} at (top={top}, left={left}) outside the resized frame {tuple(x.shape[-2:])}"
        )
    x = x[..., top : top + c, left : left + c]
    if plan.flip:
        x = x.flip(-1)
    return x.permute(1, 0, 2, 3).contiguous()


def load_clip(
    path: str | os.PathLike, plan: ClipPlan, spec: ClipSpec, use_cache: bool = False
) -> torch.Tensor:
    """Decode and transform one planned clip: uint8 tensor (3, T, crop, crop)."""
    frames = decode_frames(path, plan.indices, use_cache=use_cache)
    return frames_to_clip(frames, plan, spec)


def fps_fraction(path: str | os.PathLike) -> Fraction:
    """Exact average frame rate of the first video stream (e.g. 30000/1001)."""
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise VideoDecodeError(f"{path}: no frame rate in the container")
    return Fraction(rate)


# A stream is variable-rate when its frame intervals differ by more than this fraction of the
# median interval, plus one timestamp tick where an interval spans ROUNDING_TICKS ticks or more
# (rounding to the time base: 29.97 fps in milliseconds alternates 33 and 34 ms). Where an
# interval is a tick or two (AVI, whose time base is the nominal frame interval), a one-tick
# difference is a real one.
VFR_TOLERANCE = 0.1
ROUNDING_TICKS = 4


@dataclass(frozen=True)
class FrameTiming:
    """Timestamps of the frames stored in a video stream (`frame_timing`)."""

    num_frames: int  # frames (packets) stored in the stream
    min_interval: float  # seconds between consecutive presentation timestamps
    max_interval: float
    span: float  # seconds from the first to the last presentation timestamp
    variable: bool  # variable frame rate (see VFR_TOLERANCE)

    @property
    def mean_fps(self) -> float:
        """Frames per second over the timestamps' span: (num_frames - 1) / span (0 if unknown)."""
        return (self.num_frames - 1) / self.span if self.span > 0 else 0.0


def frame_timing(path: str | os.PathLike, tolerance: float = VFR_TOLERANCE) -> FrameTiming:
    """Presentation-timestamp intervals of the first video stream, read by demuxing (no decoding).

    The one place the suite detects variable frame rate: `variable` is True when the intervals
    between consecutive timestamps (sorted, so B-frame reordering does not matter) differ by
    more than `tolerance` x the median interval (plus one tick of rounding, see ROUNDING_TICKS).
    Containers disagree on
    what they report for such streams (MP4's average rate is frames / duration; Matroska and AVI
    report the nominal rate, and AVI counts the dropped-frame slots among its frames), so the
    timestamps are read instead. Packets without data (AVI's dropped frames) are not frames.
    """
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        stamps = []
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is not None:
                    stamps.append(ts)
        except (av.FFmpegError, OSError) as e:
            raise VideoDecodeError(f"{path}: demuxing failed: {e}") from e
    return _timing_of(path, stamps, tb, tolerance)


def _timing_of(path: Path, stamps: list[int], tb, tolerance: float) -> FrameTiming:
    """FrameTiming of a stream's packet timestamps (see `frame_timing`)."""
    if not stamps:
        raise VideoDecodeError(f"{path}: no frame with a timestamp")
    ticks = np.diff(np.unique(np.asarray(stamps, dtype=np.int64)))
    if ticks.size == 0:
        return FrameTiming(len(stamps), 0.0, 0.0, 0.0, False)
    sec = float(tb)
    median = float(np.median(ticks))
    allowance = tolerance * median + (1 if median >= ROUNDING_TICKS else 0)
    variable = bool(ticks.max() - ticks.min() > allowance)
    return FrameTiming(len(stamps), float(ticks.min()) * sec, float(ticks.max()) * sec,
                       float(ticks.sum()) * sec, variable)


def scan_video(path: str | os.PathLike, tolerance: float = VFR_TOLERANCE) -> dict:
    """`video_info`, `frame_timing` and `count_frames` of a video from one demux-and-decode pass.

    Returns `video_info`'s keys (`num_frames` as `video_info(path)` gives it: the container's
    count, or the decoded one where the container has none), `declared_frames` (the container's
    count, 0 when it has none), `decoded_frames`, `timing` (a FrameTiming) and `decode_error`.
    Raises what `video_info(path)`, then `frame_timing` would raise, in that order; what
    `count_frames` would raise is returned as `decode_error` (a VideoDecodeError, or None) with
    `decoded_frames` None, so that a caller checks the count where it called `count_frames`
    before. No decoded frame is not an error when the container declares frames (truncated).
    """
    path = Path(path)
    stamps: list[int] = []
    decoded = 0
    demux_error = decode_error = None
    with _open(path) as container:
        facts = _container_facts(container)
        stream = container.streams.video[0]
        _configure(stream)
        time_base = stream.time_base
        try:
            for packet in container.demux(stream):
                if packet.size:  # AVI's dropped-frame slots carry no data: not frames
                    ts = packet.pts if packet.pts is not None else packet.dts
                    if ts is not None:
                        stamps.append(ts)
                if decode_error is None:
                    try:
                        decoded += len(packet.decode())
                    except (av.FFmpegError, OSError) as e:
                        decode_error = e  # the timestamps are still read, as frame_timing would
        except (av.FFmpegError, OSError) as e:
            demux_error = e
    declared = facts["num_frames"]
    if declared <= 0:  # video_info(path) would have decoded to count the frames, first
        error = demux_error or decode_error
        if error is not None:
            raise VideoDecodeError(f"{path}: decoding failed: {error}") from error
        if decoded <= 0:
            raise VideoDecodeError(f"{path}: no decodable frame")
    if demux_error is not None:
        raise VideoDecodeError(f"{path}: demuxing failed: {demux_error}") from demux_error
    timing = _timing_of(path, stamps, time_base, tolerance)
    info = _with_duration(facts, declared if declared > 0 else decoded)
    failure = None
    if decode_error is not None:
        failure = VideoDecodeError(f"{path}: decoding failed: {decode_error}")
        failure.__cause__ = decode_error
    return {**info, "declared_frames": declared, "decoded_frames": None if failure else decoded,
            "timing": timing, "decode_error": failure}
