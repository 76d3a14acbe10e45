"""The CMD tables' DAG at smoke scale: `snakemake tables/cmd_table1.md ... tables/cmd_table9.md` in a
copy of the repository, from fixture generation, the MPEG-4 transcodes and compressed-domain caches
(and TV-L1 flow for Table 4's flow row) through the CMD pretraining runs, the Scratch baselines'
random starts and their retrieval, fine-tuning and pretext evaluations to the rendered tables;
then a regression check of the reproduced numbers.

Smoke numbers test the pipeline, not the paper. The regression tolerance of a cell is one test
video (one query for retrieval) of the evaluation set behind it, so a change that moves a result
by more than a single flipped prediction is seen; pretext accuracies (Table 7) are held to 0.5
points."""
from pathlib import Path

import pytest

from tests.smoke_tables import (RESULTS, assert_every_row_has_a_smoke_value, cell, check_regression, dag_in_copy,
                                eval_cells, one_test_video)

TABLES = [f"cmd_table{i}" for i in range(1, 10)]
OWN_METHODS = ("cmd", "random_init")


@pytest.fixture(scope="module")
def cmd_dag(tmp_path_factory):
    """(repository copy, {table: long-form CSV}) after the CMD tables' smoke DAG ran once."""
    return dag_in_copy(tmp_path_factory, "cmd", TABLES)


def own_cells(repo: Path):
    """(table, CellRun) of every evaluation cell of a row whose `reproduce` names CMD or its Scratch baseline."""
    return eval_cells(repo, TABLES, OWN_METHODS)


@pytest.mark.smoke
def test_every_cmd_and_scratch_row_has_a_smoke_value_from_its_metrics_file(cmd_dag):
    repo, tables = cmd_dag
    assert_every_row_has_a_smoke_value(repo, tables, TABLES, OWN_METHODS)
    assert all(run.runnable for _, run in own_cells(repo))


@pytest.mark.smoke
def test_table7_curves_are_plotted(cmd_dag):
    repo, _ = cmd_dag
    assert (repo / RESULTS / "eval/cmd/full_c3d/ucf101_split1/pretext/ucf101_split1.png").stat().st_size > 0


@pytest.mark.smoke
def test_repeated_rows_read_one_metrics_file(cmd_dag):
    """Table 1's baseline, Table 4's and Table 5's V-Network rows are Table 9's C3D run; Table 6's
    plain rows are Table 2's Scratch runs; Table 3's are Table 2's R(2+1)D-26 runs at ep120."""
    _, t = cmd_dag
    c3d = cell(t["cmd_table9"], "", "cmd_c3d_ucf101", "UCF101 R@1")["reproduced"]
    assert cell(t["cmd_table1"], "", "cmd_c3d", "UCF101")["reproduced"] == c3d
    assert cell(t["cmd_table4"], "", "cmd_c3d", "UCF101 R@1")["reproduced"] == c3d
    assert cell(t["cmd_table5"], "", "v_network", "UCF101 R@1")["reproduced"] == c3d
    for backbone in ("c3d", "r2plus1d26", "r3d26"):
        assert (cell(t["cmd_table6"], "", f"scratch_{backbone}", "UCF101 Top1")["reproduced"]
                == cell(t["cmd_table2"], "", f"scratch_{backbone}", "UCF101")["reproduced"])
    assert cell(t["cmd_table3"], "", "scratch", "ep120")["reproduced"] == cell(t["cmd_table2"], "", "scratch_r2plus1d26", "UCF101")["reproduced"]
    assert cell(t["cmd_table3"], "", "cmd_k400", "ep120")["reproduced"] == cell(t["cmd_table2"], "", "cmd_r2plus1d26_k400", "UCF101")["reproduced"]


@pytest.mark.smoke
def test_cmd_smoke_regression(cmd_dag, num_regression):
    repo, tables = cmd_dag
    check_regression(num_regression, repo, tables, own_cells(repo),
                     lambda run, metrics: 0.5 if run.protocol == "pretext" else one_test_video(run, metrics))
