"""CMD on the shared engine (methods/cmd/): Eq. (1)-(3) against hand-computed values, the pointwise
positives of Eq. (2), future vs current motion windows, the flip of motion-vector maps, samples
from a real MPEG-4 cache with bad inputs named, and training steps of the smoke config."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from core.config import method_config
from core.errors import MissingInputError, SuiteError, VideoDecodeError
from datasets.clips.sampling import ClipPlan, ClipSpec
from datasets.motion import compressed as cd
from datasets.motion.cache import cache_path, read_arrays, write_arrays
from methods.cmd import METHOD
from methods.cmd.data import CMDPretrainData, motion_vectors
from methods.cmd.losses import context_matching, joint_objective, motion_prediction, quantise
from methods.cmd.sampling import plan_cmd_sample
from methods.training.engine import RunSettings, train_step
from tests.test_compressed import square_frames, write_mpeg4_gop12


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_context_matching_eq1_by_hand():
    x = unit([1.0, 0.0], [0.0, 1.0])  # clip embeddings x*
    z = unit([0.8, 0.6], [0.6, 0.8])  # I-frame embeddings z*
    tau = 0.5
    # Eq. (1): -1/B sum_i log exp(cos(z_i, x_i)/tau) / sum_k exp(cos(z_k, x_i)/tau)
    l1 = -math.log(math.exp(0.8 / tau) / (math.exp(0.8 / tau) + math.exp(0.6 / tau)))
    l2 = -math.log(math.exp(0.8 / tau) / (math.exp(0.6 / tau) + math.exp(0.8 / tau)))
    assert context_matching(x, z, tau).item() == pytest.approx((l1 + l2) / 2, rel=1e-6)
    # the I-frame of another video is a negative: swapping them makes the loss larger
    assert context_matching(x, z.flip(0), tau).item() > context_matching(x, z, tau).item()


def eq2_by_loops(pred, target, tau, extra=None):
    """Eq. (2) written as the paper writes it, with loops over i, j, k, l."""
    b, n, _ = pred.shape
    keys = [target[k, l] for k in range(b) for l in range(n)] + ([] if extra is None else list(extra))
    total = 0.0
    for i in range(b):
        for j in range(n):
            q = pred[i, j]
            denominator = sum(math.exp(float(q @ key) / tau) for key in keys)
            total += -math.log(math.exp(float(q @ target[i, j]) / tau) / denominator)
    return total / (b * n)


def test_motion_prediction_eq2_by_hand():
    g = torch.Generator().manual_seed(0)
    pred = F.normalize(torch.randn(2, 3, 4, generator=g), dim=2)
    target = F.normalize(torch.randn(2, 3, 4, generator=g), dim=2)
    extra = F.normalize(torch.randn(5, 4, generator=g), dim=1)
    assert motion_prediction(pred, target, 0.1).item() == pytest.approx(eq2_by_loops(pred, target, 0.1), rel=1e-5)
    assert motion_prediction(pred, target, 0.1, extra).item() == pytest.approx(eq2_by_loops(pred, target, 0.1, extra), rel=1e-5)
    # a tiny case computed on paper: B = 1, N = 2, orthogonal targets, predictions on the targets, tau = 1
    t = unit([1.0, 0.0], [0.0, 1.0])[None]
    assert motion_prediction(t, t, 1.0).item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)


def test_pointwise_positives_are_same_video_and_same_position_only():
    b, n = 2, 3
    target = torch.eye(b * n).reshape(b, n, b * n)  # every point of every video its own direction
    tau = 0.01
    assert motion_prediction(target, target, tau).item() < 1e-6  # predicted = own point: no loss
    # the same position of another video is not a positive
    assert motion_prediction(target.flip(0), target, tau).item() > 10
    # another position of the same video is not a positive
    assert motion_prediction(target.roll(1, dims=1), target, tau).item() > 10
    # every other point is in the denominator: when point (1, 2) of the targets is a copy of point
    # (0, 0), each of those two queries has one positive and one equally close negative (log 2 each)
    dup = target.clone()
    dup[1, 2] = target[0, 0]
    assert motion_prediction(dup, dup, tau).item() == pytest.approx(2 * math.log(2) / (b * n), abs=1e-4)


def test_joint_objective_eq3():
    assert joint_objective(torch.tensor(2.0), torch.tensor(4.0), 0.5).item() == 3.0
    assert joint_objective(torch.tensor(2.0), torch.tensor(4.0), 0.2).item() == pytest.approx(0.8 * 2 + 0.2 * 4)
    assert quantise(torch.tensor([-0.5, -0.01, 0.0, 0.49, 0.5]), 4).tolist() == [0, 1, 2, 3, 3]


def test_future_and_current_motion_windows():
    spec = ClipSpec(num_frames=16, stride=4, crop_size=112, short_side=128)  # span 61
    iframes = np.arange(0, 300, 12)
    future = plan_cmd_sample(300, iframes, (128, 170), spec, np.random.default_rng(7))
    current = plan_cmd_sample(300, iframes, (128, 170), spec, np.random.default_rng(7), period="current")
    start = future.clip.indices[0]
    assert current.clip == future.clip  # same draws up to the window
    assert future.motion.indices == tuple(range(start + 61, start + 69))  # the next 8 frames, after the clip
    assert current.motion.indices == tuple(range(start + 26, start + 34))  # the 8 frames at the clip's centre
    assert current.motion.crop == current.clip.crop and current.motion.flip == current.clip.flip
    with pytest.raises(ValueError, match="period"):
        plan_cmd_sample(300, iframes, (128, 170), spec, np.random.default_rng(7), period="past")


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    """A textured square moving right by 3 px per frame, as MPEG-4 GOP 12, and its compressed cache."""
    folder = tmp_path_factory.mktemp("cmdvid")
    video = write_mpeg4_gop12(folder / "sq.avi", square_frames())
    cache = folder / "cache"
    cd.extract_video(video, cache_path(cache, "sq"))
    return folder, video, cache


def direction(maps: torch.Tensor) -> float:
    """Median dx sign of the cells that move (2, T, H, W) normalised maps; 0 normalises to 0.5/255."""
    dx = maps[0] - (128 / 255 - 0.5)
    moving = dx[dx.abs() > 0.02]
    return float(moving.median())


def test_flip_of_motion_vectors(square):
    _, _, cache = square
    data = read_arrays(cache_path(cache, "sq"))
    spec = ClipSpec(num_frames=8, stride=1, crop_size=64, short_side=64)
    plan = ClipPlan(tuple(range(13, 21)), (0, 0), False)  # P-frames after the second I-frame; the square is in the crop
    right = motion_vectors(data["mv"], 4, (64, 128), plan, spec)
    assert direction(right) > 0  # unflipped: the square moves right
    flipped = ClipPlan(plan.indices, plan.crop, True)
    assert direction(motion_vectors(data["mv"], 4, (64, 128), flipped, spec)) < 0  # default: mirrored, moves left
    authors = motion_vectors(data["mv"], 4, (64, 128), flipped, spec, flip="mirror_only")
    assert direction(authors) > 0  # the authors' flip: mirrored pixels, vectors still say right
    # both mirror the columns: the magnitudes are the same maps
    torch.testing.assert_close(authors[0].abs().flip(-1) - right[0].abs(), torch.zeros_like(right[0]), atol=0.01, rtol=0)


def smoke_cfg(variant="full_c3d"):
    return method_config("cmd", "smoke", variant)


def manifest_of(video, frames=26):
    return pd.DataFrame([{"video_id": "sq", "path": video.name, "label": 0, "label_name": "a", "split": "train",
                          "num_frames": frames, "fps": 25.0, "width": 128, "height": 64, "duration": frames / 25}])


def test_samples_from_the_cache_and_bad_inputs_named(square, tmp_path):
    folder, video, cache = square
    cfg = smoke_cfg()
    data = CMDPretrainData(manifest_of(video), folder, cache, cfg, seed=0)
    s = data[0]
    assert s["clip"].shape == (3, 8, 32, 32) and s["iframe"].shape == (3, 1, 32, 32)
    assert s["motion"].shape == (2, 8, 32, 32) and s["negatives"].shape == (3, 2, 8, 32, 32)
    again = CMDPretrainData(manifest_of(video), folder, cache, cfg, seed=0)[0]
    assert all(torch.equal(s[k], again[k]) for k in s)  # a function of (seed, epoch, index)
    with pytest.raises(MissingInputError, match="video sq: no compressed-domain cache"):
        CMDPretrainData(manifest_of(video), folder, tmp_path, cfg, seed=0)[0]
    short = {**cfg, "clip": {**cfg["clip"], "num_frames": 10}}  # span 19 + 8 motion frames > 26
    with pytest.raises(VideoDecodeError, match=r"video sq \(sq.avi\).*shorter than a CMD sample"):
        CMDPretrainData(manifest_of(video), folder, cache, short, seed=0)[0]


def random_batch(b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"clip": torch.randn(b, 3, 8, 32, 32, generator=g), "iframe": torch.randn(b, 3, 1, 32, 32, generator=g),
            "motion": torch.randn(b, 2, 8, 32, 32, generator=g) * 0.1,
            "negatives": torch.randn(b, 3, 2, 8, 32, 32, generator=g) * 0.1, "video_index": torch.arange(b)}


def test_training_steps_reach_every_network_and_lower_the_loss():
    torch.manual_seed(0)
    cfg = smoke_cfg()
    task = METHOD(cfg)
    settings = RunSettings.from_config(cfg, 1)
    optimizer = torch.optim.Adam(task.parameters(), lr=1e-3)
    batch = random_batch()
    losses = []
    for step in range(12):
        loss, terms = train_step(task, task, batch, {"main": optimizer}, list(task.parameters()), settings,
                                 torch.device("cpu"), f"step {step}")
        assert set(terms) == {"context", "motion"}
        if step == 0:
            for name in ("v_net", "i_net", "m_net", "predictor", "g_v", "g_i", "g_m1", "g_m2"):
                grads = [p.grad for p in getattr(task, name).parameters()]
                assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), name
        losses.append(loss)
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
    encoder = task.transfer_encoder()
    assert encoder.module is task.v_net and encoder.input["kind"] == "rgb" and encoder.backbone == "c3d"


@pytest.mark.parametrize("variant", ["mp_current_c3d", "mp_cross_entropy_c3d", "mp_mse_c3d", "mp_convgru_c3d", "context_only_c3d",
                                     "motion_only_c3d", "flow_c3d", "full_c3d_authors_flip", "full_r2plus1d26", "full_r3d26"])
def test_variants_give_finite_terms(variant):
    torch.manual_seed(0)
    task = METHOD(smoke_cfg(variant))
    terms = task(random_batch(b=2))
    loss = task.total_loss(terms)
    assert torch.isfinite(loss)
    expected = {"context_only_c3d": {"context"}, "motion_only_c3d": {"motion"}}.get(variant, {"context", "motion"})
    assert set(terms) == expected


def test_non_finite_term_is_named():
    torch.manual_seed(0)
    cfg = smoke_cfg()
    task = METHOD(cfg)
    batch = random_batch(b=2)
    batch["iframe"][0] = float("nan")
    with pytest.raises(SuiteError, match=r"non-finite loss at epoch 0 step 3: context = nan, motion = "):
        train_step(task, task, batch, {}, [], RunSettings.from_config(cfg, 1), torch.device("cpu"), "epoch 0 step 3")


def test_flow_source_for_table4(square, tmp_path):
    """Table 4 "I + Optical flow": the M-Network's windows cut from the TV-L1 cache's quantised flow,
    rescaled to the decoded frame's pixels, flipped as vectors are."""
    from datasets.motion.tvl1 import quantise_flow
    from methods.cmd.data import flow_vectors

    folder, video, cache = square
    flow = np.zeros((26, 32, 64, 2), np.float32)  # computed at half the decoded 64 x 128
    flow[:, 10:22, 4:40, 0] = 1.5  # 1.5 px right at half size = 3 px in decoded pixels
    write_arrays(cache_path(tmp_path / "tvl1", "sq"), flow=quantise_flow(flow))
    spec = ClipSpec(num_frames=8, stride=1, crop_size=64, short_side=64)
    plan = ClipPlan(tuple(range(13, 21)), (0, 0), False)
    right = flow_vectors(quantise_flow(flow), (64, 128), plan, spec)
    assert direction(right) > 0 and float(right[0].max()) == pytest.approx(float(cd.normalise_mv(np.float32(3.0))), abs=0.01)
    assert direction(flow_vectors(quantise_flow(flow), (64, 128), ClipPlan(plan.indices, (0, 0), True), spec)) < 0
    cfg = smoke_cfg("flow_c3d")
    assert METHOD.pretrain_inputs(cfg) == ["rgb", "compressed", "tvl1"]
    s = CMDPretrainData(manifest_of(video), folder, cache, cfg, seed=0, flow_cache=tmp_path / "tvl1")[0]
    assert s["motion"].shape == (2, 8, 32, 32) and s["negatives"].shape == (3, 2, 8, 32, 32)
    with pytest.raises(MissingInputError, match="video sq: no TV-L1 flow cache"):
        CMDPretrainData(manifest_of(video), folder, cache, cfg, seed=0, flow_cache=tmp_path)[0]


