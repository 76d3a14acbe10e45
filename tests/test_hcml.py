"""HCML (methods/hcml/): Eq. (1)-(5) against hand-computed values, the warp, the negatives of
suppl. C.3, the predictor's shared layer, the progressive schedule's freezing, the variants and the
config's learning-rate rule."""
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from core.config import available_scales, method_config
from core.errors import ConfigError, SuiteError
from methods.backbones.hcml import cost_volume, cost_volume_channels, temporal_cost_volume
from methods.hcml import METHOD
from methods.hcml.data import HCMLClips
from methods.hcml.joint import JointTraining
from methods.hcml.losses import (EASY, POSITIVE, SPATIAL, TEMPORAL, charbonnier, hierarchical_contrastive_loss,
                                 joint_objective, negative_types, photometric_loss, reconstruction_loss,
                                 smoothness_loss, warp)
from methods.training.engine import RunSettings, enter_stage, set_train_mode, train_step


def naive_cost_volume(a, b, d, s):
    """Eq. (1) pixel by pixel: cv(x1, y1, dx, dy) = cos(a(x1, y1), b(x1 + dx, y1 + dy)), 0 outside."""
    n, c, h, w = a.shape
    offsets = list(range(-(d // s) * s, d + 1, s))
    out = torch.zeros(n, len(offsets) ** 2, h, w)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                for j, (dy, dx) in enumerate((dy, dx) for dy in offsets for dx in offsets):
                    if 0 <= y + dy < h and 0 <= x + dx < w:
                        out[i, j, y, x] = F.cosine_similarity(a[i, :, y, x], b[i, :, y + dy, x + dx], dim=0)
    return out


def test_cost_volume_eq1_equals_naive_and_peaks_at_the_shift():
    torch.manual_seed(0)
    a = torch.randn(2, 5, 9, 10)
    dy, dx = 2, -4  # b is a moved by (dy, dx): b(y + dy, x + dx) = a(y, x)
    b = torch.roll(a, shifts=(dy, dx), dims=(2, 3))
    fast = cost_volume(a, b, max_displacement=6, stride=2)
    assert fast.shape[1] == cost_volume_channels(6, 2) == 49
    assert torch.allclose(fast, naive_cost_volume(a, b, 6, 2), atol=1e-6)
    offsets = list(range(-6, 7, 2))
    best = fast[:, :, 3:6, 5:6].argmax(dim=1)  # positions whose displaced partner lies inside the map
    assert set(best.flatten().tolist()) == {offsets.index(dy) * len(offsets) + offsets.index(dx)}
    assert torch.allclose(fast.amax(dim=1)[:, 3:6, 5:6], torch.ones(2, 3, 1), atol=1e-6)  # cosine 1 at the shift


def test_temporal_cost_volume_pairs_the_last_frame_with_itself():
    x = torch.randn(1, 3, 4, 6, 6)
    cv = temporal_cost_volume(x, 2, 1)
    centre = cost_volume_channels(2, 1) // 2  # displacement (0, 0)
    assert torch.allclose(cv[:, centre, -1], torch.ones(1, 6, 6), atol=1e-6)  # F_{T-1} against itself
    assert torch.allclose(cv[:, :, 0], cost_volume(x[:, :, 0], x[:, :, 1], 2, 1), atol=1e-6)


def test_charbonnier_by_hand():
    z = torch.tensor([0.0, 0.5, -2.0])
    expected = [(0 + 1e-6) ** 0.45, (0.25 + 1e-6) ** 0.45, (4 + 1e-6) ** 0.45]
    assert charbonnier(z).tolist() == pytest.approx(expected, rel=1e-6)


def test_warp_with_a_known_flow_reproduces_the_shifted_frame_and_masks_the_outside():
    frame = torch.arange(30.0).reshape(1, 1, 5, 6)
    flow = torch.zeros(1, 2, 5, 6)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # U = 2 px right, V = 1 px up
    warped, valid = warp(frame, flow)
    # warped(x, y) = frame(x + 2, y - 1) where that lies inside
    assert torch.equal(warped[0, 0, 1:, :4], frame[0, 0, :-1, 2:])
    expected_valid = torch.zeros(5, 6)
    expected_valid[1:, :4] = 1
    assert torch.equal(valid[0, 0], expected_valid)
    half, _ = warp(frame, torch.full((1, 2, 5, 6), 0.5) * torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
    assert half[0, 0, 2, 2].item() == pytest.approx((frame[0, 0, 2, 2] + frame[0, 0, 2, 3]).item() / 2)  # bilinear


def test_photometric_eq2_by_hand_counts_only_in_bounds_pixels():
    target = torch.zeros(1, 3, 2, 2, 2)
    warped = torch.zeros(1, 3, 2, 2, 2)
    warped[0, :, 0, 0, 0] = 1.0  # one pixel off by 1 in every channel
    warped[0, :, 1, 1, 1] = 3.0  # another off by 3, but out of bounds
    valid = torch.ones(1, 1, 2, 2, 2)
    valid[0, 0, 1, 1, 1] = 0
    rho0, rho1 = (1e-6) ** 0.45, (1 + 1e-6) ** 0.45
    expected = (rho1 + 6 * rho0) / (2 * 2 * 2)  # 1/(HWT) sum of 1 * rho over the 7 valid pixels
    assert photometric_loss(target, warped, valid).item() == pytest.approx(expected, rel=1e-5)


def test_smoothness_eq3_by_hand():
    flow = torch.zeros(1, 2, 1, 2, 3)
    flow[0, 0, 0] = torch.tensor([[0.0, 1.0, 3.0], [0.0, 1.0, 3.0]])  # U grows along x; V constant
    rho = lambda v: (v * v + 1e-6) ** 0.45
    u_x = (2 * rho(1.0) + 2 * rho(2.0)) / 4  # mean of rho over U's four x-differences
    u_y = rho(0.0)                           # U does not change along y
    expected = u_x + u_y + rho(0.0) + rho(0.0)  # + V's two terms, T = 1
    assert smoothness_loss(flow).item() == pytest.approx(expected, rel=1e-5)
    assert reconstruction_loss(torch.tensor(2.0), torch.tensor(3.0), 0.5).item() == 3.5


def test_c3_negatives_of_a_tiny_batch():
    b, n, t = 3, 4, 5
    for query in [(0, 0, 0), (1, 2, 3), (2, 3, 4)]:
        types = negative_types(b, n, t, query).tolist()
        assert types.count(POSITIVE) == 1
        assert types.count(SPATIAL) == (n - 1) * t
        assert types.count(TEMPORAL) == t - 1
        assert types.count(EASY) == (b - 1) * n * t
        v, k, tt = query
        assert types[(v * n + k) * t + tt] == POSITIVE


def test_hierarchical_contrastive_eq4_by_hand():
    gt = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]], [[[-1.0, 0.0], [0.6, 0.8]]]])  # (B=2, N=1, T=2, D=2)
    pred = torch.tensor([[0.0, 2.0]])  # predicts video 0, step 1: the positive is flat index 1
    tau = 0.5
    sims = [0.0, 1.0, 0.0, 0.8]  # cosine with the 4 candidates: temporal, positive, easy, easy
    expected = -math.log(math.exp(1.0 / tau) / sum(math.exp(s / tau) for s in sims))
    assert hierarchical_contrastive_loss(pred, gt, torch.tensor([1]), tau).item() == pytest.approx(expected, rel=1e-6)


