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


rule maclr_pretrain:
    input:
        manifest=f"{RESULTS}/manifests/{{pretrain}}.csv",
        motion=maclr_motion_inputs,
    output:
        f"{RESULTS}/pretrain/maclr/{{variant}}/{{pretrain}}/checkpoint.pt",
    wildcard_constraints:
        pretrain="k400|k400_mini",
    params:
        root=lambda w: dataset_root(w.pretrain),
        motion=maclr_motion_arg,
        out=lambda w: f"{RESULTS}/pretrain/maclr/{w.variant}/{w.pretrain}",
    threads: 1
    log:
        f"{RESULTS}/logs/pretrain_maclr_{{variant}}_{{pretrain}}.log",
    shell:
        "{PY} -m methods.maclr.pretrain --variant {wildcards.variant} --pretrain {wildcards.pretrain} --scale {SCALE} "
        "--manifest {input.manifest} --root {params.root} {params.motion} --out {params.out} --threads {threads} 2> {log}"
