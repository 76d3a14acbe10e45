"""The paper-versus-code register (tables/discrepancies.yaml): its schema, its links to the table
specs, the config files and the papers, and its section of the audit report."""
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tables import discrepancies as register
from tables.audit import main
from tables.schema import SpecError, load_spec

ROOT = Path(__file__).resolve().parent.parent
REGISTER = ROOT / "tables" / "discrepancies.yaml"
SPECS = ROOT / "tables" / "specs"
PAPERS = ROOT.parent / "shared" / "papers"
RAW = yaml.safe_load(REGISTER.read_text())
SPEC_IDS = {p.stem for p in SPECS.glob("*.yaml")}


def _ids():
    return [e.get("id", str(i)) for i, e in enumerate(RAW)]


def test_register_loads_with_specs_and_configs():
    entries = register.load_discrepancies(REGISTER, SPEC_IDS, ROOT)
    assert len(entries) == len(RAW) and len({e.id for e in entries}) == len(entries)
    assert {e.paper for e in entries} >= {"mcl", "cmd", "maclr"}


@pytest.mark.parametrize("entry", RAW, ids=_ids())
def test_entry_has_every_field(entry):
    missing = [k for k in register.FIELDS if k not in entry]
    assert not missing, f"{entry.get('id')}: missing {missing}"
    for key in register.PAPER_FIELDS:
        assert str(entry["paper_says"].get(key) or "").strip(), f"{entry['id']}: paper_says.{key} empty"
    for key in register.CODE_FIELDS:
        assert str(entry["code"].get(key) or "").strip(), f"{entry['id']}: code.{key} empty"
    assert entry["verified"] in (True, False)
    assert entry["suite_follows"] in register.SUITE_FOLLOWS
    if not entry["verified"]:
        assert "could not" in entry["verification"] or "no " in entry["verification"].lower(), \
            f"{entry['id']}: an unverified entry says why"


@pytest.mark.parametrize("entry", RAW, ids=_ids())
def test_tables_are_specs(entry):
    assert entry["tables"], entry["id"]
    for table in entry["tables"]:
        assert table in SPEC_IDS, f"{entry['id']}: {table} is not in tables/specs"


@pytest.mark.parametrize("entry", [e for e in RAW if e["switch"] != "none"], ids=lambda e: e["id"])
def test_switch_key_exists_in_its_config(entry):
    file, _, key = entry["switch"].partition(":")
    node = yaml.safe_load((ROOT / file).read_text())
    for part in key.split("."):
        assert isinstance(node, dict) and part in node, f"{entry['id']}: {file} has no {key}"
        node = node[part]
    assert entry.get("switch_value") is not None, entry["id"]


def _paper_sources() -> dict:
    out = {}
    for path in sorted(SPECS.glob("*.yaml")):
        spec = load_spec(path)
        out.setdefault(spec.paper, spec.source)
    return out


@pytest.mark.parametrize("entry", RAW, ids=_ids())
def test_quote_is_in_the_paper(entry):
    if not PAPERS.is_dir():
        pytest.skip(f"paper extractions not present at {PAPERS}")
    text = re.sub(r"\s+", " ", (PAPERS / _paper_sources()[entry["paper"]]).read_text())
    quote = re.sub(r"\s+", " ", entry["paper_says"]["quote"]).strip()
    assert quote in text, f"{entry['id']}: quote not found in the {entry['paper']} paper"


def _bad(tmp_path, **change):
    entry = {**RAW[0], **change}
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump([entry], allow_unicode=True))
    return path


