# The one common include, read first by the Snakefile: the interpreter, the scale profile, the
# result paths and the dataset roots. Every other rule file relies only on what is defined here,
# never on another rule file's globals or on include order.
import sys as _sys

from core.config import load_scale
from datasets.sources.registry import DATASETS

SCALE = str(config.get("scale", "smoke"))
PROFILE = load_scale(SCALE)
RESULTS = f"results/{SCALE}"
DATA_ROOT = config.get("data_root") or None
# Every job runs this interpreter with the repository root importable.
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


def motion_cache_dir(kind, dataset):
    """Motion caches are per video, shared by every manifest of the same videos (k400, k400_mini)."""
    return f"{RESULTS}/motion/{kind}/{DATASETS[dataset].directory}"


def input_cache(kind, dataset):
    """(summary file, cache folder) of a precomputed per-video input of `dataset`: MaCLR's flow
    edges, flow and frame differences, MCL's TV-L1 motion maps, CMD's compressed-domain inputs.
    The summary is what a rule depends on; the folder is what a job reads."""
    if kind == "compressed":  # per dataset: it reads that dataset's mpeg4_gop12 transcode
        return f"{RESULTS}/motion/compressed/_summary_{dataset}.json", f"{RESULTS}/motion/compressed/{dataset}"
    if kind in ("edge", "flow", "diff", "tvl1"):
        return f"{RESULTS}/motion/{kind}/_summary_{dataset}.json", motion_cache_dir(kind, dataset)
    raise ValueError(f"no cache for input kind {kind!r}")


def job_resources(job):
    """threads, gpus, mem_mb and runtime (minutes) of a job kind, from the scale profile's `resources:`."""
    return dict(PROFILE["resources"][job])
