"""CMD Tables 5 and 7: the checkpoint's extra encoders (I-Network, M-Network) and their retrieval
metrics, transfer snapshots and the epoch labels a profile maps onto its run, the pretext
accuracies of Eq. (1) and (2) by hand, the pretext protocol on a fake log, and the tables' cells
runnable."""
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from core.config import method_config
from core.errors import ConfigError, SuiteError
from core.io import torch_load, write_csv
from datasets.motion import compressed as cd
from datasets.motion.cache import cache_path
from methods.cmd import METHOD
from methods.cmd.losses import context_matching, motion_prediction, pretext_top1
from methods.cmd.sampling import plan_cmd_test_views
from methods.training.checkpoint import snapshot_schedule, snapshots_block, write_transfer_checkpoint
from datasets.clips.sampling import ClipSpec
from protocols import IMPLEMENTED, PROTOCOLS, pretext, retrieval
from tables.metrics import check_metrics, check_provenance
from tables.runs import cell_runs
from tables.schema import load_spec
from tests.test_compressed import square_frames, write_mpeg4_gop12


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


# -- pretext accuracies (Table 7) ---------------------------------------------------------------
def test_context_matching_top1_by_hand():
    clips = unit([1, 0], [0, 1], [1, 1])
    iframes = unit([1, 0.1], [1, 0], [0.9, 1])  # clip 0 -> I-frame 1 (wrong), clip 1 -> 2 (wrong), clip 2 -> 2 (right)
    own = torch.eye(3, dtype=torch.bool)
    # cosines: clip 0 (1, 0) vs I-frames: 0.995, 1.0, 0.67 -> argmax 1; clip 1: 0.0995, 0, 0.74 -> 2; clip 2: 0.77, 0.71, 1.0 -> 2
    assert pretext_top1(clips, iframes, own) == pytest.approx(100 / 3)
    stats = {}
    loss = context_matching(clips, iframes, 0.1, stats)
    assert stats["context_matching_top1"] == pytest.approx(100 / 3)
    assert torch.equal(loss, context_matching(clips, iframes, 0.1))  # the loss is unchanged by recording it


def test_motion_prediction_top1_by_hand_without_hard_negatives():
    # B = 2 videos, N = 2 points: 4 predicted points against the 4 target points.
    target = unit([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]).reshape(2, 2, 3)
    predicted = unit([1, 0, 0], [1, 0.2, 0], [0, 0, 1], [1, 1, 0.1]).reshape(2, 2, 3)
    # point (0, 1) is nearest target (0, 0) (cos 0.98 vs (1, 1): 0.83 vs (0, 1): 0.2): wrong; the other three right
    stats = {}
    hard = unit([1, 0.2, 0], [0, 0, 1])  # identical to queries: they would win if they were candidates
    motion_prediction(predicted, target, 0.1, hard, stats)
    assert stats["motion_prediction_top1"] == pytest.approx(75.0)


def test_step_log_has_both_accuracies_from_the_forward():
    torch.manual_seed(0)
    task = METHOD(method_config("cmd", "smoke", "full_c3d"))
    g = torch.Generator().manual_seed(0)
    batch = {"clip": torch.randn(2, 3, 8, 32, 32, generator=g), "iframe": torch.randn(2, 3, 1, 32, 32, generator=g),
             "motion": torch.randn(2, 2, 8, 32, 32, generator=g) * 0.1,
             "negatives": torch.randn(2, 3, 2, 8, 32, 32, generator=g) * 0.1, "video_index": torch.arange(2)}
    task(batch)
    log = task.step_log(batch)
    assert set(log) == {"pretext_context_matching_top1", "pretext_motion_prediction_top1"}
    assert all(0 <= v <= 100 for v in log.values())


