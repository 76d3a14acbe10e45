"""Per-video motion caches, shared by every motion input of the suite: their layout, their one
writer and reader, and the extraction loop.

Layout: one folder per video, `<out_dir>/<video_id>.arrays/`, holding one uncompressed
`<name>.npy` per array. Readers map the files (`np.load(..., mmap_mode="r")`), so a training
sample reads only the frames of its clip rather than decompressing the whole video. The folder is
written whole to a temporary name and renamed into place (`core.io.atomic_dir`): a folder under
the final name is complete.

One loop over a manifest's videos writes one cache per video:
- a tqdm bar over the videos;
- resume: a video whose cache exists is skipped, so a crash loses at most the video in
  progress (each extractor writes through `write_arrays`);
- failures named: a video whose extractor raises one of `catch` is not cached; it is named on
  stderr and returned with its reason (an empty `catch` lets the error stop the run);
- a summary: videos, extracted, skipped, failures, frames and extraction seconds, and the
  videos an extractor reports as `variable_frame_rate` (kept, as frame sequences).

Users: `datasets.motion.tvl1` (TV-L1, MCL), `datasets.motion.compressed` (I-frames and motion
vectors, CMD) through `run_extraction`, which also writes the summary JSON and a quarantine CSV;
`datasets.motion.flow.build_cache` (MaCLR's flow / flow edges / frame differences) through
`extract_each`, keeping its own summary keys. Readers: `VideoArrays` (CMD, MCL's `MotionMaps`) and
`datasets.motion.flow.load_motion` (MaCLR's `MotionClipReader`), both through `read_arrays`.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from core.errors import CorruptInputError, MissingInputError, VideoDecodeError
from core.io import atomic_dir, write_csv, write_json
from datasets.manifests.manifest import QUARANTINE_COLUMNS

# extract(src, dst) writes the cache folder dst with `write_arrays` and returns at least
# {"frames": int, "seconds": float}.
Extractor = Callable[[Path, Path], dict]


@dataclass
class ExtractionStats:
    videos: int = 0
    extracted: int = 0
    skipped_existing: int = 0
    failed: list[dict] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    variable_frame_rate: list[str] = field(default_factory=list)

    @property
    def fps_per_core(self) -> float | None:
        return round(self.frames / self.seconds, 2) if self.seconds else None


def extraction_parser(description: str, root_help: str) -> argparse.ArgumentParser:
    """The command line every per-video extractor shares; callers add their own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--manifest", required=True, help="manifest CSV; its paths are relative to --root")
    parser.add_argument("--root", required=True, help=root_help)
    parser.add_argument("--out-dir", required=True, help="cache folder, one <video_id>.arrays/ per video")
    parser.add_argument("--summary", required=True, help="summary JSON (counts, failures, frames/s per core)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N videos (0: all)")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 if any video fails")
    return parser


# Named in the rules' params (datasets/rules.smk, datasets/motion_inputs.smk), so that a change of
# layout re-runs the extraction of caches written in an earlier one.
CACHE_LAYOUT = "npy-folder-v1"
CACHE_SUFFIX = ".arrays"
_EARLIER_SUFFIX = ".npz"  # the compressed single-file layout this one replaced: named in errors, deleted on rewrite


def cache_path(out_dir: str | os.PathLike, video_id) -> Path:
    """The cache folder of one video."""
    return Path(out_dir) / f"{video_id}{CACHE_SUFFIX}"


def write_arrays(path: str | os.PathLike, **arrays) -> None:
    """Write one video's cache folder atomically: one uncompressed `<name>.npy` per array."""
    with atomic_dir(path) as tmp:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.asarray(array), allow_pickle=False)


