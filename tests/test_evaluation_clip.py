"""Evaluation clips as a setting of the evaluation (MaCLR §4.2-4.4: pretrained at 8x8, evaluated at
32x8, 16x8, 16x4 or 8x8), the variants that share another's pretraining, and the MaCLR scratch
baseline that reads what MaCLR's Visual pathway reads."""
import json
import re
import subprocess
import sys

import pytest
import torch

import core.config
from core.config import evaluation_clip, load_scale, method_config, pretraining_variant
from core.errors import ConfigError
from methods.training.random_start import write_random_start
from methods.training.registry import method_class
from protocols.cli import at_clip, clip_arg
from tables.schema import load_spec
from tests.conftest import ROOT
from tests.test_dag import dry_run

SOTA_VARIANTS = ("maclr_600ep", "v_only_600ep", "maclr_600ep_r18")


@pytest.mark.parametrize("scale", ["smoke", "mini", "full"])
def test_600_epoch_rows_share_the_pretraining_of_maclr_and_v_only(scale):
    assert pretraining_variant("maclr", "maclr_600ep", scale) == "maclr"
    assert pretraining_variant("maclr", "v_only_600ep", scale) == "v_only"
    assert pretraining_variant("maclr", "maclr_600ep_r18", scale) == "maclr_600ep_r18"  # its own network
    assert pretraining_variant("maclr", "maclr", scale) == "maclr"
    assert method_config("maclr", "full", "maclr")["epochs"]["k400"] == 600  # §4.1


def test_full_scale_clips_are_the_papers():
    cfg = method_config("maclr", "full", "maclr_600ep")
    as_text = {s: "{num_frames}x{stride}".format(**evaluation_clip(cfg, s))
               for s in ("ucf101_split1", "hmdb51_split2", "ssv2", "vidsitu", "ava_val")}
    assert as_text == {"ucf101_split1": "32x8", "hmdb51_split2": "32x8", "ssv2": "16x8", "vidsitu": "16x4", "ava_val": "8x8"}
    assert evaluation_clip(method_config("maclr", "full", "maclr"), "ucf101_split1") is None  # the pretraining clip
    r18 = method_config("maclr", "full", "maclr_600ep_r18")["visual"]
    assert (r18["backbone"], r18["clip"]["crop_size"]) == ("r3d18", 128)


def test_a_variant_that_pretrains_differently_cannot_share_a_pretraining(monkeypatch):
    configs = {"a": {"lr": 1, "variant": "a"},
               "b": {"lr": 2, "pretraining_of": "a", "evaluation_clip": {"x": {}}, "variant": "b"},
               "c": {"lr": 1, "pretraining_of": "a", "evaluation_clip": {"x": {}}, "variant": "c"},
               "d": {"lr": 1, "pretraining_of": "c", "variant": "d"}}
    monkeypatch.setattr(core.config, "method_config", lambda method, scale, variant=None: configs[variant])
    assert pretraining_variant("m", "c", "smoke") == "a"
    with pytest.raises(ConfigError, match="differs from it in lr"):
        pretraining_variant("m", "b", "smoke")
    with pytest.raises(ConfigError, match="itself shares"):
        pretraining_variant("m", "d", "smoke")


def test_evaluation_clip_matches_one_dataset_prefix():
    cfg = {"variant": "v", "evaluation_clip": {"ucf101": {"num_frames": 4, "stride": 1}, "ucf": {"num_frames": 2, "stride": 1}}}
    with pytest.raises(ConfigError, match="several entries"):
        evaluation_clip(cfg, "ucf101_split1")
    assert evaluation_clip(cfg, "hmdb51_split1") is None