# -- snapshots and epoch labels -----------------------------------------------------------------
def test_snapshot_epochs_map_through_the_profile():
    full = method_config("cmd", "full", "full_c3d")
    assert snapshot_schedule(full, "ucf101_split1") == {1: 1, 5: 5, 10: 10, 20: 20, 50: 50, 120: 120}
    smoke = method_config("cmd", "smoke", "full_c3d")
    schedule = snapshot_schedule(smoke, "ucf101_split1")
    assert schedule == {1: 1, 5: 1, 10: 2, 20: 2, 50: 3, 120: 4}
    assert max(schedule.values()) == smoke["epochs"]["ucf101_split1"]  # the paper's last epoch is the run's last
    block = snapshots_block(schedule, 4)
    assert block["files"] == {"1": "snapshots/checkpoint_ep1.pt", "2": "snapshots/checkpoint_ep2.pt",
                              "3": "snapshots/checkpoint_ep3.pt"}  # epoch 4 is the checkpoint itself
    assert snapshot_schedule(method_config("cmd", "smoke", "context_only_c3d"), "ucf101_split1") == {}  # only Table 7's run pays
    assert snapshot_schedule(smoke, "k400") == {}
    beyond = {**smoke, "snapshot_epoch_map": {"ucf101_split1": {1: 1, 5: 1, 10: 2, 20: 2, 50: 5, 120: 4}}}
    with pytest.raises(ConfigError, match=r"outside the run's epochs 1 \.\.\. 4"):
        snapshot_schedule(beyond, "ucf101_split1")
    missing = {**smoke, "snapshot_epoch_map": {"ucf101_split1": {1: 1, 120: 4}}}
    with pytest.raises(ConfigError, match=r"no entry for snapshot epoch\(s\) \[5, 10, 20, 50\]"):
        snapshot_schedule(missing, "ucf101_split1")
    short = {**smoke, "snapshot_epoch_map": {"ucf101_split1": {1: 1, 5: 1, 10: 2, 20: 2, 50: 3}}}
    with pytest.raises(ConfigError, match="no label to the run's last epoch 4"):
        snapshot_schedule(short, "ucf101_split1")


# -- retrieval with the extra encoders ------------------------------------------------------------
@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    """Four MPEG-4 GOP-12 videos (two train, two test, two classes) with their compressed caches."""
    folder = tmp_path_factory.mktemp("cmdret")
    cache = folder / "cache"
    rows = []
    for i, (split, label) in enumerate([("train", 0), ("train", 1), ("test", 0), ("test", 1)]):
        vid = f"v{i}"
        video = write_mpeg4_gop12(folder / f"{vid}.avi", square_frames(k=2 + label, seed=i))
        cd.extract_video(video, cache_path(cache, vid))
        rows.append({"video_id": vid, "path": video.name, "label": label, "label_name": str(label), "split": split,
                     "num_frames": 26, "fps": 25.0, "width": 128, "height": 64, "duration": 26 / 25})
    return folder, cache, pd.DataFrame(rows)


RETRIEVAL = {"temporal_views": 2, "spatial_views": 3, "ks": [1, 5], "batch_size": 8}


def test_test_views_follow_the_training_rules():
    spec = ClipSpec(8, 2, 32, 32, temporal_views=10, spatial_views=3)
    views = plan_cmd_test_views(40, np.array([0, 12, 24, 36]), (32, 64), spec, 8)
    assert len(views) == 30
    for v in views:
        start, end = v.clip.indices[0], v.clip.indices[-1]
        assert v.motion.indices == tuple(range(end + 1, end + 9))  # the 8 frames after the clip, as in pretraining
        assert v.motion.indices[-1] < 40 and v.motion.crop == v.clip.crop and not v.clip.flip
        inside = [f for f in (0, 12, 24, 36) if start <= f <= end]
        assert v.iframe in inside  # an I-frame inside the span, the one nearest its centre
        assert abs(v.iframe - (start + 7)) == min(abs(f - (start + 7)) for f in inside)


