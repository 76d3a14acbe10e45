"""Resume state tied to what produced it.

`last.pt` holds the method (weights, momentum encoders, queues), the optimizers, every RNG
state (python, numpy, torch, CUDA), the data order and a fingerprint of the run's inputs: the
manifest's hash, the merged config, the scale and the code version of the method and the
engine. A run resumes only an unfinished state with the same fingerprint. Any other state is set
aside (renamed `last.stale-<n>.pt`, kept, and named in the log), never resumed:
- a different fingerprint: the inputs changed, so the state describes another run;
- an unreadable file (truncated or corrupt);
- a finished state: Snakemake runs the job again only when the checkpoint must be remade
  (`--forcerun`, a deleted or older output), so the re-run starts clean.
"""
from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch

from core.provenance import file_hash
from methods.training.checkpoint import plain

TRAINING_DIR = Path(__file__).resolve().parent


def code_version(method_dir: str | Path) -> str:
    """Hash of the method's and the engine's Python sources (what a resumed run must share)."""
    digest = hashlib.sha256()
    for folder in (Path(method_dir), TRAINING_DIR):
        for path in sorted(folder.glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def fingerprint(manifest: str | Path, cfg: dict, scale: str, method_dir: str | Path) -> dict[str, str]:
    """What a resume state is tied to, one hash per component so a mismatch can be named."""
    config = json.dumps(plain(cfg), sort_keys=True, default=str).encode()
    return {"manifest": file_hash(manifest), "config": hashlib.sha256(config).hexdigest(), "scale": str(scale),
            "code": code_version(method_dir)}


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "python": list(random.getstate()[1]),
        "python_version": int(random.getstate()[0]),
        "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_gauss": [int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"]), None))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], *state["numpy_gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def stale_reason(state: dict, expected: dict[str, str], total_epochs: int) -> str | None:
    """Why `state` must not be resumed, or None when it may be."""
    saved = state.get("fingerprint") or {}
    changed = [name for name in expected if saved.get(name) != expected[name]]
    if changed:
        return "its " + ", ".join(changed) + " differ" + ("s" if len(changed) == 1 else "") + " from this run's"
    if int(state["epoch"]) >= total_epochs:
        return "it is a finished run, and the job runs again only when its checkpoint must be remade"
    return None


def set_aside(path: Path, reason: str) -> Path:
    """Rename a resume state that must not be resumed, keeping it; log where it went."""
    n = 1
    while (aside := path.with_name(f"{path.stem}.stale-{n}{path.suffix}")).exists():
        n += 1
    path.rename(aside)
    print(f"not resuming {path}: {reason}; set aside as {aside.name}, starting from scratch", file=sys.stderr)
    return aside
