"""Fixtures shared by the test modules."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from datasets.manifests.manifest import build_manifest, entries_for
from datasets.motion.flow import build_cache, make_flow_estimator
from datasets.sources.fixtures import make_kinetics400

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_k400(tmp_path_factory):
    """A Kinetics fixture of 16 train videos with its manifest and flow-edge cache."""
    base = tmp_path_factory.mktemp("tiny_k400")
    root = base / "Kinetics400"
    make_kinetics400(root, {"frames": 16, "height": 40, "width": 48, "fps": 10, "num_classes": 2, "train_per_class": 8, "val_per_class": 1}, seed=0)
    manifest, _ = build_manifest(entries_for("k400", root), root, min_frames=8, verify=False)
    manifest.to_csv(base / "k400.csv", index=False)
    build_cache(manifest, root, "edge", base / "edge", 40, make_flow_estimator("farneback"))
    return base, root


def pretrain_command(base, root, out, manifest=None):
    return [sys.executable, "-m", "methods.training.pretrain", "--method", "maclr", "--variant", "maclr", "--pretrain", "k400",
            "--scale", "smoke", "--manifest", str(manifest or base / "k400.csv"), "--root", str(root),
            "--input", f"edge={base / 'edge'}", "--out", str(out), "--threads", "1"]


def run_env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]


@pytest.fixture(scope="session")
def uninterrupted(tiny_k400, tmp_path_factory):
    """The smoke K400 pretraining (6 epochs of 2 steps) run without interruption."""
    base, root = tiny_k400
    out = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run(pretrain_command(base, root, out), cwd=ROOT, env=run_env(), check=True, capture_output=True)
    return out


def repository_copy(dest: Path) -> Path:
    """The files git would commit (tracked, and untracked but not ignored) copied to `dest`."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to list the repository's files")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file() and not rel.startswith("results/"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest
