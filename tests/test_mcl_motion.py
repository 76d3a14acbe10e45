"""MCL motion inputs (datasets/motion/tvl1.py): Eq. (1), Eq. (2), TV-L1 on known motion, cache;
motion-focused sampling (methods/mcl/sampling.py)."""
import json

import numpy as np
import pandas as pd
import pytest

from datasets.clips.sampling import ClipSpec
from datasets.motion import tvl1 as mm
from datasets.motion.cache import read_arrays
from methods.mcl import sampling as mcl


def moving_square_frames(num_frames=6, height=48, width=64, k=2, size=16, seed=0):
    """A textured square moving right by k px per frame over a flat grey background."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    frames = np.full((num_frames, height, width, 3), 128, dtype=np.uint8)
    top, left = (height - size) // 2, 4
    for t in range(num_frames):
        frames[t, top:top + size, left + k * t:left + k * t + size] = texture
    return frames, (top, left, size)


def test_eq1_motion_map_on_linear_flow():
    """For u = a x + b y, v = c x + d y every derivative is constant: m = sqrt(a^2+b^2+c^2+d^2)."""
    y, x = np.mgrid[0:5, 0:7].astype(np.float32)
    a, b, c, d = 0.5, -1.0, 2.0, 0.25
    flow = np.stack([a * x + b * y, c * x + d * y], axis=-1)
    mb = mm.motion_boundaries(flow)
    np.testing.assert_allclose(mb[0], a)
    np.testing.assert_allclose(mb[1], b)
    np.testing.assert_allclose(mb[2], c)
    np.testing.assert_allclose(mb[3], d)
    np.testing.assert_allclose(mm.motion_map(flow), np.sqrt(a * a + b * b + c * c + d * d), rtol=1e-6)


def test_eq1_ignores_uniform_camera_motion():
    flow = np.zeros((2, 6, 6, 2), np.float32)
    flow[..., 0] = 3.0  # the whole frame translates: no motion boundary
    assert np.all(mm.motion_map(flow) == 0)


def test_eq1_step_edge_by_hand():
    u = np.zeros((3, 4), np.float32)
    u[:, 2:] = 2.0  # step between columns 1 and 2: central difference 1.0 on both sides
    flow = np.stack([u, np.zeros_like(u)], axis=-1)
    expected = np.tile([0.0, 1.0, 1.0, 0.0], (3, 1))
    np.testing.assert_allclose(mm.motion_map(flow), expected)


def test_eq2_s_and_t_motion_by_hand():
    m_st = np.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[0, 0], [0, 4]]], np.float32)
    m_s, m_t = mm.s_and_t_motion(m_st)
    np.testing.assert_allclose(m_s, [[2, 8 / 3], [10 / 3, 16 / 3]])
    np.testing.assert_allclose(m_t, [2.5, 6.5, 1.0])


def test_tvl1_square_moving_right():
    k = 2
    frames, (top, left, size) = moving_square_frames(k=k)
    flow = mm.tvl1_flow(frames)
    assert flow.shape == frames.shape[:3] + (2,)
    np.testing.assert_array_equal(flow[-1], flow[-2])  # Sec. 3.1: last frame repeats the previous flow
    for t in range(len(frames) - 1):
        inner = flow[t, top + 4:top + size - 4, left + k * t + 4:left + k * t + size - 4]
        u, v = np.median(inner[..., 0]), np.median(inner[..., 1])
        assert abs(u - k) < 0.3 and abs(v) < 0.3, (t, u, v)
    # the motion map responds on the square's boundary, not on the static background
    m = mm.motion_map(flow)
    assert m[:, :4, :].max() < 0.2 * m.max()
    s_motion, _ = mm.s_and_t_motion(m)
    row, col = np.unravel_index(np.argmax(s_motion), s_motion.shape)
    assert top - 3 <= row <= top + size + 3


def test_flow_quantisation_round_trip():
    flow = np.array([-25.0, -20.0, -3.3, 0.0, 7.1, 20.0, 30.0], np.float32)
    back = mm.dequantise_flow(mm.quantise_flow(flow))
    np.testing.assert_allclose(back, np.clip(flow, -20, 20), atol=40 / 255 / 2 + 1e-6)


def test_temporal_sampling_keeps_clips_above_median():
    spec = ClipSpec(num_frames=2, stride=1, crop_size=2, short_side=2)
    t_motion = np.array([0, 0, 0, 5, 5, 0, 0], np.float32)
    np.testing.assert_allclose(mcl.clip_level_motion(t_motion, spec), [0, 0, 2.5, 5, 2.5, 0])
    np.testing.assert_array_equal(mcl.motion_focused_starts(t_motion, spec), [0, 0, 1, 1, 1, 0])
    flat = mcl.motion_focused_starts(np.ones(7), spec)
    assert flat.all()  # nothing above the median: documented fallback to uniform
    stride2 = ClipSpec(num_frames=2, stride=2, crop_size=2, short_side=2)
    np.testing.assert_allclose(mcl.clip_level_motion(t_motion, stride2), [0, 2.5, 2.5, 2.5, 2.5])


def hot_block_map():
    m = np.zeros((20, 20), np.float32)
    m[2:6, 12:16] = 1.0  # 16 hot pixels (4 %), all above the 90th percentile (0)
    return m


def test_spatial_crop_covers_80_percent_of_hot_pixels():
    m = hot_block_map()
    seen = set()
    for seed in range(300):
        top, left = mcl.motion_focused_crop(m, 8, 8, np.random.default_rng(seed))
        covered = m[top:top + 8, left:left + 8].sum() / m.sum()
        assert covered >= 0.8
        seen.add((top, left))
    # exactly the boxes containing >= 12.8 of the 16 pixels, i.e. the whole block: top 0..2, left 8..12
    assert seen == {(t, l) for t in range(0, 3) for l in range(8, 13)}


def test_spatial_crop_fallbacks():
    m = hot_block_map()
    top, left = mcl.motion_focused_crop(m, 2, 2, np.random.default_rng(0))
    assert m[top:top + 2, left:left + 2].sum() == 4  # no 2x2 box reaches 80 %: a box of maximal coverage
    flat = np.ones((6, 6), np.float32)
    tops = {mcl.motion_focused_crop(flat, 3, 3, np.random.default_rng(s)) for s in range(200)}
    assert len(tops) == 16  # nothing above the threshold: any box


def test_crop_coverage_exact():
    mask = np.zeros((4, 5), bool)
    mask[1, 1] = mask[2, 3] = True
    cov = mcl.crop_coverage(mask, 2, 3)
    assert cov.shape == (3, 3)
    assert cov[1, 1] == 1.0 and cov[0, 0] == 0.5 and cov[1, 2] == 0.5 and cov[2, 0] == 0.0


def test_plan_motion_focused_clip_is_a_shared_clip_plan():
    motion = np.zeros((12, 20, 20), np.float32)
    motion[6:10, 2:6, 12:16] = 1.0  # the motion happens in frames 6..9, top-right block
    spec = ClipSpec(num_frames=2, stride=2, crop_size=8, short_side=20)
    for seed in range(20):
        plan = mcl.plan_motion_focused_clip(motion, spec, np.random.default_rng(seed))
        assert plan.indices[1] - plan.indices[0] == 2
        assert any(6 <= i <= 9 for i in plan.indices)  # a clip above the median
        top, left = plan.crop
        assert 0 <= top <= 2 and 8 <= left <= 12  # the same box for every frame of the tubelet


def test_extract_cache_resume_and_quarantine(tmp_path):
    from datasets.sources.synthetic import write_video

    frames, _ = moving_square_frames(num_frames=5, height=32, width=48)
    write_video(tmp_path / "ok.avi", frames, fps=25)
    (tmp_path / "empty.avi").write_bytes(b"")
    pd.DataFrame({"video_id": ["ok", "empty", "gone"], "path": ["ok.avi", "empty.avi", "gone.avi"]}).to_csv(
        tmp_path / "m.csv", index=False)
    out = tmp_path / "cache"
    args = ["--manifest", str(tmp_path / "m.csv"), "--root", str(tmp_path), "--out-dir", str(out), "--summary", str(out / "_summary.json")]
    assert mm.main(args) == 0
    z = read_arrays(out / "ok.arrays")
    assert z["motion"].shape == (5, 32, 48) and z["motion"].dtype == np.float16
    assert z["t_motion"].shape == (5,) and z["flow"].dtype == np.uint8
    # what temporal sampling computed from the whole array, stored so that a sample reads one clip
    assert np.array_equal(z["motion_frame_mean"], np.asarray(z["motion"]).mean(axis=(1, 2)))
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["extracted"] == 1 and {f["video_id"] for f in summary["failed"]} == {"empty", "gone"}
    quarantine = pd.read_csv(out / "_summary.quarantine.csv")
    assert set(quarantine.video_id) == {"empty", "gone"}
    mtime = (out / "ok.arrays" / "motion.npy").stat().st_mtime_ns
    assert mm.main(args + ["--strict"]) == 1  # failures are errors under --strict
    assert (out / "ok.arrays" / "motion.npy").stat().st_mtime_ns == mtime  # resumed: the cached video is not redone
    assert json.loads((out / "_summary.json").read_text())["skipped_existing"] == 1
