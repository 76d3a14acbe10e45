"""MCL on the shared engine: the motion alignment losses of Eq. (4)-(7) on hand-made maps, the
second-order gradient path of L_MAL, the SVM protocol, and a tiny pretraining run."""
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from core.config import method_config
from datasets.motion.cache import cache_path
from datasets.motion.tvl1 import extract_video
from methods.mcl import METHOD
from methods.mcl.losses import gradient_maps, mal_v1, mal_v2, mal_v3, motion_alignment_terms, weighted_gradient_map
from methods.mcl.model import Encoder
from protocols.svm import accuracies, fit_svm
from tests.conftest import ROOT, run_env


def one_hot(shape, index):
    x = torch.zeros(shape)
    x[(0, *index)] = 1.0
    return x


# ------------------------------------------------------------------ Eq. (4)-(7) on hand-made maps
MOTION = torch.rand(1, 2, 3, 3) + 0.1  # (B, T, H, W), positive everywhere


def test_mal_v1_is_zero_when_the_channel_sum_is_the_motion_and_two_for_disjoint_peaks():
    h = MOTION.unsqueeze(1).repeat(1, 4, 1, 1, 1) / 4  # sum over 4 channels = the motion map
    assert mal_v1(h, MOTION).item() == pytest.approx(0.0, abs=1e-6)
    # Orthogonal unit maps: ||a - b||^2 = 2.
    peak_a, peak_b = one_hot((1, 2, 3, 3), (0, 0, 0)), one_hot((1, 2, 3, 3), (1, 2, 2))
    assert mal_v1(peak_a.unsqueeze(1), peak_b).item() == pytest.approx(2.0)
    # A peak against a motion spread over two positions, one of them the peak: (1 - 1/sqrt2)^2 + 1/2 = 2 - sqrt2.
    spread = peak_a + one_hot((1, 2, 3, 3), (0, 0, 1))
    assert mal_v1(peak_a.unsqueeze(1), spread).item() == pytest.approx(2 - math.sqrt(2))


def test_mal_v2_weights_channels_by_mean_gradient_and_drops_negative_evidence():
    h = torch.stack([MOTION, torch.rand_like(MOTION)], dim=1)  # channel 0 is the motion map
    g = torch.stack([torch.ones_like(MOTION), torch.zeros_like(MOTION)], dim=1)  # w = (1, 0)
    assert mal_v2(h, g, MOTION).item() == pytest.approx(0.0, abs=1e-6)
    # w = (-1, 0): sum_c w_c h_c = -motion < 0 everywhere, ReLU leaves nothing: ||0 - <m>||^2 = 1.
    assert mal_v2(h, -g, MOTION).item() == pytest.approx(1.0)


def test_mal_v3_aligns_the_weighted_gradient_map():
    # g_0 = m (mean w_0 = mean m > 0), g_1 = -m (w_1 = -mean m): sum_c w_c g_c = 2 mean(m) m.
    g = torch.stack([MOTION, -MOTION], dim=1)
    assert mal_v3(g, MOTION).item() == pytest.approx(0.0, abs=1e-6)
    peak_a, peak_b = one_hot((1, 2, 3, 3), (0, 1, 1)), one_hot((1, 2, 3, 3), (1, 0, 0))
    assert mal_v3(peak_a.unsqueeze(1), peak_b).item() == pytest.approx(2.0)


def test_eq7_terms_separate_where_and_when():
    assert all(v.item() == pytest.approx(0.0, abs=1e-6) for v in motion_alignment_terms(MOTION, MOTION).values())
    # Same place, other time: the map moves in frame 0, the motion in frame 1.
    prediction = torch.zeros(1, 2, 2, 2)
    prediction[:, 0] = 1.0
    motion = prediction.flip(1)
    terms = motion_alignment_terms(prediction, motion)
    assert terms["mal_st"].item() == pytest.approx(2.0)  # orthogonal volumes
    assert terms["mal_t"].item() == pytest.approx(2.0)   # (1, 0) against (0, 1)
    assert terms["mal_s"].item() == pytest.approx(0.0, abs=1e-6)  # both uniform over space
    assert set(motion_alignment_terms(prediction, motion, ["s"])) == {"mal_s"}
    with pytest.raises(ValueError, match="unknown motion alignment terms"):
        motion_alignment_terms(prediction, motion, ["x"])


