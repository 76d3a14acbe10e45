"""MaCLR Tables 2, 4 and 5 at smoke scale: `snakemake tables/maclr_table2.md ... tables/maclr_table5.md`
in the checkout (as tests/test_smoke_dag.py, whose K400 pretrainings of MaCLR and V-only these
tables evaluate again at their own clips, and Table 3's supervised K400 one), from the SSv2, VidSitu
and AVA fixtures through the R3D-18 pretraining, the scratch baseline's random start and the
evaluations to the rendered tables; then
a regression check of the reproduced numbers.

Smoke numbers test the pipeline, not the paper. The regression tolerance of a cell is one test
video of the evaluation set behind it (one event for VidSitu, one proposal box for AVA)."""
import json

import pytest
import yaml

from protocols.ava_eval import ava_frame_map
from tests.conftest import ROOT
from tests.smoke_tables import SCALE, cell, check_regression, eval_cells, run_tables

TABLES = ["maclr_table2", "maclr_table4", "maclr_table5"]
OWN_METHODS = ("maclr", "random_init", "supervised")


@pytest.fixture(scope="module")
def maclr_dag():
    return run_tables(ROOT, TABLES)


def own_cells():
    return eval_cells(ROOT, TABLES, OWN_METHODS)


@pytest.mark.smoke
def test_every_runnable_maclr_and_scratch_row_has_a_smoke_value_from_its_metrics_file(maclr_dag):
    rows, waiting = set(), set()
    for table, run in own_cells():
        if not run.runnable:
            waiting.add((table, run.row, run.protocol))
            continue
        metrics = json.loads((ROOT / run.path).read_text())
        assert metrics["scale"] == SCALE and metrics["protocol"] == run.protocol
        value = cell(maclr_dag[table], run.part, run.row, run.column)
        assert value["status"] == "smoke", (table, run.row, run.column)
        assert value["reproduced"] == pytest.approx(metrics[run.metric], abs=0.01), (table, run.row, run.column)
        rows.add((table, run.part, run.row))
    spec_rows = {(t, part["id"], row["id"])
                 for t in TABLES for part in yaml.safe_load((ROOT / "tables/specs" / f"{t}.yaml").read_text())["parts"]
                 for row in part["rows"] if (row.get("reproduce") or {}).get("method") in OWN_METHODS}
    assert rows == spec_rows and not waiting


@pytest.mark.smoke
def test_600_epoch_rows_evaluate_the_shared_checkpoint_at_their_clips(maclr_dag):
    """Table 2's UCF101 cells read MaCLR's K400 checkpoint (the one Tables 1 and 3 evaluate) at 8x2,
    the smoke scale's 32x8; Table 4b's VidSitu cells at 8x1 (16x4), one 2-second event a row."""
    runs = {(t, r.part, r.row, r.column): r for t, r in own_cells()}
    ucf = json.loads((ROOT / runs["maclr_table2", "linear", "maclr_k400_r3d50_224", "UCF"].path).read_text())
    assert ucf["checkpoint"].endswith("pretrain/maclr/maclr/k400/checkpoint.pt")
    assert (ucf["clip"]["num_frames"], ucf["clip"]["stride"]) == (8, 2) and ucf["pretrain_clip"]["num_frames"] == 4
    verbs = json.loads((ROOT / runs["maclr_table4", "b", "maclr", "rec@5"].path).read_text())
    assert (verbs["clip"]["num_frames"], verbs["clip"]["stride"]) == (8, 1) and verbs["recall_verbs"] >= 1
    ssv2 = json.loads((ROOT / runs["maclr_table4", "a", "maclr", "Full"].path).read_text())
    assert ssv2["views"] == "1x1"  # SSv2's recipe: one test view
    fused = json.loads((ROOT / runs["maclr_table2", "finetune", "maclr_k400_r3d50_224_vf", "UCF"].path).read_text())
    assert {"visual_top1", "motion_top1"} <= set(fused) and fused["clip"]["num_frames"] == 8  # V+F at the 32x8 of §4.2


@pytest.mark.smoke
def test_detection_rows_are_their_prediction_files_scored_by_the_ava_evaluator(maclr_dag):
    """Table 5: each row's mAP is its predictions CSV scored against the validation ground truth by
    protocols.ava_eval, from 8x8 clips (4x2 at smoke) and stand-in proposals the cell names."""
    annotations = ROOT / "results" / SCALE / "data" / "AVA" / "annotations"
    rows = 0
    for table, run in own_cells():
        if run.protocol != "detection":
            continue
        metrics = json.loads((ROOT / run.path).read_text())
        assert (metrics["clip"]["num_frames"], metrics["clip"]["stride"]) == (4, 2) and metrics["num_classes"] == 60
        assert metrics["num_test_keyframes"] == 3 and metrics["val_videos_left_out"] == []
        result = ava_frame_map(ROOT / metrics["ground_truth"], ROOT / metrics["predictions"],
                               annotations / "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
                               annotations / "ava_val_excluded_timestamps_v2.2.csv")
        assert 100 * result["map"] == pytest.approx(metrics["map"]) and result["gt_excluded_rows"] > 0
        rows += 1
    assert rows == 5
    rendered = (ROOT / "tables" / "maclr_table5.md").read_text().split("## Runs")[0]
    assert rendered.count("proposals stand-in: ground-truth person boxes jittered") == 5  # each cell says so


@pytest.mark.smoke
def test_maclr_tables245_smoke_regression(maclr_dag, num_regression):
    check_regression(num_regression, ROOT, maclr_dag, [(table, run) for table, run in own_cells() if run.runnable],
                     lambda run, metrics: 100.0 / (metrics["num_proposals"] if run.protocol == "detection" else metrics["num_test_videos"]))
