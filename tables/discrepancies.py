"""The register of differences between each paper and its authors' public code (tables/discrepancies.yaml).

`load_discrepancies(path, spec_ids, root)` reads and validates it; `markdown_section` renders the
"Paper versus code" section of tables/audit.md and `frame` the rows of tables/discrepancies.csv.
The fields are documented at the top of tables/discrepancies.yaml. Every error is a `SpecError`
naming the file and the entry.

A switch is `<config file>:<dotted key>` (`methods/mcl/config.yaml:optimizer.warmup_epochs`), the
file relative to the repository root: the key must exist in that YAML file, or the entry is
refused, so a renamed setting cannot leave the register pointing at nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from core.io import load_yaml
from tables.schema import ID_RE, PAPERS, SpecError

KINDS = ("contradiction", "unstated", "addition")
SUITE_FOLLOWS = ("paper", "code", "code in part", "neither", "not built")
NO_SWITCH = "none"
FIELDS = ("id", "paper", "kind", "paper_says", "code", "tables", "suite_follows", "suite_note", "switch",
          "verified", "verification")
OPTIONAL = ("switch_value",)
PAPER_FIELDS = ("quote", "location")
CODE_FIELDS = ("repo", "file", "where", "does")
CSV_COLUMNS = ["id", "paper", "kind", "paper_quote", "paper_location", "code_repo", "code_file", "code_where",
               "code_does", "tables", "suite_follows", "suite_note", "switch", "switch_value", "verified",
               "verification"]


@dataclass
class Discrepancy:
    id: str
    paper: str
    kind: str
    paper_quote: str
    paper_location: str
    code_repo: str
    code_file: str
    code_where: str
    code_does: str
    tables: list[str]
    suite_follows: str
    suite_note: str
    switch: str
    switch_value: str
    verified: bool
    verification: str


def _text(d: dict, key: str, where: str) -> str:
    value = d.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value.strip()


def parse_switch(switch: str, where: str = "") -> tuple[str, list[str]]:
    """`file:dotted.key` -> (file, key parts); SpecError when it is not of that form."""
    file, sep, key = switch.partition(":")
    if not sep or not file.endswith((".yaml", ".yml")) or not key or any(not p for p in key.split(".")):
        raise SpecError(f"{where}: switch {switch!r} is neither '{NO_SWITCH}' nor '<config file>.yaml:<dotted key>'")
    return file, key.split(".")


def check_switch(switch: str, root: str | Path, where: str = "", _cache: dict | None = None) -> None:
    """SpecError unless the switch's key exists in its config file under `root`."""
    file, keys = parse_switch(switch, where)
    path = Path(root) / file
    cache = {} if _cache is None else _cache
    if path not in cache:
        if not path.is_file():
            raise SpecError(f"{where}: switch {switch!r} names {file}, which does not exist")
        cache[path] = load_yaml(path.read_text()) or {}
    node = cache[path]
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise SpecError(f"{where}: switch {switch!r}: {file} has no key {'.'.join(keys[:i + 1])!r}")
        node = node[key]


