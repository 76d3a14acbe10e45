"""MCL's start from inflated 2D ImageNet MoCo weights (config.yaml `init`, methods/mcl/init.py) and
its errors on bad inputs: a missing weights file or motion cache, mismatched weights, short videos,
a non-finite loss term."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from core.config import method_config
from core.errors import CheckpointError, ConfigError, CorruptInputError, MissingInputError, SuiteError, VideoDecodeError
from core.provenance import file_hash, initialisation
from methods.backbones.resnet import ResNet
from methods.mcl import METHOD
from methods.mcl.data import MCLPretrainData, MotionMaps
from methods.backbones.public import inflate_kernel
from methods.mcl.init import inflated_state_dict, initialise_from_2d, read_2d_weights
from datasets.motion.cache import cache_path, write_arrays
from datasets.motion.tvl1 import extract_video, write_motion_cache
from methods.training.engine import RunSettings, train_step
from methods.training.pretrain import apply_init_weights
from tests.conftest import ROOT, run_env

WIDTH = 1 / 8  # stem 8 channels; res2..res5 inner widths 8, 16, 32, 64


def tiny_p3da() -> ResNet:
    """MCL's R(2+1)D layout (P3D-A, 4x7x7 stem with temporal stride 4), one bottleneck per stage, 1/8 width."""
    return ResNet(10, block="bottleneck", conv="p3da", temporal_kernels=(3, 3, 3, 3), stem_temporal_kernel=4,
                  stem_temporal_stride=4, width_multiplier=WIDTH)


def bn(prefix: str, channels: int, state: dict) -> None:
    state[f"{prefix}.weight"] = torch.rand(channels) + 0.5
    state[f"{prefix}.bias"] = torch.randn(channels)
    state[f"{prefix}.running_mean"] = torch.randn(channels)
    state[f"{prefix}.running_var"] = torch.rand(channels) + 0.5
    state[f"{prefix}.num_batches_tracked"] = torch.tensor(7)


def tiny_2d_resnet(widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1)) -> dict:
    """A hand-made torchvision-layout 2D bottleneck ResNet state dict (default: matching `tiny_p3da`)."""
    g = torch.Generator().manual_seed(0)
    state = {"conv1.weight": torch.randn(widths[0], 3, 7, 7, generator=g) * 0.1}
    bn("bn1", widths[0], state)
    cin = widths[0]
    for i, (width, n) in enumerate(zip(widths, blocks), start=1):
        for j in range(n):
            p = f"layer{i}.{j}"
            state[f"{p}.conv1.weight"] = torch.randn(width, cin, 1, 1, generator=g) * 0.1
            bn(f"{p}.bn1", width, state)
            state[f"{p}.conv2.weight"] = torch.randn(width, width, 3, 3, generator=g) * 0.1
            bn(f"{p}.bn2", width, state)
            state[f"{p}.conv3.weight"] = torch.randn(4 * width, width, 1, 1, generator=g) * 0.1
            bn(f"{p}.bn3", 4 * width, state)
            if j == 0:
                state[f"{p}.downsample.0.weight"] = torch.randn(4 * width, cin, 1, 1, generator=g) * 0.1
                bn(f"{p}.downsample.1", 4 * width, state)
            cin = 4 * width
    state["fc.weight"], state["fc.bias"] = torch.randn(10, cin), torch.randn(10)  # dropped
    return state


def test_inflation_repeats_a_2d_kernel_over_time_divided_by_t():
    w = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (out 1, in 1, 2, 2)
    inflated = inflate_kernel(w, 4)
    assert inflated.shape == (1, 1, 4, 2, 2)
    for t in range(4):
        assert torch.equal(inflated[0, 0, t], torch.tensor([[0.25, 0.5], [0.75, 1.0]]))
    assert torch.equal(inflated.sum(2), w)  # a clip of identical frames gives the 2D response
    assert torch.equal(inflate_kernel(w, 1)[:, :, 0], w)


