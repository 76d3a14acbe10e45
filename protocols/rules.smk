# Evaluation protocols: checkpoint + evaluation manifest -> metrics JSON, one module per protocol
# (the registry protocols.PROTOCOLS). Included by the Snakefile after core/common.smk.
from core.config import method_config as _method_config
from core.seeds import seed_folder as _seed_folder
from methods.training.registry import method_class as _method_class
from protocols import PROTOCOLS


def eval_input_kind(w):
    """What the checkpoint's encoder reads, decided from the method's contract before the
    checkpoint exists, so the DAG is complete (the protocol itself reads the checkpoint's
    `input` block)."""
    return _method_class(w.method).transfer_input(_method_config(w.method, SCALE, w.variant))


def eval_input_files(w):
    kind = eval_input_kind(w)
    return [] if kind == "rgb" else input_cache(kind, w.evaldata)[0]


def eval_input_arg(w):
    kind = eval_input_kind(w)
    return "" if kind == "rgb" else f"--motion-cache {input_cache(kind, w.evaldata)[1]}"


rule evaluate:
    input:
        checkpoint=lambda w: f"{RESULTS}/pretrain/{w.method}/{w.variant}/{w.pretrain}{_seed_folder(w.get('seed'))}/checkpoint.pt",
        manifest=f"{RESULTS}/manifests/{{evaldata}}.csv",
        motion=eval_input_files,
    output:
        f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/{{protocol}}/{{evaldata}}.json",
    wildcard_constraints:
        protocol="|".join(PROTOCOLS),
    params:
        root=lambda w: dataset_root(w.evaldata),
        motion=eval_input_arg,
        module=lambda w: PROTOCOLS[w.protocol],
    threads: job_resources("evaluate")["threads"]
    resources:
        **rule_resources("evaluate"),
    log:
        f"{RESULTS}/logs/{{protocol}}_{{method}}_{{variant}}_{{pretrain}}_{{evaldata}}.log",
    shell:
        "{PY} -m {params.module} --checkpoint {input.checkpoint} --manifest {input.manifest} --root {params.root} "
        "{params.motion} --protocol {wildcards.protocol} --scale {SCALE} --out {output} --threads {threads} 2> {log}"


# One evaluation per seed's checkpoint, in the seed's folder (core/seeds.py).
use rule evaluate as evaluate_seeded with:
    output:
        f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/seed{{seed}}/{{protocol}}/{{evaldata}}.json",
    wildcard_constraints:
        protocol="|".join(PROTOCOLS),
        seed=r"[0-9]+",
    log:
        f"{RESULTS}/logs/{{protocol}}_{{method}}_{{variant}}_{{pretrain}}_seed{{seed}}_{{evaldata}}.log",