def load_discrepancies(path: str | Path, spec_ids=None, root: str | Path | None = None) -> list[Discrepancy]:
    """The register, validated: every field present, kinds and `suite_follows` known, table ids among
    `spec_ids` (when given), switches present in their config files under `root` (when given)."""
    path = Path(path)
    try:
        raw = load_yaml(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SpecError(f"{path}: cannot be read as YAML: {err}") from None
    if not isinstance(raw, list) or not raw:
        raise SpecError(f"{path}: must be a non-empty list of entries")
    out, seen, cache = [], set(), {}
    for i, entry in enumerate(raw):
        where = f"{path}: entry {i + 1}"
        if not isinstance(entry, dict):
            raise SpecError(f"{where}: must be a mapping")
        if isinstance(entry.get("id"), str):
            where = f"{path}: entry '{entry['id']}'"
        missing = [k for k in FIELDS if k not in entry]
        if missing:
            raise SpecError(f"{where}: missing {', '.join(missing)}")
        unknown = sorted(set(entry) - set(FIELDS) - set(OPTIONAL))
        if unknown:
            raise SpecError(f"{where}: unknown keys {', '.join(unknown)}")
        eid = _text(entry, "id", where)
        if not ID_RE.match(eid):
            raise SpecError(f"{where}: id must be lower-case letters, digits and underscores")
        if eid in seen:
            raise SpecError(f"{where}: id used twice")
        seen.add(eid)
        paper = _text(entry, "paper", where)
        if paper not in PAPERS:
            raise SpecError(f"{where}: paper {paper!r} is not one of {', '.join(PAPERS)}")
        if entry["kind"] not in KINDS:
            raise SpecError(f"{where}: kind {entry['kind']!r} is not one of {', '.join(KINDS)}")
        if entry["suite_follows"] not in SUITE_FOLLOWS:
            raise SpecError(f"{where}: suite_follows {entry['suite_follows']!r} is not one of {', '.join(SUITE_FOLLOWS)}")
        says, code = entry["paper_says"], entry["code"]
        if not isinstance(says, dict) or sorted(says) != sorted(PAPER_FIELDS):
            raise SpecError(f"{where}: paper_says must have exactly {', '.join(PAPER_FIELDS)}")
        if not isinstance(code, dict) or sorted(code) != sorted(CODE_FIELDS):
            raise SpecError(f"{where}: code must have exactly {', '.join(CODE_FIELDS)}")
        texts = {k: _text(says, k, f"{where}: paper_says") for k in PAPER_FIELDS}
        texts.update({k: _text(code, k, f"{where}: code") for k in CODE_FIELDS})
        tables = entry["tables"]
        if not isinstance(tables, list) or not tables or not all(isinstance(t, str) for t in tables):
            raise SpecError(f"{where}: tables must be a non-empty list of spec ids")
        if spec_ids is not None:
            unknown_tables = [t for t in tables if t not in spec_ids]
            if unknown_tables:
                raise SpecError(f"{where}: tables {', '.join(unknown_tables)} are not specs in tables/specs")
        if not isinstance(entry["verified"], bool):
            raise SpecError(f"{where}: verified must be true or false")
        switch = _text(entry, "switch", where)
        value = entry.get("switch_value")
        if switch == NO_SWITCH:
            if value is not None:
                raise SpecError(f"{where}: switch_value given without a switch")
        else:
            if value is None:
                raise SpecError(f"{where}: switch {switch!r} needs a switch_value (the value giving the other behaviour)")
            if root is not None:
                check_switch(switch, root, where, cache)
            else:
                parse_switch(switch, where)
        out.append(Discrepancy(
            id=eid, paper=paper, kind=entry["kind"], paper_quote=texts["quote"], paper_location=texts["location"],
            code_repo=texts["repo"], code_file=texts["file"], code_where=texts["where"], code_does=texts["does"],
            tables=list(tables), suite_follows=entry["suite_follows"], suite_note=_text(entry, "suite_note", where),
            switch=switch, switch_value="" if value is None else str(value), verified=entry["verified"],
            verification=_text(entry, "verification", where)))
    return out


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary(entries: list[Discrepancy]) -> str:
    verified = sum(e.verified for e in entries)
    follows = pd.Series([e.suite_follows for e in entries]).value_counts()
    switches = sum(e.switch != NO_SWITCH for e in entries)
    return (f"{len(entries)} entries ({verified} verified in the code, {len(entries) - verified} not verified); "
            "the suite follows " + ", ".join(f"{k}: {follows[k]}" for k in SUITE_FOLLOWS if k in follows)
            + f"; {switches} with a config switch for the other behaviour.")


def markdown_section(entries: list[Discrepancy]) -> list[str]:
    """The "Paper versus code" section of the audit report, as lines."""
    lines = ["## Paper versus code", "",
             "Where a paper and its authors' public code differ, or the code fixes what the paper leaves open "
             "(tables/discrepancies.yaml; HCML and Controllable Augmentations have no public code). "
             + summary(entries), "",
             "| id | paper | statement | code | location | tables affected | suite follows | switch | verified |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        switch = NO_SWITCH if e.switch == NO_SWITCH else f"`{e.switch}` = {e.switch_value}"
        cells = [e.id, f"{e.paper} ({e.kind})", f"{e.paper_location}: \"{e.paper_quote}\"", e.code_does,
                 f"{e.code_repo} {e.code_file}: {e.code_where}", ", ".join(e.tables),
                 f"{e.suite_follows}: {e.suite_note}", switch,
                 "yes" if e.verified else f"no: {e.verification}"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    return lines


def frame(entries: list[Discrepancy]) -> pd.DataFrame:
    rows = [{**e.__dict__, "tables": ";".join(e.tables)} for e in entries]
    return pd.DataFrame(rows, columns=CSV_COLUMNS)
