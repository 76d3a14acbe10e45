"""Atomic writes and safe loads.

Every result file is written to a temporary file in the same directory and renamed into place,
so a reader (a later Snakemake rule, a resumed run) never sees half a file; a folder of files
(a per-video motion cache) is written as a temporary folder renamed into place.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import pickle
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from core.errors import CheckpointError, MissingInputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; results are meant to be shared
    try:
        yield tmp_path
        _fsync(tmp_path)  # the data reaches the disk before the name does: a crash leaves old or new, never empty
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; if the block succeeds, fsync its files and rename
    it onto `path`, replacing a folder already there. A reader sees the old folder or the new one,
    whole, never a half-written one; a crash leaves at most a hidden `.<name>.*.tmp` folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp creates 0700; results are meant to be shared
    try:
        yield tmp
        for child in tmp.iterdir():
            if child.is_file():
                _fsync(child)
        _fsync(tmp)
        _replace_dir(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _replace_dir(src: Path, dst: Path) -> None:
    """Rename folder `src` onto `dst`. rename(2) replaces only an empty folder, so a full one is
    first moved aside (readers may find no folder between the two renames, never a partial one);
    another writer finishing the same folder meanwhile is retried."""
    for _ in range(5):
        try:
            os.rename(src, dst)
            return
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        aside = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".old", dir=dst.parent))
        try:
            os.rename(dst, aside / dst.name)
        except FileNotFoundError:
            pass  # another writer moved it first
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    os.rename(src, dst)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort, since some filesystems cannot fsync a directory."""
    try:
        _fsync(directory)
    except OSError:
        pass


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as CSV, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def load_yaml(stream) -> Any:
    """`yaml.safe_load`, parsed by libyaml's C parser where PyYAML has it (the same Python objects,
    several times faster: every Snakemake run and table job reads the specs and configs)."""
    import yaml

    return yaml.load(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def torch_save(path: str | os.PathLike, obj: Any) -> None:
    """Save `obj` byte-reproducibly: torch.save names the archive's records after the file's stem,
    which would be the random temporary name, so the archive is built in memory first."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def torch_load(path: str | os.PathLike, map_location: str = "cpu") -> Any:
    """Load a checkpoint with `weights_only=True` (no arbitrary code from pickles); a file that is
    absent, corrupt or not weights-only is a SuiteError naming it."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise MissingInputError(f"{path}: no such checkpoint") from None
    except pickle.UnpicklingError as err:  # torch raises it for anything the weights-only unpickler refuses
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        what = f"it holds a {refused.group(1)} object" if refused else "it needs more than tensors and plain containers"
        raise CheckpointError(f"{path}: not a weights-only checkpoint ({what}); the suite never unpickles code, "
                              f"so save plain state dicts with core.io.torch_save") from None
    except (RuntimeError, EOFError, KeyError, ValueError) as err:  # what torch's zip and pickle readers raise
        message = str(err).split(". ")[0]
        detail = message if isinstance(err, RuntimeError) else f"{type(err).__name__}: {message}".rstrip(": ")
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({detail}); re-run the rule that writes it") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read checkpoint: {err.strerror or err}") from None


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
