"""The MCL tables' DAG at smoke scale: `snakemake tables/mcl_table1.md ... tables/mcl_table5.md` in a
copy of the repository, from fixture generation and TV-L1 caches through the 29 MCL pretraining
runs (and Table 3's two supervised ImageNet stand-in runs) and their SVM, linear, retrieval and
fine-tuning evaluations to the rendered tables; then a regression check of the reproduced numbers.

Smoke numbers test the pipeline, not the paper. The regression tolerance of a cell is one test
video (one query for retrieval) of the evaluation set behind it, so a change that moves a result
by more than a single flipped prediction is seen.

Table 3's #Param. and FLOPs cells read results/compute/compute.csv, which the `compute` rule
writes for the five papers' networks at full size (counts independent of the scale; minutes of
CPU, most of it the HCML sweep; tests/test_compute.py checks every claim). The fixture writes it
with the same function, `tables.compute.run`, restricted to the claims Table 3 reads, before
Snakemake runs; the DAG then finds the compute job's outputs newer than its inputs and does not
run it, and the table's compute cells are real counts."""
import json
from pathlib import Path

import pytest
import yaml

from tables import compute
from tables.schema import load_spec
from tests.conftest import repository_copy
from tests.smoke_tables import assert_every_row_has_a_smoke_value, cell, check_regression, eval_cells, run_tables

TABLES = [f"mcl_table{i}" for i in range(1, 6)]


def count_table3_claims(repo: Path, work: Path) -> None:
    """The compute rule's outputs in `repo`, counted for the claims mcl_table3's cells name."""
    spec = load_spec(repo / "tables/specs/mcl_table3.yaml")
    keys = {cell.compute_key for _, _, _, cell in spec.cells() if cell.compute_key}
    claims = [c for c in compute.load_claims(repo / "tables/compute_claims.yaml")["claims"] if compute.claim_key(c) in keys]
    assert {compute.claim_key(c) for c in claims} == keys
    path = work / "mcl_table3_claims.yaml"
    path.write_text(yaml.safe_dump({"claims": claims, "calibration": [], "hcml_pmb_sweep": {"targets": []}}))
    compute.run(path, repo / "tables/compute.md", repo / "tables/compute.csv", repo / "results/compute/compute.csv")


@pytest.fixture(scope="module")
def mcl_dag(tmp_path_factory):
    """(repository copy, {table: long-form CSV}) after the MCL tables' smoke DAG ran once."""
    repo = repository_copy(tmp_path_factory.mktemp("mcl_smoke_repo"))
    count_table3_claims(repo, tmp_path_factory.mktemp("mcl_claims"))
    return repo, run_tables(repo, TABLES)


def mcl_eval_cells(repo: Path):
    """(table, CellRun) of every evaluation cell of a row whose `reproduce` names mcl."""
    return eval_cells(repo, TABLES, ("mcl",))


@pytest.mark.smoke
def test_every_mcl_row_has_a_reproduced_smoke_value_from_its_metrics_file(mcl_dag):
    repo, tables = mcl_dag
    checked = assert_every_row_has_a_smoke_value(repo, tables, TABLES, ("mcl",))
    assert all(run.runnable for _, run, _ in checked), [(t, run.row, run.reason) for t, run, _ in checked if not run.runnable]
    assert len({(table, run.part, run.row) for table, run, _ in checked}) == 26 + 4 + 3 + 3 + 2


