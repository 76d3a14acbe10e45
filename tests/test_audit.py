"""The auditor's verdicts: held by a regression file for MaCLR and HCML, and checked on tiny specs."""
from pathlib import Path

import pytest
import yaml

from tables.audit import AMBIGUOUS, CIRCULAR, CONSISTENT, INCONSISTENT, audit, main

ROOT = Path(__file__).resolve().parent.parent
OWN = ("maclr", "hcml")


def test_maclr_hcml_verdicts(data_regression):
    """A transcription change that flips a verdict of MaCLR's or HCML's checks shows up here."""
    findings = audit(ROOT / "tables" / "specs", ROOT / "tables" / "claims")
    verdicts = {}
    for f in findings:
        papers = f.paper.split("+")
        if all(p in OWN for p in papers):
            verdicts[f"{f.check}:{f.paper}:{f.id}:{f.location}" if f.check == "cross_paper" else f"{f.check}:{f.id}"] = f.verdict
    assert verdicts
    data_regression.check(verdicts)


def test_cmd_mcl_ctrlaug_claim_verdicts(data_regression):
    """The claim, ranking and Δ-row verdicts of the other three papers (cross-paper pairs excluded)."""
    findings = audit(ROOT / "tables" / "specs", ROOT / "tables" / "claims")
    verdicts = {f"{f.check}:{f.paper}:{f.id}": f.verdict for f in findings
                if f.paper in ("cmd", "mcl", "ctrlaug") and f.check in ("claim", "ranking", "internal")}
    assert verdicts
    data_regression.check(verdicts)


