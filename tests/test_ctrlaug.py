"""Controllable Augmentations: the position sampler, the intensity levels, and each equation of
methods/ctrlaug/losses.py checked by hand on small known cases."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from methods.ctrlaug.augment import (apply_low_level, draw_levels, draw_parameters, group_of, level_count,
                                     parameter_ranges)
from methods.ctrlaug.losses import (clip_video_nce, correspondence_matrix, mine_lower_bound, region_contrast,
                                    reverse_gradient, shortcut_mi, temporal_dependency)
from methods.ctrlaug.model import ControllableAugmentations, PairScore, global_stride_stages, order_class, shuffled_orders, temporal_stride_one
from methods.ctrlaug.sampling import local_start, plan_ctrlaug_sample, segment, sparse_indices
from methods.training.contrastive import info_nce

LEVELS = {"bcs": 4, "hue": 2, "blur": 4}


# -- sampling ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_frames,span,clips", [(40, 8, 4), (180, 16, 4), (33, 16, 3), (16, 16, 1), (300, 16, 2)])
def test_clip_centres_fall_in_their_segments(num_frames, span, clips):
    rng = np.random.default_rng(0)
    for _ in range(50):
        for k in range(1, clips + 1):
            start = local_start(num_frames, span, k, clips, rng)
            lo, hi = segment(k, clips, num_frames)
            assert 0 <= start and start + span <= num_frames
            assert lo <= start + span / 2 <= hi


def test_too_short_video_is_refused():
    with pytest.raises(ValueError, match="segment 1 of 4"):
        local_start(17, 16, 1, 4, np.random.default_rng(0))


def test_sparse_frames_one_per_segment():
    assert sparse_indices(32, 16, None) == tuple(range(1, 32, 2))
    picked = sparse_indices(40, 16, np.random.default_rng(1))
    for j, f in enumerate(picked):
        assert math.floor(j * 40 / 16) <= f <= math.ceil((j + 1) * 40 / 16) - 1


def test_local_boxes_lie_inside_the_global_box_and_record_the_plan():
    rng = np.random.default_rng(3)
    for _ in range(30):
        s = plan_ctrlaug_sample(60, (40, 53), global_frames=16, global_scale=(0.8, 1.0), local_frames=8, local_stride=1,
                                local_scale=(0.5, 1.0), num_clips=4, rng=rng)
        t0, t1, gy0, gx0, gy1, gx1, gflip = s.global_view.box
        assert (t0, t1) == (0, 60) and s.global_view.plan.crop == (gy0, gx0) and gy1 - gy0 == s.global_view.crop
        assert gflip == float(s.global_view.plan.flip)
        for v in s.local_views:
            lt0, lt1, y0, x0, y1, x1, flip = v.box
            assert gy0 <= y0 < y1 <= gy1 and gx0 <= x0 < x1 <= gx1
            assert v.plan.indices == tuple(range(int(lt0), int(lt1))) and v.plan.crop == (y0, x0) and flip == float(v.plan.flip)


# -- low-level levels -------------------------------------------------------------------------------
def test_level_counts_of_table5():
    assert level_count({"bcs": 2, "hue": 2, "blur": 2}) == 32
    assert level_count(LEVELS) == 512


def test_32_distinct_levels_per_iteration_and_parameters_inside_their_level():
    levels = draw_levels(LEVELS, 32, torch.Generator().manual_seed(0))
    assert len(set(levels.tolist())) == 32
    ranges = parameter_ranges({"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1}, (0.1, 2.0))
    assert torch.allclose(ranges, torch.tensor([[0.6, 1.4], [0.6, 1.4], [0.6, 1.4], [-0.1, 0.1], [0.1, 2.0]]))
    # level 0 is the lowest sub-range of every parameter; the last level the highest
    p = draw_parameters(torch.tensor([0] * 50 + [511] * 50), LEVELS, ranges, torch.Generator().manual_seed(1))
    lo = torch.tensor([0.6, 0.6, 0.6, -0.1, 0.1])
    width = (ranges[:, 1] - ranges[:, 0]) / torch.tensor([4, 4, 4, 2, 4])
    assert ((p[:50] >= lo - 1e-6) & (p[:50] <= lo + width + 1e-6)).all()
    assert ((p[50:] >= ranges[:, 1] - width - 1e-6) & (p[50:] <= ranges[:, 1] + 1e-6)).all()
    assert group_of(128, 32).bincount().tolist() == [4] * 32


def test_low_level_identity_and_brightness():
    x = torch.rand(2, 3, 2, 9, 9) * 0.5
    identity = torch.tensor([[1.0, 1.0, 1.0, 0.0, 1e-3]] * 2)
    assert torch.allclose(apply_low_level(x, identity), x, atol=1e-5)
    brighter = torch.tensor([[1.5, 1.0, 1.0, 0.0, 1e-3], [1.0, 1.0, 1.0, 0.0, 1e-3]])
    out = apply_low_level(x, brighter)
    assert torch.allclose(out[0], x[0] * 1.5, atol=1e-5) and torch.allclose(out[1], x[1], atol=1e-5)
    blurred = apply_low_level(x, torch.tensor([[1.0, 1.0, 1.0, 0.0, 2.0]] * 2))
    assert blurred.std() < x.std()


# -- Eq. (1) ----------------------------------------------------------------------------------------
def box(t0, t1, y0, x0, y1, x1, flip=0.0):
    return torch.tensor([t0, t1, y0, x0, y1, x1, flip], dtype=torch.float64)


def test_crop_equal_to_the_global_view_is_identity_like():
    g = box(0, 16, 0, 0, 4, 4)
    s = correspondence_matrix(box(0, 16, 0, 0, 4, 4), g, (2, 4, 4), (2, 4, 4))
    assert torch.allclose(s, torch.eye(32))
    # T_c = 2 against T_v = 8: each clip cell spreads evenly over the 4 video cells of its half, same place
    s = correspondence_matrix(box(0, 16, 0, 0, 4, 4), g, (2, 4, 4), (8, 4, 4)).view(2, 4, 4, 8, 4, 4)
    for t in range(2):
        for y in range(4):
            for x in range(4):
                expected = torch.zeros(8, 4, 4)
                expected[4 * t:4 * t + 4, y, x] = 0.25
                assert torch.allclose(s[t, y, x], expected)


def test_left_half_crop_maps_only_to_left_cells_and_flip_mirrors():
    g = box(0, 8, 0, 0, 8, 8)
    left = box(0, 8, 0, 0, 8, 4)
    s = correspondence_matrix(left, g, (1, 2, 2), (1, 4, 4)).view(1, 2, 2, 1, 4, 4)
    assert s[..., 2:].abs().sum() == 0  # nothing on the right half of the video
    assert torch.allclose(s[0, 0, 0, 0], torch.tensor([[0.5, 0, 0, 0], [0.5, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    assert torch.allclose(s[0, 0, 1, 0], torch.tensor([[0, 0.5, 0, 0], [0, 0.5, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    # the flipped crop: its first column is the box's right edge, video column 1
    flipped = correspondence_matrix(box(0, 8, 0, 0, 8, 4, 1.0), g, (1, 2, 2), (1, 4, 4)).view(1, 2, 2, 1, 4, 4)
    assert torch.equal(flipped[:, :, 0], s[:, :, 1]) and torch.equal(flipped[:, :, 1], s[:, :, 0])
    # a flipped global view: the same crop lands on its mirrored columns 2 and 3
    mirrored = correspondence_matrix(left, box(0, 8, 0, 0, 8, 8, 1.0), (1, 2, 2), (1, 4, 4)).view(1, 2, 2, 1, 4, 4)
    assert torch.equal(mirrored, s.flip(-1))


def test_rows_sum_to_one_for_sampled_views_and_batch_shapes():
    rng = np.random.default_rng(0)
    boxes, globals_ = [], []
    for _ in range(6):
        s = plan_ctrlaug_sample(50, (40, 53), global_frames=16, global_scale=(0.8, 1.0), local_frames=8, local_stride=1,
                                local_scale=(0.3, 1.0), num_clips=4, rng=rng)
        boxes.append([v.box for v in s.local_views])
        globals_.append(s.global_view.box)
    s = correspondence_matrix(torch.tensor(boxes, dtype=torch.float64), torch.tensor(globals_, dtype=torch.float64)[:, None],
                              (2, 4, 4), (8, 4, 4))
    assert s.shape == (6, 4, 32, 128)
    assert torch.allclose(s.sum(-1), torch.ones(6, 4, 32), atol=1e-5)
    assert (s >= 0).all()


# -- Eqs. (2)-(4) -----------------------------------------------------------------------------------
def test_region_contrast_with_one_hot_s_is_infonce():
    torch.manual_seed(0)
    b, k, nc, nv, d, tau = 3, 2, 4, 5, 8, 0.2
    local = F.normalize(torch.randn(b, k, nc, d), dim=-1)
    glob = F.normalize(torch.randn(b, nv, d), dim=-1)
    target = torch.randint(nv, (b, k, nc))
    s = F.one_hot(target, nv).float()
    expected = []
    keys = glob.reshape(b * nv, d)
    for i in range(b):
        for c in range(k):
            for n in range(nc):
                j = i * nv + int(target[i, c, n])
                mask = torch.zeros(1, b * nv, dtype=torch.bool)
                mask[0, j] = True  # the positive is the numerator's, not a negative
                expected.append(info_nce(local[i, c, n][None], keys[j][None], keys, tau, mask))
    assert region_contrast(local, glob, s, tau) == pytest.approx(float(torch.stack(expected).mean()), rel=1e-5)


def test_region_contrast_soft_target_by_hand():
    local = torch.tensor([[[[1.0, 0.0]]]])  # B = K = N_c = 1
    glob = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # N_v = 2
    s = torch.tensor([[[[0.25, 0.75]]]])
    tau = 0.5
    logits = torch.tensor([2.0, 0.0])
    log_p = logits - torch.logsumexp(logits, 0)
    assert region_contrast(local, glob, s, tau) == pytest.approx(float(-(0.25 * log_p[0] + 0.75 * log_p[1])))


def test_clip_video_nce_by_hand():
    clips = F.normalize(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]), dim=-1)
    videos = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    tau = 1.0
    l0 = -math.log(math.exp(1) / (math.exp(1) + math.exp(0.6)))
    l1 = -math.log(math.exp(0.8) / (math.exp(0.8) + math.exp(0.0)))
    assert clip_video_nce(clips, videos, tau) == pytest.approx((l0 + l1) / 2, rel=1e-6)


# -- Eqs. (5)-(6) -----------------------------------------------------------------------------------
def test_mine_bound_by_hand():
    joint, marginal = torch.tensor([1.0, 3.0]), torch.tensor([0.0, math.log(3.0)])
    assert mine_lower_bound(joint, marginal) == pytest.approx(2.0 - math.log(2.0))


def test_mine_estimates_the_mutual_information_of_correlated_gaussians():
    """Two 2-d Gaussians with per-dimension correlation 0.8: I = -d/2 log(1 - rho^2) = 1.022 nats.
    G_theta (the model's two-layer MLP) trained on Eq. (5) for 600 steps of 512 pairs; the estimate
    on 20,000 fresh pairs must be within 0.15 nats of it (MINE's bound is biased low; 0.15 nats
    is 15% here)."""
    torch.manual_seed(0)
    rho, d = 0.8, 2
    truth = -0.5 * d * math.log(1 - rho ** 2)
    g = torch.Generator().manual_seed(0)

    def sample(n):
        x = torch.randn(n, d, generator=g)
        return x, rho * x + math.sqrt(1 - rho ** 2) * torch.randn(n, d, generator=g)

    estimator = PairScore(d, 64)
    opt = torch.optim.Adam(estimator.parameters(), lr=3e-3)
    for _ in range(600):
        x, y = sample(512)
        loss = -mine_lower_bound(estimator(x, y), estimator(x, y[torch.randperm(512, generator=g)]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = sample(20000)
    with torch.no_grad():
        estimate = float(mine_lower_bound(estimator(x, y), estimator(x, y[torch.randperm(20000, generator=g)])))
    assert abs(estimate - truth) < 0.15, (estimate, truth)


def test_gradient_reversal_sends_the_encoder_the_opposite_of_the_estimators_direction():
    """The encoder's gradient from L_mi's estimate part (-I, minimised) has the opposite sign to
    G_theta's: exactly minus what the encoder would get without the reversal (undone here by a
    second reversal in front), while G_theta's own gradient is unchanged."""
    torch.manual_seed(0)
    encoder = torch.nn.Linear(4, 3)
    estimator = PairScore(3, 8)
    x = torch.randn(8, 4)
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])

    def grads(reverse: bool):
        encoder.zero_grad()
        estimator.zero_grad()
        feats = encoder(x).view(8, 1, 3)
        feats_in = feats if reverse else reverse_gradient(feats, 1.0)  # undo the reversal inside shortcut_mi
        out = shortcut_mi(estimator, feats_in, torch.zeros(8, 3), groups, generator=torch.Generator().manual_seed(5))
        (-out["estimate"]).backward()
        return encoder.weight.grad.clone(), [p.grad.clone() for p in estimator.parameters()]

    enc_rev, est_rev = grads(True)
    enc_plain, est_plain = grads(False)
    assert enc_rev.abs().sum() > 0
    assert torch.allclose(enc_rev, -enc_plain, atol=1e-6)
    for a, b in zip(est_rev, est_plain):
        assert torch.allclose(a, b, atol=1e-6)
    assert reverse_gradient(torch.ones(2), 2.0).tolist() == [1.0, 1.0]
    t = torch.ones(2, requires_grad=True)
    reverse_gradient(t, 2.0).sum().backward()
    assert t.grad.tolist() == [-2.0, -2.0]


