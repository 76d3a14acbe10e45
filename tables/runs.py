"""Which cells of a table spec a run of this suite can fill now, and from which file.

A `reproduce` cell is runnable iff the method's `methods/<method>/config.yaml` lists the variant,
its protocol is in `protocols.IMPLEMENTED`, and its pretraining and evaluation datasets are in
`datasets.sources.registry.DATASETS`. Its metrics file is
`<results>/eval/<method>/<variant>/<pretrain>/<protocol>/<eval>.json` (CONTRIBUTING.md).
Compute cells (protocol `compute`) are read from `results/compute/compute.csv` by key.
"""
from __future__ import annotations

import csv
import importlib
from dataclasses import dataclass
from pathlib import Path

import protocols
from core.config import method_variants
from tables import metrics
from tables.schema import Column, Part, Row, Spec, SpecError

ROOT = Path(__file__).resolve().parent.parent
COMPUTE_CSV = "results/compute/compute.csv"
NO_PRETRAIN = "none"


@dataclass(frozen=True)
class CellRun:
    """How one value cell is reproduced."""
    part: str
    row: str
    column: str
    method: str
    variant: str
    pretrain: str
    protocol: str
    eval: str | None
    metric: str
    path: str | None          # metrics JSON (eval cells) or None (compute cells)
    compute_key: str | None    # key in compute.csv (compute cells) or None
    runnable: bool
    reason: str               # why not runnable ("" when runnable)


def dataset_ids() -> set[str]:
    """Dataset ids the suite can prepare; empty while datasets/sources/registry.py does not exist yet."""
    try:
        module = importlib.import_module("datasets.sources.registry")
    except ModuleNotFoundError as err:
        if err.name in ("datasets", "datasets.sources", "datasets.sources.registry"):
            return set()
        raise
    return set(getattr(module, "DATASETS", {}) or {})


def implemented_protocols() -> set[str]:
    return set(getattr(protocols, "IMPLEMENTED", set()))


def compute_key(spec: Spec, part: Part, row: Row, column: Column) -> str:
    cell = row.cells[column.name]
    return cell.compute_key or f"{spec.key}/{part.id}/{row.id}/{column.name}"


def cell_run(spec: Spec, part: Part, row: Row, column: Column, results: str,
             datasets: set[str], protocols: set[str], root: Path = ROOT) -> CellRun | None:
    """The run behind one cell, or None for a quoted/derived row without a compute key."""
    cell = row.cells[column.name]
    rep = row.reproduce
    protocol = column.protocol or (rep or {}).get("protocol")
    if rep is None and not (protocol == "compute" and cell.compute_key):
        return None
    rep = rep or {}
    metric = (rep.get("metric") or {}).get(column.name, column.metric)
    common = dict(part=part.id, row=row.id, column=column.name, method=rep.get("method", ""),
                  variant=rep.get("variant", ""), pretrain=rep.get("pretrain", ""), protocol=protocol,
                  metric=metric)
    not_run = column.not_run or (rep.get("not_run") or {}).get(column.name)
    if not_run:  # a quantity no run of the suite produces (the column's, or this row's run's): the spec says why
        return CellRun(**common, eval=None, path=None, compute_key=None, runnable=False,
                       reason=f"{column.name}: {not_run}")
    if protocol == "compute":
        exists = (root / COMPUTE_CSV).exists()
        return CellRun(**common, eval=None, path=None, compute_key=compute_key(spec, part, row, column),
                       runnable=exists, reason="" if exists else f"no {COMPUTE_CSV}")
    evaldata = (rep.get("eval") or {}).get(column.name, column.eval)
    path = f"{results}/eval/{rep['method']}/{rep['variant']}/{rep['pretrain']}/{protocol}/{evaldata}.json"
    reasons = []
    if rep["variant"] not in method_variants(rep["method"]):
        reasons.append(f"methods/{rep['method']}/config.yaml absent or without variant {rep['variant']}")
    if protocol not in protocols:
        reasons.append(f"protocol {protocol} not implemented")
    elif not metrics.writes(protocol, metric):
        reasons.append(f"protocol {protocol} does not compute {metric} yet")
    for ds in (rep["pretrain"], evaldata):
        if ds != NO_PRETRAIN and ds not in datasets:
            reasons.append(f"dataset {ds} not in datasets.sources.registry")
    return CellRun(**common, eval=evaldata, path=path, compute_key=None,
                   runnable=not reasons, reason="; ".join(reasons))


def cell_runs(spec: Spec, scale: str, results: str | None = None, root: Path = ROOT) -> list[CellRun]:
    """Every reproducible cell of `spec` (runnable or not), in print order; printed '-' cells skipped."""
    results = results or f"results/{scale}"
    datasets, protocols = dataset_ids(), implemented_protocols()
    runs = []
    for part, row, column, cell in spec.cells():
        if cell.legibility == "not_reported" and row.reproduce is not None and column.protocol != "compute":
            continue
        run = cell_run(spec, part, row, column, results, datasets, protocols, root)
        if run is not None:
            runs.append(run)
    return runs


def runnable_cells(spec: Spec, scale: str, results: str | None = None) -> list[CellRun]:
    return [r for r in cell_runs(spec, scale, results) if r.runnable]


def metrics_files(spec: Spec, scale: str, results: str | None = None) -> dict[str, str]:
    """The metrics JSON files of the runnable cells, each once (a repeated row is not re-run), in
    order, with the protocol that writes each."""
    return dict(sorted({r.path: r.protocol for r in runnable_cells(spec, scale, results) if r.path}.items()))


def has_compute_cells(spec: Spec) -> bool:
    for part, row, column, cell in spec.cells():
        protocol = column.protocol or (row.reproduce or {}).get("protocol")
        if protocol == "compute" and (row.reproduce is not None or cell.compute_key):
            return True
    return False


def compute_value(entry: dict[str, str], metric: str, key: str = "") -> float | None:
    """The counted number of one compute.csv row for a cell of metric `metric`, or None when empty.

    Accepts the three layouts of compute.csv: a column named after the metric (`gflops`,
    `mparams`, ...), a single `value` column, or `tables/compute.py`'s long form
    (`quantity`, `counted_value`), whose `quantity` must then be the cell's metric: a key that
    points at another quantity (#params for a FLOPs cell) is an error, never a number.
    """
    if metric in entry:
        raw = entry[metric]
    elif "value" in entry:
        raw = entry["value"]
    elif "counted_value" in entry:
        quantity = entry.get("quantity")
        if quantity not in (None, "", metric):
            raise SpecError(f"{COMPUTE_CSV}: key {key!r} counts {quantity}, the cell's metric is {metric}")
        raw = entry["counted_value"]
    else:
        raise SpecError(f"{COMPUTE_CSV}: key {key!r} has no column {metric!r}, 'value' or 'counted_value' "
                        f"(columns: {', '.join(entry)})")
    return None if raw in (None, "") else float(raw)


def read_compute_csv(path: str | Path) -> dict[str, dict[str, str]]:
    """compute.csv as key -> row; {} when absent."""
    path = Path(path)
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if "key" not in (reader.fieldnames or []):
            raise SpecError(f"{path}: no 'key' column (columns: {reader.fieldnames})")
        return {row["key"]: row for row in reader}