def _write(tmp_path, specs: dict, claims: dict):
    (tmp_path / "specs").mkdir()
    (tmp_path / "claims").mkdir()
    for name, spec in specs.items():
        (tmp_path / "specs" / f"{name}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    for name, items in claims.items():
        (tmp_path / "claims" / f"{name}.yaml").write_text(yaml.safe_dump(items, allow_unicode=True))
    return tmp_path / "specs", tmp_path / "claims"


def _spec(paper, rows, table="table1"):
    return {"paper": paper, "table": table, "title": "t", "source": "s.txt", "tolerance": 1.0,
            "parts": [{"id": "a", "label_columns": ["m"],
                       "value_columns": [{"name": "UCF", "metric": "top1", "eval": "ucf101_split1"}], "rows": rows}]}


RUN = {"method": "maclr", "variant": "maclr", "pretrain": "k400", "backbone": "r3d50", "input": "8", "protocol": "linear"}


def _claim(cid, quote, cells, stated, expression, **kw):
    return {"id": cid, "location": "§1", "quote": quote, "kind": "difference", "cells": cells, "stated": stated,
            "expression": expression, "tolerance": 0.05, **kw}


@pytest.fixture
def findings(tmp_path):
    rows = [
        {"id": "ours", "labels": {"m": "Ours"}, "cells": {"UCF": 78.1}, "reproduce": RUN},
        {"id": "base", "labels": {"m": "Base"}, "cells": {"UCF": {"value": 74.6, "legibility": "reconstructed",
                                                                  "quote": "+3.5 on UCF", "derivation": "78.1 - 3.5"}},
         "reproduce": {**RUN, "variant": "v_only"}},
        {"id": "flow", "labels": {"m": "Flow"}, "cells": {"UCF": {"value": None, "legibility": "illegible", "printed": "11 2"}},
         "reproduce": {**RUN, "variant": "flow"}},
        {"id": "other", "labels": {"m": "Other"}, "cells": {"UCF": 70.0}, "reproduce": {**RUN, "variant": "other"}},
        {"id": "delta_ok", "labels": {"m": "Δ"}, "cells": {"UCF": 8.1}, "derived": "ours - other"},
        {"id": "delta_bad", "labels": {"m": "Δ2"}, "cells": {"UCF": 9.0}, "derived": "ours - other"},
        {"id": "coclr", "labels": {"m": "CoCLR [35]"}, "cells": {"UCF": 74.5}, "quoted": "[35]",
         "setting": {"pretrain": "k400", "backbone": "s3d", "protocol": "linear"}},
    ]
    other = [{"id": "coclr", "labels": {"m": "CoCLR [9]"}, "cells": {"UCF": 70.2}, "quoted": "[9]",
              "setting": {"pretrain": "k400", "backbone": "s3d", "protocol": "linear"}},
             {"id": "coclr_ft", "labels": {"m": "CoCLR [9]"}, "cells": {"UCF": 90.0}, "quoted": "[9]",
              "setting": {"pretrain": "k400", "backbone": "s3d", "protocol": "finetune"}}]
    claims = [
        _claim("ok", "beats Other by 8.1", ["maclr_table1/a/ours/UCF", "maclr_table1/a/other/UCF"], 8.1, "c[0] - c[1]"),
        _claim("wrong", "beats Other by 7.0", ["maclr_table1/a/ours/UCF", "maclr_table1/a/other/UCF"], 7.0, "c[0] - c[1]"),
        _claim("circular", "+3.5 on UCF", ["maclr_table1/a/ours/UCF", "maclr_table1/a/base/UCF"], 3.5, "c[0] - c[1]"),
        _claim("illegible", "Flow is 4.0 below", ["maclr_table1/a/ours/UCF", "maclr_table1/a/flow/UCF"], 4.0, "c[0] - c[1]"),
        _claim("two_readings", "by 8", ["maclr_table1/a/ours/UCF", "maclr_table1/a/other/UCF", "maclr_table1/a/base/UCF"], 8.1,
               "c[0] - c[1]", alternatives=["c[0] - c[2]"]),
        _claim("order", "ours is best", ["maclr_table1/a/ours/UCF", "maclr_table1/a/other/UCF"], True, "c[0] > c[1]", kind="order"),
    ]
    specs_dir, claims_dir = _write(tmp_path, {"maclr_table1": _spec("maclr", rows), "mcl_table1": _spec("mcl", other)},
                                   {"maclr": claims})
    return {f.id: f for f in audit(specs_dir, claims_dir)}


def test_claim_verdicts(findings):
    assert findings["ok"].verdict == CONSISTENT
    assert findings["wrong"].verdict == INCONSISTENT
    assert "78.1 - 70 = 8.1" in findings["wrong"].arithmetic
    assert findings["circular"].verdict == CIRCULAR
    assert findings["illegible"].verdict == AMBIGUOUS
    assert findings["two_readings"].verdict == AMBIGUOUS
    assert findings["order"].verdict == CONSISTENT


def test_internal_delta_rows(findings):
    assert findings["maclr_table1/a/delta_ok/UCF"].verdict == CONSISTENT
    assert findings["maclr_table1/a/delta_bad/UCF"].verdict == INCONSISTENT


def test_cross_paper_same_setting_only(findings):
    cross = [f for f in findings.values() if f.check == "cross_paper"]
    assert len(cross) == 1, [f.location for f in cross]  # the finetune quote is another setting
    assert cross[0].verdict == INCONSISTENT and "74.5" in cross[0].arithmetic and "70.2" in cross[0].arithmetic


def test_cli_writes_reports_and_names_bad_files(tmp_path, capsys):
    specs_dir, claims_dir = _write(tmp_path, {"maclr_table1": _spec("maclr", [
        {"id": "ours", "labels": {"m": "Ours"}, "cells": {"UCF": 78.1}, "reproduce": RUN}])},
        {"maclr": [_claim("x", "q", ["maclr_table1/a/nope/UCF"], 1.0, "c[0]")]})
    assert main(["--specs", str(specs_dir), "--claims", str(claims_dir), "--md", str(tmp_path / "a.md")]) == 1
    err = capsys.readouterr().err
    assert "maclr.yaml" in err and "'x'" in err and "nope" in err
    (claims_dir / "maclr.yaml").write_text("[]\n")
    assert main(["--specs", str(specs_dir), "--claims", str(claims_dir), "--md", str(tmp_path / "a.md"),
                 "--csv", str(tmp_path / "a.csv")]) == 0
    assert (tmp_path / "a.csv").read_text().startswith("paper,check,id")
