# The one common include, read first by the Snakefile: the interpreter, the scale profile, the
# result paths and the dataset roots. Every other rule file relies only on what is defined here,
# never on another rule file's globals or on include order.
import os as _os
import sys as _sys

from core.config import load_scale
from datasets.sources.fingerprint import refresh as _refresh_fingerprint
from datasets.sources.layout import check_root as _check_dataset_root
from datasets.sources.registry import dataset_info

SCALE = str(config.get("scale", "smoke"))
PROFILE = load_scale(SCALE)
RESULTS = f"results/{SCALE}"
DATA_ROOT = config.get("data_root") or None
# Every job runs this interpreter with the repository root importable.
PY = f"PYTHONPATH={workflow.basedir} {_sys.executable}"


FIXTURES = PROFILE.get("data_source") == "fixtures"
# Per dataset folder: the marker rule `fixture` writes when it has generated a fixture dataset, and
# the fingerprint of the folder's files that manifests depend on (datasets/sources/fingerprint.py).
FIXTURE_MARKER = RESULTS + "/data/{directory}/.fixture.json"
SOURCE_FINGERPRINT = RESULTS + "/sources/{directory}.json"


def dataset_root(dataset):
    """Folder holding `dataset` in its official layout."""
    directory = dataset_info(dataset).directory
    if FIXTURES:
        return f"{RESULTS}/data/{directory}"
    if not DATA_ROOT:
        raise ValueError(
            f"scale {SCALE!r} reads real datasets: pass --config data_root=DIR with DIR/{directory}/ in the official layout"
        )
    return f"{DATA_ROOT}/{directory}"


_FINGERPRINTED = set()  # dataset folders whose fingerprint this DAG build has refreshed


def _refresh_fingerprint_once(directory, root):
    if directory not in _FINGERPRINTED:
        _refresh_fingerprint(SOURCE_FINGERPRINT.format(directory=directory), root)
        _FINGERPRINTED.add(directory)


def dataset_source(dataset):
    """What a manifest depends on: the fingerprint of its dataset folder, refreshed here once per
    DAG build, so that an added, removed, touched or edited video or annotation file re-runs
    preparation and everything after it; at smoke scale also the fixture marker. At full scale the
    data root must hold the dataset's layout (datasets/sources/layout.py) before any job runs."""
    directory = dataset_info(dataset).directory
    root = dataset_root(dataset)
    fingerprint = SOURCE_FINGERPRINT.format(directory=directory)
    if FIXTURES:
        marker = FIXTURE_MARKER.format(directory=directory)
        if _os.path.exists(marker):  # else rule `fixture` runs and writes both
            _refresh_fingerprint_once(directory, root)
        return [marker, fingerprint]
    _check_dataset_root(dataset, root)
    _refresh_fingerprint_once(directory, root)
    return fingerprint


def motion_cache_dir(kind, dataset):
    """Motion caches are per video, shared by every manifest of the same videos (k400, k400_mini)."""
    return f"{RESULTS}/motion/{kind}/{dataset_info(dataset).directory}"


def input_cache(kind, dataset):
    """(summary file, cache folder) of a precomputed per-video input of `dataset`: MaCLR's flow
    edges, flow and frame differences, MCL's TV-L1 motion maps, CMD's compressed-domain inputs.
    The summary is what a rule depends on; the folder is what a job reads."""
    if kind == "compressed":  # per dataset: it reads that dataset's mpeg4_gop12 transcode
        return f"{RESULTS}/motion/compressed/_summary_{dataset}.json", f"{RESULTS}/motion/compressed/{dataset}"
    if kind in ("edge", "flow", "diff", "tvl1"):
        return f"{RESULTS}/motion/{kind}/_summary_{dataset}.json", motion_cache_dir(kind, dataset)
    raise ValueError(f"no cache for input kind {kind!r}")


# A job kind the profile's `resources:` does not list takes its `default:` entry, over these.
DEFAULT_RESOURCES = {"threads": 1, "gpus": 0, "mem_mb": 4000, "runtime": 60}


def job_resources(job):
    """threads, gpus, mem_mb, runtime (minutes) and optional partition of a job kind, from the scale
    profile's `resources:` (its entry for `job`, over its `default:` entry, over DEFAULT_RESOURCES)."""
    table = PROFILE.get("resources") or {}
    return {**DEFAULT_RESOURCES, **(table.get("default") or {}), **(table.get(job) or {})}


def rule_resources(job):
    """What a rule of job kind `job` declares under `resources:`, in the names Snakemake and its SLURM
    executor plugin read: mem_mb, runtime, cpus_per_task (= threads), gpu, and slurm_partition from the
    profile entry's `partition:`, else the config key `gpu_partition` (GPU jobs) or `partition`, when set."""
    r = job_resources(job)
    out = {"mem_mb": int(r["mem_mb"]), "runtime": int(r["runtime"]), "cpus_per_task": int(r["threads"]), "gpu": int(r["gpus"])}
    partition = r.get("partition") or (out["gpu"] and config.get("gpu_partition")) or config.get("partition")
    if partition:
        out["slurm_partition"] = str(partition)
    return out
