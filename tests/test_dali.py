"""The DALI pipeline against the CPU pipeline: same frames, same crops, same pixels.

DALI's CPU video decoder reads VP8, VP9 and MJPEG only, so the comparison runs on a lossless VP9
transcode. With `datasets.clips.decode.RGB_CONVERSION_FLAGS`, both decoders give identical RGB frames;
what remains is the bilinear resize, whose float arithmetic differs between DALI and torch, so a
value that lands within float error of .5 may round the other way: at most 1 level, on a tiny
fraction of the pixels.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("nvidia.dali")

import datasets.clips.sampling as S  # noqa: E402
from core.errors import VideoDecodeError  # noqa: E402
from datasets.clips import decode as D  # noqa: E402
from datasets.clips.dali_decode import DaliClipLoader, DaliClipStream, dali_load_clips  # noqa: E402
from datasets.transcodes.transcode import frame_index_of, transcode, write_synthetic_video  # noqa: E402

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-videos"


@pytest.fixture(scope="module")
def vp9(tmp_path_factory):
    d = tmp_path_factory.mktemp("dali")
    src = d / "clip.avi"
    write_synthetic_video(src, num_frames=30, width=64, height=48)
    dst = d / "clip.webm"
    transcode(src, dst, "vp9")
    return dst


def assert_near_identical(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == torch.uint8
    diff = (a.int() - b.int()).abs()
    assert diff.max().item() <= 1
    assert (diff > 0).float().mean().item() < 0.01


def test_same_plans_same_pixels(vp9):
    spec = S.ClipSpec(num_frames=6, stride=4, crop_size=32, short_side=40, temporal_views=2)
    info = D.video_info(vp9)
    hw = S.resized_hw(info["height"], info["width"], spec.short_side)
    rng = np.random.default_rng(0)
    plans = [S.plan_train_clip(info["num_frames"], hw, spec, rng) for _ in range(4)]
    plans += S.plan_test_clips(info["num_frames"], hw, spec)  # 2 x 3 views
    assert {p.flip for p in plans} == {True, False}
    dali = dali_load_clips([vp9] * len(plans), plans, spec, device="cpu", batch_size=4)
    assert len(dali) == len(plans)
    for plan, clip in zip(plans, dali):
        cpu = D.load_clip(vp9, plan, spec)
        assert_near_identical(clip, cpu)


def test_jittered_plans_same_pixels(vp9):
    """A plan carrying its own short side (HCML D.2's scale jitter) is resized to it by both pipelines."""
    spec = S.ClipSpec(num_frames=4, stride=2, crop_size=32, short_side=40)
    info = D.video_info(vp9)
    rng = np.random.default_rng(1)
    plans = []
    for _ in range(4):
        side = S.random_short_side([40, 50], spec, rng)
        hw = S.resized_hw(info["height"], info["width"], side)
        plans.append(S.plan_train_clip(info["num_frames"], hw, spec, rng, short_side=side))
    assert len({p.short_side for p in plans}) > 1
    for plan, clip in zip(plans, dali_load_clips([vp9] * len(plans), plans, spec, device="cpu", batch_size=2)):
        assert_near_identical(clip, D.load_clip(vp9, plan, spec))


def test_decoded_frames_identical_and_indexed(vp9):
    # no resize (short side = frame height), full-height crop: raw decoder output, THWC
    spec = S.ClipSpec(num_frames=5, stride=1, crop_size=48, short_side=48)
    plan = S.ClipPlan(indices=(29, 3, 3, 0, 17), crop=(0, 8), flip=False)
    (clip,) = dali_load_clips([vp9], [plan], spec, layout="THWC")
    assert clip.shape == (5, 48, 48, 3)
    assert [frame_index_of(f) for f in clip.numpy()] == list(plan.indices)
    cpu = D.decode_frames(vp9, plan.indices)[:, :, 8:56]
    np.testing.assert_array_equal(clip.numpy(), cpu)


def test_loader_reused_across_batches(vp9):
    spec = S.ClipSpec(num_frames=4, stride=2, crop_size=24, short_side=32)
    loader = DaliClipLoader(spec, batch_size=2)
    plans = [S.ClipPlan(tuple(range(s, s + 8, 2)), (4, 4), bool(s % 2)) for s in range(5)]
    clips = loader.load([vp9] * 5, plans)  # batches of 2, 2, 1
    assert [c.shape for c in clips] == [(3, 4, 24, 24)] * 5
    for plan, clip in zip(plans, clips):
        assert_near_identical(clip, D.load_clip(vp9, plan, spec))


def test_batched_stream_gives_the_per_clip_clips(vp9, tmp_path):
    """DALI's own batched pipeline (parallel external source in spawned workers, 2 batches
    prefetched) yields, in request order, the clips the per-clip path gives, to the bit; the last,
    partial batch included; and the CPU decoder's clips to within the resize's rounding."""
    other = tmp_path / "other.webm"
    write_synthetic_video(tmp_path / "other.avi", num_frames=24, width=80, height=48)
    transcode(tmp_path / "other.avi", other, "vp9")
    spec = S.ClipSpec(num_frames=5, stride=3, crop_size=32, short_side=40)
    rng = np.random.default_rng(1)
    paths, plans = [], []
    for k in range(7):
        path = [vp9, other][k % 2]
        info = D.video_info(path)
        paths.append(path)
        plans.append(S.plan_train_clip(info["num_frames"], S.resized_hw(info["height"], info["width"], 40), spec, rng))
    stream = DaliClipStream(spec, device="cpu", batch_size=3, py_workers=2, prefetch=2)
    batches = list(stream.batches(paths, plans))
    assert [tuple(b.shape) for b in batches] == [(3, 3, 5, 32, 32), (3, 3, 5, 32, 32), (1, 3, 5, 32, 32)]
    clips = torch.cat(batches)
    single = DaliClipLoader(spec, batch_size=1).load(paths, plans)
    for path, plan, clip, one in zip(paths, plans, clips, single):
        assert torch.equal(clip, one)
        assert_near_identical(clip, D.load_clip(path, plan, spec))
    with pytest.raises(VideoDecodeError, match="gone.webm: video file not found"):
        next(stream.batches([tmp_path / "gone.webm"], plans[:1]))
    with pytest.raises(ValueError, match="prefetch must be at least 2"):
        DaliClipStream(spec, prefetch=1)


SPEC = S.ClipSpec(num_frames=2, stride=1, crop_size=32, short_side=48)


def test_missing_and_empty_files(vp9, tmp_path):
    plan = S.ClipPlan((0, 1), (0, 0))
    with pytest.raises(VideoDecodeError, match="nope.webm.*not found"):
        dali_load_clips([vp9, tmp_path / "nope.webm"], [plan, plan], SPEC)
    empty = tmp_path / "empty.webm"
    empty.touch()
    with pytest.raises(VideoDecodeError, match="empty.webm.*empty"):
        dali_load_clips([empty], [plan], SPEC)


def test_too_few_frames_names_the_file(vp9):
    bad = S.ClipPlan((0, 30), (0, 0))  # the video has frames 0..29
    good = S.ClipPlan((0, 1), (0, 0))
    with pytest.raises(VideoDecodeError, match=r"clip.webm: DALI could not decode frames \[0, 30\]"):
        dali_load_clips([vp9, vp9], [good, bad], SPEC, batch_size=2)


def test_truncated_file_names_the_file(vp9, tmp_path):
    cut = tmp_path / "cut.webm"
    data = vp9.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    plan = S.ClipPlan((0, 29), (0, 0))
    with pytest.raises(VideoDecodeError, match="cut.webm"):
        dali_load_clips([cut], [plan], SPEC)


@pytest.mark.real_data
@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real-videos absent")
def test_real_video_vp9_transcode_matches(tmp_path):
    dst = tmp_path / "demo.webm"
    transcode(REAL / "spatiotemporal_h264_340x256_6fps.mp4", dst, "vp9")
    spec = S.ClipSpec(num_frames=4, stride=8, crop_size=112, short_side=128, temporal_views=2)
    plans = S.plan_test_clips(57, S.resized_hw(256, 340, 128), spec)
    clips = dali_load_clips([dst] * len(plans), plans, spec, batch_size=6)
    for plan, clip in zip(plans, clips):
        assert_near_identical(clip, D.load_clip(dst, plan, spec, use_cache=True))


class TwoClipSet(torch.utils.data.Dataset):
    """A pretraining-like dataset: two DALI-decoded clips of one video, and other tensors."""

    def __init__(self, root, augment=None):
        import pandas as pd

        from datasets.clips.reader import ClipReader

        names = sorted(p.stem for p in Path(root).glob("*.mp4"))
        info = [D.video_info(Path(root) / f"{n}.mp4") for n in names]
        self.videos = pd.DataFrame({"video_id": names, "path": [f"{n}.mp4" for n in names],
                                    "num_frames": [i["num_frames"] for i in info], "height": [i["height"] for i in info],
                                    "width": [i["width"] for i in info]})
        self.spec = S.ClipSpec(num_frames=4, stride=2, crop_size=24, short_side=32)
        self.reader = ClipReader(root, self.spec, [0.5] * 3, [0.25] * 3, video_dir=root, decoder="dali", augment=augment)
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return 3 * len(self.videos)

    def __getitem__(self, index):
        row = self.videos.iloc[index % len(self.videos)]
        rng = np.random.default_rng([7, self.epoch, index])
        torch.manual_seed(int(rng.integers(2**31)))
        hw = self.reader.frame_hw(row)
        q = self.reader(row, S.plan_train_clip(int(row.num_frames), hw, self.spec, rng))
        k = self.reader(row, S.plan_train_clip(int(row.num_frames), hw, self.spec, rng))
        return {"q": q, "k": k, "video_index": torch.tensor(index), "weight": torch.rand(3),
                "fallback": torch.tensor(bool(index % 2))}


@pytest.fixture(scope="module")
def vp9_folder(vp9, tmp_path_factory):
    d = tmp_path_factory.mktemp("dali_set")
    (d / "a.mp4").write_bytes(vp9.read_bytes())  # the reader names transcodes <video_id>.mp4; demuxers probe content
    write_synthetic_video(d / "b.avi", num_frames=20, width=80, height=48)
    transcode(d / "b.avi", d / "b.webm", "vp9")
    (d / "b.mp4").write_bytes((d / "b.webm").read_bytes())
    return d


def test_training_batches_from_the_batched_pipeline_are_the_per_clip_batches(vp9_folder):
    """DaliBatches (the dataset's own __getitem__ in DALI's workers, clips decoded per batch) gives
    the DataLoader's batches of the per-clip DALI path: same order, same clips to the bit without
    augmentation, the other tensors untouched, a last partial batch kept or dropped."""
    from datasets.clips.dali_feed import DaliBatches

    data = TwoClipSet(vp9_folder)
    order = [4, 0, 5, 2, 1]
    data.set_epoch(3)
    expected = list(torch.utils.data.DataLoader(data, batch_size=2, sampler=order))
    got = list(DaliBatches(data, order, epoch=3, batch_size=2, drop_last=False, py_workers=2, prefetch=2))
    assert [len(b["q"]) for b in got] == [2, 2, 1]
    for e, g in zip(expected, got):
        assert set(e) == set(g)
        for key in e:
            assert g[key].dtype == e[key].dtype and torch.equal(g[key], e[key]), key
    assert len(list(DaliBatches(data, order, epoch=3, batch_size=2, drop_last=True))) == 2


def test_batched_pipeline_augments_each_clip_from_its_own_seed(vp9_folder):
    """With augmentation, a clip is augmented from the seed its sample drew for it: the same batches
    on every run, and each clip is the reader's `finish` of the decoded clip under that seed."""
    from datasets.clips.dali_feed import DaliBatches, deferred_sample

    augment = {"color_strength": 0.5, "color_p": 1.0, "grayscale_p": 0.5, "blur_p": 0.5}
    data = TwoClipSet(vp9_folder, augment)
    first = list(DaliBatches(data, [1, 3], epoch=0, batch_size=2))
    second = list(DaliBatches(data, [1, 3], epoch=0, batch_size=2))
    assert all(torch.equal(a[k], b[k]) for a, b in zip(first, second) for k in a)
    data.set_epoch(0)
    _, log = deferred_sample(data, 3)
    decoded = DaliClipLoader(data.spec, batch_size=1).load([log[1].path], [log[1].plan])[0]
    assert torch.equal(first[0]["k"][1], data.reader.finish(decoded, log[1].seed))
    assert not torch.equal(first[0]["k"][1], data.reader.finish(decoded, log[1].seed + 1))


def test_the_engine_takes_dali_batches_from_the_batched_pipeline(vp9_folder):
    """`decoder: dali` in a config: the engine's epoch loader is the batched pipeline, in the
    sampler's order, giving the batches its DataLoader gives with per-clip decoding."""
    from datasets.clips.dali_feed import DaliBatches
    from methods.training.engine import Distributed, RunSettings, epoch_loader

    data = TwoClipSet(vp9_folder)
    cfg = {"batch_size": 2, "optimizer": {}, "seed": 5, "decoder": "dali", "num_workers": 1}
    batched = RunSettings.from_config(cfg, epochs=2)
    assert batched.dali_batches and batched.dali_prefetch == 2
    per_clip = RunSettings.from_config(cfg, epochs=2, dali_batches=False, num_workers=0)
    _, loader = epoch_loader(data, batched, 1, 2, Distributed(), torch.device("cpu"))
    _, reference = epoch_loader(data, per_clip, 1, 2, Distributed(), torch.device("cpu"))
    assert isinstance(loader, DaliBatches) and len(loader) == len(data) // 2
    got, expected = list(loader), list(reference)
    assert len(got) == len(expected) == 3
    assert all(torch.equal(g[k], e[k]) for g, e in zip(got, expected) for k in e)


def test_mcl_samples_from_the_batched_pipeline(tiny_k400, tmp_path):
    """A method's own dataset through the batched pipeline: MCL's TA + SA tubelets and motion maps
    (memory-mapped TV-L1 cache, pickled into the workers without its kept maps), the clips decoded
    from VP9 transcodes, equal to the DataLoader's per-clip DALI samples (augmentation off)."""
    import pandas as pd

    from core.config import method_config
    from datasets.clips.dali_feed import DaliBatches
    from datasets.motion.cache import cache_path
    from datasets.motion.tvl1 import extract_video
    from methods.mcl.data import MCLPretrainData

    base, root = tiny_k400
    manifest = pd.read_csv(base / "k400.csv", dtype={"video_id": str}).head(4)
    videos, cache = tmp_path / "vp9", tmp_path / "tvl1"
    for row in manifest.itertuples():
        transcode(root / row.path, videos / f"{row.video_id}.webm", "vp9")
        (videos / f"{row.video_id}.mp4").write_bytes((videos / f"{row.video_id}.webm").read_bytes())
        extract_video(root / row.path, cache_path(cache, row.video_id), store_flow=False)
    cfg = {**method_config("mcl", "smoke", "ta_sa_mal"), "decoder": "dali", "augment": None}
    data = MCLPretrainData(manifest, root, cache, cfg, seed=3, video_dir=videos)
    data.set_epoch(1)
    expected = list(torch.utils.data.DataLoader(data, batch_size=2, sampler=[2, 0, 3, 1]))
    got = list(DaliBatches(data, [2, 0, 3, 1], epoch=1, batch_size=2, py_workers=1))
    assert [set(b) for b in got] == [{"q", "k", "motion", "video_index"}] * 2
    assert all(torch.equal(g[k], e[k]) for g, e in zip(got, expected) for k in e)
