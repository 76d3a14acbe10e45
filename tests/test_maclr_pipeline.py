"""MaCLR's sampling (motion threshold, temporal jitter), its variants as config switches, its
pretraining under torchrun, and the linear protocol's classifier."""
import numpy as np
import pytest
import torch

from core.config import method_config, method_variants
from datasets.clips.sampling import ClipSpec
from methods.maclr.data import motion_allowed_starts, sample_starts
from protocols.linear import fit_linear

VISUAL = ClipSpec(num_frames=4, stride=2, crop_size=8, short_side=8)  # span 7
MOTION = ClipSpec(num_frames=8, stride=1, crop_size=8, short_side=8)  # span 8


def test_motion_threshold_keeps_only_clips_above_gamma():
    frame_mean = np.zeros(20, dtype=np.float32)
    frame_mean[10:18] = 0.05  # one strong-motion window of 8 frames
    allowed = motion_allowed_starts(frame_mean, MOTION, threshold=0.02)
    assert len(allowed) == 13  # starts 0..12
    # A clip qualifies when its mean motion exceeds 0.02: at least 4 of its 8 frames in the window.
    assert np.flatnonzero(allowed).tolist() == [6, 7, 8, 9, 10, 11, 12]
    assert not motion_allowed_starts(frame_mean, MOTION, threshold=0.1).any()


def test_jittered_motion_clips_come_from_allowed_starts():
    allowed = np.zeros(13, dtype=bool)
    allowed[[3, 9]] = True
    rng = np.random.default_rng(0)
    for _ in range(50):
        _, m_starts = sample_starts(20, VISUAL, MOTION, allowed, jitter=True, rng=rng)
        assert set(m_starts) <= {3, 9}


def test_without_jitter_pairs_are_synchronised():
    rng = np.random.default_rng(0)
    for _ in range(20):
        (vq, vk), (mq, mk) = sample_starts(20, VISUAL, MOTION, None, jitter=False, rng=rng)
        assert mk == vq and mq == vk  # Eq. (2)'s pairs [v^q, m^k] and [m^q, v^k]


def test_table1_ablations_are_config_switches():
    table1 = {"maclr", "v_only", "m_only", "diff", "flow", "no_tjitter", "no_mthresh", "no_lm"}
    tables245 = {"maclr_600ep", "v_only_600ep", "maclr_600ep_r18"}  # evaluation clips (tests/test_evaluation_clip.py)
    assert set(method_variants("maclr")) == table1 | tables245 | {"mv_key_negatives", "random_init"}
    assert method_config("maclr", "smoke", "random_init")["epochs"] == {"k400_mini": 0, "k400": 0}  # the learning check's baseline
    assert method_config("maclr", "full", "maclr")["mv_negatives"] == "query_modality"  # Eq. (2) as printed
    assert method_config("maclr", "full", "mv_key_negatives")["mv_negatives"] == "key_modality"
    base = method_config("maclr", "full", "maclr")
    assert base["temperature"] == 0.1 and base["momentum"] == 0.999 and base["queue_size"] == 65536
    assert base["motion"]["threshold"] == 0.02 and base["embedding_dim"] == 128
    assert base["epochs"] == {"k400_mini": 100, "k400": 600}
    assert method_config("maclr", "full", "v_only")["losses"] == ["v"]
    assert method_config("maclr", "full", "no_lm")["losses"] == ["v", "mv"]
    assert method_config("maclr", "full", "no_mthresh")["motion"]["threshold"] == 0.0
    assert method_config("maclr", "full", "diff")["motion"]["input"] == "diff"
    assert method_config("maclr", "full", "no_tjitter")["temporal_jitter"] is False
    smoke = method_config("maclr", "smoke", "maclr")
    assert smoke["visual"]["backbone"] == "r3d50_slowonly" and smoke["visual"]["width_multiplier"] < 1


