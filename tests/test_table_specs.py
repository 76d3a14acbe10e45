"""Every table spec and claims file validates, and its paper numbers are what the paper prints."""
import re
from pathlib import Path

import pytest

from tables.schema import load_all_specs, load_claims, load_spec, resolve_ref, safe_eval

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "tables" / "specs").glob("*.yaml"))
CLAIMS = sorted((ROOT / "tables" / "claims").glob("*.yaml"))
PAPERS = ROOT.parent / "shared" / "papers"


def _ids(paths):
    return [p.name for p in paths]


def _paper_text(source: str) -> str:
    path = PAPERS / source
    if not PAPERS.is_dir():
        pytest.skip(f"paper extractions not present at {PAPERS}")
    assert path.exists(), f"spec names source {source!r}, absent from {PAPERS}"
    return path.read_text()


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _printed_forms(value: float) -> list[str]:
    forms = [f"{value:.1f}", f"{value:.2f}"]
    if float(value).is_integer():
        forms.append(str(int(value)))
    return forms


def _occurs(number: str, text: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", text) is not None


@pytest.mark.parametrize("path", SPECS, ids=_ids(SPECS))
def test_spec_validates(path):
    spec = load_spec(path)
    assert spec.parts and all(part.rows for part in spec.parts)


@pytest.mark.parametrize("path", SPECS, ids=_ids(SPECS))
def test_clear_numbers_are_printed_in_the_paper(path):
    spec = load_spec(path)
    text = _paper_text(spec.source)
    missing = []
    for part, row, col, cell in spec.cells():
        if cell.legibility != "clear":
            continue
        forms = [cell.printed] if cell.printed else _printed_forms(cell.value)
        if not any(_occurs(f, text) for f in forms):
            missing.append(f"{part.id}/{row.id}/{col.name}={forms[0]}")
    assert not missing, f"{path.name}: clear numbers not printed in {spec.source}: {missing}"


@pytest.mark.parametrize("path", SPECS, ids=_ids(SPECS))
def test_reconstructions_come_from_the_papers_prose(path):
    spec = load_spec(path)
    text = _squash(_paper_text(spec.source))
    for part, row, col, cell in spec.cells():
        if cell.legibility != "reconstructed":
            continue
        where = f"{path.name}: {part.id}/{row.id}/{col.name}"
        assert _squash(cell.quote) in text, f"{where}: quote not found in {spec.source}"
        assert safe_eval(cell.derivation, {}, where) == pytest.approx(cell.value, abs=1e-6)
        for number in re.findall(r"\d+(?:\.\d+)?", cell.derivation):
            assert _occurs(number, text), f"{where}: derivation uses {number}, not printed in {spec.source}"


@pytest.mark.parametrize("path", CLAIMS, ids=_ids(CLAIMS))
def test_claims_validate_and_resolve(path):
    specs = load_all_specs(ROOT / "tables" / "specs")
    for claim in load_claims(path):
        for ref in claim.cells:
            resolve_ref(specs, ref, f"{path.name}: claim {claim.id}")


@pytest.mark.parametrize("path", CLAIMS, ids=_ids(CLAIMS))
def test_claim_quotes_are_in_the_paper(path):
    specs = load_all_specs(ROOT / "tables" / "specs")
    sources = {s.source for s in specs.values() if s.paper == path.stem}
    assert sources, f"{path.name}: no spec of paper {path.stem}"
    text = " ".join(_squash(_paper_text(src)) for src in sources)
    missing = [c.id for c in load_claims(path) if _squash(c.quote) not in text]
    assert not missing, f"{path.name}: quotes not found verbatim in the paper: {missing}"


def test_bad_spec_errors_name_file_row_and_column(tmp_path):
    bad = tmp_path / "maclr_table1.yaml"
    bad.write_text(
        "paper: maclr\ntable: table1\ntitle: t\nsource: s\ntolerance: 1\nparts:\n"
        "  - id: a\n    label_columns: [m]\n    value_columns: [{name: UCF, metric: top1, eval: u}]\n"
        "    rows:\n      - {id: r1, labels: {m: x}, cells: {UCF: {value: 1.0, legibility: fuzzy}}, quoted: q}\n")
    with pytest.raises(Exception) as err:
        load_spec(bad)
    message = str(err.value)
    assert "maclr_table1.yaml" in message and "'r1'" in message and "'UCF'" in message and "fuzzy" in message


def test_reconstruction_must_match_its_derivation(tmp_path):
    bad = tmp_path / "maclr_table1.yaml"
    bad.write_text(
        "paper: maclr\ntable: table1\ntitle: t\nsource: s\ntolerance: 1\nparts:\n"
        "  - id: a\n    label_columns: [m]\n    value_columns: [{name: UCF, metric: top1, eval: u}]\n"
        "    rows:\n      - {id: r1, labels: {m: x}, quoted: q, cells: {UCF: {value: 74.0, legibility: reconstructed,"
        " quote: q, derivation: '78.1 - 3.5'}}}\n")
    with pytest.raises(Exception, match="derivation"):
        load_spec(bad)


def _claim_rows():
    import yaml
    data = yaml.safe_load((ROOT / "tables" / "compute_claims.yaml").read_text())
    return {c["key"]: c for c in data["claims"]}


def _label_in(label: str, row: str) -> bool:
    """A spec row's printed method label (citation dropped, spacing normalised) within a claim's row."""
    norm = lambda t: re.sub(r"\s+([,:])", r"\1", re.sub(r"\[[^\]]*\]", "", t)).strip()
    return norm(label) in norm(row)


@pytest.mark.parametrize("path", SPECS, ids=_ids(SPECS))
def test_compute_keys_name_a_counted_claim_of_the_same_row_and_quantity(path):
    """Every compute_key is the key of a claim in tables/compute_claims.yaml of the same table, same
    quantity as the column's metric, whose row names the spec row; every claim of the table is used."""
    spec = load_spec(path)
    claims = _claim_rows()
    wrong, used = [], set()
    for part, row, col, cell in spec.cells():
        if not cell.compute_key:
            continue
        where = f"{part.id}/{row.id}/{col.name}"
        claim = claims.get(cell.compute_key)
        if claim is None:
            wrong.append(f"{where}: {cell.compute_key} is no key of tables/compute_claims.yaml")
            continue
        used.add(cell.compute_key)
        if f"{claim['paper']}_{claim['table']}" != spec.key:
            wrong.append(f"{where}: {cell.compute_key} is a claim of {claim['paper']}_{claim['table']}")
        if claim["quantity"] != col.metric:
            wrong.append(f"{where}: {cell.compute_key} counts {claim['quantity']}, the column is {col.metric}")
        if not _label_in(row.labels[part.label_columns[0]], claim["row"]):
            wrong.append(f"{where}: row {row.labels[part.label_columns[0]]!r} not in claim row {claim['row']!r}")
        network = row.labels.get("network")
        if network and network not in claim["row"]:
            wrong.append(f"{where}: network {network!r} not in claim row {claim['row']!r}")
    unused = sorted(k for k, c in claims.items() if f"{c['paper']}_{c['table']}" == spec.key and k not in used)
    assert not wrong, "\n".join(wrong)
    assert not unused, f"{path.name}: compute claims no cell points at: {unused}"


def test_a_column_no_run_produces_says_why_in_every_cell():
    """MCL Table 3's Training Time (P40 GPU-days) is measured by no run: each reproduced row's cell is
    not runnable, and its reason says what is missing, whether or not compute.csv exists."""
    from tables.runs import cell_runs

    spec = load_spec(ROOT / "tables" / "specs" / "mcl_table3.yaml")
    runs = [r for r in cell_runs(spec, "smoke", "results/smoke") if r.column == "Training Time"]
    assert {r.row for r in runs} >= {"mcl_r2plus1d_ucf101", "mcl_s3d_ucf101", "mcl_r2plus1d_k400"}
    for run in runs:
        assert not run.runnable and run.compute_key is None
        assert run.reason.startswith("Training Time: ") and "P40" in run.reason and "CPU cores" in run.reason
