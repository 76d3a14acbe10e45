# Tables: a spec + the metrics of its runnable cells -> tables/<paper>_<table>.{md,csv,png};
# all specs + claims -> tables/audit.{md,csv}. Included by the Snakefile (SCALE, RESULTS defined there).
import os as _os
from pathlib import Path as _Path

from tables.runs import COMPUTE_CSV as _COMPUTE_CSV, has_compute_cells as _has_compute_cells, metrics_files as _metrics_files
from tables.schema import load_spec as _load_spec


def table_inputs(wildcards):
    """Spec, metrics files of the runnable cells, and compute.csv when the spec has compute cells
    and the file exists or a `compute` rule can make it."""
    spec_path = f"tables/specs/{wildcards.paper}_{wildcards.table}.yaml"
    if not _os.path.exists(spec_path):
        return {"spec": spec_path}  # Snakemake reports the missing spec by name
    spec = _load_spec(spec_path)
    inputs = {"spec": spec_path, "metrics": _metrics_files(spec, SCALE, RESULTS)}
    if _has_compute_cells(spec) and (_os.path.exists(_COMPUTE_CSV) or any(r.name == "compute" for r in workflow.rules)):
        inputs["compute"] = _COMPUTE_CSV
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