def test_a_hand_made_2d_resnet_inflates_into_mcls_r2plus1d_layout():
    state_2d, backbone = tiny_2d_resnet(), tiny_p3da()
    backbone.load_state_dict(inflated_state_dict(backbone, state_2d, "tiny"))
    sd = backbone.state_dict()
    # Stem 7x7 -> 4x7x7: each tap the 2D kernel / 4.
    for t in range(4):
        assert torch.allclose(sd["stem.0.0.weight"][:, :, t], state_2d["conv1.weight"] / 4)
    assert torch.equal(sd["stem.0.1.running_var"], state_2d["bn1.running_var"])
    # The bottleneck's 1x1 and 1x3x3 convs are the 2D kernels with one tap; BN statistics copied.
    assert torch.equal(sd["stages.1.0.conv_a.0.weight"][:, :, 0], state_2d["layer2.0.conv1.weight"])
    assert torch.equal(sd["stages.1.0.conv_b.0.weight"][:, :, 0], state_2d["layer2.0.conv2.weight"])
    assert torch.equal(sd["stages.1.0.conv_b.1.1.bias"], state_2d["layer2.0.bn2.bias"])  # P3D-A: BN after the temporal conv
    assert torch.equal(sd["stages.3.0.shortcut.0.weight"][:, :, 0], state_2d["layer4.0.downsample.0.weight"])
    # The temporal 3x1x1 conv (no 2D counterpart) is the identity on its centre tap.
    temporal = sd["stages.0.0.conv_b.1.0.weight"]
    assert temporal.shape == (8, 8, 3, 1, 1)
    assert torch.equal(temporal[:, :, 1, 0, 0], torch.eye(8))
    assert torch.equal(temporal[:, :, 0], torch.zeros(8, 8, 1, 1)) and torch.equal(temporal[:, :, 2], torch.zeros(8, 8, 1, 1))


def test_a_moco_checkpoint_loads_its_query_encoder_only(tmp_path):
    state_2d = tiny_2d_resnet()
    moco = {f"module.encoder_q.{k}": v for k, v in state_2d.items()}
    moco.update({f"module.encoder_k.{k}": torch.zeros_like(v) for k, v in state_2d.items()})
    path = tmp_path / "moco.pth.tar"
    torch.save({"epoch": 200, "arch": "resnet50", "state_dict": moco}, path)
    assert set(read_2d_weights(path)) == set(state_2d)
    backbone = tiny_p3da()
    initialise_from_2d(backbone, path)
    assert torch.equal(backbone.state_dict()["stages.2.0.conv_c.0.weight"][:, :, 0], state_2d["layer3.0.conv3.weight"])


def test_a_missing_weights_file_names_the_file_and_the_flag(tmp_path):
    absent = tmp_path / "moco_v2_200ep_pretrain.pth.tar"
    with pytest.raises(MissingInputError) as err:
        read_2d_weights(absent)
    assert str(absent) in str(err.value) and "--init-weights" in str(err.value)
    # The variant that starts from ImageNet MoCo, given no file: the method and the command line say so.
    cfg = method_config("mcl", "smoke", "ta_sa_mal_imagenet_init")
    with pytest.raises(MissingInputError, match="--init-weights FILE"):
        METHOD(cfg)
    with pytest.raises(MissingInputError, match="ta_sa_mal_imagenet_init.*--init-weights FILE"):
        apply_init_weights(dict(cfg), None, "mcl", "ta_sa_mal_imagenet_init")
    with pytest.raises(MissingInputError, match=f"--init-weights {absent}: no such file"):
        apply_init_weights(dict(cfg), absent, "mcl", "ta_sa_mal_imagenet_init")