def test_convgru_predictor_shapes_and_gradient():
    """Table 1's ConvGRU: T1 input steps in, T3 predicted maps at the M-Network's (H3, W3) out."""
    from methods.cmd.model import ConvGRUPredictor

    torch.manual_seed(0)
    net = ConvGRUPredictor(8, 6, (2, 3, 3), hidden=16, kernel=3)
    x = torch.randn(2, 8, 4, 5, 5, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 6, 2, 3, 3)
    y.square().sum().backward()
    assert x.grad[:, :, 0].abs().sum() > 0  # the first input step reaches the prediction


def _losses_worker(rank: int, world: int, port: int, results) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        x, z, pred, target, hard = _ddp_inputs()
        half = len(x) // world
        mine = slice(rank * half, (rank + 1) * half)
        hard_half = len(hard) // world
        results[rank] = (context_matching(x[mine], z[mine], 0.2).item(),
                         motion_prediction(pred[mine], target[mine], 0.2,
                                           hard[rank * hard_half:(rank + 1) * hard_half]).item())
    finally:
        dist.destroy_process_group()


def _ddp_inputs():
    g = torch.Generator().manual_seed(5)
    return (F.normalize(torch.randn(4, 6, generator=g), dim=1), F.normalize(torch.randn(4, 6, generator=g), dim=1),
            F.normalize(torch.randn(4, 3, 6, generator=g), dim=2), F.normalize(torch.randn(4, 3, 6, generator=g), dim=2),
            F.normalize(torch.randn(8, 6, generator=g), dim=1))


def test_losses_under_ddp_equal_the_whole_batch():
    """On two gloo processes each holding half of the batch, the negatives are the whole batch's (keys
    gathered), each query's positive is its own key: the mean of the two losses is the one-process loss."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_losses_worker, args=(2, port, results), nprocs=2, join=True)
    x, z, pred, target, hard = _ddp_inputs()
    assert (results[0][0] + results[1][0]) / 2 == pytest.approx(context_matching(x, z, 0.2).item(), rel=1e-5)
    assert (results[0][1] + results[1][1]) / 2 == pytest.approx(motion_prediction(pred, target, 0.2, hard).item(), rel=1e-5)
