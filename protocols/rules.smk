# Evaluation protocols: checkpoint + evaluation manifest -> metrics JSON, one module per protocol
# (protocols/linear.py, retrieval.py, finetune.py; low-shot is fine-tuning on a low-shot manifest).
# Included by the Snakefile.
from core.config import method_config as _method_config


def eval_motion_inputs(w):
    """An encoder that reads motion (MaCLR's M-only) needs the evaluation set's motion cache.

    Decided from the method's config before the checkpoint exists, so the DAG is complete."""
    cfg = _method_config(w.method, SCALE, w.variant)
    if cfg.get("eval_pathway", "visual") != "motion":
        return []
    return f"{RESULTS}/motion/{cfg['motion']['input']}/_summary_{w.evaldata}.json"


def eval_motion_arg(w):
    cfg = _method_config(w.method, SCALE, w.variant)
    if cfg.get("eval_pathway", "visual") != "motion":
        return ""
    return f"--motion-cache {motion_cache_dir(cfg['motion']['input'], w.evaldata)}"


PROTOCOL_MODULES = {"linear": "linear", "retrieval": "retrieval", "finetune": "finetune", "lowshot": "finetune"}


rule evaluate:
    input:
        checkpoint=f"{RESULTS}/pretrain/{{method}}/{{variant}}/{{pretrain}}/checkpoint.pt",
        manifest=f"{RESULTS}/manifests/{{evaldata}}.csv",
        motion=eval_motion_inputs,
    output:
        f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/{{protocol}}/{{evaldata}}.json",
    wildcard_constraints:
        protocol="|".join(PROTOCOL_MODULES),
    params:
        root=lambda w: dataset_root(w.evaldata),
        motion=eval_motion_arg,
        module=lambda w: PROTOCOL_MODULES[w.protocol],
        name=lambda w: "--protocol lowshot" if w.protocol == "lowshot" else "",
    threads: 1
    log:
        f"{RESULTS}/logs/{{protocol}}_{{method}}_{{variant}}_{{pretrain}}_{{evaldata}}.log",
    shell:
        "{PY} -m protocols.{params.module} --checkpoint {input.checkpoint} --manifest {input.manifest} --root {params.root} "
        "{params.motion} {params.name} --scale {SCALE} --out {output} --threads {threads} 2> {log}"
