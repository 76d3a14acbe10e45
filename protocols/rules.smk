# Evaluation protocols: checkpoint + evaluation manifest -> metrics JSON, one module per protocol
# (the registry protocols.PROTOCOLS). Included by the Snakefile after core/common.smk.
from core.config import method_config as _method_config, pretraining_variant as _pretraining_variant
from core.errors import ConfigError as _ConfigError
from core.seeds import seed_folder as _seed_folder
from datasets.sources.registry import DATASETS as _DATASETS
from methods.training.registry import method_class as _method_class
from protocols import FINE_TUNES as _FINE_TUNES, PROTOCOLS, READS_EXTRA_ENCODERS as _READS_EXTRA, READS_LOG as _READS_LOG
from protocols import READS_BOXES as _READS_BOXES
from protocols.pretext import paper_curves as _paper_curves


# An evaluation set that averages others (HCML Table 7: UCF101's three splits, ucf101_3splits) has no
# manifest: the protocol runs once per split (rule evaluate), then rule evaluate_split_average averages
# the per-split metrics files into one. Rule evaluate never takes it (_ONE_SET), so a missing split is
# reported as missing, never replaced by a manifest of the average's id.
_SPLIT_AVERAGES = {d: info.averages for d, info in _DATASETS.items() if info.averages}
_ONE_SET = r"(?!(?:" + "|".join(_SPLIT_AVERAGES) + r")(?![a-z0-9_]))[a-z0-9_]+"  # any id but an average's


def eval_input_kinds(w):
    """The non-RGB input kinds the evaluation reads, decided from the method's contract before the
    checkpoint exists, so the DAG is complete (the protocol itself reads the checkpoint's `input`
    blocks): the transferred encoder's, and for a protocol that evaluates the checkpoint's extra
    encoders (CMD's I-Network and M-Network) theirs (`extra_transfer_inputs`). A job gets one
    --motion-cache, so at most one such kind."""
    if w.protocol in _READS_LOG:
        return []
    cls = _method_class(w.method)
    cfg = _method_config(w.method, SCALE, w.variant)
    kinds = [cls.transfer_input(cfg)]
    if w.protocol in _READS_EXTRA:
        kinds += list(cls.extra_transfer_inputs(cfg))
    if w.protocol in _FINE_TUNES:  # a method's own fine-tuning task (CMD Table 6)
        kinds += list(cls.finetune_inputs(cfg))
    kinds = sorted({k for k in kinds if k != "rgb"})
    if len(kinds) > 1:
        raise _ConfigError(f"{w.method} {w.variant}: the {w.protocol} evaluation reads {', '.join(kinds)}, "
                           f"but a protocol takes one --motion-cache")
    return kinds


def eval_input_files(w):
    return [input_cache(kind, w.evaldata)[0] for kind in eval_input_kinds(w)]


def eval_input_arg(w):
    return " ".join(f"--motion-cache {input_cache(kind, w.evaldata)[1]}" for kind in eval_input_kinds(w))


def eval_boxes(w):
    """The evaluated boxes beside the manifest, for protocols that read them (detection: rule ava_boxes)."""
    return [f"{RESULTS}/manifests/{w.evaldata}.boxes.csv"] if w.protocol in _READS_BOXES else []


def eval_checkpoint(w):
    """The checkpoint an evaluation reads: its variant's, or the one of the variant whose
    pretraining it shares (`pretraining_of`: MaCLR's 600-epoch rows evaluated at other clips)."""
    variant = _pretraining_variant(w.method, w.variant, SCALE)
    return f"{RESULTS}/pretrain/{w.method}/{variant}/{w.pretrain}{_seed_folder(w.get('seed'))}/checkpoint.pt"


def eval_clip_arg(w):
    clip = _method_class(w.method).evaluation_clip(_method_config(w.method, SCALE, w.variant), w.evaldata)
    return "" if clip is None else f"--clip {int(clip['num_frames'])}x{int(clip['stride'])}"


rule evaluate:
    input:
        checkpoint=eval_checkpoint,
        manifest=f"{RESULTS}/manifests/{{evaldata}}.csv",
        motion=eval_input_files,
        boxes=eval_boxes,
    output:
        f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/{{protocol}}/{{evaldata}}.json",
    wildcard_constraints:
        protocol="|".join(p for p in PROTOCOLS if p not in _READS_LOG),
        evaldata=_ONE_SET,
    params:
        root=lambda w: dataset_root(w.evaldata),
        motion=eval_input_arg,
        module=lambda w: PROTOCOLS[w.protocol],
        clip=eval_clip_arg,
    threads: job_resources("evaluate")["threads"]
    resources:
        **rule_resources("evaluate"),
    log:
        f"{RESULTS}/logs/{{protocol}}_{{method}}_{{variant}}_{{pretrain}}_{{evaldata}}.log",
    shell:
        "{PY} -m {params.module} --checkpoint {input.checkpoint} --manifest {input.manifest} --root {params.root} "
        "{params.motion} {params.clip} --protocol {wildcards.protocol} --scale {SCALE} --out {output} --threads {threads} 2> {log}"


