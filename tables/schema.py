"""Table specs and claims files: loading and validation (the format is tables/SPEC_FORMAT.md).

`load_spec(path)` returns a `Spec`; `load_claims(path)` a list of `Claim`. Every error is a
`SpecError` whose message names the file and the part, row and column at fault.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError
from core.io import load_yaml
from tables.metrics import PROTOCOL_METRICS, reports, template_pattern

PAPERS = ("maclr", "hcml", "mcl", "ctrlaug", "cmd")
LEGIBILITY = ("clear", "reconstructed", "illegible", "not_reported")
CLAIM_KINDS = ("difference", "ratio", "range", "value", "max", "argmax", "order")
REPRODUCE_KEYS = ("method", "variant", "pretrain", "backbone", "input", "protocol")
SETTING_KEYS = ("pretrain", "backbone", "input", "protocol", "eval")
ID_RE = re.compile(r"^[a-z0-9_]+$")
# Evaluation dataset ids a spec may name (tables/SPEC_FORMAT.md): those the suite prepares or will,
# and the papers' unsplit reports. `<pct>` is a percentage of UCF101 split 1's training videos.
EVAL_DATASETS = ("ucf101_split1", "ucf101_split2", "ucf101_split3", "hmdb51_split1", "hmdb51_split2",
                 "hmdb51_split3", "ucf101_3splits", "ucf101_lowshot_<pct>", "k400", "k400_mini", "k400_val",
                 "ssv1", "ssv2", "something_unstated", "diving48", "vidsitu", "ava", "ava_val")
_EVAL_DATASET_RE = template_pattern(EVAL_DATASETS)
NOT_REPORTED = ("-", "–", "—")


class SpecError(ConfigError):
    """A spec or claims file does not follow tables/SPEC_FORMAT.md."""


@dataclass
class Column:
    name: str
    metric: str
    eval: str | None = None
    unit: str = ""
    protocol: str | None = None
    not_run: str | None = None  # why no run of the suite produces this column's reproduced values


@dataclass
class Cell:
    value: float | None
    legibility: str
    printed: str | None = None
    quote: str | None = None
    derivation: str | None = None
    compute_key: str | None = None
    note: str | None = None


@dataclass
class Row:
    id: str
    labels: dict[str, str]
    cells: dict[str, Cell]
    reproduce: dict[str, Any] | None = None
    quoted: str | None = None
    work: str | None = None
    setting: dict[str, str] = field(default_factory=dict)
    derived: str | None = None
    printed_labels: dict[str, str] = field(default_factory=dict)
    note: str | None = None

    @property
    def kind(self) -> str:
        if self.reproduce is not None:
            return "reproduce"
        if self.quoted is not None:
            return "quoted"
        return "derived"


@dataclass
class Part:
    id: str
    caption: str
    label_columns: list[str]
    value_columns: list[Column]
    rows: list[Row]

    def column(self, name: str) -> Column:
        for col in self.value_columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def row(self, row_id: str) -> Row:
        for row in self.rows:
            if row.id == row_id:
                return row
        raise KeyError(row_id)


@dataclass
class Spec:
    path: Path
    paper: str
    table: str
    title: str
    caption: str
    source: str
    tolerance: float
    parts: list[Part]

    @property
    def key(self) -> str:
        return f"{self.paper}_{self.table}"

    def part(self, part_id: str) -> Part:
        for part in self.parts:
            if part.id == part_id:
                return part
        raise KeyError(part_id)

    def cells(self):
        """Every (part, row, column, cell) in print order; absent cells are `not_reported`."""
        for part in self.parts:
            for row in part.rows:
                for col in part.value_columns:
                    yield part, row, col, row.cells[col.name]


@dataclass
class Claim:
    id: str
    paper: str
    location: str
    quote: str
    kind: str
    cells: list[str]
    stated: Any
    expression: str
    tolerance: float
    alternatives: list[str] = field(default_factory=list)
    note: str | None = None


# ---------------------------------------------------------------- helpers


def _where(path, *parts: str) -> str:
    return ": ".join([str(path)] + [p for p in parts if p])


def _read_yaml(path: Path):
    if not path.exists():
        raise SpecError(f"{path}: no such file")
    try:
        with open(path) as f:
            return load_yaml(f)
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {err}") from None


def _require(d: dict, key: str, where: str, types=(str,)):
    if not isinstance(d, dict):
        raise SpecError(f"{where}: expected a mapping, got {type(d).__name__}")
    if key not in d or d[key] is None:
        raise SpecError(f"{where}: missing field '{key}'")
    if not isinstance(d[key], types):
        names = "/".join(t.__name__ for t in types)
        raise SpecError(f"{where}: field '{key}' must be {names}, got {type(d[key]).__name__}")
    return d[key]


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{where}: value must be a number, got {value!r}")
    return float(value)


def _check_keys(d: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def safe_eval(expression: str, names: dict[str, Any], where: str):
    """Evaluate arithmetic `expression` with only `names` and a few pure builtins in scope."""
    funcs = {
        "abs": abs, "min": min, "max": max, "round": round, "all": all, "any": any,
        "sum": sum, "len": len, "range": range,
        "argmax": lambda xs: max(range(len(xs)), key=lambda i: xs[i]),
        "argmin": lambda xs: min(range(len(xs)), key=lambda i: xs[i]),
    }
    if "__" in expression:
        raise SpecError(f"{where}: expression {expression!r} may not contain '__'")
    try:
        return eval(compile(expression, "<expression>", "eval"), {"__builtins__": {}, **funcs, **names})
    except SpecError:
        raise
    except Exception as err:  # a bad expression is a spec error, named
        raise SpecError(f"{where}: cannot evaluate {expression!r}: {type(err).__name__}: {err}") from None


# ---------------------------------------------------------------- specs


def _parse_cell(raw, where: str) -> Cell:
    if raw is None or (isinstance(raw, str) and raw.strip() in NOT_REPORTED):
        return Cell(value=None, legibility="not_reported")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return Cell(value=_number(raw, where), legibility="clear")
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a cell is a number, null, '-' or a mapping; got {raw!r}")
    _check_keys(raw, {"value", "legibility", "printed", "quote", "derivation", "compute_key", "note"}, where)
    leg = _require(raw, "legibility", where)
    if leg not in LEGIBILITY:
        raise SpecError(f"{where}: legibility {leg!r} is not one of {', '.join(LEGIBILITY)}")
    value = raw.get("value")
    if leg in ("clear", "reconstructed"):
        value = _number(value, where)
    elif value is not None:
        raise SpecError(f"{where}: a {leg} cell has value: null (got {value!r}); keep the print in 'printed'")
    cell = Cell(
        value=value, legibility=leg,
        printed=None if raw.get("printed") is None else str(raw["printed"]),
        quote=raw.get("quote"), derivation=raw.get("derivation"),
        compute_key=raw.get("compute_key"), note=raw.get("note"),
    )
    if leg == "reconstructed":
        _require(raw, "quote", where)
        _require(raw, "derivation", where)
        derived = safe_eval(cell.derivation, {}, where)
        if not isinstance(derived, (int, float)) or abs(derived - value) > 1e-6:
            raise SpecError(f"{where}: derivation {cell.derivation!r} gives {derived!r}, not the value {value}")
    if leg == "illegible" and not cell.printed:
        raise SpecError(f"{where}: an illegible cell keeps what the extraction shows in 'printed'")
    return cell


def _parse_row(raw, columns: list[Column], label_columns: list[str], where: str) -> Row:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a row is a mapping")
    row_id = _require(raw, "id", where)
    where = f"{where} '{row_id}'"
    if not ID_RE.match(row_id):
        raise SpecError(f"{where}: row id must match [a-z0-9_]+")
    _check_keys(raw, {"id", "labels", "cells", "reproduce", "quoted", "work", "setting", "derived",
                      "printed_labels", "note"}, where)
    labels = _require(raw, "labels", where, (dict,))
    missing = [c for c in label_columns if c not in labels]
    extra = [c for c in labels if c not in label_columns]
    if missing or extra:
        raise SpecError(f"{where}: labels must name every label column {label_columns}; "
                        f"missing {missing}, unknown {extra}")
    # A row without cells would render every cell "–" and hide its reproduced numbers.
    raw_cells = _require(raw, "cells", where, (dict,))
    if not raw_cells:
        raise SpecError(f"{where}: field 'cells' is empty; give every value column (null or '-' when not reported)")
    names = [c.name for c in columns]
    unknown = [c for c in raw_cells if c not in names]
    if unknown:
        raise SpecError(f"{where}: cells name unknown column(s) {unknown}; value columns are {names}")
    cells = {c: _parse_cell(raw_cells.get(c), f"{where}, column '{c}'") for c in names}
    kinds = [k for k in ("reproduce", "quoted", "derived") if raw.get(k) is not None]
    if len(kinds) != 1:
        raise SpecError(f"{where}: a row has exactly one of reproduce, quoted, derived (has {kinds or 'none'})")
    row = Row(id=row_id, labels={k: str(v) for k, v in labels.items()}, cells=cells,
              printed_labels=raw.get("printed_labels") or {}, note=raw.get("note"))
    if "reproduce" in kinds:
        rep = raw["reproduce"]
        for key in REPRODUCE_KEYS:
            _require(rep, key, f"{where}, reproduce")
        _check_keys(rep, set(REPRODUCE_KEYS) | {"eval", "metric", "not_run"}, f"{where}, reproduce")
        for key in ("eval", "metric", "not_run"):
            over = rep.get(key) or {}
            if not isinstance(over, dict) or any(c not in names for c in over):
                raise SpecError(f"{where}, reproduce.{key}: a map from value column ({names}) to a {key}")
        for col in columns:
            if col.name in (rep.get("not_run") or {}):  # this row's run has no such value (its reason says why)
                continue
            if col.eval is None and col.name not in (rep.get("eval") or {}) and col.protocol != "compute" \
                    and rep["protocol"] != "compute" and cells[col.name].legibility != "not_reported":
                raise SpecError(f"{where}, column '{col.name}': no evaluation dataset (column eval or reproduce.eval)")
            _check_run_column(rep, col, f"{where}, column '{col.name}'")
        row.reproduce = dict(rep)
    elif "quoted" in kinds:
        row.quoted = _require(raw, "quoted", where)
        row.work = raw.get("work") or normalise_work(str(next(iter(labels.values()), row_id)))
        setting = raw.get("setting") or {}
        if not isinstance(setting, dict):
            raise SpecError(f"{where}: setting must be a mapping")
        _check_keys(setting, set(SETTING_KEYS), f"{where}, setting")
        evals = setting.get("eval")
        for evaldata in (evals.values() if isinstance(evals, dict) else [evals] if evals is not None else []):
            _check_eval_dataset(evaldata, f"{where}, setting.eval")
        row.setting = {k: v if isinstance(v, dict) else str(v) for k, v in setting.items()}
        if raw.get("work") is not None and not ID_RE.match(str(raw["work"])):
            raise SpecError(f"{where}: work {raw['work']!r} must match [a-z0-9_]+")
    else:
        row.derived = _require(raw, "derived", where)
    return row


def _check_eval_dataset(evaldata, where: str) -> None:
    if not _EVAL_DATASET_RE.fullmatch(str(evaldata)):
        raise SpecError(f"{where}: {evaldata!r} is not an evaluation dataset id ({', '.join(EVAL_DATASETS)})")


def _check_run_column(rep: dict, col: Column, where: str) -> None:
    """The evaluation dataset and metric of one column of a `reproduce` row name things that exist:
    a typo would otherwise render as `not run`, or fail on the metrics file instead of the spec."""
    evaldata = (rep.get("eval") or {}).get(col.name, col.eval)
    source = "reproduce.eval" if col.name in (rep.get("eval") or {}) else "the column's eval"
    if evaldata is not None:
        _check_eval_dataset(evaldata, f"{where}, {source}")
    protocol = col.protocol or rep["protocol"]
    metric = (rep.get("metric") or {}).get(col.name, col.metric)
    if not reports(protocol, metric):
        source = "reproduce.metric" if col.name in (rep.get("metric") or {}) else "the column's metric"
        raise SpecError(f"{where}, {source}: {metric!r} is not a metric of protocol {protocol} "
                        f"({', '.join(PROTOCOL_METRICS[protocol].reports)})")


def normalise_work(label: str) -> str:
    """'CoCLR [35]' -> 'coclr'; 'ρBYOL [24]' -> 'rhobyol'."""
    text = re.sub(r"\[[^\]]*\]", "", label).replace("ρ", "rho").replace("\\rho", "rho")
    return re.sub(r"[^a-z0-9]+", "", text.lower()) or "unknown"


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    _check_keys(raw, {"paper", "table", "title", "caption", "source", "tolerance", "parts", "note"}, str(path))
    paper = _require(raw, "paper", str(path))
    if paper not in PAPERS:
        raise SpecError(f"{path}: paper {paper!r} is not one of {', '.join(PAPERS)}")
    table = _require(raw, "table", str(path))
    if not ID_RE.match(table):
        raise SpecError(f"{path}: table {table!r} must match [a-z0-9_]+")
    if path.stem != f"{paper}_{table}":
        raise SpecError(f"{path}: file name must be {paper}_{table}.yaml (paper_table)")
    tolerance = _number(_require(raw, "tolerance", str(path), (int, float)), f"{path}: tolerance")
    parts_raw = _require(raw, "parts", str(path), (list,))
    if not parts_raw:
        raise SpecError(f"{path}: parts is empty")
    parts, seen_parts = [], set()
    for i, p in enumerate(parts_raw):
        where = _where(path, f"part {i}")
        if not isinstance(p, dict):
            raise SpecError(f"{where}: a part is a mapping")
        _check_keys(p, {"id", "caption", "label_columns", "value_columns", "rows", "note"}, where)
        pid = p.get("id", "")
        pid = "" if pid is None else str(pid)
        where = _where(path, f"part '{pid}'")
        if pid and not ID_RE.match(pid):
            raise SpecError(f"{where}: part id must be '' or match [a-z0-9_]+")
        if pid in seen_parts:
            raise SpecError(f"{where}: duplicate part id")
        seen_parts.add(pid)
        label_columns = _require(p, "label_columns", where, (list,))
        columns = []
        for j, c in enumerate(_require(p, "value_columns", where, (list,))):
            cw = f"{where}, value column {j}"
            _check_keys(c, {"name", "metric", "eval", "unit", "protocol", "note", "not_run"}, cw)
            columns.append(Column(name=str(_require(c, "name", cw, (str, int, float))),
                                  metric=_require(c, "metric", cw), eval=c.get("eval"),
                                  unit=c.get("unit", ""), protocol=c.get("protocol"), not_run=c.get("not_run")))
        names = [c.name for c in columns]
        if len(set(names)) != len(names) or set(names) & set(label_columns):
            raise SpecError(f"{where}: column names must be unique: {label_columns + names}")
        rows, seen_rows = [], set()
        for r in _require(p, "rows", where, (list,)):
            row = _parse_row(r, columns, label_columns, f"{where}, row")
            if row.id in seen_rows:
                raise SpecError(f"{where}, row '{row.id}': duplicate row id")
            seen_rows.add(row.id)
            rows.append(row)
        part = Part(id=pid, caption=str(p.get("caption", "")), label_columns=list(label_columns),
                    value_columns=columns, rows=rows)
        for row in rows:
            if row.derived is not None:
                _check_derived(part, row, where)
        parts.append(part)
    return Spec(path=path, paper=paper, table=table, title=_require(raw, "title", str(path)),
                caption=str(raw.get("caption", "")), source=_require(raw, "source", str(path)),
                tolerance=tolerance, parts=parts)


def _check_derived(part: Part, row: Row, where: str) -> None:
    ids = {r.id for r in part.rows if r.id != row.id}
    used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", row.derived)) - {"abs", "min", "max", "round"}
    unknown = used - ids
    if unknown:
        raise SpecError(f"{where}, row '{row.id}': derived expression names unknown row(s) {sorted(unknown)}")


def derived_value(part: Part, row: Row, column: str, values: dict[str, float | None]) -> float | None:
    """Row `row`'s derived expression for `column` over `values` (row id -> value); None if any is missing."""
    names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", row.derived)) - {"abs", "min", "max", "round"}
    if any(values.get(n) is None for n in names):
        return None
    return safe_eval(row.derived, {n: values[n] for n in names}, f"row '{row.id}', column '{column}'")


