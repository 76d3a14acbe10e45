"""CPU decoding with PyAV: right frames, right transforms, clear errors naming the file."""
from pathlib import Path

import numpy as np
import pytest
import torch

import datasets.clips.sampling as S
from core.errors import VideoDecodeError
from datasets.clips import decode as D
from datasets.transcodes.transcode import PROFILES, frame_index_of, transcode, write_synthetic_video

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-videos"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("videos") / "clip.avi"
    frames = write_synthetic_video(path, num_frames=30, width=64, height=48, fps=25)
    return path, frames


def test_video_info(video):
    path, _ = video
    info = D.video_info(path)
    assert info == {"num_frames": 30, "fps": 25.0, "width": 64, "height": 48,
                    "duration": pytest.approx(1.2), "codec": "mpeg4"}
    assert D.video_info(path, exact=True)["num_frames"] == 30


def test_video_info_counts_frames_without_container_count(tmp_path):
    path = tmp_path / "v.webm"
    write_synthetic_video(path, num_frames=17, codec="libvpx-vp9")
    assert D.video_info(path)["num_frames"] == 17


def test_decode_frames_returns_requested_frames(video):
    path, ref = video
    idx = [5, 0, 29, 5, 12]  # any order, repeats
    frames = D.decode_frames(path, idx)
    assert frames.shape == (5, 48, 64, 3) and frames.dtype == np.uint8
    assert [frame_index_of(f) for f in frames] == idx
    # MPEG-4 at quantiser 2 on flat content: a few levels of codec noise at most
    assert np.abs(frames.astype(int) - ref[idx]).max() <= 8
    np.testing.assert_array_equal(D.decode_frames(path, idx, use_cache=True), frames)


def test_decode_all_cache_is_bounded(video, tmp_path):
    path, _ = video
    try:
        D.set_cache_limit(64 * 48 * 3 * 30)  # exactly one video
        a = D.decode_all(path)
        assert D.decode_all(path) is a  # cached
        other = tmp_path / "other.avi"
        write_synthetic_video(other, num_frames=30)
        D.decode_all(other)  # evicts the first
        assert D._CACHE._bytes <= D._CACHE.max_bytes
        assert D.decode_all(path) is not a
        assert not a.flags.writeable
    finally:
        D.set_cache_limit(D.DEFAULT_CACHE_BYTES)



def test_resident_cache_decodes_a_video_once_and_serves_the_same_frames(video, monkeypatch):
    """decode_cache: {resident: true}: a short clip (far less than half the video, which the default
    policy decodes alone) puts the whole video in memory; later clips come from it, bit-identical."""
    path, _ = video
    short_clip = [3, 5, 7]
    expected = D.decode_frames(path, short_clip)
    try:
        D.configure_cache(None)
        D.decode_frames(path, short_clip, use_cache=True)
        assert D._CACHE.get(D._file_key(path)) is None  # default policy: a short clip is decoded alone
        D.configure_cache({"resident": True, "max_mb": 1})
        np.testing.assert_array_equal(D.decode_frames(path, short_clip, use_cache=True), expected)
        assert D._CACHE.get(D._file_key(path)).shape == (30, 48, 64, 3)
        monkeypatch.setattr(D, "_decode_seeking", lambda *a: pytest.fail("decoded again"))
        monkeypatch.setattr(D, "_open", lambda *a: pytest.fail("opened again"))
        np.testing.assert_array_equal(D.decode_frames(path, [20, 28], use_cache=True), D.decode_all(path)[[20, 28]])
        with pytest.raises(ValueError, match="unknown keys"):
            D.configure_cache({"resident": True, "size": 3})
    finally:
        D.configure_cache(None)
    assert not D._CACHE.resident and D._CACHE.max_bytes == D.DEFAULT_CACHE_BYTES