# One evaluation per seed's checkpoint, in the seed's folder (core/seeds.py).
use rule evaluate as evaluate_seeded with:
    output:
        f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/seed{{seed}}/{{protocol}}/{{evaldata}}.json",
    wildcard_constraints:
        protocol="|".join(p for p in PROTOCOLS if p not in _READS_LOG),
        evaldata=_ONE_SET,
        seed=r"[0-9]+",
    log:
        f"{RESULTS}/logs/{{protocol}}_{{method}}_{{variant}}_{{pretrain}}_seed{{seed}}_{{evaldata}}.log",


def _split_metrics(w):
    folder = f"{RESULTS}/eval/{w.method}/{w.variant}/{w.pretrain}{_seed_folder(w.get('seed'))}/{w.protocol}"
    return [f"{folder}/{split}.json" for split in _SPLIT_AVERAGES[w.evaldata]]


rule evaluate_split_average:
    input:
        _split_metrics,
    output:
        f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/{{protocol}}/{{evaldata}}.json",
    wildcard_constraints:
        evaldata="|".join(_SPLIT_AVERAGES),
    log:
        f"{RESULTS}/logs/{{protocol}}_{{method}}_{{variant}}_{{pretrain}}_{{evaldata}}.log",
    shell:
        "{PY} -m protocols.split_average {input} --protocol {wildcards.protocol} --scale {SCALE} --out {output} 2> {log}"


use rule evaluate_split_average as evaluate_split_average_seeded with:
    output:
        f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/seed{{seed}}/{{protocol}}/{{evaldata}}.json",
    wildcard_constraints:
        evaldata="|".join(_SPLIT_AVERAGES),
        seed=r"[0-9]+",
    log:
        f"{RESULTS}/logs/{{protocol}}_{{method}}_{{variant}}_{{pretrain}}_seed{{seed}}_{{evaldata}}.log",


def _curve_spec(w):
    """The table spec with this run's pretext rows (its paper values go into the plot), if any."""
    found = _paper_curves(w.method, w.variant, w.pretrain)
    return [found[0][0]] if found else []


def _curve_retrieval(w):
    """The retrieval metrics of the same run (and seed) that the spec's curve plots (CMD Table 7: HMDB51)."""
    found = _paper_curves(w.method, w.variant, w.pretrain)
    folder = f"{RESULTS}/eval/{w.method}/{w.variant}/{w.pretrain}{_seed_folder(w.get('seed'))}"
    return [f"{folder}/retrieval/{e}.json" for e in (found[0][1] if found else ())]


def _curve_args(w, input):
    return " ".join([*(f"--retrieval {f}" for f in input.retrieval), *(f"--spec {f}" for f in input.spec)])


# Protocol pretext (CMD Table 7): the pretext accuracies the pretraining logged (log.csv beside the
# checkpoint), and a plot of them with the retrieval R@1 of the same run against the pretraining
# epoch, reproduced vs the paper's values, next to the metrics file.
rule evaluate_pretext:
    input:
        checkpoint=lambda w: f"{RESULTS}/pretrain/{w.method}/{w.variant}/{w.pretrain}{_seed_folder(w.get('seed'))}/checkpoint.pt",
        manifest=f"{RESULTS}/manifests/{{evaldata}}.csv",
        retrieval=_curve_retrieval,
        spec=_curve_spec,
    output:
        metrics=f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/pretext/{{evaldata}}.json",
        plot=report(f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/pretext/{{evaldata}}.png", category="Curves",
                    labels={"run": "{method} {variant} {pretrain}", "file": "pretext accuracy and retrieval vs epoch"}),
    params:
        root=lambda w: dataset_root(w.evaldata),
        curves=lambda w, input: _curve_args(w, input),
    threads: job_resources("evaluate")["threads"]
    resources:
        **rule_resources("evaluate"),
    log:
        f"{RESULTS}/logs/pretext_{{method}}_{{variant}}_{{pretrain}}_{{evaldata}}.log",
    shell:
        "{PY} -m protocols.pretext --checkpoint {input.checkpoint} --manifest {input.manifest} --root {params.root} "
        "{params.curves} --plot {output.plot} --scale {SCALE} --out {output.metrics} 2> {log}"


use rule evaluate_pretext as evaluate_pretext_seeded with:
    output:
        metrics=f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/seed{{seed}}/pretext/{{evaldata}}.json",
        plot=report(f"{RESULTS}/eval/{{method}}/{{variant}}/{{pretrain}}/seed{{seed}}/pretext/{{evaldata}}.png",
                    category="Curves", labels={"run": "{method} {variant} {pretrain} seed {seed}",
                                               "file": "pretext accuracy and retrieval vs epoch"}),
    wildcard_constraints:
        seed=r"[0-9]+",
    log:
        f"{RESULTS}/logs/pretext_{{method}}_{{variant}}_{{pretrain}}_seed{{seed}}_{{evaldata}}.log",