# ------------------------------------------------------------------ the second-order path of L_MAL
class TinyBackbone(nn.Module):
    """Two 3D convolutions with the backbone interface the model reads (forward_features, pool,
    out_dim); a smooth nonlinearity follows the last one, as a ReLU follows a ResNet's last conv."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.Tanh(), nn.Conv3d(4, 6, 3, stride=2, padding=1),
                                      nn.Tanh())
        self.pool, self.out_dim = nn.AdaptiveAvgPool3d(1), 6

    def forward_features(self, x):
        return self.features(x)


def test_mal_v3_gradient_reaches_encoder_weights_and_matches_finite_differences():
    torch.manual_seed(0)
    encoder = Encoder(TinyBackbone(), 5).double()
    clip, key = torch.randn(2, 3, 4, 6, 6, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    motion = torch.rand(2, 2, 3, 3, dtype=torch.float64)
    weight = encoder.backbone.features[0].weight  # the first layer: far from the loss, reached only through g

    def loss():
        q, h = encoder.embed(clip)
        return sum(motion_alignment_terms(weighted_gradient_map(gradient_maps(q, key, h)), motion).values())

    analytic = torch.autograd.grad(loss(), weight)[0]
    assert analytic.abs().sum() > 1e-6  # a real gradient, not float64 rounding
    eps = 1e-6
    for index in [(0, 0, 1, 1, 1), (3, 2, 0, 2, 1), (1, 1, 2, 0, 0)]:
        weight.data[index] += eps  # in place on .data: the loss itself needs autograd (it differentiates)
        up = loss().item()
        weight.data[index] -= 2 * eps
        down = loss().item()
        weight.data[index] += eps
        assert analytic[index].item() == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-8)


def random_batch(cfg: dict, size: int) -> dict:
    """A batch of `size` random query and key clips, 2 x 2 motion maps and video indices 0..size-1."""
    frames = cfg["clip"]["num_frames"]
    return {"q": torch.randn(size, 3, frames, 48, 48), "k": torch.randn(size, 3, frames, 48, 48),
            "video_index": torch.arange(size), "motion": torch.rand(size, frames, 2, 2)}


def test_the_model_trains_its_encoder_through_l_mal():
    cfg = method_config("mcl", "smoke", "ta_sa_mal")
    torch.manual_seed(0)
    model = METHOD(cfg)
    batch = random_batch(cfg, 2)
    terms = model(batch)
    assert set(terms) == {"nce", "mal_t", "mal_s", "mal_st"}
    mal = terms["mal_t"] + terms["mal_s"] + terms["mal_st"]
    stem = next(model.online.backbone.parameters())
    assert all(not p.requires_grad for p in model.momentum.parameters())
    # L_MAL moves the encoder, not by rounding noise (about 3e-6 while the maps are uniform; L_NCE is
    # 0 here, its queue still empty, so it gives no scale to compare with)
    assert torch.autograd.grad(mal, stem)[0].norm() > 1e-3


def test_queries_in_sub_batches_give_each_sub_batch_its_own_statistics_and_gradient_maps():
    """bn_groups: 2 on one process: the queries are encoded in two sub-batches (batch norm over each),
    so the model's q and gradient maps equal those of the two halves encoded on their own."""
    cfg = {**method_config("mcl", "smoke", "ta_sa_mal"), "batch_norm": "shuffle", "bn_groups": 2}
    torch.manual_seed(0)
    model = METHOD(cfg)
    batch = random_batch(cfg, 4)
    terms = model(batch)
    assert set(terms) == {"nce", "mal_t", "mal_s", "mal_st"} and all(torch.isfinite(t) for t in terms.values())
    keys = model._keys
    halves = [model.online.embed(batch["q"][:2]), model.online.embed(batch["q"][2:])]
    whole_q, _ = model.online.embed(batch["q"])
    q = torch.cat([half[0] for half in halves])
    assert not torch.allclose(q, whole_q, atol=1e-4)  # batch norm over halves differs from over the batch
    maps = gradient_maps(q, keys, [half[1] for half in halves])
    by_half = torch.cat([gradient_maps(half[0], keys[i * 2 : i * 2 + 2], half[1]) for i, half in enumerate(halves)])
    assert torch.allclose(maps, by_half)