def test_validation_names_entry_and_fault(tmp_path):
    with pytest.raises(SpecError, match=r"'mcl_init_inflated_moco'.*no_such_table"):
        register.load_discrepancies(_bad(tmp_path, tables=["no_such_table"]), SPEC_IDS, ROOT)
    with pytest.raises(SpecError, match=r"has no key 'optimizer.nope'"):
        register.load_discrepancies(_bad(tmp_path, switch="methods/mcl/config.yaml:optimizer.nope"), SPEC_IDS, ROOT)
    with pytest.raises(SpecError, match=r"does not exist"):
        register.load_discrepancies(_bad(tmp_path, switch="methods/nope/config.yaml:x"), SPEC_IDS, ROOT)
    with pytest.raises(SpecError, match=r"neither 'none'"):
        register.load_discrepancies(_bad(tmp_path, switch="init"), SPEC_IDS, ROOT)
    with pytest.raises(SpecError, match=r"suite_follows"):
        register.load_discrepancies(_bad(tmp_path, suite_follows="both"), SPEC_IDS, ROOT)
    entry = dict(RAW[0])
    del entry["verification"]
    (tmp_path / "e.yaml").write_text(yaml.safe_dump([entry]))
    with pytest.raises(SpecError, match=r"missing verification"):
        register.load_discrepancies(tmp_path / "e.yaml", SPEC_IDS, ROOT)


def test_audit_report_carries_the_register(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    common = ["--specs", "tables/specs", "--claims", "tables/claims"]
    assert main(common + ["--md", str(tmp_path / "plain.md")]) == 0
    assert main(common + ["--md", str(tmp_path / "a.md"), "--csv", str(tmp_path / "a.csv"),
                          "--discrepancies", str(REGISTER), "--discrepancies-csv", str(tmp_path / "d.csv")]) == 0
    plain, md = (tmp_path / "plain.md").read_text(), (tmp_path / "a.md").read_text()
    assert "## Paper versus code" in md and "## Paper versus code" not in plain
    assert md.startswith(plain.rstrip("\n"))  # verdict counts and sections unchanged, the register appended
    section = md.split("## Paper versus code", 1)[1]
    assert "| id | paper | statement | code | location | tables affected | suite follows | switch | verified |" in section
    for entry in RAW:
        assert f"| {entry['id']} |" in section
    verified = sum(e["verified"] for e in RAW)
    assert f"{len(RAW)} entries ({verified} verified in the code, {len(RAW) - verified} not verified)" in section
    csv = (tmp_path / "d.csv").read_text().splitlines()
    assert csv[0].split(",") == register.CSV_COLUMNS and len(csv) >= len(RAW) + 1


def test_readme_states_the_count():
    readme = (ROOT / "README.md").read_text()
    assert f"{len(RAW)} entries" in readme.split("## Auditing", 1)[1].split("\n## ", 1)[0]


# A folder of bare clones of the authors' repositories, `<owner>+<name>/repo` each, named by the
# environment variable AUTHORS_CODE_MIRRORS; without it the line checks below are skipped.
MIRRORS = Path(os.environ["AUTHORS_CODE_MIRRORS"]) if os.environ.get("AUTHORS_CODE_MIRRORS") else None
COMMITS = dict(re.findall(r"^#\s+(\S+/\S+)\s.*?([0-9a-f]{40})$", REGISTER.read_text(), flags=re.M))


@pytest.mark.parametrize("entry", [e for e in RAW if e["verified"]], ids=[e["id"] for e in RAW if e["verified"]])
def test_verified_entries_name_a_file_and_line_that_exist(entry):
    """A verified entry cites its file and line (`l. <n>`); the file exists in the authors' repository
    at the commit the register's header names, and is at least as long as the first cited line."""
    code = entry["code"]
    lines = [int(n) for n in re.findall(r"\bl\. ?(\d+)", code["where"])]
    assert lines, f"{entry['id']}: code.where names no line (l. <n>): {code['where']!r}"
    assert code["repo"] in COMMITS, f"{entry['id']}: the header names no commit for {code['repo']}"
    if MIRRORS is None:
        pytest.skip("set AUTHORS_CODE_MIRRORS to a folder of bare clones of the authors' repositories")
    git_dir = MIRRORS / code["repo"].replace("/", "+") / "repo"
    if not git_dir.is_dir():
        pytest.skip(f"no mirror of {code['repo']} at {git_dir}")
    shown = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{COMMITS[code['repo']]}:{code['file']}"],
                           capture_output=True, text=True)
    assert shown.returncode == 0, f"{entry['id']}: {code['file']} not at {COMMITS[code['repo']]}: {shown.stderr}"
    assert len(shown.stdout.splitlines()) >= lines[0], f"{entry['id']}: {code['file']} is shorter than l. {lines[0]}"
