"""Reading annotation files, for every parser (`datasets.sources.official`, datasets/sources/parsers/):
a missing file, a file that is not UTF-8 text and malformed JSON are errors naming the file and line."""
from __future__ import annotations

import json
from pathlib import Path

from core.errors import AnnotationError, MissingInputError


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingInputError(f"{what} not found: {path}")
    return path


def read_text(path: Path, what: str) -> str:
    """The file as text, newlines untranslated (csv needs them as they are). Official annotation
    files are ASCII; UTF-8 (with or without a byte-order mark) is accepted, anything else is refused
    at the line of its first bad byte rather than guessed at."""
    data = require(path, what).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise AnnotationError(f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
                              f"save the file as UTF-8 (or restore the official one)") from None


def read_json(path: Path, what: str):
    text = read_text(path, what)
    try:
        return json.loads(text)
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
    return [(n, line.strip()) for n, line in enumerate(read_text(path, what).splitlines(), 1) if line.strip()]
