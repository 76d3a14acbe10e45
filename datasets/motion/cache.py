"""Per-video cached extraction, shared by every motion input of the suite.

One loop over a manifest's videos writes one cache file per video, `<out_dir>/<video_id>.npz`:
- a tqdm bar over the videos;
- resume: a video whose cache file exists is skipped, so a crash loses at most the video in
  progress (each extractor writes its file atomically, through `core.io`);
- failures named: a video whose extractor raises one of `catch` is not cached; it is named on
  stderr and returned with its reason (an empty `catch` lets the error stop the run);
- a summary: videos, extracted, skipped, failures, frames and extraction seconds, and the
  videos an extractor reports as `variable_frame_rate` (kept, as frame sequences).

Users: `datasets.motion.tvl1` (TV-L1, MCL), `datasets.motion.compressed` (I-frames and motion
vectors, CMD) through `run_extraction`, which also writes the summary JSON and a quarantine CSV;
`datasets.motion.flow.build_cache` (MaCLR's flow / flow edges / frame differences) through
`extract_each`, keeping its own summary keys.
"""
from __future__ import annotations

import argparse
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from core.errors import CorruptInputError, MissingInputError, VideoDecodeError
from core.io import write_csv, write_json
from datasets.manifests.manifest import QUARANTINE_COLUMNS

# extract(src, dst) writes dst atomically and returns at least {"frames": int, "seconds": float}.
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
    parser.add_argument("--out-dir", required=True, help="cache folder, one <video_id>.npz per video")
    parser.add_argument("--summary", required=True, help="summary JSON (counts, failures, frames/s per core)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N videos (0: all)")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 if any video fails")
    return parser


def cache_path(out_dir: str | os.PathLike, video_id) -> Path:
    return Path(out_dir) / f"{video_id}.npz"


class VideoArrays:
    """Named arrays of one video's cache file, keeping the last video read (a sample cuts several
    clips of one video): e.g. the `compressed` cache's I-frames and vectors, or the `tvl1` cache's
    flow or motion maps. `what` and `how` name the cache and how to make it in the errors."""

    def __init__(self, cache_dir: str | Path, keys: tuple[str, ...], what: str, how: str):
        self.cache_dir, self.keys, self.what, self.how = Path(cache_dir), keys, what, how
        self._video_id, self._data = None, None

    def __call__(self, video_id) -> dict:
        if self._video_id != video_id:
            path = cache_path(self.cache_dir, video_id)
            if not path.is_file():
                raise MissingInputError(f"video {video_id}: no {self.what} cache {path}; compute the cache of the "
                                        f"manifest's videos ({self.how}) into {self.cache_dir}")
            try:
                with np.load(path) as data:
                    arrays = {k: data[k] for k in self.keys}
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
                raise CorruptInputError(f"video {video_id}: unreadable {self.what} cache {path} ({err!r}); "
                                        f"delete it and recompute it ({self.how})") from None
            self._data, self._video_id = arrays, video_id
        return self._data

    def forget(self) -> None:
        """Drop the kept video, so that the next call reads its file again (after a caller refused it)."""
        self._video_id, self._data = None, None


def read_manifest(manifest: str | os.PathLike, limit: int = 0) -> pd.DataFrame:
    """A manifest's rows (video_id and path as text); the first `limit` only when limit > 0."""
    rows = pd.read_csv(manifest, dtype={"video_id": str, "path": str})
    missing = {"video_id", "path"} - set(rows.columns)
    if missing:
        raise SystemExit(f"{manifest}: manifest lacks column(s) {sorted(missing)}")
    return rows.head(limit) if limit else rows


def extract_each(rows: pd.DataFrame, root: str | os.PathLike, out_dir: str | os.PathLike, extract: Extractor,
                 kind: str, catch: tuple[type[BaseException], ...] = (VideoDecodeError, ValueError)) -> ExtractionStats:
    """Run `extract(<root>/<path>, <out_dir>/<video_id>.npz)` for every row not cached yet."""
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
    """Cache one motion input per manifest video as `<out_dir>/<video_id>.npz`; write `summary` JSON.

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
