"""MaCLR's transfer beyond UCF101 and HMDB51 (§4.3): Something-Something V2 fine-tuning with
SlowFast's recipe (Table 4a)."""
import numpy as np
import pytest

from core.config import load_scale
from datasets.clips.sampling import ClipSpec, plan_train_clip
from methods.training.optim import learning_rate
from protocols.cli import protocol_settings


def test_ssv2_fine_tunes_with_the_recipe_of_section_4_3_for_every_checkpoint():
    full = load_scale("full")
    for owner in ("maclr", "random_init", None):
        ssv2, recipe = protocol_settings(full, "finetune", owner, "ssv2")
        assert recipe == "shared"
        assert (ssv2["epochs"], ssv2["batch_size"], ssv2["lr"], ssv2["milestones"]) == (22, 16, 0.03, [14, 18])
        assert (ssv2["warmup_epochs"], ssv2["warmup_start_lr"], ssv2["flip_p"]) == (0.19, 0.0001, 0.0)
    ucf, _ = protocol_settings(full, "finetune", "maclr", "ucf101_split1")
    assert "per_dataset" not in ucf and "flip_p" not in ucf and ucf["epochs"] == 200  # other datasets keep the shared recipe
    smoke, _ = protocol_settings(load_scale("smoke"), "finetune", "maclr", "ssv2")
    assert smoke["flip_p"] == 0.0 and smoke["epochs"] == load_scale("smoke")["finetune"]["epochs"]


def test_ssv2_schedule_decays_tenfold_at_14_and_18_epochs():
    ssv2, _ = protocol_settings(load_scale("full"), "finetune", "maclr", "ssv2")
    cfg = {"lr": ssv2["lr"], "schedule": "step", "milestones": ssv2["milestones"], "warmup_epochs": ssv2["warmup_epochs"],
           "warmup_start_lr": ssv2["warmup_start_lr"]}
    at = {epoch: learning_rate(cfg, epoch * 100, 100, 2200) for epoch in (0, 1, 13, 14, 17, 18, 21)}
    assert at[0] == pytest.approx(0.0001)
    assert at[1] == at[13] == pytest.approx(0.03)
    assert at[14] == at[17] == pytest.approx(0.003) and at[18] == at[21] == pytest.approx(0.0003)


def test_no_flip_when_flip_p_is_zero_and_the_same_clips_otherwise():
    spec = ClipSpec(4, 2, 16, 20)
    plans = [plan_train_clip(40, (20, 26), spec, np.random.default_rng(k), flip_p=0.0) for k in range(50)]
    assert not any(p.flip for p in plans)
    default = [plan_train_clip(40, (20, 26), spec, np.random.default_rng(k)) for k in range(50)]
    assert any(p.flip for p in default)
    assert [(p.indices, p.crop) for p in plans] == [(p.indices, p.crop) for p in default]  # same draws otherwise
