"""The auditor's verdicts: held by a regression file for MaCLR and HCML, and checked on tiny specs."""
import re
from pathlib import Path

import pytest
import yaml

from tables.audit import AMBIGUOUS, CIRCULAR, CONSISTENT, INCONSISTENT, audit, main

ROOT = Path(__file__).resolve().parent.parent
OWN = ("maclr", "hcml")


@pytest.fixture(scope="module")
def suite_findings():
    """The audit of the suite's own specs and claims, run once for the tests that read it."""
    return audit(ROOT / "tables" / "specs", ROOT / "tables" / "claims")


def test_maclr_hcml_verdicts(data_regression, suite_findings):
    """A transcription change that flips a verdict of MaCLR's or HCML's checks shows up here."""
    findings = suite_findings
    verdicts = {}
    for f in findings:
        papers = f.paper.split("+")
        if all(p in OWN for p in papers):
            verdicts[f"{f.check}:{f.paper}:{f.id}:{f.location}" if f.check.startswith("cross_paper")
                     else f"{f.check}:{f.id}"] = f.verdict
    assert verdicts
    data_regression.check(verdicts)


def test_cmd_mcl_ctrlaug_claim_verdicts(data_regression, suite_findings):
    """The claim, ranking and Δ-row verdicts of the other three papers (cross-paper pairs excluded)."""
    findings = suite_findings
    verdicts = {f"{f.check}:{f.paper}:{f.id}": f.verdict for f in findings
                if f.paper in ("cmd", "mcl", "ctrlaug") and f.check in ("claim", "ranking", "internal")}
    assert verdicts
    data_regression.check(verdicts)


def test_cross_paper_setting_verdicts(data_regression, suite_findings):
    """Every pair of quotes of one cited result whose printed settings differ, across the five papers."""
    findings = suite_findings
    verdicts = {f"{f.paper}:{f.id}:{f.location}": f.verdict for f in findings if f.check == "cross_paper_setting"}
    assert verdicts
    data_regression.check(verdicts)


def test_readme_states_the_verdict_counts(suite_findings):
    """The README's table of verdict counts per check is the audit's."""
    section = (ROOT / "README.md").read_text().split("## Auditing", 1)[1].split("\n## ", 1)[0]
    findings = suite_findings
    assert f"({len(findings)} checks)" in section
    for check in sorted({f.check for f in findings}):
        row = next((line for line in section.splitlines() if line.startswith(f"| `{check}`")), None)
        assert row, f"README has no row for check {check}"
        stated = [int(x) if x.strip() else 0 for x in row.strip("|").split("|")[1:]]
        counted = [sum(f.check == check and f.verdict == v for f in findings)
                   for v in (CONSISTENT, INCONSISTENT, AMBIGUOUS, CIRCULAR)]
        assert stated == counted, f"{check}: README says {stated}, the audit counts {counted}"


def test_readme_states_the_ranking_claims_per_paper(suite_findings):
    """The README's count of ranking claims, in all and per paper, is the claims files'."""
    section = (ROOT / "README.md").read_text().split("## Auditing", 1)[1].split("\n## ", 1)[0]
    names = {"maclr": "MaCLR", "hcml": "HCML", "mcl": "MCL", "ctrlaug": "Controllable Augmentations", "cmd": "CMD"}
    match = re.search(r"(\d+) ranking claims \(([^)]*)\)", " ".join(section.split()))
    assert match, "README does not state the number of ranking claims"
    stated = {name.strip(): int(n) for name, n in re.findall(r"([A-Za-z ]+?) (\d+)(?:,|$)", match.group(2))}
    counted = {names[p]: sum(f.check == "ranking" and f.paper == p for f in suite_findings) for p in names}
    assert int(match.group(1)) == sum(counted.values()) and stated == counted, (match.group(0), counted)


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
        _claim("order_fails", "other is best", ["maclr_table1/a/other/UCF", "maclr_table1/a/ours/UCF"], True,
               "c[0] > max(c[1:])", kind="max"),
        _claim("order_two_readings", "other is close", ["maclr_table1/a/other/UCF", "maclr_table1/a/ours/UCF"], True,
               "c[0] > c[1]", kind="order", alternatives=["c[0] > c[1] - 10"]),
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


def test_failing_orderings_name_the_cells_that_break_them(findings):
    """An ordering claim inconsistent under its only reading names the breaking cell; one whose
    readings disagree is ambiguous and names what breaks the failing reading."""
    f = findings["order_fails"]
    assert f.verdict == INCONSISTENT and "reading 1 broken by: ours/UCF 78.1 vs other/UCF 70" in f.arithmetic
    f = findings["order_two_readings"]
    assert f.verdict == AMBIGUOUS and "reading 1 broken by: 70 > 78.1 is false (other/UCF 70, ours/UCF 78.1)" in f.arithmetic


