"""Qualitative and superlative claims: sentences that rank methods without a number ("outperforms all
previous methods", "the best among single-stream methods", "only X, Y and Z produce comparable
results"), each checked on the comparison set it implies.

A claims file `tables/claims/rankings/<paper>.yaml` is a list of

    - id: t2_outperforms_all_linear
      location: "§4.2 Comparison to state-of-the-art (Table 2)"
      quote: "MaCLR outperforms all previous methods, ..."        # exact text of the paper
      readings:                       # one per reasonable reading of the sentence
        - reading: "every other row of the linear half"            # what the sentence is taken to mean
          conditions: "linear protocol; any backbone, data, modality"  # the paper's own conditions
          relation: above             # above (default) | most | comparable
          subject: [maclr_table2/linear/maclr_k400_r3d50_224]       # <spec>/<part>/<row>
          against: [maclr_table2/linear/*]                          # row ids may be globs
          exclude: [maclr_table2/linear/maclr_*]                    # optional, globs
          where: {frozen: "yes"}      # optional: labels / setting / reproduce values a row must have
          columns: [UCF, HMDB]        # optional: default every value column of the subject's part
          # against_column: reconstruction  # optional: compare the rows against in this column, not the same
          #                                 # one (a row under two settings: "contrastive beats reconstruction")
          # margin: 1.0                # `above` with a margin: every row more than `margin` below the subject
          # relation comparable: `close` rows at most `margin` below the subject (or above it), every
          # other row more than `margin` below it ("only X, Y and Z"; `only: false` leaves the others free)
          # relation most: in every column, more than half of the rows against are below the subject
          # ties: true                # `above` counts a tie as not breaking (default: a tie breaks)
          groups: [...]               # optional: several such comparison sets, all must hold

`above`: in every column, each row of `against` (less `subject`, `exclude`, and rows failing
`where`) is below every `subject` row (more than `margin` below, when a margin is given). A row that
does not report a column ("-") is not compared there; an illegible cell leaves the reading unresolved.
A reading holds, fails (the rows that break it are listed) or is unresolved; the claim is
`consistent` when every reading holds, `inconsistent` when every reading fails, else `ambiguous`
with each reading's outcome shown.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tables.audit_findings import AMBIGUOUS, CONSISTENT, INCONSISTENT, Finding, combine, fmt
from tables.schema import ID_RE, PAPERS, Part, Row, Spec, SpecError

RELATIONS = ("above", "most", "comparable")
GROUP_KEYS = {"subject", "against", "exclude", "where", "columns", "close", "margin", "ties", "relation", "only",
              "against_column"}
READING_KEYS = GROUP_KEYS | {"reading", "conditions", "groups"}
CLAIM_KEYS = {"id", "location", "quote", "readings", "note"}
OUTCOME = {CONSISTENT: "holds", INCONSISTENT: "fails", AMBIGUOUS: "unresolved"}


@dataclass
class Group:
    subject: list[str]
    against: list[str]
    relation: str = "above"
    exclude: list[str] = field(default_factory=list)
    where: dict = field(default_factory=dict)
    columns: list[str] | None = None
    close: list[str] = field(default_factory=list)
    margin: float = 0.0
    ties: bool = False
    only: bool = True
    against_column: str | None = None


@dataclass
class Reading:
    reading: str
    conditions: str
    groups: list[Group]


@dataclass
class RankingClaim:
    id: str
    paper: str
    location: str
    quote: str
    readings: list[Reading]
    note: str | None = None


def _group(raw: dict, where: str) -> Group:
    unknown = set(raw) - GROUP_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(GROUP_KEYS)})")
    for key in ("subject", "against"):
        if not isinstance(raw.get(key), list) or not raw[key]:
            raise SpecError(f"{where}: '{key}' is a non-empty list of <spec>/<part>/<row> references")
    relation = raw.get("relation", "above")
    if relation not in RELATIONS:
        raise SpecError(f"{where}: relation {relation!r} is not one of {', '.join(RELATIONS)}")
    if relation == "comparable" and ("margin" not in raw or not raw.get("close")):
        raise SpecError(f"{where}: relation comparable needs 'close' rows and a 'margin'")
    return Group(subject=list(raw["subject"]), against=list(raw["against"]), relation=relation,
                 exclude=list(raw.get("exclude") or []), where=dict(raw.get("where") or {}),
                 columns=raw.get("columns"), close=list(raw.get("close") or []),
                 margin=float(raw.get("margin", 0.0)), ties=bool(raw.get("ties", False)),
                 only=bool(raw.get("only", True)), against_column=raw.get("against_column"))


def load_rankings(path: str | Path) -> list[RankingClaim]:
    """The ranking claims of one paper; every error names the file and the claim."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {err}") from None
    if path.stem not in PAPERS:
        raise SpecError(f"{path}: file name must be <paper>.yaml with paper one of {', '.join(PAPERS)}")
    if not isinstance(raw, list):
        raise SpecError(f"{path}: a rankings file is a list of claims")
    claims, seen = [], set()
    for i, c in enumerate(raw):
        where = f"{path}: claim {c.get('id', i) if isinstance(c, dict) else i!r}"
        if not isinstance(c, dict) or set(c) - CLAIM_KEYS or not all(c.get(k) for k in ("id", "location", "quote", "readings")):
            raise SpecError(f"{where}: a ranking claim has id, location, quote, readings (and optional note)")
        if not ID_RE.match(c["id"]) or c["id"] in seen:
            raise SpecError(f"{where}: claim id must match [a-z0-9_]+ and be unique")
        seen.add(c["id"])
        readings = []
        for j, r in enumerate(c["readings"]):
            rw = f"{where}: reading {j}"
            if not isinstance(r, dict) or not r.get("reading") or not r.get("conditions"):
                raise SpecError(f"{rw}: a reading has 'reading' and 'conditions' texts and a comparison set")
            if set(r) - READING_KEYS:
                raise SpecError(f"{rw}: unknown keys {sorted(set(r) - READING_KEYS)} (allowed: {sorted(READING_KEYS)})")
            own = {k: v for k, v in r.items() if k in GROUP_KEYS}
            if bool(own.get("subject")) == bool(r.get("groups")):
                raise SpecError(f"{rw}: give either subject/against or groups")
            groups = [_group(own, rw)] if own.get("subject") else [
                _group(g, f"{rw}: group {k}") for k, g in enumerate(r["groups"])]
            readings.append(Reading(reading=r["reading"], conditions=r["conditions"], groups=groups))
        claims.append(RankingClaim(id=c["id"], paper=path.stem, location=c["location"], quote=c["quote"],
                                   readings=readings, note=c.get("note")))
    return claims