def test_load_clip_resize_crop_flip(video):
    path, _ = video
    spec = S.ClipSpec(num_frames=4, stride=3, crop_size=24, short_side=32)
    plan = S.ClipPlan(indices=(2, 5, 8, 11), crop=(4, 10), flip=True)
    clip = D.load_clip(path, plan, spec)
    assert clip.shape == (3, 4, 24, 24) and clip.dtype == torch.uint8
    frames = D.decode_frames(path, plan.indices)
    # reference computed independently: bilinear, half-pixel centres, no antialias
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(32, 42), mode="bilinear", align_corners=False)
    ref = x.round().clamp(0, 255).byte()[..., 4:28, 10:34].flip(-1).permute(1, 0, 2, 3)
    assert torch.equal(clip, ref)
    # the moving square (row 8..15 at 48 px -> rows ~5..10 at 32 px) is in the crop of frame 2
    unflipped = D.load_clip(path, S.ClipPlan(plan.indices, plan.crop, False), spec)
    assert torch.equal(unflipped.flip(-1), clip)


def test_load_clip_with_sampled_plans(video):
    path, _ = video
    spec = S.ClipSpec(num_frames=8, stride=2, crop_size=32, short_side=32, temporal_views=2)
    info = D.video_info(path)
    hw = S.resized_hw(info["height"], info["width"], spec.short_side)
    plan = S.plan_train_clip(info["num_frames"], hw, spec, np.random.default_rng(0))
    clip = D.load_clip(path, plan, spec)
    assert clip.shape == (3, 8, 32, 32)
    plans = S.plan_test_clips(info["num_frames"], hw, spec)
    assert len(plans) == 6
    assert all(D.load_clip(path, p, spec, use_cache=True).shape == (3, 8, 32, 32) for p in plans)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.avi"
    with pytest.raises(VideoDecodeError, match="nope.avi.*not found"):
        D.decode_frames(path, [0])
    with pytest.raises(VideoDecodeError, match="nope.avi"):
        D.video_info(path)


def test_zero_length_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(VideoDecodeError, match="empty.mp4.*empty"):
        D.decode_frames(path, [0])
    with pytest.raises(VideoDecodeError, match="empty.mp4"):
        D.video_info(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.avi"
    path.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoDecodeError, match="garbage.avi"):
        D.decode_frames(path, [0])


def test_truncated_file(video, tmp_path):
    src, _ = video
    path = tmp_path / "truncated.avi"
    data = src.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match="truncated.avi"):
        D.decode_frames(path, [29])
    with pytest.raises(VideoDecodeError, match="truncated.avi"):
        D.load_clip(path, S.ClipPlan((0, 29), (0, 0)), S.ClipSpec(2, 29, 32, 48))


def test_too_few_frames(video):
    path, _ = video
    with pytest.raises(VideoDecodeError, match=r"clip.avi.*frame 30 .* only 30 frames"):
        D.decode_frames(path, [0, 30])
    with pytest.raises(VideoDecodeError, match="clip.avi"):
        D.decode_frames(path, [40], use_cache=True)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_transcode_keeps_frames_and_rate(video, tmp_path, profile):
    src, ref = video
    dst = tmp_path / f"out.{PROFILES[profile].ext}"
    info = transcode(src, dst, profile)
    assert info["num_frames"] == 30 and info["fps"] == 25.0
    got = D.video_info(dst)
    assert (got["num_frames"], got["fps"], got["width"], got["height"]) == (30, 25.0, 64, 48)
    assert [frame_index_of(f) for f in D.decode_all(dst)] == list(range(30))
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


def test_vp9_transcode_is_pixel_exact(video, tmp_path):
    src, _ = video
    dst = tmp_path / "out.webm"
    transcode(src, dst, "vp9")
    np.testing.assert_array_equal(D.decode_all(dst), D.decode_all(src))


def test_mpeg4_gop12_structure(video, tmp_path):
    import av
    from av.video.frame import PictureType

    dst = tmp_path / "out.avi"
    transcode(video[0], dst, "mpeg4_gop12")
    with av.open(str(dst)) as c:
        types = "".join(PictureType(f.pict_type).name for f in c.decode(video=0))
    assert types == ("I" + "P" * 11) * 2 + "I" + "P" * 5


