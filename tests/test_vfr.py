"""Variable-frame-rate input: detected in one place (datasets.clips.decode.frame_timing) and handled by
each consumer under its documented policy (manifest, TV-L1, compressed domain, transcodes)."""
import json

import numpy as np
import pandas as pd
import pytest

from core.errors import VideoDecodeError
from datasets.clips import decode as D
from datasets.manifests.manifest import build_manifest, probe
from datasets.motion import compressed as cd
from datasets.motion.cache import read_arrays
from datasets.motion import tvl1 as mm
from datasets.sources.official import Entry
from datasets.transcodes.transcode import frame_index_of, transcode, write_synthetic_video, write_vfr_video

N = 30
MEAN_FPS = (N - 1) / (43 / 30)  # 30 frames alternating 1/30 s and 1/15 s: timestamps span 43/30 s


@pytest.fixture(scope="module")
def vfr(tmp_path_factory):
    root = tmp_path_factory.mktemp("vfr")
    videos = {"h264.mp4": "libx264", "mpeg4.avi": "mpeg4", "h264.mkv": "libx264"}
    for name, codec in videos.items():
        write_vfr_video(root / name, N, codec=codec, container="matroska" if name.endswith(".mkv") else None)
    write_synthetic_video(root / "cfr.avi", N, fps=25)
    return root


@pytest.mark.parametrize("name", ["h264.mp4", "mpeg4.avi", "h264.mkv"])
def test_frame_timing_detects_vfr(vfr, name):
    t = D.frame_timing(vfr / name)
    assert t.variable and t.num_frames == N
    assert t.min_interval == pytest.approx(1 / 30, abs=1e-3) and t.max_interval == pytest.approx(1 / 15, abs=1e-3)
    assert t.mean_fps == pytest.approx(MEAN_FPS, rel=1e-3)
    cfr = D.frame_timing(vfr / "cfr.avi")
    assert not cfr.variable and cfr.mean_fps == pytest.approx(25.0)


def test_frame_timing_ignores_timestamp_rounding(tmp_path):
    # 29.97 fps in Matroska's millisecond time base: intervals alternate 33 and 34 ms
    from fractions import Fraction
    path = tmp_path / "ntsc.mkv"
    write_synthetic_video(path, N, fps=Fraction(30000, 1001), codec="libx264", container="matroska",
                          options={"threads": "1"})
    t = D.frame_timing(path)
    assert t.max_interval > t.min_interval and not t.variable


@pytest.mark.parametrize("name", ["h264.mp4", "mpeg4.avi", "h264.mkv"])
def test_manifest_keeps_vfr_as_frame_sequence(vfr, name):
    # AVI counts dropped-frame slots (44 here) among its frames: not a truncation
    for verify in (True, False):
        info = probe(vfr / name, verify)
        assert info["variable_frame_rate"] and info["num_frames"] == N
        assert info["fps"] == pytest.approx(MEAN_FPS, rel=1e-3)
        assert info["duration"] == pytest.approx(N / info["fps"])
    entries = [Entry(name, name, 0, "a", "train")]
    manifest, quarantine = build_manifest(entries, vfr, min_frames=16, verify=True)
    assert quarantine.empty and manifest.loc[0, "num_frames"] == N
    # a dataset whose annotations are timestamps (AVA) quarantines it by name
    manifest, quarantine = build_manifest(entries, vfr, min_frames=16, verify=True, reject_vfr=True)
    assert manifest.empty and quarantine.loc[0, "video_id"] == name
    assert quarantine.loc[0, "reason"].startswith("variable frame rate")


def test_decoding_is_by_frame_index(vfr):
    frames = D.decode_frames(vfr / "h264.mp4", [0, 1, 2, 29])
    assert [frame_index_of(f) for f in frames] == [0, 1, 2, 29]


def test_tvl1_extraction_one_map_per_decoded_frame(vfr, tmp_path):
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"video_id": ["vfr", "cfr"], "path": ["h264.mp4", "cfr.avi"]}).to_csv(manifest, index=False)
    summary = tmp_path / "s.json"
    rc = mm.main(["--manifest", str(manifest), "--root", str(vfr), "--out-dir", str(tmp_path / "c"),
                  "--summary", str(summary), "--no-flow"])
    assert rc == 0
    s = json.loads(summary.read_text())
    assert s["extracted"] == 2 and s["failed"] == [] and s["variable_frame_rate"] == ["vfr"]
    z = read_arrays(tmp_path / "c" / "vfr.arrays")
    assert z["motion"].shape == (N, 48, 64) and z["t_motion"].shape == (N,)


@pytest.mark.parametrize("name", ["h264.mp4", "mpeg4.avi"])
def test_h264_cfr_transcode_is_constant_rate_same_frames(vfr, tmp_path, name):
    dst = tmp_path / "out.mp4"
    info = transcode(vfr / name, dst, "h264_cfr")
    assert info["variable_frame_rate"] and info["num_frames"] == N
    assert info["fps"] == pytest.approx(MEAN_FPS, rel=1e-3)  # the manifest's fps
    t = D.frame_timing(dst)
    assert not t.variable and t.num_frames == N and t.min_interval == pytest.approx(t.max_interval, abs=1e-4)
    assert D.count_frames(dst) == N
    assert [frame_index_of(f) for f in D.decode_all(dst)] == list(range(N))


def test_compressed_domain_after_mpeg4_gop12(vfr, tmp_path):
    # the source itself is refused by name (motion vectors need a constant frame interval) ...
    with pytest.raises(VideoDecodeError, match=r"mpeg4.avi: variable frame rate"):
        cd.extract_video(vfr / "mpeg4.avi", tmp_path / "x.arrays")
    # ... its mpeg4_gop12 transcode is constant-rate and extracts every frame
    avi = tmp_path / "t.avi"
    transcode(vfr / "mpeg4.avi", avi, "mpeg4_gop12")
    assert not D.frame_timing(avi).variable
    stats = cd.extract_video(avi, tmp_path / "t.arrays")
    assert stats["frames"] == N and stats["iframes"] == 3
    z = read_arrays(tmp_path / "t.arrays")
    assert z["iframe_indices"].tolist() == [0, 12, 24] and len(z["mv"]) == N
