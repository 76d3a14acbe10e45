"""Seeking clip decode (`datasets.clips.decode.decode_frames`): bit-identical to a sequential decode
of the whole video, for every codec the suite reads, variable frame rates, streams whose first
timestamp is not 0, and clips at the start, the middle and the very end of a video."""
from pathlib import Path

import av
import numpy as np
import pytest

from datasets.clips import decode as D
from datasets.transcodes.transcode import write_synthetic_video, write_vfr_video

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-videos"
N = 60
X264 = {"crf": "18", "preset": "veryfast", "threads": "1", "g": "12", "keyint_min": "12", "bf": "2"}


def sequential(path: Path) -> np.ndarray:
    """Every frame, decoded from the start: the reference the seeking decode must equal."""
    with av.open(str(path)) as container:
        return np.stack([D.to_rgb(f) for f in container.decode(video=0)])


def shifted_copy(src: Path, dst: Path, offset_s: float) -> None:
    """Remux `src` with every timestamp moved `offset_s` seconds later (a first pts that is not 0)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        istream = inp.streams.video[0]
        ostream = out.add_stream_from_template(istream)
        shift = int(offset_s / istream.time_base)
        for packet in inp.demux(istream):
            if packet.size == 0:
                continue
            packet.pts = None if packet.pts is None else packet.pts + shift
            packet.dts = None if packet.dts is None else packet.dts + shift
            packet.stream = ostream
            out.mux(packet)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    """name -> path of small videos with a keyframe every 12 frames, one per decoding case."""
    root = tmp_path_factory.mktemp("seek")
    videos = {
        "mpeg4.avi": lambda p: write_synthetic_video(p, N, options={"flags": "+qscale", "global_quality": "236", "g": "12"}),
        "h264_bframes.mp4": lambda p: write_synthetic_video(p, N, codec="libx264", options=X264),
        "vp9.webm": lambda p: write_synthetic_video(p, N, codec="libvpx-vp9", options={"g": "12", "lossless": "1", "threads": "1"}),
        "vfr_h264.mp4": lambda p: write_vfr_video(p, N, options=X264),
        "vfr_h264.mkv": lambda p: write_vfr_video(p, N, options=X264, container="matroska"),
        "vfr_mpeg4.avi": lambda p: write_vfr_video(p, N, codec="mpeg4", options={"g": "12"}),
    }
    paths = {}
    for name, write in videos.items():
        write(root / name)
        paths[name] = root / name
    shifted_copy(paths["h264_bframes.mp4"], root / "h264_offset.mkv", 3.0)
    paths["h264_offset.mkv"] = root / "h264_offset.mkv"
    return paths


def assert_clips_match(path: Path, ref: np.ndarray, clips) -> None:
    for idx in clips:
        got = D.decode_frames(path, idx)
        assert got.shape == (len(idx),) + ref.shape[1:]
        bad = [i for i, frame in zip(idx, got) if not np.array_equal(frame, ref[i])]
        assert not bad, f"{path.name}: frames {bad} differ from the sequential decode"


def clips_for(n: int, key_ranks) -> list[list[int]]:
    """Clips at the start, middle and very end, a frame on and just before each keyframe, and an
    unordered clip with repeats."""
    clips = [list(range(0, 16, 2)), list(range(n // 2 - 8, n // 2 + 8, 2)), list(range(n - 15, n, 2)), [n - 1]]
    for k in key_ranks:
        clips += [[k], [max(k - 1, 0)], [k, k + 1 if k + 1 < n else k]]
    clips.append([n - 2, n // 2, n // 2, n - 2, n // 3])
    return clips


def key_ranks(path: Path) -> list[int]:
    index = D._stream_index(path)
    return np.searchsorted(index.pts, index.key_pts).tolist()


@pytest.mark.parametrize("name", ["mpeg4.avi", "h264_bframes.mp4", "vp9.webm", "vfr_h264.mp4", "vfr_h264.mkv",
                                  "vfr_mpeg4.avi", "h264_offset.mkv"])
def test_seeking_decode_equals_sequential(fixtures, name):
    path = fixtures[name]
    ref = sequential(path)
    assert len(ref) == N
    index = D._stream_index(path)
    assert index.seekable and len(index.key_pts) >= 4, "the fixture must exercise the seeking path"
    assert_clips_match(path, ref, clips_for(N, key_ranks(path)))
    # every frame on its own, each decoded after a seek to its keyframe
    assert_clips_match(path, ref, [[i] for i in range(N)])
    # the keyframe path itself served the clips (read from the start within the first GOP, after
    # a seek past it), not the sequential fallback
    for idx in ([0, 2], [N // 2, N // 2 + 2], [N - 3, N - 1]):
        kept = D._decode_seeking(path, np.asarray(idx))
        assert kept is not None and all(np.array_equal(kept[i], ref[i]) for i in idx)
    if name == "h264_offset.mkv":
        assert index.pts[0] > 0


def test_packed_bframes_in_avi_decode_sequentially(tmp_path):
    # MPEG-4 Part 2 B-frames in AVI: the decoder re-times the frames, so timestamps cannot name them
    path = tmp_path / "mpeg4_bframes.avi"
    write_synthetic_video(path, N, options={"flags": "+qscale", "global_quality": "236", "g": "12", "bf": "2"})
    assert not D._stream_index(path).seekable
    assert D._decode_seeking(path, np.asarray([N - 1])) is None
    assert_clips_match(path, sequential(path), clips_for(N, [12, 24, 36, 48]))


def test_seeking_decode_reports_short_video(fixtures):
    from core.errors import VideoDecodeError

    with pytest.raises(VideoDecodeError, match=rf"h264_bframes.mp4.*frame {N} .* only {N} frames"):
        D.decode_frames(fixtures["h264_bframes.mp4"], [N - 2, N])


@pytest.mark.real_data
@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real-videos absent")
def test_seeking_decode_equals_sequential_on_real_videos():
    videos = sorted(REAL.glob("*.*"))
    assert videos
    for path in videos:
        ref = sequential(path)
        assert_clips_match(path, ref, clips_for(len(ref), key_ranks(path)))
