"""The renderer shows a reproduced number only when a metrics file of a runnable cell holds it."""
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import tables.runs as runs
from tables.metrics import PROTOCOL_METRICS
from tables.render import CSV_COLUMNS, main, render

SPEC = {
    "paper": "maclr", "table": "table99", "title": "Tiny", "source": "x.txt", "tolerance": 1.0,
    "parts": [{
        "id": "a", "caption": "(a) tiny", "label_columns": ["method"],
        "value_columns": [{"name": "UCF", "metric": "top1", "eval": "ucf101_split1"},
                          {"name": "HMDB", "metric": "top1", "eval": "hmdb51_split1"}],
        "rows": [
            {"id": "ours", "labels": {"method": "Ours"}, "cells": {"UCF": 78.1, "HMDB": 47.2},
             "reproduce": {"method": "maclr", "variant": "maclr", "pretrain": "k400_mini",
                           "backbone": "r3d50_slowonly", "input": "8x8x224^2", "protocol": "linear"}},
            {"id": "base", "labels": {"method": "Base"},
             "cells": {"UCF": 63.6, "HMDB": {"value": None, "legibility": "illegible", "printed": "11 2"}},
             "reproduce": {"method": "maclr", "variant": "v_only", "pretrain": "k400_mini",
                           "backbone": "r3d50_slowonly", "input": "8x8x224^2", "protocol": "linear"}},
            {"id": "unimplemented", "labels": {"method": "Later"}, "cells": {"UCF": 70.0, "HMDB": 40.0},
             "reproduce": {"method": "maclr", "variant": "no_lm", "pretrain": "k400_mini",
                           "backbone": "r3d50_slowonly", "input": "8x8x224^2", "protocol": "linear"}},
            {"id": "delta", "labels": {"method": "Δ"}, "cells": {"UCF": 14.5, "HMDB": "-"}, "derived": "ours - base"},
            {"id": "coclr", "labels": {"method": "CoCLR [35]"}, "cells": {"UCF": 74.5, "HMDB": 46.1},
             "quoted": "[35] Han et al. NeurIPS 2020"},
        ],
    }],
}


def metrics_json(protocol: str, scale: str = "smoke", **values) -> dict:
    """A metrics file of `protocol` as protocols/cli.py writes it: every required key (50.0 for each
    metric), then `values`."""
    required = {name: 50.0 for name in PROTOCOL_METRICS[protocol].required}
    return {**required, "num_test_videos": 20, "views": "10x3", "scale": scale, "protocol": protocol, **values}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    spec_path = tmp_path / "maclr_table99.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC, allow_unicode=True))
    monkeypatch.setattr(runs, "method_variants", lambda m: ["maclr", "v_only"] if m == "maclr" else [])
    monkeypatch.setattr(runs, "dataset_ids", lambda: {"k400_mini", "ucf101_split1", "hmdb51_split1"})
    monkeypatch.setattr(runs, "implemented_protocols", lambda: {"linear"})
    results = tmp_path / "results" / "smoke"

    def write_metrics(variant, evaldata, top1, **extra):
        path = results / "eval" / "maclr" / variant / "k400_mini" / "linear" / f"{evaldata}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics_json("linear", top1=top1, **extra)))

    return spec_path, results, write_metrics


def _cells(spec_path, scale, results, tmp_path):
    cells = render(spec_path, scale, str(results), md=tmp_path / "t.md", csv=tmp_path / "t.csv",
                   png=tmp_path / "t.png", root=tmp_path)
    return {(c.row, c.column): c for c in cells}


def test_no_metrics_means_not_run(setup, tmp_path):
    spec_path, results, _ = setup
    cells = _cells(spec_path, "smoke", results, tmp_path)
    assert all(c.reproduced is None for c in cells.values())
    assert cells[("ours", "UCF")].status == "not run"
    assert cells[("coclr", "UCF")].status == "quoted"
    assert cells[("delta", "UCF")].status == "not run"
    md = (tmp_path / "t.md").read_text()
    assert "78.1 / – (not run)" in md and "74.5 (quoted)" in md and "illegible / – (not run)" in md
    assert (tmp_path / "t.png").stat().st_size > 0


