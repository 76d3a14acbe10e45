"""Supervised pretraining on the shared engine (methods/supervised/): the cross-entropy task, the 2D
ImageNet stand-in inflated into the 3D backbone it feeds, a start from a public checkpoint, and the
pretraining runs with their provenance."""
import subprocess
import sys

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from pytorchvideo.models.hub import slow_r50

from core.config import method_config
from core.errors import MissingInputError
from core.provenance import file_hash
from methods.supervised import METHOD
from methods.training.method import DataSources
from methods.training.pretrain import apply_init_weights
from tests.conftest import ROOT, run_env
from tests.test_dag import empty_layout


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_forward_is_the_cross_entropy_of_the_classifier(tiny_k400):
    base, root = tiny_k400
    manifest = pd.read_csv(base / "k400.csv", dtype={"video_id": str})
    train = manifest[manifest["split"] == "train"]
    task = METHOD(method_config("supervised", "smoke", "default"))
    data = task.pretrain_dataset(train, DataSources(root), seed=0)
    assert task.head[1].out_features == int(train["label"].max()) + 1
    batch = {"clip": torch.stack([data[0]["clip"], data[1]["clip"]]), "label": torch.stack([data[0]["label"], data[1]["label"]])}
    assert batch["clip"].shape[2] == method_config("maclr", "smoke")["visual"]["clip"]["num_frames"]
    task.eval()
    expected = F.cross_entropy(task.head(task.backbone(batch["clip"])), batch["label"])
    assert torch.allclose(task(batch)["cross_entropy"], expected)


def test_unlabelled_videos_are_refused_by_name(tiny_k400):
    base, root = tiny_k400
    manifest = pd.read_csv(base / "k400.csv", dtype={"video_id": str})
    manifest.loc[manifest.index[2], "label"] = -1
    with pytest.raises(Exception, match=rf"needs labels; video {manifest['video_id'].iloc[2]}"):
        METHOD(method_config("supervised", "smoke", "default")).pretrain_dataset(manifest, DataSources(root), seed=0)


def test_2d_stand_in_is_inflated_into_the_rows_backbone(tiny_k400):
    """The stand-in trains a 2D R2D-50 on single frames; the checkpoint's encoder is its I3D inflation
    into MCL's R(2+1)D-50 (P3D-A temporal convs as the temporal identity)."""
    base, root = tiny_k400
    cfg = method_config("supervised", "smoke", "imagenet_inflated_r2plus1d")
    task = METHOD(cfg)
    data = task.pretrain_dataset(pd.read_csv(base / "k400.csv", dtype={"video_id": str}), DataSources(root), seed=0)
    assert data[0]["clip"].shape[1] == 1  # one frame per sample: an image network
    assert METHOD.stand_in(cfg, "imagenet").startswith("ImageNet stand-in: 2D r2d50")
    assert METHOD.stand_in(cfg, "k400") is None
    encoder = task.transfer_encoder()
    assert encoder.backbone == "r2plus1d50" and encoder.input["clip"] == method_config("mcl", "smoke")["clip"]
    trained, inflated = task.backbone.state_dict(), encoder.module.state_dict()
    stem = inflated["stem.0.0.weight"]
    assert stem.shape[2] == 4 and torch.allclose(stem.sum(2), trained["stem.0.0.weight"][:, :, 0], atol=1e-6)
    temporal = inflated["stages.0.0.conv_b.1.0.weight"]
    assert torch.equal(temporal[:, :, 1, 0, 0], torch.eye(temporal.shape[0]))
    assert torch.equal(inflated["stages.2.1.conv_b.1.1.running_var"], trained["stages.2.1.conv_b.1.running_var"])


def test_public_checkpoint_start(tmp_path):
    cfg = method_config("supervised", "smoke", "k400_public")
    assert METHOD.init_weights_file(cfg) == "SLOW_8x8_R50.pyth" and cfg["epochs"]["k400"] == 0
    absent = tmp_path / "SLOW_8x8_R50.pyth"
    with pytest.raises(MissingInputError, match=f"--init-weights {absent}: no such file"):
        apply_init_weights(dict(cfg), absent, "supervised", "k400_public")
    public = slow_r50(pretrained=False)
    torch.save({"model_state": public.state_dict()}, absent)
    # The smoke width is not slow_r50's: a full-width config loads it, the smoke one is refused by name.
    full_width = {**cfg, "input_from": "maclr"}
    apply_init_weights(full_width, absent, "supervised", "k400_public")
    assert full_width["init_checkpoint"] == str(absent) and full_width["init_checkpoint_sha256"] == file_hash(absent)
    with pytest.raises(Exception, match=r"SLOW_8x8_R50\.pyth: does not match the backbone"):
        METHOD(full_width)
    full_width["scale"] = "full"
    task = METHOD(full_width)
    assert torch.equal(task.backbone.state_dict()["stages.3.2.conv_c.1.running_mean"],
                       public.state_dict()["blocks.4.res_blocks.2.branch2.norm_c.running_mean"])


def test_pretraining_run_records_the_stand_in(tiny_k400, tmp_path):
    base, root = tiny_k400
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "methods.training.pretrain", "--method", "supervised", "--variant", "imagenet_r2d50",
           "--pretrain", "imagenet", "--scale", "smoke", "--manifest", str(base / "k400.csv"), "--root", str(root),
           "--out", str(out), "--threads", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, env=run_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["encoder"]["backbone"] == "r2d50"
    assert checkpoint["provenance"]["stand_in"].startswith("ImageNet stand-in")
    assert checkpoint["provenance"]["initialisation"] == {"kind": "scratch", "seed": 0}
    log = pd.read_csv(out / "log.csv")
    assert log["loss_cross_entropy"].notna().all() and len(log) == 3 * 2  # 3 epochs of 16 frames in batches of 8


def test_full_scale_dry_run_plans_the_papers_settings(tmp_path):
    """At full scale the K400 row pretrains with SlowFast's recipe, and the ImageNet rows load
    torchvision's ImageNet ResNet-50 from the data root (taking no step), decoding nothing."""
    empty_layout(tmp_path, ["k400", "ucf101_split1"])
    targets = ["results/full/pretrain/supervised/default/k400/checkpoint.pt",
               "results/full/pretrain/supervised/imagenet_inflated_r2plus1d/imagenet/checkpoint.pt"]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", *targets, "--config", "scale=full",
                           f"data_root={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "supervised r3d50_slowonly on k400 labels, from scratch (seed 0), 196 epochs, batch 1024" in out
    assert ("supervised imagenet: torchvision_resnet50_imagenet loaded into r2d50, inflated into r2plus1d50, "
            "no training step") in out
    assert f"{tmp_path}/pretrained/resnet50-0676ba61.pth" in out
    assert "transcode/h264_cfr/imagenet" not in out
