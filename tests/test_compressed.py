"""CMD compressed-domain inputs (datasets/motion/compressed.py): vectors of known motion, cache;
CMD sampling (methods/cmd/sampling.py)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import VideoDecodeError
from datasets.clips.sampling import ClipSpec
from datasets.motion import compressed as cd
from datasets.motion.cache import read_arrays
from methods.cmd.sampling import plan_cmd_sample

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-videos"


def square_frames(num_frames=26, height=64, width=128, k=3, size=24, seed=0):
    """A textured square moving right by k px per frame over a static textured background."""
    import cv2

    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (7, 7), 2)
    texture = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)
    for t in range(num_frames):
        frames[t, 20:20 + size, 8 + k * t:8 + k * t + size] = texture
    return frames


def write_mpeg4_gop12(path, frames, fps=25):
    """MPEG-4 Part 2, GOP 12, no B-frames, through the suite's transcode profile."""
    from datasets.sources.synthetic import write_video
    from datasets.transcodes.transcode import transcode

    src = path.with_name(path.stem + "_src.mp4")
    write_video(src, frames, fps)
    transcode(src, path, "mpeg4_gop12")
    return path


@pytest.fixture(scope="module")
def square_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("cmd") / "square.avi"
    return write_mpeg4_gop12(path, square_frames())


def test_motion_vectors_of_a_square_moving_right(square_video):
    k = 3
    out = cd.extract_compressed(square_video)
    kinds = out["pict_types"]
    assert len(kinds) == 26
    np.testing.assert_array_equal(out["iframe_indices"], [0, 12, 24])  # GOP 12: I then 11 P
    assert set(kinds[out["iframe_indices"]]) == {cd.PICT_I} and (kinds == cd.PICT_P).sum() == 23
    assert out["iframes"].shape == (3, 64, 128, 3)
    mv = out["mv"].astype(np.float32)
    assert mv.shape == (26, 16, 32, 2)
    assert np.all(mv[out["iframe_indices"]] == 0)
    agree = 0
    p_frames = [t for t in range(26) if kinds[t] == cd.PICT_P]
    for t in p_frames:
        moving = np.abs(mv[t]).sum(-1) > 0
        rows = np.nonzero(moving.any(-1))[0]
        assert rows.size == 0 or (rows.min() * 4 >= 16 and rows.max() * 4 < 48), t  # on the square only
        strong = mv[t][np.abs(mv[t][..., 0]) >= 1]
        if len(strong) and np.median(strong[:, 0]) == pytest.approx(k, abs=0.5) and abs(np.median(strong[:, 1])) <= 0.5:
            agree += 1
    # the encoder may intra-code the square in a few frames (no vector there); elsewhere the
    # vectors carry the square's motion: k px to the right, none vertically
    assert agree >= 0.8 * len(p_frames), (agree, len(p_frames))


def test_frame_mv_map_by_hand():
    dtype = [("source", "<i4"), ("w", "u1"), ("h", "u1"), ("src_x", "<i2"), ("src_y", "<i2"), ("dst_x", "<i2"),
             ("dst_y", "<i2"), ("flags", "<u8"), ("motion_x", "<i4"), ("motion_y", "<i4"), ("motion_scale", "<u2")]
    v = np.array([(-1, 16, 16, 21, 8, 24, 8, 0, -6, 2, 2), (1, 16, 16, 0, 0, 8, 8, 0, 4, 4, 2)], dtype=dtype)
    m = cd.frame_mv_map(v, 32, 48, grid=4)
    assert m.shape == (8, 12, 2)
    np.testing.assert_array_equal(m[0:4, 4:8], np.broadcast_to([3.0, -1.0], (4, 4, 2)))  # block 16..32 x 0..16
    assert np.abs(m).sum() == 3 * 16 + 1 * 16  # the future-referencing (source > 0) vector is ignored


def test_normalise_flip_dense():
    mv = np.array([-40.0, -20.0, -1.0, 0.0, 1.0, 20.0, 40.0], np.float32)
    out = cd.normalise_mv(mv)
    # CoViAR: int32(mv * 127.5 / 20) + 128, clipped to uint8, / 255 - 0.5
    expected = (np.clip(np.trunc(mv * 6.375) + 128, 0, 255) / 255.0 - 0.5).astype(np.float32)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out[0] == -0.5 and out[1] == pytest.approx(-0.5 + 1 / 255, abs=1e-6) and out[3] == pytest.approx(128 / 255 - 0.5, abs=1e-6)
    assert out[-2] == out[-1] == pytest.approx(0.5, abs=1e-6)  # saturates at +-20 px
    maps = np.zeros((1, 2, 3, 2), np.float32)
    maps[0, 0, 0] = (2.0, 1.0)
    flipped = cd.flip_mv(maps)
    np.testing.assert_array_equal(flipped[0, 0, 2], [-2.0, 1.0])  # mirrored column, dx negated
    dense = cd.dense_mv(maps, 7, 10, grid=4)
    assert dense.shape == (1, 7, 10, 2) and np.all(dense[0, :4, :4] == (2.0, 1.0)) and dense[0, 4:, :].sum() == 0


