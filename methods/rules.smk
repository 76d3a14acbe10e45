# Pretraining: one rule pattern for every method folder (methods/<method>/ with config.yaml and
# __init__.py defining METHOD) and variant, on the shared engine (methods/training/).
# Included by the Snakefile after core/common.smk.
import re as _re
import shlex as _shlex

from core.config import method_config as _method_config, method_variants as _method_variants
from core.errors import ConfigError as _ConfigError
from core.seeds import seed_folder as _seed_folder
from methods.training.registry import method_class as _method_class, method_names as _method_names


def pretrain_config(w):
    return _method_config(w.method, SCALE, w.variant)


def pretrain_input_files(w):
    """The manifest, the method's config and the scale profile (a changed hyperparameter reruns
    what depends on it), and every precomputed input the method's pretraining dataset reads."""
    cfg = pretrain_config(w)
    if cfg.get("pretraining_of"):  # evaluated from the other variant's checkpoint (protocols/rules.smk)
        raise _ConfigError(f"{w.method} {w.variant} shares the pretraining of {cfg['pretraining_of']}: "
                         f"pretrain that variant, or evaluate this one (results/<scale>/eval/...)")
    files = {"manifest": f"{RESULTS}/manifests/{w.pretrain}.csv", "method_config": f"methods/{w.method}/config.yaml",
             "scale_profile": f"config/scales/{SCALE}.yaml"}
    for kind in _method_class(w.method).pretrain_inputs(cfg):
        if kind == "rgb":
            if cfg.get("decoder") == "dali":  # NVDEC decodes constant-frame-rate H.264 transcodes
                files["videos"] = f"{RESULTS}/transcode/h264_cfr/{w.pretrain}/_summary.json"
        else:
            files[kind] = input_cache(kind, w.pretrain)[0]
    weights = init_weights_path(w.method, cfg)
    if weights:
        files["init_weights"] = weights
    return files


def init_weights_path(method, cfg):
    """The weights file `cfg`'s `init` starts from (None: a seeded random start): the config key
    `<method>_init_weights`, else <data_root>/pretrained/<the method's file name> (results/<scale>/
    pretrained/ where no data root is given)."""
    name = _method_class(method).init_weights_file(cfg)
    if not name:
        return None
    return str(config.get(f"{method}_init_weights") or f"{DATA_ROOT or RESULTS}/pretrained/{name}")


# Every weights file a variant at this scale starts from: a missing one is made by no job of the suite,
# so rule `init_weights` stands for it (a dry run lists it; a run stops there with what to do).
INIT_WEIGHTS = {path: method for method in _method_names() for variant in _method_variants(method)
                if (path := init_weights_path(method, _method_config(method, SCALE, variant)))}


def missing_init_weights(path):
    method = INIT_WEIGHTS[path]
    return (f"error: {method} pretraining at scale {SCALE} starts from the weights file {path}, which is not there "
            f"(methods/{method}/config.yaml `init` says which weights and where they come from). Put the file at "
            f"that path, or pass another with --config {method}_init_weights=PATH.")


def pretrain_source_args(w):
    cfg = pretrain_config(w)
    args = []
    for kind in _method_class(w.method).pretrain_inputs(cfg):
        if kind == "rgb":
            if cfg.get("decoder") == "dali":
                args.append(f"--video-dir {RESULTS}/transcode/h264_cfr/{w.pretrain}")
        else:
            args.append(f"--input {kind}={input_cache(kind, w.pretrain)[1]}")
    return " ".join(args)




# Methods that pretrain (rule `pretrain`, on a pretraining set); every method's checkpoint for
# pretraining set `none` is its seeded random start (rule `random_start`: the Scratch baselines of
# methods/random_init, CMD Table 6's regularised training).
_PRETRAINING_METHODS = [m for m in _method_names() if _method_class(m).pretrains]
_NOT_NONE = r"(?!none/)[a-z0-9_]+"