def read_arrays(path: str | os.PathLike, keys: tuple[str, ...] | None = None, video_id=None, what: str = "motion",
                how: str = "its extraction rule") -> dict[str, np.ndarray]:
    """Memory-mapped, read-only arrays `keys` (None: all) of the cache folder `path` of `video_id`
    (by default the folder's name). A missing folder is a MissingInputError, a missing or unreadable
    array a CorruptInputError, each naming the video and the file; `what` names the cache and `how`
    what makes it."""
    path = Path(path)
    if video_id is None:
        video_id = path.name.removesuffix(CACHE_SUFFIX)
    if not path.is_dir():
        earlier = path.with_name(path.name[: -len(CACHE_SUFFIX)] + _EARLIER_SUFFIX)
        note = (f"; {earlier} is in the earlier compressed layout, which is no longer read" if earlier.is_file() else "")
        raise MissingInputError(f"video {video_id}: no {what} cache {path}{note}; compute the cache of the manifest's "
                                f"videos ({how}) into {path.parent}")
    if keys is None:
        keys = tuple(sorted(f.stem for f in path.glob("*.npy")))
    arrays = {}
    for key in keys:
        file = path / f"{key}.npy"
        try:
            arrays[key] = np.load(file, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise CorruptInputError(f"video {video_id}: {what} cache {path} has no array `{key}` ({file.name}); "
                                    f"delete it and recompute it ({how})") from None
        except (OSError, ValueError, EOFError) as err:  # a truncated file or a bad header
            raise CorruptInputError(f"video {video_id}: unreadable {what} cache {file} ({err!r}); "
                                    f"delete {path} and recompute it ({how})") from None
    return arrays


class VideoArrays:
    """Named arrays of one video's cache, keeping the last video read (a sample cuts several clips
    of one video): e.g. the `compressed` cache's I-frames and vectors, or the `tvl1` cache's flow
    or motion maps. The arrays are memory-mapped, so only what a caller indexes is read. `what`
    and `how` name the cache and how to make it in the errors."""

    def __init__(self, cache_dir: str | Path, keys: tuple[str, ...], what: str, how: str):
        self.cache_dir, self.keys, self.what, self.how = Path(cache_dir), keys, what, how
        self._video_id, self._data = None, None

    def path(self, video_id) -> Path:
        return cache_path(self.cache_dir, video_id)

    def __call__(self, video_id) -> dict:
        if self._video_id != video_id:
            self._data = read_arrays(self.path(video_id), self.keys, video_id, self.what, self.how)
            self._video_id = video_id
        return self._data

    def forget(self) -> None:
        """Drop the kept video, so that the next call reads its file again (after a caller refused it)."""
        self._video_id, self._data = None, None

    def __getstate__(self) -> dict:
        # Pickled into worker processes without the kept maps (pickling a map copies its data).
        return {**self.__dict__, "_video_id": None, "_data": None}


def read_manifest(manifest: str | os.PathLike, limit: int = 0) -> pd.DataFrame:
    """A manifest's rows (video_id and path as text); the first `limit` only when limit > 0."""
    rows = pd.read_csv(manifest, dtype={"video_id": str, "path": str})
    missing = {"video_id", "path"} - set(rows.columns)
    if missing:
        raise SystemExit(f"{manifest}: manifest lacks column(s) {sorted(missing)}")
    return rows.head(limit) if limit else rows


def extract_each(rows: pd.DataFrame, root: str | os.PathLike, out_dir: str | os.PathLike, extract: Extractor,
                 kind: str, catch: tuple[type[BaseException], ...] = (VideoDecodeError, ValueError)) -> ExtractionStats:
    """Run `extract(<root>/<path>, <out_dir>/<video_id>.arrays)` for every row not cached yet."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = ExtractionStats(videos=int(len(rows)))
    for row in tqdm(rows.itertuples(index=False), total=len(rows), desc=f"{kind} motion", unit="video"):
        dst = cache_path(out_dir, row.video_id)
        if dst.exists():
            stats.skipped_existing += 1
            continue
        try:
            result = extract(Path(root) / row.path, dst)
        except catch as e:
            print(f"[{kind}] {row.video_id}: {e}", file=sys.stderr)
            stats.failed.append({"video_id": row.video_id, "path": row.path, "reason": str(e)})
            continue
        stats.extracted += 1
        # The video's cache in the earlier layout, if any, is superseded: free its space.
        dst.with_name(f"{row.video_id}{_EARLIER_SUFFIX}").unlink(missing_ok=True)
        stats.frames += int(result["frames"])
        stats.seconds += float(result["seconds"])
        if result.get("variable_frame_rate"):
            stats.variable_frame_rate.append(str(row.video_id))
    return stats


def write_summary(summary: str | os.PathLike, kind: str, manifest: str | os.PathLike, stats: ExtractionStats) -> None:
    """`summary` JSON and `<summary>.quarantine.csv` (video_id,path,reason) of the failed videos."""
    summary = Path(summary)
    write_csv(summary.with_suffix(".quarantine.csv"), pd.DataFrame(stats.failed, columns=QUARANTINE_COLUMNS))
    write_json(summary, {
        "kind": kind,
        "layout": CACHE_LAYOUT,
        "manifest": str(manifest),
        "videos": stats.videos,
        "extracted": stats.extracted,
        "skipped_existing": stats.skipped_existing,
        "failed": stats.failed,
        "frames_extracted": stats.frames,
        "seconds": round(stats.seconds, 3),
        "fps_per_core": stats.fps_per_core,
        "variable_frame_rate": stats.variable_frame_rate,
    })


def run_extraction(kind: str, manifest: str | os.PathLike, root: str | os.PathLike, out_dir: str | os.PathLike,
                   summary: str | os.PathLike, extract: Extractor, limit: int = 0, strict: bool = False) -> int:
    """Cache one motion input per manifest video as `<out_dir>/<video_id>.arrays/`; write `summary` JSON.

    A video that fails (VideoDecodeError, ValueError) is not cached; it is named on stderr, in the
    summary and in `<summary>.quarantine.csv`; with `strict` the run then exits with status 1.
    OpenCV runs single-threaded so that the throughput in the summary is per CPU core.
    """
    import cv2

    cv2.setNumThreads(1)
    rows = read_manifest(manifest, limit)
    stats = extract_each(rows, root, out_dir, extract, kind)
    write_summary(summary, kind, manifest, stats)
    return 1 if (strict and stats.failed) else 0
