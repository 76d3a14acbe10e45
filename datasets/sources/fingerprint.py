"""A cheap fingerprint of a dataset folder, so that the DAG sees its data change.

The manifest rule depends on `results/<scale>/sources/<DATASET_DIR>.json`, which core/common.smk
refreshes whenever Snakemake builds the DAG. The fingerprint is a digest of the sorted
(relative path, size, mtime_ns) of every file under the dataset root, with their count and total
size: no file is read, so it costs one stat per file. `refresh` rewrites the JSON only when the
fingerprint differs from what is there, so its mtime moves (and Snakemake re-runs preparation and
everything after it) exactly when a video or an annotation file was added, removed, replaced,
touched or edited.

Hidden files and folders are left out: they are not data (the fixture marker `.fixture.json`,
which Snakemake touches after the fixture job; temporary files of atomic writes; editor swap files).

    python -m datasets.sources.fingerprint --root results/smoke/data/UCF101 --out results/smoke/sources/UCF101.json
"""
from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import Iterator

from core.io import read_json, write_json


def _files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(path relative to `root`, stat) of each file that is not hidden, following symbolic links
    (datasets are often linked in); a dangling link is listed with the link's own stat."""
    for folder, subfolders, names in os.walk(root, followlinks=True):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            if name.startswith("."):
                continue
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError:
                stat = os.lstat(path)
            yield os.path.relpath(path, root), stat


def source_fingerprint(root: str | Path) -> dict:
    """{"files": count, "bytes": total size, "sha256": digest of the sorted (path, size, mtime_ns)}."""
    digest = hashlib.sha256()
    files = total = 0
    for rel, stat in sorted(_files(Path(root))):
        digest.update(f"{rel}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        files += 1
        total += stat.st_size
    return {"files": files, "bytes": total, "sha256": digest.hexdigest()}


def refresh(path: str | Path, root: str | Path) -> bool:
    """Write the fingerprint of `root` to `path` (atomically) if it differs from the one there;
    True if it was written."""
    fingerprint = source_fingerprint(root)
    try:
        if read_json(path) == fingerprint:
            return False
    except (OSError, ValueError):  # absent or unreadable: write it
        pass
    write_json(path, fingerprint)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, type=Path, help="dataset folder in its official layout")
    parser.add_argument("--out", required=True, type=Path, help="fingerprint JSON to refresh")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"--root {args.root}: no such folder")
    print(f"{args.out}: {'written' if refresh(args.out, args.root) else 'unchanged'}")


if __name__ == "__main__":
    main()
