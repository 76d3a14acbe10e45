"""MaCLR's motion inputs: flow edges, frame differences, the t -> t-5 pairing, flow estimators."""
import numpy as np
import pytest
import torch

from core.errors import MissingInputError
from datasets.motion.flow import FLOW_OFFSET, FarnebackFlow, RaftThingsFlow, compute_motion, flow_edges, flow_to_previous, frame_difference, raft_flow


def test_flow_edges_on_a_flow_with_known_edges():
    """Flow magnitude 0 on the left, 0.5 px on the right: the Sobel gradient is 4 x 0.5 = 2 on
    the two columns at the step and 0 elsewhere."""
    flow = np.zeros((1, 2, 6, 8), dtype=np.float32)
    flow[0, 0, :, 4:] = 0.3
    flow[0, 1, :, 4:] = 0.4  # |(0.3, 0.4)| = 0.5
    edges = flow_edges(flow)
    assert edges.shape == (1, 1, 6, 8)
    assert np.allclose(edges[0, 0, :, 3:5], 2.0)
    assert np.allclose(edges[0, 0, :, :3], 0.0) and np.allclose(edges[0, 0, :, 5:], 0.0)


def test_flow_edges_are_clamped_to_0_10():
    flow = np.zeros((1, 2, 5, 5), dtype=np.float32)
    flow[0, 0, :, 3:] = 100.0
    edges = flow_edges(flow)
    assert edges.max() == pytest.approx(10.0) and edges.min() >= 0.0


def test_flow_is_taken_from_t_to_t_minus_5():
    pairs = []

    def recorder(source, target):
        pairs.extend(zip(source[:, 0, 0, 0].tolist(), target[:, 0, 0, 0].tolist()))
        return np.zeros((len(source), 2) + source.shape[1:3], dtype=np.float32)

    frames = np.arange(8, dtype=np.uint8)[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3)
    flow_to_previous(frames, recorder)
    assert FLOW_OFFSET == 5
    assert pairs == [(t, max(t - 5, 0)) for t in range(8)]


def test_frame_difference_of_consecutive_frames():
    frames = np.zeros((3, 2, 2, 3), dtype=np.uint8)
    frames[1] = 255
    diff = frame_difference(frames)
    assert diff.shape == (3, 3, 2, 2)
    assert np.allclose(diff[0], 0) and np.allclose(diff[1], 1.0) and np.allclose(diff[2], -1.0)


