# Tables: a spec + the metrics of its runnable cells -> tables/<paper>_<table>.{md,csv,png};
# all specs + claims -> tables/audit.{md,csv}. Included by the Snakefile (SCALE, RESULTS defined there).
import os as _os
from pathlib import Path as _Path

from tables.metrics import read_metrics as _read_metrics
from tables.runs import COMPUTE_CSV as _COMPUTE_CSV, has_compute_cells as _has_compute_cells, metrics_files as _metrics_files
from tables.schema import load_spec as _load_spec


def table_inputs(wildcards):
    """Every file the renderer reads: the spec, the metrics files of the runnable cells, and
    compute.csv when the spec has compute cells and the file exists or a `compute` rule can make it;
    and the folders holding the metrics and compute files.

    The folders are there because Snakemake does not re-run a job whose input was deleted while its
    outputs are up to date (it takes the input for a spent intermediate file), so a table would keep
    a deleted metrics file's numbers. Deleting a file changes its folder's mtime: the table is then
    older than an input, and the deleted file is made again. The folders are created here, so that
    the set of inputs is the same before and after the first run (a new set would re-run the table).

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
    inputs = {"spec": spec_path, "metrics": list(metrics)}
    if _has_compute_cells(spec) and (_os.path.exists(_COMPUTE_CSV) or any(r.name == "compute" for r in workflow.rules)):
        inputs["compute"] = _COMPUTE_CSV
    inputs["folders"] = sorted({_os.path.dirname(p) for p in inputs["metrics"] + [inputs.get("compute", "")] if p})
    for folder in inputs["folders"]:
        _os.makedirs(folder, exist_ok=True)
    return inputs


rule table:
    input:
        unpack(table_inputs),
    output:
        md="tables/{paper}_{table}.md",
        csv="tables/{paper}_{table}.csv",
        png="tables/{paper}_{table}.png",
    log:
        "logs/tables/{paper}_{table}.log",
    shell:
        "python -m tables.render --spec {input.spec} --scale " + SCALE + " --results " + RESULTS
        + " --md {output.md} --csv {output.csv} --plot {output.png} 2> {log}"


rule audit:
    input:
        specs=sorted(str(p) for p in _Path("tables/specs").glob("*.yaml")),
        claims=sorted(str(p) for p in _Path("tables/claims").glob("*.yaml")),
    output:
        md="tables/audit.md",
        csv="tables/audit.csv",
    log:
        "logs/tables/audit.log",
    shell:
        "python -m tables.audit --specs tables/specs --claims tables/claims --md {output.md} --csv {output.csv} 2> {log}"
