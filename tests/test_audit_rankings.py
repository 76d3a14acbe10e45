"""Ranking claims (sentences that rank methods without a number) on tiny specs: each verdict kind, the
rows that break a claim, and the paper's own ranking claims validating against the specs and texts."""
import re
from pathlib import Path

import pytest
import yaml

from tables.audit import AMBIGUOUS, CONSISTENT, INCONSISTENT, audit, breaking_cells
from tables.audit_rankings import load_rankings, ranking_checks
from tables.schema import SpecError, load_all_specs

ROOT = Path(__file__).resolve().parent.parent
RANKINGS = sorted((ROOT / "tables" / "claims" / "rankings").glob("*.yaml"))
PAPERS = ROOT.parent / "shared" / "papers"


def _spec(rows):
    return {"paper": "maclr", "table": "table2", "title": "t", "source": "s.txt", "tolerance": 1.0,
            "parts": [{"id": "a", "label_columns": ["m", "data"],
                       "value_columns": [{"name": "UCF", "metric": "top1", "eval": "ucf101_split1"},
                                         {"name": "HMDB", "metric": "top1", "eval": "hmdb51_split1"}],
                       "rows": rows}]}


def _row(rid, data, ucf, hmdb):
    return {"id": rid, "labels": {"m": rid, "data": data}, "cells": {"UCF": ucf, "HMDB": hmdb}, "quoted": "[1]"}


ROWS = [
    {"id": "ours", "labels": {"m": "Ours", "data": "K400"}, "cells": {"UCF": 90.0, "HMDB": 60.0},
     "reproduce": {"method": "maclr", "variant": "maclr", "pretrain": "k400", "backbone": "r3d50", "input": "8",
                   "protocol": "linear"}},
    _row("small", "K400", 80.0, 50.0),
    _row("near", "K400", 89.5, 59.0),
    _row("big_data", "IG65M", 91.0, 58.0),
    _row("blurred", "K400", 85.0, {"value": None, "legibility": "illegible", "printed": "5?.1"}),
    _row("no_hmdb", "K400", 70.0, None),
]


def _claim(cid, *readings):
    return {"id": cid, "location": "§4", "quote": "q", "readings": list(readings)}


def _reading(text, **group):
    return {"reading": text, "conditions": "c", **group}


ALL = dict(subject=["maclr_table2/a/ours"], against=["maclr_table2/a/*"], exclude=["maclr_table2/a/blurred"])
K400 = dict(ALL, where={"data": "K400"})


@pytest.fixture
def findings(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "claims" / "rankings").mkdir(parents=True)
    (tmp_path / "specs" / "maclr_table2.yaml").write_text(yaml.safe_dump(_spec(ROWS)))
    claims = [
        _claim("holds", _reading("against K400 rows", **K400)),
        _claim("fails_everywhere", _reading("all rows", **ALL), _reading("UCF only", **ALL, columns=["UCF"])),
        _claim("two_readings", _reading("all rows", **ALL), _reading("same data", **K400)),
        _claim("illegible", _reading("with the blurred row", subject=["maclr_table2/a/ours"], against=["maclr_table2/a/blurred"])),
        _claim("only_near_comparable", _reading("1 point", relation="comparable", margin=1.0,
                                                close=["maclr_table2/a/near"], **K400)),
        _claim("comparable_missing_one", _reading("1 point", relation="comparable", margin=1.0,
                                                  close=["maclr_table2/a/big_data"], **ALL)),
        _claim("most_holds", _reading("most", relation="most", **ALL)),
        _claim("most_fails", _reading("most", relation="most", **dict(ALL, subject=["maclr_table2/a/small"]))),
        _claim("comparable_not_only", _reading("near only", relation="comparable", margin=1.0, only=False,
                                               close=["maclr_table2/a/near"], **ALL)),
        _claim("clear_margin", _reading("1 point", margin=1.0, **K400), _reading("0.4 point", margin=0.4, **K400)),
        _claim("across_columns", _reading("own HMDB", subject=["maclr_table2/a/ours"], against=["maclr_table2/a/ours"],
                                          columns=["UCF"], against_column="HMDB"),
               _reading("UCF of others", subject=["maclr_table2/a/small"], against=["maclr_table2/a/ours"],
                        columns=["HMDB"], against_column="UCF")),
    ]
    (tmp_path / "claims" / "rankings" / "maclr.yaml").write_text(yaml.safe_dump(claims, allow_unicode=True))
    return {f.id: f for f in audit(tmp_path / "specs", tmp_path / "claims") if f.check == "ranking"}


def test_a_claim_no_row_breaks_is_consistent(findings):
    f = findings["holds"]
    assert f.verdict == CONSISTENT and "holds: none of 5 comparisons breaks it" in f.arithmetic  # 3 rows x 2 columns, less no_hmdb's "-"


def test_a_claim_failing_under_every_reading_is_inconsistent_and_names_the_rows(findings):
    f = findings["fails_everywhere"]
    assert f.verdict == INCONSISTENT and f.computed == "fails | fails"
    assert "big_data (maclr_table2/a/big_data) UCF 91 > 90" in f.arithmetic
    assert "HMDB" not in f.arithmetic.split("|")[1]  # the UCF-only reading compares UCF only


def test_readings_that_disagree_are_ambiguous_with_both_shown(findings):
    f = findings["two_readings"]
    assert f.verdict == AMBIGUOUS and f.computed == "fails | holds"
    assert "reading 1 (all rows; c): fails: broken by big_data" in f.arithmetic and "reading 2 (same data; c): holds" in f.arithmetic