# ------------------------------------------------------------------ SVM protocol
def test_svm_separates_a_separable_toy_set():
    rng = np.random.default_rng(0)
    centres = 4.0 * np.eye(6)[:3]  # three classes, away from the origin (no bias term, as liblinear -B -1)
    train_y, test_y = np.repeat(np.arange(3), 20), np.repeat(np.arange(3), 5)
    train_x = centres[train_y] + 0.3 * rng.standard_normal((60, 6))
    test_x = centres[test_y] + 0.3 * rng.standard_normal((15, 6))
    svm = fit_svm(train_x, train_y, {"C": 1.0, "fit_intercept": False, "tol": 0.01, "max_iter": 1000})
    assert (svm.penalty, svm.loss, svm.dual, svm.C) == ("l2", "squared_hinge", False, 1.0)
    top1, top5 = accuracies(svm.decision_function(test_x), svm.classes_, test_y)
    assert top1 == 100.0 and top5 == 100.0
    # Swapped labels: every prediction wrong at top-1, right within the top 3.
    top1, top5 = accuracies(svm.decision_function(test_x), svm.classes_, (test_y + 1) % 3)
    assert top1 == 0.0 and top5 == 100.0


# ------------------------------------------------------------------ a tiny pretraining on the engine
@pytest.fixture(scope="module")
def tvl1_cache(tiny_k400):
    base, root = tiny_k400
    cache = base / "tvl1"
    manifest = pd.read_csv(base / "k400.csv", dtype={"video_id": str})
    for row in manifest.itertuples():
        if not cache_path(cache, row.video_id).exists():
            extract_video(root / row.path, cache_path(cache, row.video_id), store_flow=False)
    return cache


def test_mcl_pretrains_through_the_engine_and_its_checkpoint_feeds_the_svm(tiny_k400, tvl1_cache, tmp_path):
    base, root = tiny_k400
    out = tmp_path / "run"
    pretrain = [sys.executable, "-m", "methods.training.pretrain", "--method", "mcl", "--variant", "ta_sa_mal",
                "--pretrain", "k400", "--scale", "smoke", "--manifest", str(base / "k400.csv"), "--root", str(root),
                "--input", f"tvl1={tvl1_cache}", "--out", str(out), "--threads", "1"]
    proc = subprocess.run(pretrain, cwd=ROOT, env=run_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["encoder"]["backbone"] == "r2plus1d50" and checkpoint["input"]["kind"] == "rgb"
    assert checkpoint["provenance"]["method"] == "mcl"
    log = pd.read_csv(out / "log.csv")
    assert {"loss_nce", "loss_mal_t", "loss_mal_s", "loss_mal_st"} <= set(log.columns) and np.isfinite(log["loss"]).all()

    metrics_path = tmp_path / "svm.json"
    evaluate = [sys.executable, "-m", "protocols.svm", "--checkpoint", str(out / "checkpoint.pt"), "--manifest",
                str(base / "k400.csv"), "--root", str(root), "--scale", "smoke", "--out", str(metrics_path), "--threads", "1"]
    proc = subprocess.run(evaluate, cwd=ROOT, env=run_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(metrics_path.read_text())
    assert metrics["protocol"] == "svm" and 0 <= metrics["top1"] <= 100 and metrics["views"] == "4x1"
    assert "liblinear" in metrics and metrics["liblinear"].startswith("-s 2 -c 1")
