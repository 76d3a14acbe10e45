# Transcodes of a manifest's videos for the consumers that need a given codec (DESIGN, step 2):
#   h264_cfr    constant-frame-rate H.264 in MP4, for NVDEC (DALI "mixed" decoder)
#   vp9         lossless VP9 in WebM, for DALI's CPU decoder (CI)
#   mpeg4_gop12 MPEG-4 Part 2 in AVI, GOP 12, no B-frames (CMD's compressed-domain inputs)
# Each video goes to results/<scale>/transcode/<codec>/<dataset>/<video_id>.<ext>; videos already
# there are skipped, so an interrupted run resumes. The summary is written last.
# Included by the Snakefile after core/common.smk (SCALE, RESULTS, PY, dataset_root).
from datasets.transcodes.transcode import PROFILES as TRANSCODE_PROFILES


rule transcode:
    input:
        f"{RESULTS}/manifests/{{dataset}}.csv",
    output:
        f"{RESULTS}/transcode/{{codec}}/{{dataset}}/_summary.json",
    wildcard_constraints:
        codec="|".join(TRANSCODE_PROFILES),
    params:
        root=lambda w: dataset_root(w.dataset),
        out_dir=lambda w: f"{RESULTS}/transcode/{w.codec}/{w.dataset}",
    threads: job_resources("transcode")["threads"]
    resources:
        **rule_resources("transcode"),
    log:
        f"{RESULTS}/logs/transcode_{{codec}}_{{dataset}}.log",
    shell:
        "{PY} -m datasets.transcodes.transcode --manifest {input} --root {params.root} "
        "--codec {wildcards.codec} --out-dir {params.out_dir} --summary {output} 2> {log}"
