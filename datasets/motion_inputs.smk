# MCL and CMD motion inputs, one cache file per video (DESIGN, data flow step 3):
#   tvl1        MCL Sec. 3.1: TV-L1 flow -> motion map (Eq. 1) per frame, T-motion (Eq. 2), quantised flow
#               results/<scale>/motion/tvl1/<DATASET_DIR>/<video_id>.arrays/  (shared by the splits of a dataset)
#   compressed  CMD Sec. 2.2/4.1: I-frames and motion-vector maps of the mpeg4_gop12 transcode
#               results/<scale>/motion/compressed/<dataset>/<video_id>.arrays/ (the transcode is per dataset)
# A cache folder holds one uncompressed .npy per array, memory-mapped by the readers (datasets/motion/cache.py);
# `layout` in params re-runs a rule whose caches were written in an earlier layout.
# Summaries (counts, failures named, frames/s per core): results/<scale>/motion/<kind>/_summary_<dataset>.json,
# failures also in _summary_<dataset>.quarantine.csv. Cached videos are skipped, so a run resumes.
# Included by the Snakefile after core/common.smk (dataset_root, motion_cache_dir, input_cache, PY).
# Sizes from the scale profile's `motion_inputs:` (config/scales/<scale>.yaml, with citations there).
from datasets.motion.cache import CACHE_LAYOUT

_MOTION_INPUTS = PROFILE["motion_inputs"]
_STRICT = "--strict" if PROFILE.get("preparation", {}).get("strict") else ""
_NO_FLOW = "" if _MOTION_INPUTS.get("tvl1_store_flow", True) else "--no-flow"


def tvl1_short_side(dataset):
    """Short side frames are resized to before TV-L1 (0: as decoded): `motion_inputs.tvl1_short_side`,
    one number or a map from dataset folder (Kinetics400, ...) to number with a `default`. Keyed by
    folder because the TV-L1 cache is shared by the manifests of one folder (k400, k400_mini)."""
    side = _MOTION_INPUTS["tvl1_short_side"]
    if isinstance(side, dict):
        side = side.get(dataset_info(dataset).directory, side["default"])
    return int(side)


rule mcl_motion:
    input:
        f"{RESULTS}/manifests/{{dataset}}.csv",
    output:
        f"{RESULTS}/motion/tvl1/_summary_{{dataset}}.json",
    params:
        root=lambda w: dataset_root(w.dataset),
        cache=lambda w: motion_cache_dir("tvl1", w.dataset),
        short_side=lambda w: tvl1_short_side(w.dataset),
        layout=CACHE_LAYOUT,
    threads: job_resources("motion_inputs")["threads"]
    resources:
        **rule_resources("motion_inputs"),
    log:
        f"{RESULTS}/logs/motion_tvl1_{{dataset}}.log",
    shell:
        "{PY} -m datasets.motion.tvl1 --manifest {input} --root {params.root} --out-dir {params.cache} "
        "--summary {output} --short-side {params.short_side} {_NO_FLOW} {_STRICT} 2> {log}"


rule cmd_compressed:
    input:
        manifest=f"{RESULTS}/manifests/{{dataset}}.csv",
        transcode=f"{RESULTS}/transcode/mpeg4_gop12/{{dataset}}/_summary.json",
    output:
        f"{RESULTS}/motion/compressed/_summary_{{dataset}}.json",
    params:
        root=lambda w: f"{RESULTS}/transcode/mpeg4_gop12/{w.dataset}",
        cache=lambda w: input_cache("compressed", w.dataset)[1],
        layout=CACHE_LAYOUT,
    threads: job_resources("motion_inputs")["threads"]
    resources:
        **rule_resources("motion_inputs"),
    log:
        f"{RESULTS}/logs/motion_compressed_{{dataset}}.log",
    shell:
        "{PY} -m datasets.motion.compressed --manifest {input.manifest} --root {params.root} --transcoded .avi "
        "--out-dir {params.cache} --summary {output} --grid " + str(int(_MOTION_INPUTS["mv_grid"])) + " {_STRICT} 2> {log}"