def test_local_global_part_leaves_the_estimator_frozen():
    estimator = PairScore(3, 8)
    clips = torch.randn(4, 2, 3, requires_grad=True)
    videos = torch.randn(4, 3, requires_grad=True)
    out = shortcut_mi(estimator, clips, videos, torch.arange(4))  # one video per group: no same-level pair
    assert float(out["estimate"].detach()) == 0.0
    out["loss"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in estimator.parameters())
    assert videos.grad.abs().sum() > 0


# -- Eq. (7) and the heads --------------------------------------------------------------------------
def test_temporal_dependency_is_minus_the_bound():
    ordered, shuffled = torch.tensor([2.0, 2.0]), torch.tensor([0.0, 0.0])
    assert temporal_dependency(ordered, shuffled) == pytest.approx(-2.0)


def test_shuffled_orders_are_never_the_true_order_and_classes_index_permutations():
    orders = shuffled_orders(200, 4, 2, torch.Generator().manual_seed(0))
    assert not (orders == torch.arange(4)).all(dim=1).any()
    assert sorted(orders[0].tolist()) == [0, 1, 2, 3]
    assert order_class(torch.tensor([[0, 1, 2], [2, 1, 0]])).tolist() == [0, 5]


def test_global_encoder_runs_at_stride_one_with_the_same_weights():
    from methods.backbones import build_backbone
    net = build_backbone("r3d18", width_multiplier=0.0625)
    x = torch.randn(1, 3, 16, 32, 32)
    assert net.forward_features(x).shape[2] == 2
    cfg = {"global_view": {"num_frames": 16}, "global_feature_frames": 8, "time_strides": 3}
    with temporal_stride_one(net, global_stride_stages(cfg)):
        assert net.forward_features(x).shape[2] == 8
    assert net.forward_features(x).shape[2] == 2  # restored
    with temporal_stride_one(net, global_stride_stages({**cfg, "global_feature_frames": 4})):
        assert net.forward_features(x).shape[2] == 4