def test_joint_objective_eq5_by_hand():
    total = joint_objective(torch.tensor(1.0), torch.tensor(0.1), {1: torch.tensor(2.0), 2: torch.tensor(4.0)},
                            15.0, {1: 0.25, 2: 0.25})
    assert total.item() == pytest.approx(1.0 + 1.5 + 0.5 + 1.0)
    assert joint_objective(torch.tensor(1.0), None, {}, 15.0, {}).item() == 1.0


def smoke_model(variant="pmb_selfsup", **changes):
    cfg = method_config("hcml", "smoke", variant)
    cfg.update(changes)
    torch.manual_seed(0)
    return METHOD(cfg)


def test_predictor_shares_its_first_layer_across_steps():
    model = smoke_model()
    head = model.predictors["1"]
    assert len(head.steps) == model.cfg["predictor"]["steps"]
    x = torch.randn(3, head.shared.in_features)
    hidden = F.relu(head.shared(x))
    for delta in (1, 2, 3):
        assert torch.allclose(head(x, delta), head.steps[delta - 1](hidden))


def test_progressive_training_leaves_everything_below_the_active_level_unchanged():
    model = smoke_model()
    stages = model.stages(3)
    assert [s.name for s in stages] == ["level0", "level1", "level2"]
    default = {name: p.requires_grad for name, p in model.named_parameters()}
    enter_stage(model, stages[1], default)
    set_train_mode(model, stages[1])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = RunSettings(epochs=1, batch_size=4, optimizer={"name": "sgd", "lr": 0.5, "momentum": 0.9})
    from methods.training.optim import build_optimizer
    opt = {"main": build_optimizer(model.optimizer_groups()["main"], settings.optimizer)}
    clip = torch.randn(4, 3, 8, 32, 32)
    for _ in range(2):
        _, terms = train_step(model, model, {"clip": clip}, opt, [], settings, torch.device("cpu"), "test")
    assert list(terms) == ["contrastive1"]
    after = model.state_dict()
    below = ("net.trunk.stem.", "net.trunk.stages.0.", "net.pmb.1.", "flow.")
    level = ("net.trunk.stages.1.", "net.pmb.2.", "predictors.1.", "net.g.1.")
    for name in before:
        if name.startswith(below):  # weights and batch-norm statistics
            assert torch.equal(before[name], after[name]), name
    changed = [n for n in before if n.startswith(level) and n.endswith("weight") and not torch.equal(before[n], after[n])]
    assert any(n.startswith("net.pmb.2.") for n in changed) and any(n.startswith("predictors.1.") for n in changed)
    assert any(n.startswith("net.trunk.stages.1.") for n in changed)


