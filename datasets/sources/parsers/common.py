"""Helpers shared by the parsers: reading JSON/CSV annotation files with errors that name them."""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import AnnotationError, MissingInputError


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingInputError(f"{what} not found: {path}")
    return path


def read_json(path: Path, what: str):
    require(path, what)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def json_list(path: Path, what: str, keys: tuple[str, ...]) -> list[dict]:
    """A JSON list of objects that each hold `keys`; a bad item is named by file and index."""
    data = read_json(path, what)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    for i, item in enumerate(data):
        if not isinstance(item, dict) or any(k not in item for k in keys):
            raise AnnotationError(f"{path}: item {i} must be an object with keys {list(keys)}, got {item!r}")
    return data


def lines(path: Path, what: str) -> list[tuple[int, str]]:
    """Non-empty lines of a text file with their 1-based numbers."""
    require(path, what)
    return [(n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
