"""The methods the suite can pretrain: every folder `methods/<name>/` with a `config.yaml` and an
`__init__.py` whose `METHOD` is a `PretrainMethod` subclass. Nothing else lists them."""
from __future__ import annotations

import importlib
from pathlib import Path

from core.errors import ConfigError
from methods.training.method import PretrainMethod

METHODS_DIR = Path(__file__).resolve().parent.parent


def method_names() -> list[str]:
    return sorted(p.parent.name for p in METHODS_DIR.glob("*/config.yaml") if (p.parent / "__init__.py").exists())


def method_dir(name: str) -> Path:
    return METHODS_DIR / name


def method_class(name: str) -> type[PretrainMethod]:
    if name not in method_names():
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(method_names())} "
                          "(a method is a folder methods/<name>/ with config.yaml and __init__.py)")
    cls = getattr(importlib.import_module(f"methods.{name}"), "METHOD", None)
    if not (isinstance(cls, type) and issubclass(cls, PretrainMethod)):
        raise ConfigError(f"methods/{name}/__init__.py must define METHOD, a methods.training.method.PretrainMethod subclass")
    return cls