def test_transcode_bad_source(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(VideoDecodeError, match="bad.avi"):
        transcode(bad, tmp_path / "out.webm", "vp9")
    assert not (tmp_path / "out.webm").exists()


@pytest.mark.real_data
@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real-videos absent")
def test_real_videos_info_and_decode():
    expected = {
        "test_mpeg4_320x240_25fps.avi": (164, 25.0, 320, 240, "mpeg4"),
        "demo_h264_340x256_28fps.mp4": (280, 28.0, 340, 256, "h264"),
        "structuralize_h264_426x240_29.97fps.mp4": (300, 30000 / 1001, 426, 240, "h264"),
        "spatiotemporal_h264_340x256_6fps.mp4": (57, 6.0, 340, 256, "h264"),
    }
    spec = S.ClipSpec(num_frames=8, stride=4, crop_size=112, short_side=128, temporal_views=2)
    for name, (n, fps, w, h, codec) in expected.items():
        info = D.video_info(REAL / name)
        assert (info["num_frames"], info["width"], info["height"], info["codec"]) == (n, w, h, codec)
        assert info["fps"] == pytest.approx(fps)
        plans = S.plan_test_clips(n, S.resized_hw(h, w, 128), spec)
        clip = D.load_clip(REAL / name, plans[-1], spec)  # the last frames of the video
        assert clip.shape == (3, 8, 112, 112)


def test_transcode_manifest_resumes(tmp_path):
    import json

    from datasets.transcodes.transcode import main

    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    for vid in ("v1", "v2"):
        write_synthetic_video(root / "a" / f"{vid}.avi", num_frames=12)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "video_id,path,label,label_name,split,num_frames,fps,width,height,duration\n"
        "v1,a/v1.avi,0,x,train,12,25,64,48,0.48\n"
        "v2,a/v2.avi,1,y,test,12,25,64,48,0.48\n"
    )
    out, summary = tmp_path / "out", tmp_path / "out" / "_summary.json"
    args = ["--manifest", str(manifest), "--root", str(root), "--codec", "mpeg4_gop12",
            "--out-dir", str(out), "--summary", str(summary)]
    assert main(args) == 0
    first = json.loads(summary.read_text())
    assert (first["transcoded"], first["skipped_existing"]) == (2, 0)
    assert first["frames_transcoded"] == 24 and first["frames_per_second"] > 0
    assert sorted(p.name for p in out.glob("*.avi")) == ["v1.avi", "v2.avi"]
    (out / "v2.avi").unlink()
    main(args)
    second = json.loads(summary.read_text())
    assert (second["transcoded"], second["skipped_existing"]) == (1, 1)


def test_transcode_manifest_names_a_bad_video(tmp_path):
    from datasets.transcodes.transcode import main

    (tmp_path / "bad.avi").write_bytes(b"\x00" * 100)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "video_id,path,label,label_name,split,num_frames,fps,width,height,duration\n"
        "bad,bad.avi,0,x,train,12,25,64,48,0.48\n"
    )
    with pytest.raises(VideoDecodeError, match="bad.avi"):
        main(["--manifest", str(manifest), "--root", str(tmp_path), "--codec", "vp9",
              "--out-dir", str(tmp_path / "o"), "--summary", str(tmp_path / "o" / "s.json")])
    assert not (tmp_path / "o" / "s.json").exists()


def test_scan_video_is_one_pass_of_info_timing_and_count(video, tmp_path, monkeypatch):
    import av

    from core.errors import SuiteError
    from datasets.manifests.manifest import probe

    path, _ = video
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.9)])
    webm = tmp_path / "v.webm"  # no frame count in the container
    write_synthetic_video(webm, num_frames=17, codec="libvpx-vp9")
    for p in (path, truncated, webm):
        opened = []
        real_open = av.open
        monkeypatch.setattr(av, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
        info = D.scan_video(p)
        try:
            probe(p, verify=True)
        except SuiteError as e:  # the truncated copy: fewer frames decode than declared
            assert p == truncated and str(e).startswith("truncated")
        monkeypatch.undo()
        assert len(opened) == 2, "one open for scan_video, one for probe with verify"
        assert {k: info[k] for k in D.video_info(p)} == D.video_info(p)
        assert info["decoded_frames"] == D.count_frames(p) and info["decode_error"] is None
        assert info["timing"] == D.frame_timing(p)
        assert info["declared_frames"] == (0 if p == webm else 30)
    assert D.scan_video(truncated)["decoded_frames"] < 30
    assert D.video_info(path, exact=True) == D.video_info(path)