def _rows(specs: dict[str, Spec], refs: list[str], where: str) -> list[tuple[str, Part, Row]]:
    """(reference, part, row) of every row a list of references (row ids may be globs) names."""
    out = []
    refs = refs or []
    for ref in refs:
        bits = str(ref).split("/")
        if len(bits) != 3 or bits[0] not in specs:
            raise SpecError(f"{where}: row reference {ref!r} must be <spec>/<part>/<row> of an existing spec")
        try:
            part = specs[bits[0]].part(bits[1])
        except KeyError:
            raise SpecError(f"{where}: {ref!r}: {bits[0]} has no part {bits[1]!r}") from None
        rows = [row for row in part.rows if fnmatch.fnmatchcase(row.id, bits[2])]
        if not rows:
            raise SpecError(f"{where}: {ref!r} names no row")
        out += [(f"{bits[0]}/{bits[1]}/{row.id}", part, row) for row in rows]
    return out


def _attributes(row: Row) -> dict[str, str]:
    attrs = {**{k: str(v) for k, v in (row.reproduce or {}).items()}, **{k: str(v) for k, v in row.setting.items()},
             **{k: str(v) for k, v in row.labels.items()}, "kind": row.kind}
    return {k: v.lower() for k, v in attrs.items()}


def _matches(row: Row, where: dict) -> bool:
    attrs = _attributes(row)
    for key, wanted in where.items():
        allowed = [str(w).lower() for w in (wanted if isinstance(wanted, list) else [wanted])]
        if attrs.get(key) not in allowed:
            return False
    return True


def _name(ref: str, part: Part, row: Row) -> str:
    first = row.labels.get(part.label_columns[0]) if part.label_columns else None
    return f"{first or row.id} ({ref})"