def test_cmd_sample_follows_section_4_1():
    spec = ClipSpec(num_frames=16, stride=4, crop_size=112, short_side=128)
    iframes = np.arange(0, 200, 12)
    for seed in range(30):
        s = plan_cmd_sample(200, iframes, (128, 170), spec, np.random.default_rng(seed))
        start = s.clip.indices[0]
        assert len(s.clip.indices) == 16 and np.all(np.diff(s.clip.indices) == 4)
        assert s.motion.indices == tuple(range(start + 61, start + 69))  # the next 8 frames
        assert s.motion.crop == s.clip.crop and s.motion.flip == s.clip.flip  # shared by the positive pair
        assert start <= s.iframe < start + 61 and s.iframe % 12 == 0
        assert len(s.negatives) == 3
        for neg in s.negatives:
            assert len(neg.indices) == 8 and max(neg.indices) < 200
            assert abs(neg.indices[0] - s.motion.indices[0]) >= 8  # no overlap with the positive window
    with pytest.raises(ValueError, match="shorter than a CMD sample"):
        plan_cmd_sample(68, iframes, (128, 170), spec, np.random.default_rng(0))
    # a GOP longer than the clip: the I-frame nearest the clip's centre
    s = plan_cmd_sample(80, np.array([0]), (128, 170), spec, np.random.default_rng(0))
    assert s.iframe == 0


def test_mv_clip_shares_geometry_with_rgb_clip(square_video):
    out = cd.extract_compressed(square_video)
    spec = ClipSpec(num_frames=4, stride=1, crop_size=32, short_side=64)
    s = plan_cmd_sample(26, out["iframe_indices"], (64, 128), spec, np.random.default_rng(3))
    clip = cd.mv_clip(out["mv"], int(out["grid"]), (64, 128), s.motion, spec)
    assert clip.shape == (8, 32, 32, 2) and clip.dtype == np.float32
    assert clip.min() >= -0.5 and clip.max() <= 0.5


def test_bad_inputs_are_named(tmp_path, square_video):
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty.avi"):
        cd.extract_compressed(tmp_path / "empty.avi")
    with pytest.raises(VideoDecodeError, match="gone.avi"):
        cd.extract_compressed(tmp_path / "gone.avi")
    h264 = tmp_path / "clip.mp4"
    from datasets.sources.synthetic import write_video

    write_video(h264, square_frames(num_frames=4), 25)
    with pytest.raises(VideoDecodeError, match="clip.mp4.*mpeg4_gop12"):
        cd.extract_compressed(h264)
    truncated = tmp_path / "truncated.avi"
    data = Path(square_video).read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    try:  # a cut file either fails by name or yields fewer frames than the original
        assert len(cd.extract_compressed(truncated)["pict_types"]) < 26
    except VideoDecodeError as e:
        assert "truncated.avi" in str(e)


def test_cli_cache_and_summary(tmp_path, square_video):
    pd.DataFrame({"video_id": ["square", "gone"], "path": ["square.avi", "gone.avi"]}).to_csv(tmp_path / "m.csv", index=False)
    out = tmp_path / "cache"
    args = ["--manifest", str(tmp_path / "m.csv"), "--root", str(Path(square_video).parent), "--out-dir", str(out),
            "--summary", str(tmp_path / "_summary.json")]
    assert cd.main(args) == 0
    z = read_arrays(out / "square.arrays")
    assert z["mv"].dtype == np.float16 and list(z["iframe_indices"]) == [0, 12, 24]
    summary = json.loads((tmp_path / "_summary.json").read_text())
    assert summary["extracted"] == 1 and summary["failed"][0]["video_id"] == "gone" and summary["fps_per_core"] > 0


@pytest.mark.real_data
def test_real_mpeg4_file_is_checked_for_b_frames():
    path = REAL / "test_mpeg4_320x240_25fps.avi"
    if not path.exists():
        pytest.skip("shared real-video samples absent")
    try:
        out = cd.extract_compressed(path)
    except VideoDecodeError as e:  # the shipped encoding may hold B-frames: then it is refused by name
        assert "B-frame" in str(e) and path.name in str(e)
        return
    assert out["mv"].shape[0] == len(out["pict_types"]) and len(out["iframe_indices"]) >= 1