# -- the method on the engine's contract ------------------------------------------------------------
def smoke_batch(cfg: dict, size: int = 8, seed: int = 0) -> dict:
    from benchmarks.ctrlaug_step_share import batch_of
    return batch_of(cfg, size, seed)


def test_every_variant_builds_and_gives_finite_named_terms():
    from core.config import method_config, method_variants
    for variant in method_variants("ctrlaug"):
        cfg = method_config("ctrlaug", "smoke", variant)
        torch.manual_seed(0)
        model = ControllableAugmentations(cfg)
        terms = model(smoke_batch(cfg))
        assert set(terms) == set(cfg["objectives"]), variant
        assert all(torch.isfinite(t) for t in terms.values()), variant
        groups = model.optimizer_groups()
        assert ("estimator" in groups) == ("mi" in cfg["objectives"]), variant


def test_training_steps_lower_the_loss_and_reach_every_module():
    from core.config import method_config
    cfg = method_config("ctrlaug", "smoke", "abl_default")
    torch.manual_seed(0)
    model = ControllableAugmentations(cfg)
    batch = smoke_batch(cfg)
    opts = {name: torch.optim.Adam(params, lr=1e-3) for name, params in model.optimizer_groups().items()}
    losses = []
    for step in range(6):
        torch.manual_seed(1)  # the same low-level draws each step: only the weights change
        terms = model(batch)
        loss = sum(terms.values())
        for opt in opts.values():
            opt.zero_grad()
        loss.backward()
        if step == 0:
            for name in ("encoder", "region_head", "estimator", "td_head"):
                assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters()), name
        for opt in opts.values():
            opt.step()
        losses.append(float(terms["rc"].detach()))
    assert losses[-1] < losses[0]
    log = model.step_log(batch)
    assert {"correspondence_ms", "mi_estimate", "mi_local_global"} <= set(log)


def test_a_video_too_short_for_k_clips_is_named():
    import pandas as pd

    from core.config import method_config
    from core.errors import VideoDecodeError
    from methods.ctrlaug.data import CtrlAugPretrainData
    cfg = method_config("ctrlaug", "smoke", "abl_default")
    row = {"video_id": "v_short", "path": "a/v_short.avi", "label": 0, "label_name": "a", "split": "train",
           "num_frames": 9, "fps": 25, "width": 64, "height": 48, "duration": 0.36}
    data = CtrlAugPretrainData(pd.DataFrame([row]), cfg, "/nonexistent", None, 0)
    with pytest.raises(VideoDecodeError, match="v_short.*local-global sampling.*segment 1 of 4"):
        data[0]


def test_dali_decoder_is_refused_by_name():
    import pandas as pd

    from core.config import method_config
    from core.errors import ConfigError
    from methods.ctrlaug.data import CtrlAugPretrainData
    with pytest.raises(ConfigError, match="decoder"):
        CtrlAugPretrainData(pd.DataFrame(), {**method_config("ctrlaug", "smoke", "r3d18"), "decoder": "dali"}, ".", None, 0)