def test_clip_argument_and_checkpoint_at_clip():
    assert clip_arg("32x8") == {"num_frames": 32, "stride": 8}
    for bad in ("32", "0x8", "ax8"):
        with pytest.raises(Exception, match="--clip"):
            clip_arg(bad)
    checkpoint = {"input": {"kind": "rgb", "clip": {"num_frames": 8, "stride": 8, "crop_size": 224, "short_side": 256}}, "x": 1}
    moved = at_clip(checkpoint, {"num_frames": 32, "stride": 8})
    assert moved["input"]["clip"] == {"num_frames": 32, "stride": 8, "crop_size": 224, "short_side": 256}
    assert checkpoint["input"]["clip"]["num_frames"] == 8 and moved["x"] == 1  # the loaded checkpoint is not changed


def test_maclr_scratch_baseline_reads_as_the_visual_pathway_and_at_its_rows_clips(tmp_path):
    checkpoint = torch.load(write_random_start("random_init", "default", "smoke", tmp_path), weights_only=True)
    visual = load_scale("smoke")["maclr"]["visual"]
    assert checkpoint["encoder"]["backbone"] == "r3d50_slowonly"
    assert checkpoint["encoder"]["width_multiplier"] == visual["width_multiplier"]
    assert checkpoint["input"]["clip"] == visual["clip"]
    cfg = method_config("random_init", "full", "default")
    clip = method_class("random_init").evaluation_clip(cfg, "ssv2")
    assert clip == {"num_frames": 16, "stride": 8}  # MaCLR Table 4a's 16x8, as the MaCLR rows beside it


def test_a_protocol_evaluates_at_the_given_clip_and_records_both(tiny_k400, tmp_path):
    from protocols.linear import main
    base, root = tiny_k400
    checkpoint = write_random_start("random_init", "default", "smoke", tmp_path / "ckpt")
    out = tmp_path / "linear.json"
    main(["--checkpoint", str(checkpoint), "--manifest", str(base / "k400.csv"), "--root", str(root), "--scale", "smoke",
          "--out", str(out), "--threads", "1", "--clip", "8x1"])
    metrics = json.loads(out.read_text())
    assert metrics["clip"]["num_frames"] == 8 and metrics["clip"]["stride"] == 1
    assert metrics["pretrain_clip"] == load_scale("smoke")["maclr"]["visual"]["clip"]


def _input(text: str) -> tuple[int, int, int]:
    frames, stride, crop = re.fullmatch(r"(\d+)x(\d+)x(\d+)\^2", text).groups()
    return int(frames), int(stride), int(crop)


@pytest.mark.parametrize("table", ["maclr_table2", "maclr_table4", "maclr_table5"])
def test_full_scale_runs_read_the_inputs_the_rows_print(table):
    """Each MaCLR and scratch row's printed input (frames x stride x crop^2) is what its evaluation reads."""
    checked = 0
    for part in load_spec(ROOT / "tables/specs" / f"{table}.yaml").parts:
        for row in part.rows:
            rep = row.reproduce
            if not rep or rep["method"] not in ("maclr", "random_init"):
                continue
            cfg = method_config(rep["method"], "full", rep["variant"])
            cls = method_class(rep["method"])
            settings = cls.transfer_settings(cfg) if rep["method"] == "maclr" else \
                method_class(cfg["input_from"]).transfer_settings(method_config(cfg["input_from"], "full", cfg.get("input_variant")))
            for column in part.value_columns:
                clip = cls.evaluation_clip(cfg, column.eval) or settings["clip"]
                assert (clip["num_frames"], clip["stride"], settings["clip"]["crop_size"]) == _input(rep["input"]), (row.id, column.name)
                checked += 1
    assert checked


def test_the_dag_evaluates_a_shared_pretraining_at_its_clip():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", "-p",
                           "results/smoke/eval/maclr/maclr_600ep/k400/linear/ucf101_split1.json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--checkpoint results/smoke/pretrain/maclr/maclr/k400/checkpoint.pt" in proc.stdout
    assert "--clip 8x2" in proc.stdout
    refused = dry_run("results/smoke/pretrain/maclr/maclr_600ep/k400/checkpoint.pt")
    assert refused.returncode != 0 and "shares the pretraining of maclr" in refused.stdout + refused.stderr
