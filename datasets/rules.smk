# Dataset preparation: fixture generation (smoke) or the real data root (full) -> manifests.
# Included by the Snakefile, which defines SCALE, PROFILE, RESULTS and DATA_ROOT.
import sys as _sys

from datasets.sources.fixtures import FIXTURE_DIRECTORIES
from datasets.sources.registry import DATASETS

PY = f"PYTHONPATH={workflow.basedir} {_sys.executable}"


def dataset_root(dataset):
    """Folder holding `dataset` in its official layout."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(sorted(DATASETS))}")
    directory = DATASETS[dataset].directory
    if PROFILE.get("data_source") == "fixtures":
        return f"{RESULTS}/data/{directory}"
    if not DATA_ROOT:
        raise ValueError(
            f"scale {SCALE!r} reads real datasets: pass --config data_root=DIR with DIR/{directory}/ in the official layout"
        )
    return f"{DATA_ROOT}/{directory}"


def dataset_source(dataset):
    """The fixture marker a manifest depends on at smoke scale; nothing at full scale."""
    if PROFILE.get("data_source") != "fixtures":
        return []
    return f"{RESULTS}/data/{DATASETS[dataset].directory}/.fixture.json"


rule fixture:
    output:
        f"{RESULTS}/data/{{directory}}/.fixture.json",
    wildcard_constraints:
        directory="|".join(FIXTURE_DIRECTORIES),
    params:
        key=lambda w: FIXTURE_DIRECTORIES[w.directory],
    log:
        f"{RESULTS}/logs/fixture_{{directory}}.log",
    shell:
        "{PY} -m datasets.sources.fixtures --dataset {params.key} --root {RESULTS}/data/{wildcards.directory} "
        "--scale {SCALE} --done {output} 2> {log}"


rule manifest:
    input:
        lambda w: dataset_source(w.dataset),
    output:
        manifest=f"{RESULTS}/manifests/{{dataset}}.csv",
        quarantine=f"{RESULTS}/manifests/{{dataset}}.quarantine.csv",
    params:
        root=lambda w: dataset_root(w.dataset),
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
    log:
        f"{RESULTS}/logs/manifest_k400_mini.log",
    shell:
        "{PY} -m datasets.manifests.subsets --parent {input} --scale {SCALE} --out {output} 2> {log}"


ruleorder: k400_mini > manifest


def motion_cache_dir(kind, dataset):
    """Motion caches are per video, shared by every manifest of the same videos (k400, k400_mini)."""
    return f"{RESULTS}/motion/{kind}/{DATASETS[dataset].directory}"


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
    log:
        f"{RESULTS}/logs/motion_{{kind}}_{{dataset}}.log",
    shell:
        "{PY} -m datasets.motion.flow --manifest {input} --root {params.root} --kind {wildcards.kind} --scale {SCALE} "
        "--cache-dir {params.cache} --summary {output} {params.raft} 2> {log}"