# ---------------------------------------------------------------- claims


def load_claims(path: str | Path) -> list[Claim]:
    path = Path(path)
    raw = _read_yaml(path)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpecError(f"{path}: a claims file is a list of claims")
    paper = path.stem
    if paper not in PAPERS:
        raise SpecError(f"{path}: file name must be <paper>.yaml with paper one of {', '.join(PAPERS)}")
    claims, seen = [], set()
    for i, c in enumerate(raw):
        where = _where(path, f"claim {i}")
        cid = _require(c, "id", where)
        where = _where(path, f"claim '{cid}'")
        if not ID_RE.match(cid) or cid in seen:
            raise SpecError(f"{where}: claim id must match [a-z0-9_]+ and be unique")
        seen.add(cid)
        _check_keys(c, {"id", "location", "quote", "kind", "cells", "stated", "expression", "tolerance",
                        "alternatives", "note"}, where)
        kind = _require(c, "kind", where)
        if kind not in CLAIM_KINDS:
            raise SpecError(f"{where}: kind {kind!r} is not one of {', '.join(CLAIM_KINDS)}")
        cells = _require(c, "cells", where, (list,))
        for ref in cells:
            parse_ref(ref, where)
        if "stated" not in c:
            raise SpecError(f"{where}: missing field 'stated'")
        claims.append(Claim(id=cid, paper=paper, location=_require(c, "location", where),
                            quote=_require(c, "quote", where), kind=kind, cells=list(cells),
                            stated=c["stated"], expression=_require(c, "expression", where),
                            tolerance=_number(c.get("tolerance", 0.0), f"{where}: tolerance"),
                            alternatives=list(c.get("alternatives") or []), note=c.get("note")))
    return claims


