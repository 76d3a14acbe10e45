# The orderings report (tables/orderings.py): each paper's central ordering and each method's
# learning check, over the profile's seeds. `snakemake tables/orderings.md --config scale=mini`.
# Included by the Snakefile after core/common.smk (SCALE, PROFILE, RESULTS, PY).
from tables.orderings import SPEC as _ORDERINGS_SPEC, load_spec as _load_orderings, required_metrics as _ordering_metrics


rule orderings:
    input:
        spec="tables/orderings.yaml",
        metrics=lambda w: _ordering_metrics(_load_orderings(_ORDERINGS_SPEC), PROFILE, RESULTS),
    output:
        md=report("tables/orderings.md", category="Orderings", labels={"file": "report"}),
        csv=report("tables/orderings.csv", category="Orderings", labels={"file": "long-form CSV"}),
        png=report("tables/orderings.png", category="Orderings", labels={"file": "plot"}),
    threads: job_resources("table")["threads"]
    resources:
        **rule_resources("table"),
    log:
        f"{RESULTS}/logs/orderings.log",
    shell:
        "{PY} -m tables.orderings --spec {input.spec} --scale {SCALE} --results {RESULTS} --out tables/orderings 2> {log}"
