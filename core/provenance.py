"""What every result records about the code, the data and the machine that produced it."""
from __future__ import annotations

import hashlib
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parent.parent

# Packages whose versions a metrics file records: name -> the distributions that provide it.
PACKAGES = {"torch": ("torch",), "torchvision": ("torchvision",), "av": ("av",),
            "dali": ("nvidia-dali-cuda130", "nvidia-dali-cuda120", "nvidia-dali-cuda110"),
            "opencv": ("opencv-contrib-python-headless", "opencv-python-headless", "opencv-contrib-python", "opencv-python")}


@lru_cache(maxsize=None)
def git_commit() -> str:
    """The repository's HEAD commit, with `+dirty` when tracked files differ from it; `unknown`
    outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def git_state() -> dict:
    """{"git_commit": HEAD or "unknown", "git_dirty": whether tracked files differ from it (None outside git)}."""
    commit = git_commit()
    return {"git_commit": commit.removesuffix("+dirty"),
            "git_dirty": None if commit == "unknown" else commit.endswith("+dirty")}


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes (manifests, configs: what a result was computed from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def video_fingerprint(videos: Iterable[tuple[str, int]]) -> str:
    """A stable fingerprint of a set of videos: SHA-256 of the sorted `id<TAB>size` lines (no
    mtimes and no paths, so a copy of the same files on another machine has the same one)."""
    lines = "".join(f"{video_id}\t{size}\n" for video_id, size in sorted(videos))
    return hashlib.sha256(lines.encode()).hexdigest()


@lru_cache(maxsize=None)
def package_versions() -> dict:
    """Versions of the packages that decode, compute flow and train (None where not installed)."""
    versions = {}
    for name, distributions in PACKAGES.items():
        versions[name] = next((v for v in map(_version, distributions) if v), None)
    return versions


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def device_name(device=None) -> str:
    """`cuda:<GPU name>` when a GPU runs the job, else `cpu:<processor>`."""
    import torch

    if torch.cuda.is_available() and (device is None or str(device).startswith("cuda")):
        return f"cuda:{torch.cuda.get_device_name()} x{torch.cuda.device_count()}"
    return f"cpu:{platform.machine()}"


def initialisation(cfg: dict, seed: int) -> dict:
    """Where a run's weights started: `init_checkpoint` (a public checkpoint, by its file hash),
    `inflate_from` (a 2D network inflated to 3D, by its file hash), or a seeded random initialisation."""
    for key, kind in (("init_checkpoint", "checkpoint"), ("inflate_from", "inflated_2d")):
        if cfg.get(key):
            return {"kind": kind, "file": Path(cfg[key]).name, "sha256": file_hash(cfg[key])}
    return {"kind": "scratch", "seed": seed}
