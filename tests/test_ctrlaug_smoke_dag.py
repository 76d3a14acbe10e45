"""The Controllable Augmentations tables' DAG at smoke scale: `snakemake tables/ctrlaug_table1.md ...
tables/ctrlaug_table7.md` in a copy of the repository, from fixture generation through the
pretraining runs of every variant the specs name (Tables 1-3's runs on UCF101 and Kinetics-400,
Ours*, 224 x 224, R3D-34, and the Tables 4-7 ablations), the Scratch R3D-18's random start, the
linear, fine-tuning (UCF101, HMDB51, Diving-48) and retrieval evaluations to the rendered tables;
then a regression check of the reproduced numbers.

Smoke numbers test the pipeline, not the paper. The regression tolerance of a cell is one test
video (one query for retrieval) of the evaluation set behind it."""
from pathlib import Path

import pytest

from tests.smoke_tables import (RESULTS, assert_every_row_has_a_smoke_value, cell, check_regression, dag_in_copy,
                                eval_cells)

TABLES = [f"ctrlaug_table{i}" for i in range(1, 8)]
OWN_METHODS = ("ctrlaug", "random_init")


@pytest.fixture(scope="module")
def ctrlaug_dag(tmp_path_factory):
    """(repository copy, {table: long-form CSV}) after the seven tables' smoke DAG ran once."""
    return dag_in_copy(tmp_path_factory, "ctrlaug", TABLES)


def own_cells(repo: Path):
    """(table, CellRun) of every evaluation cell of a row whose `reproduce` names ctrlaug or its Scratch baseline."""
    return eval_cells(repo, TABLES, OWN_METHODS)


@pytest.mark.smoke
def test_every_ctrlaug_and_scratch_row_has_a_smoke_value_from_its_metrics_file(ctrlaug_dag):
    repo, tables = ctrlaug_dag
    for table, run, metrics in assert_every_row_has_a_smoke_value(repo, tables, TABLES, OWN_METHODS):
        assert metrics["recipe"] == "ctrlaug", (table, run.row)  # §4.2's 10 centre-cropped clips, also for the Scratch row
        assert metrics["views"].startswith("10x1"), (table, run.row, metrics["views"])
    assert all(run.runnable for _, run in own_cells(repo))


@pytest.mark.smoke
def test_runs_log_the_shortcut_estimates_and_the_correspondence_time(ctrlaug_dag):
    repo, _ = ctrlaug_dag
    log = (repo / RESULTS / "pretrain/ctrlaug/abl_default/ucf101_split1/log.csv").read_text().splitlines()
    header = log[0].split(",")
    for column in ("loss_rc", "loss_mi", "loss_td", "mi_estimate", "mi_local_global", "correspondence_ms"):
        assert column in header, header
    nce = (repo / RESULTS / "pretrain/ctrlaug/abl_obj_nce/ucf101_split1/log.csv").read_text().splitlines()[0].split(",")
    assert "loss_nce" in nce and "loss_rc" not in nce


@pytest.mark.smoke
def test_repeated_rows_read_one_metrics_file(ctrlaug_dag):
    """The default ablation run is Table 4's K = 4, T_v = 8, Table 5's (4, 2, 4), Table 6's GRU and
    Table 7's full objective; Table 6's None is Table 7's (L_rc, L_mi)."""
    _, t = ctrlaug_dag
    for column in ("UCF-101", "HMDB-51"):
        default = cell(t["ctrlaug_table4"], "", "k4_tv8", column)["reproduced"]
        assert cell(t["ctrlaug_table5"], "", "levels_4_2_4", column)["reproduced"] == default
        assert cell(t["ctrlaug_table6"], "", "gru", column)["reproduced"] == default
        assert cell(t["ctrlaug_table7"], "", "rc_mi_td", column)["reproduced"] == default
        assert cell(t["ctrlaug_table6"], "", "none", column)["reproduced"] == cell(t["ctrlaug_table7"], "", "rc_mi", column)["reproduced"]


@pytest.mark.smoke
def test_ctrlaug_smoke_regression(ctrlaug_dag, num_regression):
    repo, tables = ctrlaug_dag
    check_regression(num_regression, repo, tables, own_cells(repo))