def parse_ref(ref: str, where: str = "") -> tuple[str, str, str, str]:
    """'maclr_table1/a/v_only_k400/UCF' -> (table key, part, row, column)."""
    bits = str(ref).split("/", 3)
    if len(bits) != 4 or not bits[0] or not bits[2] or not bits[3]:
        raise SpecError(f"{where}: cell reference {ref!r} must be <paper>_<table>/<part>/<row>/<column>")
    return bits[0], bits[1], bits[2], bits[3]


def resolve_ref(specs: dict[str, Spec], ref: str, where: str = "") -> tuple[Spec, Part, Row, Column, Cell]:
    key, part_id, row_id, col = parse_ref(ref, where)
    if key not in specs:
        raise SpecError(f"{where}: cell {ref!r}: no spec tables/specs/{key}.yaml")
    spec = specs[key]
    try:
        part = spec.part(part_id)
    except KeyError:
        raise SpecError(f"{where}: cell {ref!r}: {spec.path} has no part {part_id!r}") from None
    try:
        row = part.row(row_id)
        column = part.column(col)
    except KeyError as err:
        raise SpecError(f"{where}: cell {ref!r}: {spec.path} part {part_id!r} has no row/column {err}") from None
    return spec, part, row, column, row.cells[col]


def load_all_specs(specs_dir: str | Path) -> dict[str, Spec]:
    return {s.key: s for s in (load_spec(p) for p in sorted(Path(specs_dir).glob("*.yaml")))}