def test_checkpoint_with_extra_encoders_gives_their_metrics(squares, tmp_path):
    folder, cache, manifest = squares
    cfg = method_config("cmd", "smoke", "full_c3d")
    torch.manual_seed(0)
    task = METHOD(cfg)
    extras = task.extra_transfer_encoders()
    assert set(extras) == {"i_network", "m_network"}
    assert extras["i_network"].input["stream"] == "iframe" and extras["m_network"].input["stream"] == "mv"
    assert METHOD.extra_transfer_inputs(cfg) == ["compressed"]
    provenance = {"method": "cmd", "variant": "full_c3d", "pretrain": "ucf101_split1"}
    # snapshots after epochs 1 and 2 of a 3-epoch run; labels 1 and 5 share epoch 1
    block = snapshots_block({1: 1, 5: 1, 10: 2, 120: 3}, 3)
    for epoch in (1, 2):
        write_transfer_checkpoint(tmp_path / f"snapshots/checkpoint_ep{epoch}.pt", task.transfer_encoder(),
                                  {**provenance, "epoch": epoch}, cfg, extras)
    write_transfer_checkpoint(tmp_path / "checkpoint.pt", task.transfer_encoder(), provenance, cfg, extras, block)
    checkpoint = torch_load(tmp_path / "checkpoint.pt")
    assert checkpoint["extra_encoders"]["m_network"]["in_channels"] == 2
    metrics = retrieval.evaluate(checkpoint, manifest, folder, cache, RETRIEVAL, 0, checkpoint_dir=tmp_path)
    for key in ("r_at_1", "r_at_5", "i_network_r_at_1", "i_network_r_at_5", "m_network_r_at_1", "m_network_r_at_5",
                "r_at_1_ep1", "r_at_1_ep5", "r_at_1_ep10", "r_at_5_ep10"):
        assert 0 <= metrics[key] <= 100, key
    assert "r_at_1_ep120" not in metrics  # the last epoch is the checkpoint's own r_at_1
    assert metrics["r_at_1_ep1"] == metrics["r_at_1_ep5"]  # one snapshot, two labels
    assert metrics["epoch_labels"] == {"1": 1, "5": 1, "10": 2, "120": 3}
    check_metrics({**metrics, "scale": "smoke", "protocol": "retrieval"}, "retrieval", "test")

    # A checkpoint of the old contract (no extra encoders, no snapshots) reads as before.
    old = {k: v for k, v in checkpoint.items() if k not in ("extra_encoders", "snapshots")}
    plain = retrieval.evaluate(old, manifest, folder, None, RETRIEVAL, 0)
    assert set(plain) == {"r_at_1", "r_at_5", "num_train_videos", "num_test_videos", "views", "score_averaging"}
    assert plain["r_at_1"] == metrics["r_at_1"]


def test_extra_encoders_need_the_compressed_cache(squares, tmp_path):
    folder, _, manifest = squares
    cfg = method_config("cmd", "smoke", "full_c3d")
    task = METHOD(cfg)
    write_transfer_checkpoint(tmp_path / "c.pt", task.transfer_encoder(), {}, cfg, task.extra_transfer_encoders())
    with pytest.raises(SuiteError, match="encoder i_network reads compressed inputs: pass --motion-cache"):
        retrieval.evaluate(torch_load(tmp_path / "c.pt"), manifest, folder, None, RETRIEVAL, 0)


# -- the pretext protocol -----------------------------------------------------------------------
def fake_log(epochs=4, steps=2):
    rows = []
    for e in range(epochs):
        for s in range(steps):
            rows.append({"epoch": e, "step": e * steps + s, "lr": 0.1, "loss": 1.0,
                         "pretext_context_matching_top1": 10.0 * (e + 1) + s, "pretext_motion_prediction_top1": float(e)})
    return pd.DataFrame(rows)