def moving_square(shift: int, frames: int = 8, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    texture = (rng.uniform(0, 255, (12, 12, 3))).astype(np.uint8)
    video = np.full((frames, size, size, 3), 90, dtype=np.uint8)
    for t in range(frames):
        video[t, 18:30, 4 + shift * t : 16 + shift * t] = texture
    return video


def test_farneback_flow_points_back_to_the_previous_frame():
    """A square moving right by 1 px per frame: flow from t to t-5 points left by about 5 px."""
    video = moving_square(shift=1)
    flow = flow_to_previous(video, FarnebackFlow())
    u = flow[7, 0, 20:28, 15:19]  # inside the square at t = 7 (columns 11-22)
    assert np.median(u) == pytest.approx(-5.0, abs=1.0)
    edge = compute_motion(video, "edge", FarnebackFlow())
    assert edge.shape == (8, 1, 48, 48) and edge.max() > 1.0


def test_raft_without_weights_fails_with_instructions(tmp_path):
    with pytest.raises(MissingInputError, match="raft_weights"):
        RaftThingsFlow(weights_path=str(tmp_path / "absent.pth"))


def test_raft_runs_on_frames_whose_size_is_not_a_multiple_of_8():
    from torchvision.models.optical_flow import raft_small

    model = raft_small(weights=None).eval()  # random weights: a shape check of the RAFT wrapper
    frames = np.random.default_rng(0).integers(0, 255, (2, 36, 44, 3), dtype=np.uint8)
    with torch.no_grad():
        flow = raft_flow(model, frames, frames[::-1].copy(), "cpu", num_flow_updates=2)
    assert flow.shape == (2, 2, 36, 44) and np.isfinite(flow).all()


def test_build_cache_outputs_resume_and_stops_on_an_undecodable_video(tmp_path):
    """build_cache (on datasets.motion.cache's loop): <video_id>.arrays/ with motion float16 (N, C, H, W)
    and frame_mean float32 (N,), its summary keys; a second run reuses every cache file; a video
    that cannot be decoded stops the run."""
    from core.errors import SuiteError
    from datasets.sources.fixtures import make_kinetics400
    from datasets.manifests.manifest import build_manifest, entries_for
    from datasets.motion.cache import read_arrays
    from datasets.motion.flow import build_cache

    root = tmp_path / "Kinetics400"
    make_kinetics400(root, {"frames": 12, "height": 40, "width": 48, "fps": 10, "num_classes": 2,
                            "train_per_class": 1, "val_per_class": 1}, seed=0)
    manifest, _ = build_manifest(entries_for("k400", root), root, min_frames=8, verify=False)
    summary = build_cache(manifest, root, "diff", tmp_path / "diff", 32, None)
    assert set(summary) == {"kind", "layout", "videos", "computed_now", "reused", "frames_per_second", "flow_estimator", "short_side"}
    assert summary["computed_now"] == len(manifest) and summary["reused"] == 0 and summary["frames_per_second"] > 0
    for vid in manifest["video_id"]:
        z = read_arrays(tmp_path / "diff" / f"{vid}.arrays")
        assert set(z) == {"motion", "frame_mean"}
        assert z["motion"].dtype == np.float16 and z["motion"].shape[1] == 3 and min(z["motion"].shape[2:]) == 32
        assert z["frame_mean"].dtype == np.float32 and z["frame_mean"].shape == (z["motion"].shape[0],)
    again = build_cache(manifest, root, "diff", tmp_path / "diff", 32, None)
    assert again["computed_now"] == 0 and again["reused"] == len(manifest) and again["frames_per_second"] is None
    broken = manifest.head(1).assign(video_id="broken")
    (root / broken["path"].iloc[0]).write_bytes(b"not a video")
    with pytest.raises(SuiteError):
        build_cache(broken, root, "diff", tmp_path / "diff", 32, None)
    assert not (tmp_path / "diff" / "broken.arrays").exists()


def test_cache_folders_are_written_whole_and_read_as_maps(tmp_path):
    """A video's cache is one folder of .npy files, renamed into place whole (a failed write leaves
    nothing under its name, a rewrite replaces it), read back memory-mapped and read-only."""
    from core.errors import CorruptInputError
    from core.io import atomic_dir
    from datasets.motion.cache import cache_path, read_arrays, write_arrays

    path = cache_path(tmp_path, "v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(path) as tmp:
            np.save(tmp / "motion.npy", np.zeros(3))
            raise RuntimeError("extractor failed")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary
    write_arrays(path, motion=np.arange(24, dtype=np.float16).reshape(2, 3, 4), grid=np.int32(4))
    write_arrays(path, motion=np.ones((5, 3, 4), np.float16), grid=np.int32(8))  # replaces the first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1.arrays"]
    data = read_arrays(path)
    assert set(data) == {"motion", "grid"} and int(data["grid"]) == 8
    assert isinstance(data["motion"], np.memmap) and data["motion"].shape == (5, 3, 4)
    assert not data["motion"].flags.writeable
    with pytest.raises(CorruptInputError, match=r"video v1: motion cache .*v1\.arrays has no array `frame_mean`"):
        read_arrays(path, ("motion", "frame_mean"))
    with pytest.raises(MissingInputError, match=r"video v2: no motion cache .*v2\.arrays"):
        read_arrays(cache_path(tmp_path, "v2"), ("motion",))