def test_internal_delta_rows(findings):
    assert findings["maclr_table1/a/delta_ok/UCF"].verdict == CONSISTENT
    assert findings["maclr_table1/a/delta_bad/UCF"].verdict == INCONSISTENT


def test_cross_paper_same_setting_only(findings):
    cross = [f for f in findings.values() if f.check == "cross_paper"]
    assert len(cross) == 1, [f.location for f in cross]  # the finetune quote is another setting
    assert cross[0].verdict == INCONSISTENT and "74.5" in cross[0].arithmetic and "70.2" in cross[0].arithmetic


def _quoted(rid, ucf, labels, setting):
    return {"id": rid, "labels": {"m": rid, **labels}, "cells": {"UCF": ucf}, "quoted": "[1]", "work": "memdpc",
            "setting": setting}


def _labelled_spec(paper, rows):
    spec = _spec(paper, rows)
    spec["parts"][0]["label_columns"] = ["m", "arch", "mod"]
    return spec


def test_cross_paper_settings(tmp_path):
    """One cited result quoted with two printed settings: the same number under two backbones or
    modalities is inconsistent; different numbers whose only possible pairing differs in backbone
    are ambiguous; another pretraining set or protocol is another result; spellings agree."""
    k400 = {"pretrain": "k400", "protocol": "finetune"}
    a = [_quoted("same_num", 78.1, {"arch": "R3D-34", "mod": "V"}, {**k400, "backbone": "r3d34"}),
         _quoted("flow", 74.5, {"arch": "S3D", "mod": "V+F"}, {**k400, "backbone": "s3d", "protocol": "linear"}),
         _quoted("only_pair", 86.1, {"arch": "R3D-18", "mod": "V"}, {**k400, "backbone": "r3d18", "input": "16x112x112",
                                                                   "protocol": "svm"}),
         _quoted("spelled", 60.0, {"arch": "R(2+1)D-18", "mod": "V"}, {**k400, "backbone": "r2plus1d18", "input": "112^2",
                                                                     "protocol": "knn"}),
         _quoted("ucf_pre", 50.0, {"arch": "R3D-34", "mod": "V"}, {**k400, "backbone": "r3d34", "pretrain": "ucf101_split1"})]
    b = [_quoted("same_num", 78.1, {"arch": "R-2D3D-34", "mod": "V"}, {**k400, "backbone": "r2d3d34"}),
         _quoted("flow", 74.5, {"arch": "S3D", "mod": "V"}, {**k400, "backbone": "s3d", "protocol": "linear"}),
         _quoted("only_pair", 80.0, {"arch": "S3D-G", "mod": "V"}, {**k400, "backbone": "s3dg", "input": "224^2",
                                                                  "protocol": "svm"}),
         _quoted("spelled", 61.0, {"arch": "R(2+1)D", "mod": "V"}, {**k400, "backbone": "r2plus1d_r50",
                                                                  "input": "8x8x112^2", "protocol": "knn"})]
    specs_dir, claims_dir = _write(tmp_path, {"ctrlaug_table1": _labelled_spec("ctrlaug", a),
                                              "maclr_table1": _labelled_spec("maclr", b)}, {})
    found = {(f.check, f.location.split(" vs ")[0].split("/")[2], f.location.split(" vs ")[1].split("/")[2]): f
             for f in audit(specs_dir, claims_dir) if f.check.startswith("cross_paper")}
    same = found[("cross_paper_setting", "same_num", "same_num")]
    assert same.verdict == INCONSISTENT and "backbone: ctrlaug r3d34, maclr r2d3d34" in same.quote
    assert "the same number under two printed settings" in same.arithmetic and "arch=R-2D3D-34" in same.arithmetic
    flow = found[("cross_paper_setting", "flow", "flow")]
    assert flow.verdict == INCONSISTENT and "modality: ctrlaug V+F, maclr V" in flow.quote
    only = found[("cross_paper_setting", "only_pair", "only_pair")]
    assert only.verdict == AMBIGUOUS and "input size: ctrlaug 112, maclr 224" in only.quote
    # printed "R(2+1)D" leaves out the depth of "R(2+1)D-18"; 112^2 is 16x112x112's frame size: same setting
    assert found[("cross_paper", "spelled", "spelled")].verdict == INCONSISTENT
    # UCF101 pretraining is another result of the work: not paired with the K400 rows on its setting
    assert not [k for k in found if "ucf_pre" in k]
    assert len(found) == 4, sorted(found)


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