rule pretrain:
    input:
        unpack(pretrain_input_files),
    output:
        checkpoint=f"{RESULTS}/pretrain/{{method}}/{{variant}}/{{pretrain}}/checkpoint.pt",
        curve=report(f"{RESULTS}/pretrain/{{method}}/{{variant}}/{{pretrain}}/curve.png", category="Training curves",
                     subcategory="{method}", labels={"variant": "{variant}", "pretraining data": "{pretrain}"}),
    wildcard_constraints:
        method="|".join(_PRETRAINING_METHODS),
        pretrain=_NOT_NONE,
    params:
        root=lambda w: dataset_root(w.pretrain),
        sources=pretrain_source_args,
        out=lambda w: f"{RESULTS}/pretrain/{w.method}/{w.variant}/{w.pretrain}{_seed_folder(w.get('seed'))}",
        seed=lambda w: "" if w.get("seed") is None else f"--seed {w.seed}",
        init=lambda w: f"--init-weights {_shlex.quote(p)}" if (p := init_weights_path(w.method, pretrain_config(w))) else "",
        summary=lambda w: _method_class(w.method).describe(pretrain_config(w), w.pretrain) or f"{w.method} {w.variant} on {w.pretrain}",
    message:
        "{params.summary}; job: {resources.gpu} GPU(s), {resources.cpus_per_task} CPUs, {resources.mem_mb} MB, {resources.runtime} min"
    threads: int(job_resources("pretrain")["threads"])
    resources:
        **rule_resources("pretrain"),
    log:
        f"{RESULTS}/logs/pretrain_{{method}}_{{variant}}_{{pretrain}}.log",
    shell:
        # Inside the job: one process per GPU the job was given under torchrun, else one process (core/launch.py).
        "{PY} -m core.launch --gpus {resources.gpu} -m methods.training.pretrain --method {wildcards.method} --variant {wildcards.variant} "
        "--pretrain {wildcards.pretrain} --scale {SCALE} --manifest {input.manifest} --root {params.root} {params.sources} "
        "{params.seed} {params.init} --out {params.out} --threads {threads} 2> {log}"


# A profile listing `seeds:` runs each seed in its own folder (core/seeds.py); the same job otherwise.
use rule pretrain as pretrain_seeded with:
    output:
        checkpoint=f"{RESULTS}/pretrain/{{method}}/{{variant}}/{{pretrain}}/seed{{seed}}/checkpoint.pt",
        curve=report(f"{RESULTS}/pretrain/{{method}}/{{variant}}/{{pretrain}}/seed{{seed}}/curve.png", category="Training curves",
                     subcategory="{method}", labels={"variant": "{variant} seed {seed}", "pretraining data": "{pretrain}"}),
    wildcard_constraints:
        method="|".join(_PRETRAINING_METHODS),
        pretrain=_NOT_NONE,
        seed=r"[0-9]+",
    log:
        f"{RESULTS}/logs/pretrain_{{method}}_{{variant}}_{{pretrain}}_seed{{seed}}.log",


rule random_start:
    """A variant's checkpoint at its seeded random initialisation (no data, no step)."""
    input:
        method_config="methods/{method}/config.yaml",
        scale_profile=f"config/scales/{SCALE}.yaml",
    output:
        checkpoint=f"{RESULTS}/pretrain/{{method}}/{{variant}}/none/checkpoint.pt",
    wildcard_constraints:
        method="|".join(_method_names()),
    params:
        out=lambda w: f"{RESULTS}/pretrain/{w.method}/{w.variant}/none{_seed_folder(w.get('seed'))}",
        seed=lambda w: "" if w.get("seed") is None else f"--seed {w.seed}",
        summary=lambda w: _method_class(w.method).describe(pretrain_config(w), "none"),
    message:
        "{params.summary}"
    threads: job_resources("default")["threads"]
    resources:
        **rule_resources("default"),
    log:
        f"{RESULTS}/logs/random_start_{{method}}_{{variant}}.log",
    shell:
        "{PY} -m methods.training.random_start --method {wildcards.method} --variant {wildcards.variant} --scale {SCALE} "
        "{params.seed} --out {params.out} 2> {log}"


use rule random_start as random_start_seeded with:
    output:
        checkpoint=f"{RESULTS}/pretrain/{{method}}/{{variant}}/none/seed{{seed}}/checkpoint.pt",
    wildcard_constraints:
        method="|".join(_method_names()),
        seed=r"[0-9]+",
    log:
        f"{RESULTS}/logs/random_start_{{method}}_{{variant}}_seed{{seed}}.log",


if INIT_WEIGHTS:

    rule init_weights:
        output:
            "{init_weights}",
        wildcard_constraints:
            init_weights="|".join(_re.escape(path) for path in INIT_WEIGHTS),
        params:
            why=lambda w: _shlex.quote(missing_init_weights(w.init_weights)),
        message:
            "missing weights file {output}: put it there or set --config <method>_init_weights=PATH"
        threads: job_resources("default")["threads"]
        resources:
            **rule_resources("default"),
        shell:
            "echo {params.why} >&2; exit 1"
