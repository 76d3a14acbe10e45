"""Hand-checked cases of the clip sampling shared by the CPU and DALI pipelines."""
import numpy as np
import pytest

import datasets.clips.sampling as S
from datasets.clips.sampling import ClipPlan, ClipSpec


def spec(**kw):
    base = dict(num_frames=4, stride=2, crop_size=32, short_side=48, temporal_views=3, spatial_views=3)
    base.update(kw)
    return ClipSpec(**base)


def test_span_and_indices():
    s = spec()
    assert s.span == 7  # frames 0, 2, 4, 6
    idx = S.clip_indices(5, s)
    assert idx.dtype == np.int64
    assert idx.tolist() == [5, 7, 9, 11]
    assert ClipSpec(1, 5, 8, 8).span == 1


def test_spec_rejects_bad_values():
    with pytest.raises(ValueError, match="num_frames"):
        ClipSpec(0, 1, 8, 8)
    with pytest.raises(ValueError, match="crop_size"):
        ClipSpec(4, 1, 64, 48)
    with pytest.raises(ValueError, match="spatial_views"):
        ClipSpec(4, 1, 8, 8, spatial_views=2)


def test_random_start_range_and_uniformity():
    s = spec()
    rng = np.random.default_rng(0)
    starts = [S.random_start(10, s, rng) for _ in range(4000)]  # valid starts 0..3
    assert set(starts) == {0, 1, 2, 3}
    counts = np.bincount(starts)
    assert counts.min() > 850  # ~1000 each
    assert S.random_start(7, s, rng) == 0  # exactly one clip fits


def test_random_start_with_allowed_mask():
    s = spec()
    rng = np.random.default_rng(1)
    allowed = np.array([False, True, False, True, True, True])  # entries 4, 5 are not valid starts
    starts = {S.random_start(10, s, rng, allowed) for _ in range(200)}
    assert starts == {1, 3}
    with pytest.raises(ValueError, match="no allowed clip start"):
        S.random_start(10, s, rng, np.zeros(4, dtype=bool))


def test_random_start_too_short_video():
    with pytest.raises(ValueError, match="6 frames, clip spans 7"):
        S.random_start(6, spec(), np.random.default_rng(0))


def test_test_starts_pyslowfast_uniform():
    s = spec(temporal_views=3)
    # delta = 20 - 7 = 13; floor(13 * i / 3) = 0, 4, 8
    assert S.test_starts(20, s) == [0, 4, 8]
    # 10 views over a 300-frame video with a 64-frame span (32 x 2 -> 63): delta = 237
    s10 = ClipSpec(32, 2, 8, 8, temporal_views=10)
    assert S.test_starts(300, s10) == [0, 23, 47, 71, 94, 118, 142, 165, 189, 213]
    assert S.test_starts(7, s) == [0, 0, 0]
    with pytest.raises(ValueError):
        S.test_starts(6, s)


def test_resized_hw():
    assert S.resized_hw(240, 320, 128) == (128, 170)  # floor(320 * 128 / 240) = 170.67 -> 170
    assert S.resized_hw(256, 340, 256) == (256, 340)
    assert S.resized_hw(320, 240, 112) == (149, 112)
    assert S.resized_hw(48, 48, 32) == (32, 32)


def test_spatial_crop_offsets_landscape_and_portrait():
    # landscape 48 x 64, crop 32: ends and centre along the width, centred vertically
    assert S.spatial_crop_offsets(48, 64, 32, 3) == [(8, 0), (8, 16), (8, 32)]
    # portrait 65 x 48: along the height; centre uses ceil((65 - 32) / 2) = 17
    assert S.spatial_crop_offsets(65, 48, 32, 3) == [(0, 8), (17, 8), (33, 8)]
    assert S.spatial_crop_offsets(48, 63, 32, 1) == [(8, 16)]  # ceil(31 / 2) = 16
    with pytest.raises(ValueError, match="does not fit"):
        S.spatial_crop_offsets(30, 64, 32, 3)


def test_random_crop_offset_covers_both_ends():
    rng = np.random.default_rng(2)
    offs = {S.random_crop_offset(34, 35, 32, rng) for _ in range(500)}
    assert offs == {(t, l) for t in range(3) for l in range(4)}


def test_plan_train_clip_deterministic_and_consistent():
    s = spec()
    a = S.plan_train_clip(30, (48, 64), s, np.random.default_rng(7))
    b = S.plan_train_clip(30, (48, 64), s, np.random.default_rng(7))
    assert a == b
    assert isinstance(a, ClipPlan)
    assert len(a.indices) == 4 and np.all(np.diff(a.indices_array) == 2)
    assert 0 <= a.indices[0] <= 30 - 7
    assert 0 <= a.crop[0] <= 16 and 0 <= a.crop[1] <= 32
    flips = {S.plan_train_clip(30, (48, 64), s, np.random.default_rng(k)).flip for k in range(20)}
    assert flips == {True, False}


def test_plan_test_clips_order():
    s = spec(temporal_views=2, spatial_views=3)
    plans = S.plan_test_clips(20, (48, 64), s)  # starts floor(13 * i / 2) = 0, 6
    assert len(plans) == 6
    assert [p.indices[0] for p in plans] == [0, 0, 0, 6, 6, 6]
    assert [p.crop for p in plans[:3]] == [(8, 0), (8, 16), (8, 32)]
    assert not any(p.flip for p in plans)


def test_random_short_side_draws_every_integer_of_the_jitter_range_and_nothing_else():
    """HCML D.2's scale jitter: the short side uniform in [low, high], both ends included."""
    rng = np.random.default_rng(0)
    sides = [S.random_short_side([256, 320], spec(crop_size=224, short_side=256), rng) for _ in range(3000)]
    assert set(sides) == set(range(256, 321))
    assert abs(np.mean(sides) - 288) < 1.5  # uniform: mean (256 + 320) / 2
    with pytest.raises(ValueError, match=r"jitter \[200, 320\].*crop_size \(224\)"):
        S.random_short_side([200, 320], spec(crop_size=224, short_side=256), rng)
    with pytest.raises(ValueError, match=r"jitter \[300, 280\]"):
        S.random_short_side([300, 280], spec(crop_size=224, short_side=256), rng)


def test_a_jittered_plan_resizes_to_its_own_short_side():
    """A plan's short side replaces the spec's in the resize; the crop lives in that frame."""
    from datasets.clips.decode import frames_to_clip

    frames = np.arange(2 * 48 * 64 * 3, dtype=np.uint8).reshape(2, 48, 64, 3)
    s = spec(num_frames=2, stride=1, short_side=40)
    assert S.resized_hw(48, 64, 50) == (50, 66)
    plan = S.plan_train_clip(2, (50, 66), s, np.random.default_rng(0), short_side=50)
    assert plan.short_side == 50 and plan.resize_to(s) == 50
    far = ClipPlan((0, 1), (18, 34), False, short_side=50)  # the bottom-right crop at short side 50
    assert frames_to_clip(frames, far, s).shape == (3, 2, 32, 32)
    with pytest.raises(ValueError, match="outside the resized frame"):  # at the spec's 40 it does not fit
        frames_to_clip(frames, ClipPlan((0, 1), (18, 34), False), s)
