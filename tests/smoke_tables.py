"""What the per-paper smoke DAG tests share: run a paper's table targets at smoke scale in a
repository copy, read the long-form table CSVs, and find a cell or the evaluation cells of a method."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tables.runs import cell_runs
from tables.schema import load_spec
from tests.conftest import repository_copy

SCALE = "smoke"
RESULTS = f"results/{SCALE}"


def dag_in_copy(tmp_path_factory, name: str, tables: list[str]) -> tuple[Path, dict[str, pd.DataFrame]]:
    """(repository copy, {table: long-form CSV}) after the tables' smoke DAG ran once in a fresh copy."""
    repo = repository_copy(tmp_path_factory.mktemp(f"{name}_smoke_repo"))
    return repo, run_tables(repo, tables)


def run_tables(repo: Path, tables: list[str]) -> dict[str, pd.DataFrame]:
    """{table: long-form CSV} after `snakemake tables/<table>.md ... --cores 2` at smoke scale in `repo`."""
    subprocess.run(
        [sys.executable, "-m", "snakemake", *[f"tables/{t}.md" for t in tables], "--cores", "2",
         "--config", f"scale={SCALE}", "--quiet", "rules"],
        cwd=repo, check=True,
    )
    return {t: read_table(repo / "tables" / f"{t}.csv") for t in tables}


def read_table(path: Path) -> pd.DataFrame:
    """A long-form table CSV; the part of a table with one part is "" (not NaN)."""
    return pd.read_csv(path, dtype={"part": str, "row": str, "column": str}, keep_default_na=False,
                       na_values={"paper": [""], "reproduced": [""], "delta": [""]})


def eval_cells(repo: Path, tables: list[str], methods: tuple[str, ...]):
    """(table, CellRun) of every evaluation cell of a row whose `reproduce` names one of `methods`."""
    for table in tables:
        spec = load_spec(repo / "tables/specs" / f"{table}.yaml")
        for run in cell_runs(spec, SCALE, RESULTS, root=repo):
            if run.method in methods and run.path is not None:
                yield table, run


def cell(frame: pd.DataFrame, part: str, row: str, column: str) -> pd.Series:
    found = frame[(frame["part"] == part) & (frame["row"] == row) & (frame["column"] == column)]
    assert len(found) == 1, (part, row, column)
    return found.iloc[0]


def checked_metrics(repo: Path, tables: dict[str, pd.DataFrame], table: str, run) -> dict:
    """The metrics file behind one evaluation cell, after checking that it is of this scale and
    protocol and that the table shows its number as a smoke value."""
    metrics = json.loads((repo / run.path).read_text())
    assert metrics["scale"] == SCALE and metrics["protocol"] == run.protocol
    value = cell(tables[table], run.part, run.row, run.column)
    assert value["status"] == "smoke" and value["scale"] == SCALE, (table, run.row, run.column)
    assert value["reproduced"] == pytest.approx(metrics[run.metric], abs=0.01), (table, run.row, run.column)
    return metrics


def assert_every_row_has_a_smoke_value(repo: Path, tables: dict[str, pd.DataFrame], table_names: list[str],
                                       methods: tuple[str, ...]) -> list[tuple[str, object, dict]]:
    """Check every evaluation cell of `methods`' rows with `checked_metrics` and that together they
    cover every spec row naming those methods; returns (table, CellRun, metrics) for further checks."""
    checked = [(table, run, checked_metrics(repo, tables, table, run)) for table, run in eval_cells(repo, table_names, methods)]
    assert {(table, run.part, run.row) for table, run, _ in checked} == reproducing_rows(repo, table_names, methods)
    return checked


def reproducing_rows(repo: Path, tables: list[str], methods: tuple[str, ...]) -> set[tuple[str, str, str]]:
    """(table, part, row) of every spec row whose `reproduce` names one of `methods`."""
    return {(t, part["id"], row["id"])
            for t in tables for part in yaml.safe_load((repo / "tables/specs" / f"{t}.yaml").read_text())["parts"]
            for row in part["rows"] if (row.get("reproduce") or {}).get("method") in methods}


def regression_key(table: str, run) -> str:
    """A cell's column name in a regression baseline."""
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{table}_{run.part}_{run.row}_{run.column}").strip("_")


def one_test_video(run, metrics: dict) -> float:
    """A cell's regression tolerance in points: one test video of its evaluation set flipping."""
    return 100.0 / metrics["num_test_videos"]


def check_regression(num_regression, repo: Path, tables: dict[str, pd.DataFrame], cells, tolerance=one_test_video) -> None:
    """Hold every (table, CellRun) of `cells` to the test's regression baseline, each within
    `tolerance(run, metrics)` points of the value the baseline recorded."""
    values, tolerances = {}, {}
    for table, run in cells:
        key = regression_key(table, run)
        metrics = json.loads((repo / run.path).read_text())
        values[key] = [float(cell(tables[table], run.part, run.row, run.column)["reproduced"])]
        tolerances[key] = {"atol": tolerance(run, metrics) + 1e-6, "rtol": 0}
    num_regression.check(values, tolerances=tolerances)
