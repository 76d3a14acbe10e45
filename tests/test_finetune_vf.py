"""MaCLR Table 2's "V+F": the Visual and Motion pathways fine-tuned with one recipe, their softmax
scores averaged (protocols/finetune_vf.py); and the Motion pathway carried in MaCLR's checkpoints."""
import pandas as pd
import pytest
import torch

from core.config import load_scale, method_config
from core.errors import SuiteError
from methods.training.random_start import write_random_start
from methods.training.registry import method_class
from protocols.finetune_vf import evaluate


def test_maclr_checkpoints_carry_the_motion_pathway_where_both_were_trained(tmp_path):
    checkpoint = torch.load(write_random_start("maclr", "maclr", "smoke", tmp_path), weights_only=True)
    motion = checkpoint["extra_encoders"]["motion"]
    smoke = load_scale("smoke")["maclr"]["motion"]
    assert motion["backbone"] == "r2d50" and motion["in_channels"] == 1  # flow edges: one channel
    assert motion["input"]["kind"] == "edge" and motion["input"]["clip"] == smoke["clip"]
    cls = method_class("maclr")
    assert cls.extra_transfer_inputs(method_config("maclr", "smoke", "maclr")) == ["edge"]
    for variant in ("v_only", "m_only"):  # one pathway trained, or the Motion pathway is the transferred one
        assert cls.extra_transfer_inputs(method_config("maclr", "smoke", variant)) == []


def test_v_plus_f_fine_tunes_both_streams_and_fuses_them(tiny_k400, tmp_path):
    base, root = tiny_k400
    manifest = pd.read_csv(base / "k400.csv")
    checkpoint = torch.load(write_random_start("maclr", "maclr", "smoke", tmp_path), weights_only=True)
    cfg = {**load_scale("smoke")["finetune"], "epochs": 1, "temporal_views": 2, "spatial_views": 1}
    torch.set_num_threads(1)
    metrics = evaluate(checkpoint, manifest, root, base / "edge", cfg, seed=0)
    assert all(0 <= metrics[k] <= 100 for k in ("top1", "top5", "visual_top1", "motion_top1"))
    assert metrics["num_test_videos"] == int((manifest["split"] == "val").sum())
    assert metrics["fusion"].startswith("mean")


def test_v_plus_f_needs_the_motion_pathway(tiny_k400, tmp_path):
    base, root = tiny_k400
    checkpoint = torch.load(write_random_start("maclr", "v_only", "smoke", tmp_path), weights_only=True)
    with pytest.raises(SuiteError, match="extra encoder 'motion'"):
        evaluate(checkpoint, pd.read_csv(base / "k400.csv"), root, base / "edge", load_scale("smoke")["finetune"], seed=0)
