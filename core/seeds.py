"""Seeds of a scale profile and where each seed's runs live (CONTRIBUTING.md, "Results layout").

A profile without `seeds:` runs once, with the method config's seed, at the plain paths
(`results/<scale>/pretrain/<method>/<variant>/<pretrain>/...`). A profile listing
`seeds: [0, 1, 2]` runs pretraining and evaluation once per seed, each in a `seed<k>/` folder
below the run's folder; the seed reaches the engine as `cfg["seed"]`.
"""
from __future__ import annotations

from core.errors import ConfigError


def profile_seeds(profile: dict) -> list[int] | None:
    """The profile's `seeds:` list, or None for a single-seed profile."""
    seeds = profile.get("seeds")
    if seeds is None:
        return None
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"scale profile {profile.get('scale')!r}: `seeds` must be a non-empty list of non-negative integers, got {seeds!r}")
    return list(seeds)


def seed_folder(seed: int | str | None) -> str:
    """The path part below a run's folder that holds one seed's run ('' for a single-seed profile)."""
    return "" if seed is None else f"/seed{int(seed)}"


def run_folders(base: str, profile: dict) -> list[str]:
    """Every seed's folder of the run whose single-seed folder is `base`."""
    seeds = profile_seeds(profile)
    return [base] if seeds is None else [base + seed_folder(s) for s in seeds]