def test_reproduced_numbers_come_from_metrics_files(setup, tmp_path):
    spec_path, results, write = setup
    write("maclr", "ucf101_split1", 61.2, flow_estimator="raft_things")
    write("v_only", "ucf101_split1", 50.0)
    # a metrics file of a variant the method does not list is never shown
    write("no_lm", "ucf101_split1", 99.9)
    cells = _cells(spec_path, "smoke", results, tmp_path)
    assert cells[("ours", "UCF")].reproduced == pytest.approx(61.2)
    assert cells[("ours", "UCF")].status == "smoke"
    assert cells[("ours", "HMDB")].status == "not run"          # file absent
    assert cells[("unimplemented", "UCF")].reproduced is None   # variant not implemented
    assert cells[("delta", "UCF")].reproduced == pytest.approx(11.2)
    assert cells[("coclr", "UCF")].reproduced is None
    md = (tmp_path / "t.md").read_text()
    assert "78.1 / 61.2 (Δ -16.9, smoke)" in md
    assert "raft_things" in md and "99.9" not in md
    frame = pd.read_csv(tmp_path / "t.csv")
    assert list(frame.columns) == CSV_COLUMNS
    assert len(frame) == 10
    shown = frame.dropna(subset=["reproduced"])
    assert sorted(shown["reproduced"].round(1)) == [11.2, 50.0, 61.2]


def test_full_scale_compares_with_tolerance(setup, tmp_path):
    spec_path, _, write = setup
    results = tmp_path / "results" / "full"
    for variant, evaldata, top1 in [("maclr", "ucf101_split1", 77.5), ("maclr", "hmdb51_split1", 40.0),
                                    ("v_only", "hmdb51_split1", 30.0)]:
        path = results / "eval" / "maclr" / variant / "k400_mini" / "linear" / f"{evaldata}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics_json("linear", "full", top1=top1)))
    cells = _cells(spec_path, "full", results, tmp_path)
    assert cells[("ours", "UCF")].status == "match"
    assert cells[("ours", "HMDB")].status == "differs"
    assert cells[("base", "HMDB")].status == "no paper value"