def test_variants_switch_the_pmb_and_self_supervision():
    assert not hasattr(smoke_model("pmb"), "flow") and smoke_model("pmb").levels == (1, 2, 3)
    baseline = smoke_model("baseline")
    assert baseline.levels == () and not any("pmb" in n for n, _ in baseline.named_parameters())
    with pytest.raises(ConfigError, match="no self-supervision"):
        baseline.pretrain_dataset(None, None, 0)
    assert smoke_model("pmb").stages(4)[0].trainable is None  # nothing progressive without self-supervision


def test_joint_training_eq5_terms_and_weights():
    model = JointTraining(smoke_model(), num_classes=3)
    batch = {"clip": torch.randn(4, 3, 8, 32, 32), "label": torch.tensor([0, 1, 2, 0])}
    terms = model(batch)
    assert set(terms) == {"classification", "reconstruct", "contrastive1", "contrastive2"}
    expected = terms["classification"] + 15 * terms["reconstruct"] + 0.25 * (terms["contrastive1"] + terms["contrastive2"])
    assert torch.allclose(model.total_loss(terms), expected)
    assert set(JointTraining(smoke_model("pmb"), 3)(batch)) == {"classification"}


def test_a_level_without_a_future_is_refused_by_name():
    model = smoke_model(clip={"num_frames": 4, "stride": 1, "crop_size": 32, "short_side": 40})
    with pytest.raises(ConfigError, match="level 2: its motion features have 1 time step"):
        model({"clip": torch.randn(2, 3, 4, 32, 32)})


def test_a_video_shorter_than_the_clip_is_named():
    videos = pd.DataFrame([{"video_id": "v_short", "path": "a.avi", "label": 0, "num_frames": 5, "height": 48,
                            "width": 64}])
    with pytest.raises(SuiteError, match="v_short"):
        HCMLClips(videos, ".", method_config("hcml", "smoke", "pmb_selfsup"), 0)


@pytest.mark.parametrize("variant, jitter", [("pmb_selfsup", [256, 320]), ("pmb_selfsup_r2plus1d101", [256, 340]),
                                             ("baseline_r2plus1d101", [256, 340])])
def test_full_scale_clips_jitter_the_short_side_as_d2(variant, jitter):
    """D.2: the shorter side sampled in [256, 320] for R2D-50 and [256, 340] for R(2+1)D-101."""
    assert method_config("hcml", "full", variant)["clip"]["short_side_jitter"] == jitter


