# Tables: a spec + the metrics of its runnable cells -> tables/<paper>_<table>.{md,csv,png};
# all specs + claims -> tables/audit.{md,csv}. Included by the Snakefile (SCALE, RESULTS defined there).
import os as _os
from pathlib import Path as _Path

from tables.metrics import read_metrics as _read_metrics
from tables.runs import COMPUTE_CSV as _COMPUTE_CSV, has_compute_cells as _has_compute_cells, metrics_files as _metrics_files
from tables.schema import SpecError as _SpecError, load_spec as _load_spec


def _switched_configs(register: str) -> list[str]:
    """The config files the register's switches name (the audit checks each key exists in its file)."""
    import yaml as _yaml

    entries = _yaml.safe_load(_Path(register).read_text()) if _Path(register).is_file() else []
    return sorted({e["switch"].partition(":")[0] for e in entries or [] if isinstance(e, dict)
                   and isinstance(e.get("switch"), str) and ":" in e["switch"]})


def _compute_input(spec) -> list[str]:
    """compute.csv, when the spec has compute cells and the file exists or a `compute` rule can make it."""
    if _has_compute_cells(spec) and (_os.path.exists(_COMPUTE_CSV) or any(r.name == "compute" for r in workflow.rules)):
        return [_COMPUTE_CSV]
    return []


def _input_folders(spec) -> list[str]:
    """The folders of the table's inputs that rules make (see table_inputs)."""
    return sorted({_os.path.dirname(f) for f in [*_metrics_files(spec, SCALE, RESULTS), *_compute_input(spec)]})


def _make_input_folders() -> None:
    """Create every table's input folders before the DAG is built: Snakemake caches a path it once
    found missing, so a folder made while the DAG is built may still count as missing."""
    for path in sorted(_Path("tables/specs").glob("*.yaml")):
        try:
            spec = _load_spec(path)
        except _SpecError:
            continue  # reported by name when its table is requested
        for folder in _input_folders(spec):
            _os.makedirs(folder, exist_ok=True)


_make_input_folders()


def table_inputs(wildcards):
    """Every file the renderer reads: the spec, the metrics files of the runnable cells and
    compute.csv (see _compute_input); and the folders holding the metrics and compute files.

    The folders are there because Snakemake does not re-run a job whose input was deleted while its
    outputs are up to date (it takes the input for a spent intermediate file), so a table would keep
    a deleted metrics file's numbers. Deleting a file changes its folder's mtime: the table is then
    older than an input, and the deleted file is made again. The folders exist before the first
    run (_make_input_folders), so the set of inputs never changes (a new set would re-run the table).

    Specs and existing metrics files are checked here, before any job runs: a table job that fails
    has its previous outputs deleted by Snakemake."""
    spec_path = f"tables/specs/{wildcards.paper}_{wildcards.table}.yaml"
    if not _os.path.exists(spec_path):
        return {"spec": spec_path}  # Snakemake reports the missing spec by name
    spec = _load_spec(spec_path)
    metrics = _metrics_files(spec, SCALE, RESULTS)
    for path, protocol in metrics.items():
        if _os.path.exists(path):
            _read_metrics(path, protocol, SCALE)
    inputs = {"spec": spec_path, "metrics": list(metrics), "folders": _input_folders(spec)}
    for compute in _compute_input(spec):
        inputs["compute"] = compute
    return inputs


rule table:
    input:
        unpack(table_inputs),
    output:
        # Report items: `snakemake <table target> --report report.html` holds them (README, "The report").
        md=report("tables/{paper}_{table}.md", category="Tables", subcategory="{paper}", labels={"table": "{paper} {table}", "file": "table"}),
        csv=report("tables/{paper}_{table}.csv", category="Tables", subcategory="{paper}", labels={"table": "{paper} {table}", "file": "long-form CSV"}),
        png=report("tables/{paper}_{table}.png", category="Tables", subcategory="{paper}", labels={"table": "{paper} {table}", "file": "paper vs reproduced"}),
    threads: job_resources("table")["threads"]
    resources:
        **rule_resources("table"),
    log:
        "logs/tables/{paper}_{table}.log",
    shell:
        "{PY} -m tables.render --spec {input.spec} --scale " + SCALE + " --results " + RESULTS
        + " --md {output.md} --csv {output.csv} --plot {output.png} 2> {log}"


rule audit:
    input:
        specs=sorted(str(p) for p in _Path("tables/specs").glob("*.yaml")),
        claims=sorted(str(p) for p in _Path("tables/claims").glob("*.yaml")),
        rankings=sorted(str(p) for p in _Path("tables/claims/rankings").glob("*.yaml")),
        discrepancies="tables/discrepancies.yaml",
        switched_configs=_switched_configs("tables/discrepancies.yaml"),
    output:
        md="tables/audit.md",
        csv="tables/audit.csv",
        discrepancies_csv="tables/discrepancies.csv",
    threads: job_resources("table")["threads"]
    resources:
        **rule_resources("table"),
    log:
        "logs/tables/audit.log",
    shell:
        "{PY} -m tables.audit --specs tables/specs --claims tables/claims --md {output.md} --csv {output.csv}"
        " --discrepancies {input.discrepancies} --discrepancies-csv {output.discrepancies_csv} 2> {log}"