def test_an_illegible_cell_leaves_the_reading_unresolved(findings):
    f = findings["illegible"]
    assert f.verdict == AMBIGUOUS and "maclr_table2/a/blurred/HMDB is illegible" in f.arithmetic


def test_comparable_names_rows_close_to_the_subject(findings):
    assert findings["only_near_comparable"].verdict == CONSISTENT
    f = findings["comparable_missing_one"]
    assert f.verdict == INCONSISTENT and "near (maclr_table2/a/near) UCF 89.5 is within 1 of 90 or above, yet not named" in f.arithmetic


def test_most_holds_when_more_than_half_are_below(findings):
    assert findings["most_holds"].verdict == CONSISTENT  # UCF: big_data above, 3 of 4 below; HMDB: 3 of 3 below
    f = findings["most_fails"]
    assert f.verdict == INCONSISTENT and "UCF: only 1 of 4 rows below 80 of small; not below: Ours (maclr_table2/a/ours) UCF 90" in f.arithmetic


def test_comparable_without_only_leaves_the_other_rows_free(findings):
    assert findings["comparable_not_only"].verdict == CONSISTENT  # big_data, 91 > 90, is not named and not held


def test_above_with_a_margin_needs_every_row_that_far_below(findings):
    f = findings["clear_margin"]  # near: 89.5 and 59 against 90 and 60
    assert f.verdict == AMBIGUOUS and f.computed == "fails | holds"
    assert "near (maclr_table2/a/near) UCF 89.5 is within 1 of 90 of ours or above" in f.arithmetic


def test_against_column_compares_a_row_with_another_column(findings):
    f = findings["across_columns"]
    assert f.verdict == AMBIGUOUS and f.computed == "holds | fails"  # ours UCF 90 > its HMDB 60; small HMDB 50 < ours UCF
    assert "reading 1 (own HMDB; c): holds: none of 1 comparisons" in f.arithmetic
    assert "Ours (maclr_table2/a/ours) UCF 90 > 50 of small HMDB" in f.arithmetic


def test_bad_ranking_claims_are_named(tmp_path):
    specs_dir, folder = tmp_path / "specs", tmp_path / "claims" / "rankings"
    specs_dir.mkdir()
    folder.mkdir(parents=True)
    (specs_dir / "maclr_table2.yaml").write_text(yaml.safe_dump(_spec(ROWS)))
    specs = load_all_specs(specs_dir)
    bad = {
        "names no row": _claim("x", _reading("r", subject=["maclr_table2/a/ours"], against=["maclr_table2/a/zzz*"])),
        "compares no pair": _claim("x", _reading("r", subject=["maclr_table2/a/ours"], against=["maclr_table2/a/*"],
                                                 where={"data": "K600"})),
        "relation": _claim("x", _reading("r", relation="better", **ALL)),
        "unknown keys": _claim("x", _reading("r", rows=["a"], **ALL)),
        "no column 'R@1'": _claim("x", _reading("r", against_column="R@1", **ALL)),
    }
    for message, claim in bad.items():
        (folder / "maclr.yaml").write_text(yaml.safe_dump([claim]))
        with pytest.raises(SpecError, match=message) as err:
            ranking_checks(tmp_path / "claims", specs)
        assert "maclr.yaml" in str(err.value) and "'x'" in str(err.value)


def test_breaking_cells_of_an_ordering_expression():
    refs = [f"t/a/r{i}/UCF" for i in range(4)]
    assert breaking_cells("c[0] > max(c[1:])", refs, [60.0, 50.0, 61.0, 60.0], "w") == [
        "r2/UCF 61 vs r0/UCF 60", "r3/UCF 60 vs r0/UCF 60"]
    assert breaking_cells("c[0] == max(c)", refs, [60.0, 50.0, 61.0, 60.0], "w") == ["r2/UCF 61 vs r0/UCF 60"]
    assert breaking_cells("c[0] < c[1] < c[2] and c[3] > c[0]", refs, [1.0, 3.0, 2.0, 5.0], "w") == [
        "3 < 2 is false (r1/UCF 3, r2/UCF 2)"]
    assert breaking_cells("min(c[0:3]) > c[3]", refs, [5.0, 3.0, 6.0, 4.0], "w") == ["r1/UCF 3 vs r3/UCF 4"]


def test_ranking_claims_resolve():
    """Every comparison set of the suite's ranking claims names rows that exist and compares cells."""
    findings = ranking_checks(ROOT / "tables" / "claims", load_all_specs(ROOT / "tables" / "specs"))
    assert len(findings) == sum(len(load_rankings(p)) for p in RANKINGS)


@pytest.mark.parametrize("path", RANKINGS, ids=[p.name for p in RANKINGS])
def test_ranking_claims_quote_the_paper(path):
    specs = load_all_specs(ROOT / "tables" / "specs")
    claims = load_rankings(path)
    assert claims
    if not PAPERS.is_dir():
        pytest.skip(f"paper extractions not present at {PAPERS}")
    sources = {s.source for s in specs.values() if s.paper == path.stem}
    squash = lambda t: re.sub(r"\s+", " ", t).strip()  # noqa: E731
    text = " ".join(squash((PAPERS / src).read_text()) for src in sources)
    missing = [c.id for c in claims if squash(c.quote) not in text]
    assert not missing, f"{path.name}: quotes not found verbatim in the paper: {missing}"
