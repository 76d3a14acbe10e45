# Dataset preparation: fixture generation (smoke) or the real data root (full) -> manifests.
# A manifest depends on the fingerprint of its dataset folder (dataset_source in core/common.smk), so
# a changed video or annotation file re-runs it.
# Included by the Snakefile after core/common.smk (SCALE, PROFILE, RESULTS, PY, dataset_root, ...).
from datasets.motion.cache import CACHE_LAYOUT
from datasets.sources.fixtures import FIXTURE_DIRECTORIES


# The fingerprint is taken once the data is written, so the next DAG build finds it unchanged
# (dataset_source in core/common.smk) and does not re-run preparation. The marker is a hidden file,
# not part of it: Snakemake touches outputs after the job.
rule fixture:
    output:
        marker=FIXTURE_MARKER,
        fingerprint=SOURCE_FINGERPRINT,
    wildcard_constraints:
        directory="|".join(FIXTURE_DIRECTORIES),
    params:
        key=lambda w: FIXTURE_DIRECTORIES[w.directory],
    threads: job_resources("prepare")["threads"]
    resources:
        **rule_resources("prepare"),
    log:
        f"{RESULTS}/logs/fixture_{{directory}}.log",
    shell:
        "({PY} -m datasets.sources.fixtures --dataset {params.key} --root {RESULTS}/data/{wildcards.directory} "
        "--scale {SCALE} --done {output.marker} && "
        "{PY} -m datasets.sources.fingerprint --root {RESULTS}/data/{wildcards.directory} --out {output.fingerprint}) 2> {log}"


rule manifest:
    input:
        lambda w: dataset_source(w.dataset),
    output:
        manifest=f"{RESULTS}/manifests/{{dataset}}.csv",
        quarantine=f"{RESULTS}/manifests/{{dataset}}.quarantine.csv",
    params:
        root=lambda w: dataset_root(w.dataset),
    threads: job_resources("prepare")["threads"]
    resources:
        **rule_resources("prepare"),
    log:
        f"{RESULTS}/logs/manifest_{{dataset}}.log",
    shell:
        "{PY} -m datasets.manifests.manifest --dataset {wildcards.dataset} --root {params.root} --scale {SCALE} "
        "--out {output.manifest} --quarantine {output.quarantine} 2> {log}"


rule k400_mini:
    input:
        f"{RESULTS}/manifests/k400.csv",
    output:
        f"{RESULTS}/manifests/k400_mini.csv",
    threads: job_resources("default")["threads"]
    resources:
        **rule_resources("default"),
    log:
        f"{RESULTS}/logs/manifest_k400_mini.log",
    shell:
        "{PY} -m datasets.manifests.subsets --parent {input} --scale {SCALE} --out {output} 2> {log}"


ruleorder: k400_mini > manifest


rule imagenet_standin:
    """Pretraining set `imagenet`: the K400 train videos (datasets/sources/registry.py says why)."""
    input:
        f"{RESULTS}/manifests/k400.csv",
    output:
        f"{RESULTS}/manifests/imagenet.csv",
    threads: job_resources("default")["threads"]
    resources:
        **rule_resources("default"),
    log:
        f"{RESULTS}/logs/manifest_imagenet.log",
    shell:
        "{PY} -m datasets.manifests.subsets --subset imagenet --parent {input} --scale {SCALE} --out {output} 2> {log}"


ruleorder: imagenet_standin > manifest


rule motion:
    input:
        f"{RESULTS}/manifests/{{dataset}}.csv",
    output:
        f"{RESULTS}/motion/{{kind}}/_summary_{{dataset}}.json",
    wildcard_constraints:
        kind="edge|flow|diff",
    params:
        root=lambda w: dataset_root(w.dataset),
        cache=lambda w: motion_cache_dir(w.kind, w.dataset),
        raft=lambda w: f"--raft-weights {config['raft_weights']}" if config.get("raft_weights") else "",
        layout=CACHE_LAYOUT,  # a change of cache layout re-runs the extraction
    threads: job_resources("motion")["threads"]
    resources:
        **rule_resources("motion"),
    log:
        f"{RESULTS}/logs/motion_{{kind}}_{{dataset}}.log",
    shell:
        "{PY} -m datasets.motion.flow --manifest {input} --root {params.root} --kind {wildcards.kind} --scale {SCALE} "
        "--cache-dir {params.cache} --summary {output} {params.raft} 2> {log}"