def test_missing_metric_key_is_named(setup, tmp_path, capsys):
    spec_path, results, write = setup
    path = results / "eval" / "maclr" / "maclr" / "k400_mini" / "linear" / "ucf101_split1.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"top5": 90.0}))
    rc = main(["--spec", str(spec_path), "--scale", "smoke", "--results", str(results),
               "--md", str(tmp_path / "t.md")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "ucf101_split1.json" in err and "top1" in err


def test_missing_spec_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit):
        main(["--spec", str(tmp_path / "nope.yaml"), "--scale", "smoke"])


COMPUTE_SPEC = {
    "paper": "mcl", "table": "table99", "title": "Tiny compute", "source": "x.txt", "tolerance": 1.0,
    "parts": [{
        "id": "", "label_columns": ["method"],
        "value_columns": [{"name": "#Param.", "metric": "mparams", "protocol": "compute"},
                          {"name": "FLOPs", "metric": "gflops", "protocol": "compute"},
                          {"name": "Top-1", "metric": "top1", "eval": "ucf101_split1"}],
        "rows": [
            {"id": "prp", "labels": {"method": "PRP [51]"}, "quoted": "[51] PRP",
             "cells": {"#Param.": {"value": 14.4, "legibility": "clear", "compute_key": "mcl_table3/prp/mparams"},
                       "FLOPs": {"value": 21.5, "legibility": "clear", "compute_key": "mcl_table3/prp/gflops"},
                       "Top-1": 32.1}},
            {"id": "ccl", "labels": {"method": "CCL [17]"}, "quoted": "[17] CCL",
             "cells": {"#Param.": 12.1, "FLOPs": 16.4, "Top-1": 52.1}},
            {"id": "ours", "labels": {"method": "Ours"},
             "cells": {"#Param.": {"value": 7.9, "legibility": "clear", "compute_key": "mcl_table3/ours/mparams"},
                       "FLOPs": 18.4, "Top-1": 79.9},
             "reproduce": {"method": "maclr", "variant": "maclr", "pretrain": "k400_mini",
                           "backbone": "s3d", "input": "16x224x224", "protocol": "linear"}},
        ],
    }],
}
COMPUTE_CSV_TEXT = (
    "key,quantity,paper_value,counted_value,verdict\n"
    "mcl_table3/prp/mparams,mparams,14.4,12.487,mismatch\n"
    "mcl_table3/prp/gflops,gflops,21.5,21.4,match\n"
    "mcl_table3/ours/mparams,mparams,7.9,7.91,match\n")


@pytest.fixture
def compute_setup(tmp_path, monkeypatch):
    spec_path = tmp_path / "mcl_table99.yaml"
    spec_path.write_text(yaml.safe_dump(COMPUTE_SPEC, allow_unicode=True))
    monkeypatch.setattr(runs, "method_variants", lambda m: ["maclr"] if m == "maclr" else [])
    monkeypatch.setattr(runs, "dataset_ids", lambda: {"k400_mini", "ucf101_split1"})
    monkeypatch.setattr(runs, "implemented_protocols", lambda: {"linear"})
    return spec_path, tmp_path / "results" / "smoke"


def _write_compute(tmp_path, text):
    path = tmp_path / runs.COMPUTE_CSV
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_compute_cells_read_their_key_from_compute_csv(compute_setup, tmp_path):
    spec_path, results = compute_setup
    _write_compute(tmp_path, COMPUTE_CSV_TEXT)
    cells = _cells(spec_path, "smoke", results, tmp_path)
    assert cells[("prp", "#Param.")].reproduced == pytest.approx(12.487)
    assert cells[("prp", "#Param.")].status == "differs"        # compute.csv's verdict, at any scale
    assert cells[("prp", "FLOPs")].reproduced == pytest.approx(21.4)
    assert cells[("prp", "FLOPs")].status == "match"
    assert cells[("ours", "#Param.")].reproduced == pytest.approx(7.91)
    # no key: a quoted row stays quoted, a reproduced row's default key is absent -> not run
    assert cells[("ccl", "FLOPs")].status == "quoted" and cells[("ccl", "FLOPs")].reproduced is None
    assert cells[("ours", "FLOPs")].status == "not run" and cells[("ours", "FLOPs")].reproduced is None
    assert cells[("prp", "Top-1")].status == "quoted"
    md = (tmp_path / "t.md").read_text()
    assert "14.4 / 12.49 (Δ -1.9, differs)" in md
    assert "no key mcl_table99//ours/FLOPs" in md


def test_compute_cells_without_compute_csv_are_not_run(compute_setup, tmp_path):
    spec_path, results = compute_setup
    cells = _cells(spec_path, "smoke", results, tmp_path)
    assert all(cells[(r, c)].reproduced is None for r in ("prp", "ours") for c in ("#Param.", "FLOPs"))
    assert cells[("prp", "FLOPs")].status == "not run"
    assert f"no {runs.COMPUTE_CSV}" in (tmp_path / "t.md").read_text()


def test_compute_key_of_another_quantity_is_an_error(compute_setup, tmp_path, capsys, monkeypatch):
    spec_path, results = compute_setup
    monkeypatch.chdir(tmp_path)  # main() reads results/compute/compute.csv under the working directory
    _write_compute(tmp_path, COMPUTE_CSV_TEXT.replace("mcl_table3/prp/gflops,gflops", "mcl_table3/prp/gflops,mparams"))
    rc = main(["--spec", str(spec_path), "--scale", "smoke", "--results", str(results), "--md", str(tmp_path / "t.md")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "mcl_table3/prp/gflops" in err and "gflops" in err