def test_distributed_pretraining_under_torchrun(tiny_k400, tmp_path):
    """Two CPU processes (gloo) through torchrun: DDP-synchronised steps, keys gathered into the queues."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import socket

    base, root = tiny_k400
    repo = Path(__file__).resolve().parent.parent
    out = tmp_path / "ddp"
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", port,
         "-m", "methods.training.pretrain", "--method", "maclr", "--variant", "maclr", "--pretrain", "k400_mini",
         "--scale", "smoke", "--manifest", str(base / "k400.csv"), "--root", str(root), "--input", f"edge={base / 'edge'}",
         "--out", str(out), "--threads", "1"],
        cwd=repo, check=True, env={**__import__("os").environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"},
    )
    summary = json.loads((out / "summary.json").read_text())
    # 16 train videos, batch 8 split over 2 ranks = 2 steps per epoch, 16 smoke epochs on k400_mini
    assert summary["world_size"] == 2 and summary["steps"] == 32 and summary["final_loss"] is not None
    assert (out / "checkpoint.pt").exists()


@pytest.mark.parametrize("cfg", [
    {"solver": "lbfgs", "weight_decay": 1e-4, "max_iter": 50},
    {"solver": "sgd", "lr": 1.0, "momentum": 0.9, "weight_decay": 0.0, "epochs": 30, "sgd_batch_size": 16},
])
def test_linear_classifier_separates_separable_features(cfg):
    torch.manual_seed(0)
    labels = torch.arange(3).repeat(20)
    features = torch.randn(60, 5) * 0.1 + torch.nn.functional.one_hot(labels, 5).float() * 3
    layer = fit_linear(features, labels, 3, cfg)
    assert (layer(features).argmax(1) == labels).all()


def test_recall_at_k_by_hand():
    """Gallery classes 0, 1, 2 at (1, 0), (0, 1), (-1, 0). Query A (class 1) is nearest to class 0,
    then class 1; query B (class 1) ranks class 0, class 2, class 1."""
    from protocols.retrieval import recall_at_k

    gallery, gallery_labels = torch.tensor([[1.0, 0], [0, 1], [-1, 0]]), torch.tensor([0, 1, 2])
    queries, query_labels = torch.tensor([[0.9, 0.1], [0.1, -1]]), torch.tensor([1, 1])
    assert recall_at_k(queries, query_labels, gallery, gallery_labels, [1, 2, 3]) == {"r_at_1": 0.0, "r_at_2": 50.0, "r_at_3": 100.0}


def test_finetune_a_tiny_run(tiny_k400):
    """One epoch of end-to-end training on the engine (its warm-up and cosine schedule are checked
    by hand in test_engine.py) and a 10x3-view test on the tiny fixture give well-formed metrics."""
    import pandas as pd

    from methods.backbones import build_backbone
    from protocols.finetune import evaluate

    base, root = tiny_k400
    manifest = pd.read_csv(base / "k400.csv").replace({"split": {"val": "test"}})
    backbone = build_backbone("r3d18", width_multiplier=1 / 16)
    checkpoint = {
        "encoder": {"backbone": "r3d18", "width_multiplier": 1 / 16, "in_channels": 3, "state_dict": backbone.state_dict()},
        "input": {"modality": "rgb", "clip": {"num_frames": 4, "stride": 2, "crop_size": 32, "short_side": 40},
                  "mean": [0.45] * 3, "std": [0.225] * 3},
    }
    run_cfg = {"epochs": 1, "batch_size": 4, "lr": 0.01, "warmup_start_lr": 0.001, "warmup_epochs": 0.5, "momentum": 0.9,
               "weight_decay": 1e-4, "dropout": 0.5, "augment": {"color_p": 0.6, "color_strength": 0.4, "grayscale_p": 0.5},
               "test_crop_size": None, "temporal_views": 10, "spatial_views": 3}
    metrics = evaluate(checkpoint, manifest, root, None, run_cfg, seed=0)
    assert metrics["num_test_videos"] == 2 and metrics["views"] == "10x3"
    assert 0.0 <= metrics["top1"] <= metrics["top5"] <= 100.0
