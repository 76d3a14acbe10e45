"""Scale profiles and method configs.

`config/scales/<scale>.yaml` holds every size; `methods/<m>/config.yaml` holds each method's
paper hyperparameters (with citations). A method's section in the scale profile overrides the
method config, key by key (nested dicts are merged).
"""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

from core.errors import ConfigError
from core.io import load_yaml

ROOT = Path(__file__).resolve().parent.parent
SCALES_DIR = ROOT / "config" / "scales"


def available_scales() -> list[str]:
    return sorted(p.stem for p in SCALES_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def _load_yaml(path: str) -> dict:
    with open(path) as f:
        data = load_yaml(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_scale(scale: str) -> dict:
    """The scale profile `scale` as a dict (a fresh copy)."""
    # A scale names results/<scale>/ too, so only a profile's plain name is accepted: a path such as
    # ../scales/smoke would load a profile and write outside results/.
    if scale not in available_scales():
        raise ConfigError(
            f"unknown scale {scale!r}: a scale is the name of a profile in {SCALES_DIR.relative_to(ROOT)}/ "
            f"({', '.join(available_scales())}); pass e.g. --config scale=smoke"
        )
    path = SCALES_DIR / f"{scale}.yaml"
    profile = copy.deepcopy(_load_yaml(str(path)))
    profile["scale"] = scale
    return profile


def deep_merge(base: dict, override: dict) -> dict:
    """`base` updated by `override`; nested dicts merge, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def method_config(method: str, scale: str, variant: str | None = None) -> dict:
    """Paper config of `method`, with the scale profile's overrides and then `variant`'s switches.

    A variant that changes a size the profile sets (CMD's Kinetics-400 batch of 512, say) gets the
    profile's own value for it from the profile section's `variants: {<variant>: {...}}`, merged last."""
    path = ROOT / "methods" / method / "config.yaml"
    if not path.exists():
        raise ConfigError(f"no config for method {method!r} at {path.relative_to(ROOT)}")
    cfg = copy.deepcopy(_load_yaml(str(path)))
    variants = cfg.pop("variants", {}) or {}
    section = copy.deepcopy(load_scale(scale).get(method, {}) or {})
    sized_variants = section.pop("variants", {}) or {}
    unknown = sorted(set(sized_variants) - set(variants))
    if unknown:
        raise ConfigError(f"config/scales/{scale}.yaml `{method}: variants:` names {', '.join(unknown)}, "
                          f"not variants of methods/{method}/config.yaml")
    cfg = deep_merge(cfg, section)
    if variant is not None:
        if variant not in variants:
            raise ConfigError(f"method {method!r} has no variant {variant!r}; known: {', '.join(sorted(variants))}")
        cfg = deep_merge(deep_merge(cfg, variants[variant] or {}), sized_variants.get(variant) or {})
        cfg["variant"] = variant
    cfg["scale"] = scale
    return cfg


# Keys that change how a variant's checkpoint is evaluated, never how it is pretrained: a variant
# whose config differs from another's only in these names that one in `pretraining_of` and
# shares its pretraining (MaCLR Table 2 evaluates the 600-epoch MaCLR at 32x8, §4.2).
EVALUATION_ONLY_KEYS = ("evaluation_clip", "pretraining_of", "variant")


def pretraining_variant(method: str, variant: str, scale: str) -> str:
    """The variant whose checkpoint `variant` evaluates: itself, or its `pretraining_of`, whose
    merged config must equal its own apart from EVALUATION_ONLY_KEYS (no hidden second pretraining)."""
    cfg = method_config(method, scale, variant)
    shared = cfg.get("pretraining_of")
    if not shared:
        return variant
    other = method_config(method, scale, shared)
    if other.get("pretraining_of"):
        raise ConfigError(f"methods/{method}/config.yaml variant {variant!r}: `pretraining_of: {shared}` names a variant "
                          f"that itself shares another's pretraining")
    differ = sorted(k for k in set(cfg) | set(other) if k not in EVALUATION_ONLY_KEYS and cfg.get(k) != other.get(k))
    if differ:
        raise ConfigError(f"methods/{method}/config.yaml variant {variant!r} shares the pretraining of {shared!r} "
                          f"but differs from it in {', '.join(differ)} (at scale {scale})")
    return shared


def evaluation_clip(cfg: dict, evaluation_set: str) -> dict | None:
    """`{num_frames, stride}` a variant is evaluated at on `evaluation_set`, from its config's
    `evaluation_clip: {<dataset id prefix>: {...}}`, or None: the pretraining clip."""
    entries = cfg.get("evaluation_clip") or {}
    matches = [name for name in entries if evaluation_set.startswith(name)]
    if len(matches) > 1:
        raise ConfigError(f"`evaluation_clip:` of {cfg.get('variant')!r} has several entries for {evaluation_set!r}: {matches}")
    return dict(entries[matches[0]]) if matches else None


def method_variants(method: str) -> list[str]:
    path = ROOT / "methods" / method / "config.yaml"
    if not path.exists():
        return []
    return sorted((_load_yaml(str(path)).get("variants") or {}).keys())
