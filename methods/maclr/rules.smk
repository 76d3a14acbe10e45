# MaCLR pretraining: one job per (variant, pretraining set). Included by the Snakefile.
from core.config import method_config as _method_config


def maclr_cfg(variant):
    return _method_config("maclr", SCALE, variant)


def maclr_motion_inputs(w):
    """The motion cache a variant reads (none for V-only)."""
    cfg = maclr_cfg(w.variant)
    if "motion" not in cfg["pathways"]:
        return []
    return f"{RESULTS}/motion/{cfg['motion']['input']}/_summary_{w.pretrain}.json"


def maclr_motion_arg(w):
    cfg = maclr_cfg(w.variant)
    if "motion" not in cfg["pathways"]:
        return ""
    return f"--motion-cache {motion_cache_dir(cfg['motion']['input'], w.pretrain)}"


def maclr_video_inputs(w):
    """DALI decodes constant-frame-rate H.264 transcodes with NVDEC; the CPU path reads the originals."""
    if maclr_cfg(w.variant)["decoder"] != "dali":
        return []
    return f"{RESULTS}/transcode/h264_cfr/{w.pretrain}/_summary.json"


def maclr_summary(w):
    """One line the dry run shows for each pretraining job: the settings that matter."""
    cfg = maclr_cfg(w.variant)
    v, m = cfg["visual"], cfg["motion"]
    motion = f", motion {m['input']} {m['clip']['num_frames']}x{m['clip']['stride']} (gamma {m['threshold']})" if "motion" in cfg["pathways"] else ""
    return (f"MaCLR {w.variant} on {w.pretrain}: {cfg['epochs'][w.pretrain]} epochs, batch {cfg['batch_size']}, "
            f"losses {'+'.join(cfg['losses'])}, visual {v['backbone']} {v['clip']['num_frames']}x{v['clip']['stride']}x{v['clip']['crop_size']}^2"
            f"{motion}, queue {cfg['queue_size']}, decoder {cfg['decoder']}")


rule maclr_pretrain:
    input:
        manifest=f"{RESULTS}/manifests/{{pretrain}}.csv",
        motion=maclr_motion_inputs,
        videos=maclr_video_inputs,
    output:
        f"{RESULTS}/pretrain/maclr/{{variant}}/{{pretrain}}/checkpoint.pt",
    wildcard_constraints:
        pretrain="k400|k400_mini",
    params:
        root=lambda w: dataset_root(w.pretrain),
        motion=maclr_motion_arg,
        out=lambda w: f"{RESULTS}/pretrain/maclr/{w.variant}/{w.pretrain}",
        videos=lambda w: f"--video-dir {RESULTS}/transcode/h264_cfr/{w.pretrain}" if maclr_video_inputs(w) else "",
        summary=maclr_summary,
    message:
        "{params.summary}"
    threads: 1
    log:
        f"{RESULTS}/logs/pretrain_maclr_{{variant}}_{{pretrain}}.log",
    shell:
        "{PY} -m methods.maclr.pretrain --variant {wildcards.variant} --pretrain {wildcards.pretrain} --scale {SCALE} "
        "--manifest {input.manifest} --root {params.root} {params.motion} {params.videos} --out {params.out} --threads {threads} 2> {log}"