@pytest.mark.smoke
def test_repeated_rows_read_one_metrics_file(mcl_dag):
    """Table 2's w/o L_MAL and L_MAL-v3 rows and Table 3's UCF101 MCL rows are Table 1's runs."""
    _, tables = mcl_dag
    t1, t2, t3 = tables["mcl_table1"], tables["mcl_table2"], tables["mcl_table3"]
    assert cell(t2, "", "mcl_wo_mal", "Top-1")["reproduced"] == cell(t1, "r2plus1d", "ta_sa", "R(2+1)D")["reproduced"]
    assert cell(t2, "", "mcl_mal_v3", "Top-1")["reproduced"] == cell(t1, "r2plus1d", "full", "R(2+1)D")["reproduced"]
    assert cell(t3, "", "mcl_r2plus1d_ucf101", "Top-1")["reproduced"] == cell(t1, "r2plus1d", "full", "R(2+1)D")["reproduced"]
    assert cell(t3, "", "mcl_s3d_ucf101", "Top-1")["reproduced"] == cell(t1, "s3d", "full", "S3D")["reproduced"]


@pytest.mark.smoke
def test_rows_without_a_run_say_why(mcl_dag):
    """Rows without a run say why in the table; Table 3's compute cells of MCL rows are counted."""
    repo, tables = mcl_dag
    t3 = tables["mcl_table3"]
    text = (repo / "tables/mcl_table3.md").read_text()
    why = text.split("## Why cells are not run", 1)[1]
    assert "Training Time: the paper's pretraining time in days on one Nvidia P40 GPU, which no run here measures" in why
    for row in ("mcl_r2plus1d_ucf101", "mcl_s3d_ucf101", "mcl_r2plus1d_k400"):
        assert cell(t3, "", row, "Training Time")["status"] == "not run"
    for row in ("mcl_r2plus1d_ucf101", "mcl_s3d_ucf101", "mcl_r2plus1d_k400"):
        for column in ("#Param.", "FLOPs"):
            assert cell(t3, "", row, column)["status"] in ("match", "differs"), (row, column)


# row -> (printed method label, backbone of the checkpoint, whether the 2D stand-in is inflated)
SUPERVISED_ROWS = {"imagenet_inflated_r2plus1d": ("ImageNet infla.", "r2plus1d50", True),
                   "supervised_imagenet_r50": ("Supervised ImageNet", "r2d50", False)}


@pytest.mark.smoke
def test_supervised_imagenet_rows_run_on_the_stand_in_and_say_so(mcl_dag):
    """Table 3's supervised ImageNet rows are runs of methods/supervised on the smoke ImageNet stand-in
    (a 2D R2D-50 trained on K400 fixture frames; inflated into R(2+1)D-50 for "ImageNet infla."), and
    every cell they feed names the stand-in."""
    repo, tables = mcl_dag
    t3 = tables["mcl_table3"]
    runs = {run.row: run for _, run in eval_cells(repo, ["mcl_table3"], ("supervised",))}
    assert set(runs) == set(SUPERVISED_ROWS)
    text = (repo / "tables/mcl_table3.md").read_text()
    for row, (label, backbone, inflated) in SUPERVISED_ROWS.items():
        run = runs[row]
        metrics = json.loads((repo / run.path).read_text())
        value = cell(t3, "", row, "Top-1")
        assert value["status"] == "smoke" and value["reproduced"] == pytest.approx(metrics["top1"], abs=0.01)
        assert metrics["stand_in"].startswith("ImageNet stand-in: 2D r2d50 trained on single frames")
        assert (f"inflated into {backbone}" in metrics["stand_in"]) == inflated
        line = next(l for l in text.splitlines() if l.startswith(f"| {label} |"))
        assert f"[{metrics['stand_in']}" in line or f"; {metrics['stand_in']}" in line, line  # the cell's deviations


@pytest.mark.smoke
def test_mcl_supervised_smoke_regression(mcl_dag, num_regression):
    """The supervised rows' values (the MCL rows' baseline is test_mcl_smoke_regression's)."""
    repo, tables = mcl_dag
    check_regression(num_regression, repo, tables, eval_cells(repo, ["mcl_table3"], ("supervised",)))


@pytest.mark.smoke
def test_mcl_smoke_regression(mcl_dag, num_regression):
    repo, tables = mcl_dag
    check_regression(num_regression, repo, tables, mcl_eval_cells(repo))