def test_training_clips_draw_their_short_side_over_the_jitter_range(monkeypatch):
    """Every short side of the profile's range is drawn and nothing else; each crop fits its frame."""
    from datasets.clips.reader import ClipReader
    from datasets.clips.sampling import resized_hw

    cfg = method_config("hcml", "smoke", "pmb_selfsup")
    low, high = cfg["clip"]["short_side_jitter"]
    videos = pd.DataFrame([{"video_id": "v0", "path": "a.avi", "label": 0, "num_frames": 30, "height": 48, "width": 64}])
    plans = []
    monkeypatch.setattr(ClipReader, "__call__", lambda self, row, plan: plans.append(plan) or torch.zeros(3, 8, 32, 32))
    data = HCMLClips(videos, ".", cfg, 0)
    for epoch in range(300):
        data.set_epoch(epoch)
        data[0]
    assert {p.short_side for p in plans} == set(range(low, high + 1))
    for p in plans:
        h, w = resized_hw(48, 64, p.short_side)
        assert 0 <= p.crop[0] <= h - 32 and 0 <= p.crop[1] <= w - 32


@pytest.mark.parametrize("scale", available_scales())
def test_learning_rate_follows_the_linear_scaling_rule(scale):
    """D.2: 0.0025 per GPU at 8 clips per GPU, linearly scaled with the number of GPUs."""
    cfg = method_config("hcml", scale, "pmb_selfsup")
    rule = cfg["lr_scaling"]
    assert cfg["optimizer"]["lr"] == pytest.approx(rule["lr_per_gpu"] * cfg["batch_size"] / rule["clips_per_gpu"])


def test_frame_folder_clips_read_as_video_clips(tmp_path):
    """Something-V1's JPEG frame folders go through the shared clip reader: frame i is file i + 1."""
    import cv2
    import numpy as np

    from core.errors import VideoDecodeError
    from datasets.clips.decode import decode_frames

    folder = tmp_path / "20bn-something-something-v1" / "7"
    folder.mkdir(parents=True)
    for i in range(6):
        cv2.imwrite(str(folder / f"{i + 1:05d}.jpg"), np.full((8, 10, 3), 40 * i, dtype=np.uint8))
    frames = decode_frames(folder, [4, 1, 1])
    assert frames.shape == (3, 8, 10, 3)
    assert [int(round(f.mean())) for f in frames] == [160, 40, 40]
    with pytest.raises(VideoDecodeError, match="00007.jpg"):
        decode_frames(folder, [6])


def test_a_non_finite_term_is_named_with_its_step_and_videos():
    model = smoke_model()
    settings = RunSettings(epochs=1, batch_size=2, optimizer={"name": "sgd", "lr": 0.1})
    clip = torch.randn(2, 3, 8, 32, 32)
    clip[1, :, 3] = float("nan")
    batch = {"clip": clip, "video_id": ["v_ok", "v_nan"]}
    with pytest.raises(SuiteError, match=r"epoch 0 step 3: reconstruct = nan.*videos v_ok, v_nan"):
        train_step(model, model, batch, {}, [], settings, torch.device("cpu"), "epoch 0 step 3")


@pytest.mark.parametrize("d,s", [(6, 2), (5, 2), (2, 1)])
def test_strided_cost_volume_equals_the_einsum_and_naive_ones(d, s, monkeypatch):
    from methods.backbones import hcml as blocks

    torch.manual_seed(1)
    a, b = torch.randn(3, 4, 7, 9), torch.randn(3, 4, 7, 9)
    reference = cost_volume(a, b, d, s)
    assert torch.allclose(reference, naive_cost_volume(a, b, d, s), atol=1e-6)
    assert torch.allclose(blocks.strided_cost_volume(a, b, d, s), reference, atol=1e-6)
    monkeypatch.setattr(blocks, "STRIDED_CHUNK_ELEMENTS", 1)  # one displacement row at a time
    assert torch.allclose(blocks.strided_cost_volume(a, b, d, s), reference, atol=1e-6)
