"""Fine-tuning with evaluation points (CMD Table 3), CMD's own fine-tuning recipe (per evaluation
dataset), and the random-initialisation baseline evaluated with the recipe of the method it is
compared with."""
import pandas as pd
import pytest
import torch

from core.config import load_scale
from core.errors import SuiteError
from methods.training.random_start import write_random_start
from protocols.cli import protocol_settings, recipe_owner
from protocols.finetune import evaluate, evaluation_points


def test_evaluation_points_lie_within_the_run():
    assert evaluation_points({1: 1, 5: 1, 50: 2}, 4) == {1: 1, 5: 1, 50: 2}
    assert evaluation_points(None, 4) == {}
    with pytest.raises(SuiteError, match="outside"):
        evaluation_points({120: 5}, 4)


def test_cmd_fine_tunes_each_dataset_with_its_own_learning_rate_and_weight_decay():
    full = load_scale("full")
    ucf, recipe = protocol_settings(full, "finetune", "cmd", "ucf101_split1")
    hmdb, _ = protocol_settings(full, "finetune", "cmd", "hmdb51_split2")
    assert recipe == "cmd"
    assert (ucf["lr"], ucf["weight_decay"]) == (pytest.approx(0.0001 * 8), 0.003)  # CMD §4.1, B = 8
    assert (hmdb["lr"], hmdb["weight_decay"]) == (pytest.approx(0.0002 * 8), 0.002)
    assert "per_dataset" not in ucf and ucf["eval_epochs"] == {1: 1, 5: 5, 10: 10, 20: 20, 50: 50}
    # At smoke, CMD's recipe adds Table 3's points (at the same fraction of the shorter run) and its views.
    smoke, _ = protocol_settings(load_scale("smoke"), "finetune", "cmd", "ucf101_split1")
    assert {k: v for k, v in smoke.items() if k not in ("eval_epochs", "spatial_views")} == {
        k: v for k, v in load_scale("smoke")["finetune"].items() if k not in ("spatial_views", "per_dataset")}
    assert smoke["spatial_views"] == ucf["spatial_views"] == 1  # CMD tests one centre crop


def test_a_scratch_baseline_is_evaluated_with_the_recipe_of_the_method_it_is_compared_with(tmp_path):
    checkpoint = torch.load(write_random_start("random_init", "scratch_c3d", "smoke", tmp_path), weights_only=True)
    assert recipe_owner(checkpoint["provenance"]) == "cmd"
    assert checkpoint["provenance"]["initialisation"] == {"kind": "scratch", "seed": 0}
    assert checkpoint["input"]["clip"] == load_scale("smoke")["cmd"]["clip"]  # read as CMD's V-Network reads
    assert checkpoint["encoder"]["width_multiplier"] == load_scale("smoke")["cmd"]["width_multiplier"]
    # The seed decides the weights.
    again = torch.load(write_random_start("random_init", "scratch_c3d", "smoke", tmp_path / "again"), weights_only=True)
    other = torch.load(write_random_start("random_init", "scratch_c3d", "smoke", tmp_path / "other", seed=1), weights_only=True)
    first = checkpoint["encoder"]["state_dict"]
    assert all(torch.equal(first[k], again["encoder"]["state_dict"][k]) for k in first)
    assert not all(torch.equal(first[k], other["encoder"]["state_dict"][k]) for k in first)


def test_evaluation_points_report_the_run_without_changing_it(tiny_k400, tmp_path):
    base, root = tiny_k400
    manifest = pd.read_csv(base / "k400.csv")
    checkpoint = torch.load(write_random_start("random_init", "scratch_c3d", "smoke", tmp_path), weights_only=True)
    cfg = {**load_scale("smoke")["finetune"], "epochs": 2, "temporal_views": 2, "spatial_views": 1}
    torch.set_num_threads(1)
    plain = evaluate(checkpoint, manifest, root, None, cfg, seed=0)
    pointed = evaluate(checkpoint, manifest, root, None, {**cfg, "eval_epochs": {1: 1, 5: 2}}, seed=0)
    assert "top1_ep1" not in plain and pointed["eval_epochs"] == {1: 1, 5: 2}
    # The last point is the final epoch: the same number as `top1`; the training is unchanged by the points.
    assert pointed["top1_ep5"] == pointed["top1"] == plain["top1"] and pointed["top5"] == plain["top5"]
    assert 0 <= pointed["top1_ep1"] <= 100 and 0 <= pointed["top5_ep1"] <= 100