def _check_group(specs: dict[str, Spec], g: Group, where: str) -> tuple[list[str], list[str], int]:
    """(breaking comparisons, unresolved cells, number of compared cell pairs) of one comparison set."""
    subjects = _rows(specs, g.subject, where)
    # a row is compared with itself only when the two sides are different columns
    skip = {ref for ref, _, _ in _rows(specs, g.exclude, where)}
    if not g.against_column:
        skip |= {ref for ref, _, _ in subjects}
    close = {ref for ref, _, _ in _rows(specs, g.close, where)} if g.close else set()
    against = [(ref, part, row) for ref, part, row in _rows(specs, g.against, where)
               if ref not in skip and row.kind != "derived" and (ref in close or _matches(row, g.where))]
    missing_close = close - {ref for ref, _, _ in against}
    if missing_close:
        raise SpecError(f"{where}: close rows {sorted(missing_close)} are not among the rows compared")
    names = {c.name for c in subjects[0][1].value_columns if c.protocol != "compute"}
    columns = g.columns or [c.name for c in subjects[0][1].value_columns if c.name in names]
    for aref, apart, _ in against:
        if g.against_column and g.against_column not in {c.name for c in apart.value_columns}:
            raise SpecError(f"{where}: {aref} has no column {g.against_column!r} (against_column)")
    breaks, unresolved, compared = [], [], 0
    for col in columns:
        acol = g.against_column or col
        for sref, spart, srow in subjects:
            above_it, below_it = [], 0
            if col not in srow.cells:
                raise SpecError(f"{where}: {sref} has no column {col!r}")
            s = srow.cells[col]
            if s.legibility == "not_reported":
                continue
            for aref, apart, arow in against:
                a = arow.cells.get(acol)
                if a is None or a.legibility == "not_reported":
                    continue  # that row does not report this column
                if s.value is None or a.value is None:
                    bad = sref if s.value is None else aref
                    unresolved.append(f"{bad}/{col if s.value is None else acol} is illegible")
                    continue
                compared += 1
                if g.relation == "most":
                    if a.value < s.value:
                        below_it += 1
                    else:
                        above_it.append(f"{_name(aref, apart, arow)} {acol} {fmt(a.value)}")
                elif g.relation == "comparable":
                    # "only X, Y and Z are comparable": those within `margin` below the subject or above it,
                    # every other row more than `margin` below
                    near = a.value >= s.value - g.margin - 1e-9
                    if aref in close and not near:
                        breaks.append(f"{_name(aref, apart, arow)} {acol} {fmt(a.value)} is more than {fmt(g.margin)} "
                                      f"below {fmt(s.value)}, yet named comparable")
                    elif aref not in close and near and g.only:
                        breaks.append(f"{_name(aref, apart, arow)} {acol} {fmt(a.value)} is within {fmt(g.margin)} of "
                                      f"{fmt(s.value)} or above, yet not named")
                elif g.margin and a.value >= s.value - g.margin - 1e-9:
                    # "outperforms by a clear margin": every row more than `margin` below the subject
                    breaks.append(f"{_name(aref, apart, arow)} {acol} {fmt(a.value)} is within {fmt(g.margin)} of "
                                  f"{fmt(s.value)} of {sref.rsplit('/', 1)[-1]} or above")
                elif a.value > s.value or (a.value == s.value and not g.ties):
                    sign = ">" if a.value > s.value else "="
                    breaks.append(f"{_name(aref, apart, arow)} {acol} {fmt(a.value)} {sign} {fmt(s.value)} of "
                                  f"{sref.rsplit('/', 1)[-1]}" + (f" {col}" if g.against_column else ""))
            if g.relation == "most" and above_it and below_it <= len(above_it):
                breaks.append(f"{col}: only {below_it} of {below_it + len(above_it)} rows below "
                              f"{fmt(s.value)} of {sref.rsplit('/', 1)[-1]}; not below: " + ", ".join(above_it))
    if not compared and not unresolved:
        raise SpecError(f"{where}: the comparison set {g.subject} against {g.against} compares no pair of cells")
    return breaks, sorted(set(unresolved)), compared


def check_ranking(claim: RankingClaim, specs: dict[str, Spec]) -> Finding:
    where = f"claims/rankings/{claim.paper}.yaml: claim '{claim.id}'"
    outcomes, details, sets = [], [], []
    for i, reading in enumerate(claim.readings, 1):
        breaks, unresolved, compared = [], [], 0
        for g in reading.groups:
            b, u, n = _check_group(specs, g, where)
            breaks, unresolved, compared = breaks + b, unresolved + u, compared + n
        if breaks:
            outcome, text = INCONSISTENT, "fails: broken by " + "; ".join(breaks)
        elif unresolved:
            outcome, text = AMBIGUOUS, "unresolved: " + "; ".join(unresolved)
        else:
            outcome, text = CONSISTENT, f"holds: none of {compared} comparisons breaks it"
        outcomes.append(outcome)
        details.append(f"reading {i} ({reading.reading}; {reading.conditions}): {text}")
        sets.append(f"reading {i}: " + " + ".join(
            f"{', '.join(g.subject)} {g.relation} {', '.join(g.against)}"
            + (f" less {', '.join(g.exclude)}" if g.exclude else "")
            + (f" where {g.where}" if g.where else "") + (f" on {', '.join(g.columns)}" if g.columns else "")
            + (f" against column {g.against_column}" if g.against_column else "")
            for g in reading.groups))
    return Finding(paper=claim.paper, check="ranking", id=claim.id, location=claim.location, quote=claim.quote,
                   cells="; ".join(sets), computed=" | ".join(OUTCOME[o] for o in outcomes),
                   stated="holds", verdict=combine(outcomes), arithmetic=" | ".join(details))


def ranking_checks(claims_dir: str | Path, specs: dict[str, Spec]) -> list[Finding]:
    folder = Path(claims_dir) / "rankings"
    return [check_ranking(c, specs) for path in sorted(folder.glob("*.yaml")) for c in load_rankings(path)]
