# Protocols on frozen features (linear layer, nearest-neighbour retrieval): checkpoint + evaluation
# manifest -> metrics JSON, one module protocols/<protocol>.py each. Included by the Snakefile.
from core.config import method_config as _method_config


def frozen_motion_inputs(w):
    """An encoder that reads motion (MaCLR's M-only) needs the evaluation set's motion cache.

    Decided from the method's config before the checkpoint exists, so the DAG is complete."""
    cfg = _method_config(w.method, SCALE, w.variant)
    if cfg.get("eval_pathway", "visual") != "motion":
        return []
    return f"{RESULTS}/motion/{cfg['motion']['input']}/_summary_{w.evaldata}.json"


def frozen_motion_arg(w):
    cfg = _method_config(w.method, SCALE, w.variant)
    if cfg.get("eval_pathway", "visual") != "motion":
        return ""
    return f"--motion-cache {motion_cache_dir(cfg['motion']['input'], w.evaldata)}"


rule frozen_eval:
    input:
        checkpoint=f"{RESULTS}/pretrain/{{method}}/{{variant}}/{{pretrain}}/checkpoint.pt",
        manifest=f"{RESULTS}/manifests/{{evaldata}}.csv",
        motion=frozen_motion_inputs,
    output:
        f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/{{protocol}}/{{evaldata}}.json",
    wildcard_constraints:
        protocol="linear|retrieval",
    params:
        root=lambda w: dataset_root(w.evaldata),
        motion=frozen_motion_arg,
    threads: 1
    log:
        f"{RESULTS}/logs/{{protocol}}_{{method}}_{{variant}}_{{pretrain}}_{{evaldata}}.log",
    shell:
        "{PY} -m protocols.{wildcards.protocol} --checkpoint {input.checkpoint} --manifest {input.manifest} --root {params.root} "
        "{params.motion} --scale {SCALE} --out {output} --threads {threads} 2> {log}"
