# Preparation of SSv2, SSv1, Diving48, VidSitu, AVA v2.2 (datasets/sources/parsers/), Kinetics-400 val and
# the UCF101 low-shot subsets (datasets/manifests/lowshot.py): the manifests of the parsed datasets come from
# rule `manifest` of datasets/rules.smk (one code path); AVA's boxes, K400 val and low-shot here.
# Fixtures (smoke) come from rule `fixture` (datasets.sources.fixtures, formats in datasets/sources/fixtures_extra.py).
# Included by the Snakefile; dataset_root() and dataset_source() are defined in core/common.smk.



# Their manifests come from rule `manifest` (datasets/rules.smk): `datasets.manifests.manifest.entries_for`
# falls back to datasets.sources.parsers.PARSERS. AVA's evaluated boxes are one more step.
rule ava_boxes:
    input:
        source=lambda w: dataset_source(w.dataset),
        manifest=f"{RESULTS}/manifests/{{dataset}}.csv",
    output:
        f"{RESULTS}/manifests/{{dataset}}.boxes.csv",
    wildcard_constraints:
        dataset="ava_train|ava_val|ava",
    params:
        root=lambda w: dataset_root(w.dataset),
    threads: job_resources("prepare")["threads"]
    resources:
        **rule_resources("prepare"),
    log:
        f"{RESULTS}/logs/boxes_{{dataset}}.log",
    shell:
        "{PY} -m datasets.sources.parsers.prepare --dataset {wildcards.dataset} --root {params.root} "
        "--manifest {input.manifest} --out {output} 2> {log}"


rule k400_val:
    input:
        f"{RESULTS}/manifests/k400.csv",
    output:
        f"{RESULTS}/manifests/k400_val.csv",
    threads: job_resources("default")["threads"]
    resources:
        **rule_resources("default"),
    run:
        import pandas as pd
        from core.io import write_csv

        rows = pd.read_csv(input[0], dtype={"video_id": str})
        write_csv(output[0], rows[rows["split"] == "val"])


rule ucf101_lowshot:
    input:
        f"{RESULTS}/manifests/ucf101_split1.csv",
    output:
        f"{RESULTS}/manifests/ucf101_lowshot_{{pct}}.csv",
    wildcard_constraints:
        pct="1|5|20|40|60|80|100",
    threads: job_resources("default")["threads"]
    resources:
        **rule_resources("default"),
    log:
        f"{RESULTS}/logs/manifest_ucf101_lowshot_{{pct}}.log",
    shell:
        "{PY} -m datasets.manifests.lowshot --parent {input} --pct {wildcards.pct} --scale {SCALE} --out {output} 2> {log}"


localrules: lowshot_all  # a target: no job of its own


rule lowshot_all:
    input:
        expand(f"{RESULTS}/manifests/ucf101_lowshot_{{pct}}.csv", pct=[1, 5, 20, 40, 60, 80, 100]),


ruleorder: k400_val > manifest
ruleorder: ucf101_lowshot > manifest