def test_pretext_protocol_on_a_fake_log(tmp_path, squares):
    folder, _, manifest = squares
    run = tmp_path / "run"
    write_csv(run / "log.csv", fake_log())
    labels = {1: 1, 5: 1, 10: 2, 20: 2, 50: 3, 120: 4}
    cfg = method_config("cmd", "smoke", "full_c3d")
    task = METHOD(cfg)
    provenance = {"method": "cmd", "variant": "full_c3d", "pretrain": "ucf101_split1", "scale": "smoke", "seed": 0,
                  "videos": 2, "git_commit": "x", "initialisation": {"kind": "scratch"}, "motion_estimator": None}
    write_transfer_checkpoint(run / "checkpoint.pt", task.transfer_encoder(), provenance, cfg, None,
                              snapshots_block(labels, 4))
    write_csv(tmp_path / "ucf101_split1.csv", manifest)
    retrieval_metrics = tmp_path / "hmdb51_split1.json"
    retrieval_metrics.write_text('{"r_at_1": 20.0, "r_at_1_ep1": 5.0, "r_at_1_ep5": 5.0, "r_at_1_ep10": 8.0, '
                                 '"r_at_1_ep20": 8.0, "r_at_1_ep50": 12.0}')
    out, plot = tmp_path / "pretext" / "ucf101_split1.json", tmp_path / "pretext" / "ucf101_split1.png"
    pretext.main(["--checkpoint", str(run / "checkpoint.pt"), "--manifest", str(tmp_path / "ucf101_split1.csv"),
                  "--root", str(folder), "--scale", "smoke", "--out", str(out), "--retrieval", str(retrieval_metrics),
                  "--spec", "tables/specs/cmd_table7.yaml", "--plot", str(plot)])
    import json

    metrics = json.loads(out.read_text())
    check_metrics(metrics, "pretext", str(out), "smoke")
    check_provenance(metrics, str(out))
    # the mean over the steps of the mapped epoch: epoch 1 has 10 and 11, epoch 2 has 20 and 21, ...
    assert metrics["context_matching_top1_ep1"] == metrics["context_matching_top1_ep5"] == 10.5
    assert metrics["context_matching_top1_ep10"] == 20.5 and metrics["context_matching_top1_ep50"] == 30.5
    assert metrics["context_matching_top1_ep120"] == 40.5 and metrics["motion_prediction_top1_ep120"] == 3.0
    assert metrics["epoch_labels"] == {str(k): v for k, v in labels.items()}
    assert plot.stat().st_size > 0

    short = tmp_path / "short"
    short.mkdir()
    write_csv(short / "log.csv", fake_log(epochs=2))
    with pytest.raises(SuiteError, match=r"no step of epoch 3 \(label 50\)"):
        pretext.evaluate(torch_load(run / "checkpoint.pt"), manifest, folder, None, {}, 0, checkpoint_dir=short)


def test_pretext_needs_the_logged_columns(tmp_path):
    write_csv(tmp_path / "log.csv", fake_log().drop(columns=["pretext_context_matching_top1", "pretext_motion_prediction_top1"]))
    with pytest.raises(SuiteError, match="no pretext accuracy column"):
        pretext.evaluate({"provenance": {"videos": 1}}, pd.DataFrame(), tmp_path, None, {}, 0, checkpoint_dir=tmp_path)


# -- the tables -----------------------------------------------------------------------------------
@pytest.mark.parametrize("table", ["cmd_table5", "cmd_table7"])
def test_table_cells_are_runnable(table):
    assert "pretext" in IMPLEMENTED and PROTOCOLS["pretext"] == "protocols.pretext"
    runs = cell_runs(load_spec(f"tables/specs/{table}.yaml"), "smoke")
    assert runs and all(r.runnable for r in runs), [(r.row, r.column, r.reason) for r in runs if not r.runnable]


def test_table7_plot_inputs_come_from_the_spec():
    found = pretext.paper_curves("cmd", "full_c3d", "ucf101_split1")
    assert found == (("%s" % (pretext.SPECS / "cmd_table7.yaml"), ("hmdb51_split1",)),)