def test_a_scratch_variant_refuses_a_weights_file_and_an_inflated_one_records_its_hash(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(tiny_2d_resnet(), path)
    scratch = method_config("mcl", "smoke", "ta_sa_mal")
    assert scratch["init"] == "scratch"  # smoke runs and the tables' runs start from scratch
    with pytest.raises(ConfigError, match="starts from scratch"):
        apply_init_weights(dict(scratch), path, "mcl", "ta_sa_mal")
    assert initialisation(scratch, 3) == {"kind": "scratch", "seed": 3}
    cfg = dict(method_config("mcl", "smoke", "ta_sa_mal_imagenet_init"))
    apply_init_weights(cfg, path, "mcl", "ta_sa_mal_imagenet_init")
    # What pretrain.py writes into the checkpoint's provenance, and protocols/cli.py into every metrics file.
    assert initialisation(cfg, 3) == {"kind": "inflated_2d", "file": "w.pth", "sha256": file_hash(path)}


def test_mismatched_weights_are_refused_by_name(tmp_path):
    backbone = tiny_p3da()
    wrong_width = tiny_2d_resnet()
    wrong_width["layer2.0.conv2.weight"] = torch.randn(32, 32, 3, 3)
    with pytest.raises(CheckpointError, match=r"mine\.pth: does not match the backbone: 1 shape mismatch.*layer2\.0\.conv2\.weight"):
        inflated_state_dict(backbone, wrong_width, "mine.pth")
    missing = tiny_2d_resnet()
    del missing["layer3.0.conv1.weight"]
    with pytest.raises(CheckpointError, match=r"does not provide.*stages\.2\.0\.conv_a\.0\.weight"):
        inflated_state_dict(backbone, missing, "mine.pth")
    extra = {**tiny_2d_resnet(), "layer5.0.conv1.weight": torch.randn(1, 1, 1, 1)}
    with pytest.raises(CheckpointError, match=r"no place for.*layer5\.0\.conv1\.weight"):
        inflated_state_dict(backbone, extra, "mine.pth")
    # The smoke backbone (width 1/16) is not the hand-made one (width 1/8): refused, not half loaded.
    torch.save(tiny_2d_resnet(), tmp_path / "tiny.pth")
    with pytest.raises(CheckpointError, match="tiny.pth: does not match the backbone: .*shape mismatch"):
        METHOD({**method_config("mcl", "smoke", "ta_sa_mal_imagenet_init"), "inflate_from": str(tmp_path / "tiny.pth")})


def test_a_missing_or_corrupt_motion_cache_names_its_video(tmp_path):
    maps = MotionMaps(tmp_path)
    with pytest.raises(MissingInputError, match=r"video v_Archery_g01_c01: no TV-L1 motion cache .*v_Archery_g01_c01\.arrays"):
        maps("v_Archery_g01_c01")
    (tmp_path / "v_old.npz").write_bytes(b"PK\x03\x04")  # the earlier single-file layout is named, not read
    with pytest.raises(MissingInputError, match=r"video v_old: no TV-L1 motion cache .*v_old\.npz is in the earlier compressed layout"):
        maps("v_old")
    write_motion_cache(cache_path(tmp_path, "v_cut"), np.ones((4, 6, 8), np.float32))
    motion_file = cache_path(tmp_path, "v_cut") / "motion.npy"
    motion_file.write_bytes(motion_file.read_bytes()[:-10])  # truncated
    with pytest.raises(CorruptInputError, match=r"video v_cut: unreadable TV-L1 motion cache .*v_cut\.arrays/motion\.npy"):
        maps("v_cut")
    write_arrays(cache_path(tmp_path, "v_part"), motion=np.ones((4, 6, 8), np.float16))  # no per-frame means
    with pytest.raises(CorruptInputError, match=r"video v_part: TV-L1 motion cache .*v_part\.arrays has no array `motion_frame_mean`"):
        maps("v_part")
    write_motion_cache(cache_path(tmp_path, "v_nan"), np.array([[[0.0, np.nan]]], dtype=np.float32))
    with pytest.raises(CorruptInputError, match=r"video v_nan: .* 1 non-finite value"):
        maps("v_nan")
    write_motion_cache(cache_path(tmp_path, "v_flow"), np.zeros((4, 6, 8, 2), dtype=np.float32))  # a flow field, not maps
    with pytest.raises(CorruptInputError, match=r"video v_flow: .* shape \(4, 6, 8, 2\), not \(frames, height, width\)"):
        maps("v_flow")


def test_a_video_shorter_than_a_tubelet_names_the_video(tmp_path):
    cfg = method_config("mcl", "smoke", "ta_sa_mal")
    span = (cfg["clip"]["num_frames"] - 1) * cfg["clip"]["stride"] + 1
    manifest = pd.DataFrame([{"video_id": "v_short", "path": "short.mp4", "label": 0, "label_name": "a", "split": "train",
                              "num_frames": span + 10, "fps": 25.0, "width": 64, "height": 48, "duration": 1.0}])
    write_motion_cache(cache_path(tmp_path, "v_short"), np.ones((span - 1, 6, 8), dtype=np.float32))  # one frame short
    data = MCLPretrainData(manifest, tmp_path, tmp_path, cfg, seed=0)
    with pytest.raises(VideoDecodeError, match=rf"video v_short \(short.mp4\): {span - 1} frames with both RGB .* fewer than the {span}"):
        data[0]
    baseline = method_config("mcl", "smoke", "baseline")  # no motion: the manifest's frame count decides
    short = manifest.assign(num_frames=span - 2)
    with pytest.raises(VideoDecodeError, match=rf"video v_short \(short.mp4\): {span - 2} frames, fewer than the {span}"):
        MCLPretrainData(short, tmp_path, None, baseline, seed=0)[0]


def test_pretraining_from_inflated_weights_records_the_file_in_checkpoint_and_metrics(tiny_k400, tmp_path):
    base, root = tiny_k400
    cache = base / "tvl1"
    for row in pd.read_csv(base / "k400.csv", dtype={"video_id": str}).itertuples():
        if not cache_path(cache, row.video_id).exists():
            extract_video(root / row.path, cache_path(cache, row.video_id), store_flow=False)
    weights = tmp_path / "moco_tiny.pth"  # a ResNet-50 at the smoke width (1/16)
    torch.save({"state_dict": {f"module.encoder_q.{k}": v for k, v in tiny_2d_resnet((4, 8, 16, 32), (3, 4, 6, 3)).items()}},
               weights)
    out = tmp_path / "run"
    pretrain = [sys.executable, "-m", "methods.training.pretrain", "--method", "mcl", "--variant", "ta_sa_mal_imagenet_init",
                "--pretrain", "k400", "--scale", "smoke", "--manifest", str(base / "k400.csv"), "--root", str(root),
                "--input", f"tvl1={cache}", "--out", str(out), "--threads", "1"]
    proc = subprocess.run(pretrain, cwd=ROOT, env=run_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "--init-weights FILE" in proc.stderr  # the variant without its file
    proc = subprocess.run(pretrain + ["--init-weights", str(weights)], cwd=ROOT, env=run_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = {"kind": "inflated_2d", "file": "moco_tiny.pth", "sha256": file_hash(weights)}
    assert torch.load(out / "checkpoint.pt", weights_only=True)["provenance"]["initialisation"] == expected
    assert json.loads((out / "summary.json").read_text())["initialisation"] == expected
    metrics_path = tmp_path / "svm.json"
    evaluate = [sys.executable, "-m", "protocols.svm", "--checkpoint", str(out / "checkpoint.pt"), "--manifest",
                str(base / "k400.csv"), "--root", str(root), "--scale", "smoke", "--out", str(metrics_path), "--threads", "1"]
    proc = subprocess.run(evaluate, cwd=ROOT, env=run_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(metrics_path.read_text())["initialisation"] == expected


def test_a_non_finite_mcl_loss_term_names_the_step_and_the_term():
    cfg = method_config("mcl", "smoke", "ta_sa_mal")
    task = METHOD(cfg)
    terms = {"nce": torch.tensor(5.0, requires_grad=True), "mal_t": torch.tensor(float("nan")), "mal_s": torch.tensor(0.1),
             "mal_st": torch.tensor(0.2)}
    settings = RunSettings.from_config(cfg, 1)
    with pytest.raises(SuiteError, match=r"non-finite loss at epoch 0 step 3 \(global step 3\): nce = 5, mal_t = nan"):
        train_step(lambda sample: terms, task, {}, {}, [], settings, torch.device("cpu"), "epoch 0 step 3 (global step 3)")
