"""Pretrain any method on the shared engine: `methods/<method>/` supplies the model, dataset and
loss terms; this command merges its config with the scale profile and the variant, seeds, ties
the resume state to its inputs, trains, and writes the checkpoint every protocol reads.

    python -m methods.training.pretrain --method maclr --variant maclr --pretrain k400_mini --scale smoke \\
        --manifest results/smoke/manifests/k400_mini.csv --root results/smoke/data/Kinetics400 \\
        --input edge=results/smoke/motion/edge/Kinetics400 --out results/smoke/pretrain/maclr/maclr/k400_mini

Runs under torchrun with DDP when WORLD_SIZE > 1. Outputs in --out: checkpoint.pt (the transfer
checkpoint), last.pt (resume state), log.csv, curve.png, summary.json, and where the config lists
`snapshot_epochs` for the pretraining set, snapshots/checkpoint_ep<N>.pt (transfer checkpoints
after epoch N, with the same provenance plus `epoch`; methods.training.checkpoint.snapshot_schedule).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist

from core.config import load_scale, method_config
from datasets.clips.decode import configure_cache
from core.errors import ConfigError, MissingInputError, SuiteError
from core.io import write_json
from core.provenance import file_hash, git_commit, initialisation
from methods.training.checkpoint import snapshot_schedule, snapshots_block, write_transfer_checkpoint
from methods.training.engine import RunSettings, fit
from methods.training.method import INPUT_KINDS, DataSources
from methods.training.registry import method_class, method_dir
from methods.training.resume import fingerprint, seed_everything

FLOW_INPUTS = {"edge", "flow"}  # inputs computed from optical flow: their estimator is provenance
# How the other motion inputs are estimated (datasets/motion/).
MOTION_ESTIMATORS = {"tvl1": "tvl1", "diff": "frame_difference", "compressed": "mpeg4_motion_vectors"}


def motion_estimator(inputs: set[str], scale: str) -> str | None:
    """What computed the run's motion inputs (None for RGB alone)."""
    names = sorted({load_scale(scale)["motion"]["flow_estimator"] if kind in FLOW_INPUTS else MOTION_ESTIMATORS[kind]
                    for kind in inputs if kind in FLOW_INPUTS or kind in MOTION_ESTIMATORS})
    return "+".join(names) or None


def pretrain(args: argparse.Namespace) -> dict:
    cfg = method_config(args.method, args.scale, args.variant)
    if args.seed is not None:  # one run of a profile's `seeds:` (core/seeds.py)
        cfg["seed"] = args.seed
    apply_init_weights(cfg, args.init_weights, args.method, args.variant)
    cls = method_class(args.method)
    seed = int(cfg.get("seed", 0))
    if args.threads:
        torch.set_num_threads(args.threads)
    configure_cache(load_scale(args.scale).get("decode_cache"))
    manifest = pd.read_csv(args.manifest)
    manifest = manifest[manifest["split"] == "train"]
    if manifest.empty:
        raise SuiteError(f"{args.manifest}: no train videos")
    if str(args.pretrain) not in cfg["epochs"]:
        raise SuiteError(f"methods/{args.method}/config.yaml: `epochs` has no entry for pretraining set {args.pretrain!r}")
    pick_milestones(cfg, args.method, args.pretrain)
    seed_everything(seed)  # before the modules are built: their initial weights follow from the seed
    task = cls(cfg)
    sources = DataSources(Path(args.root), args.video_dir, dict(args.input))
    dataset = task.pretrain_dataset(manifest, sources, seed)
    settings = RunSettings.from_config(cfg, cfg["epochs"][args.pretrain], title=f"{args.method} {args.variant}/{args.pretrain}")
    tie = fingerprint(args.manifest, cfg, args.scale, method_dir(args.method))
    inputs = set(cls.pretrain_inputs(cfg)) | {cls.transfer_input(cfg)} | set(cls.extra_transfer_inputs(cfg))
    provenance = {
        "method": args.method, "variant": args.variant, "pretrain": args.pretrain, "scale": args.scale, "seed": seed,
        "flow_estimator": load_scale(args.scale)["motion"]["flow_estimator"] if inputs & FLOW_INPUTS else None,
        "motion_estimator": motion_estimator(inputs, args.scale), "initialisation": initialisation(cfg, seed),
        "git_commit": git_commit(), "fingerprint": tie, "videos": len(manifest),
    }
    if cls.stand_in(cfg, args.pretrain):  # data standing in for the paper's (the smoke ImageNet stand-in)
        provenance["stand_in"] = cls.stand_in(cfg, args.pretrain)
    # Transfer snapshots after the epochs a table reports (e.g. CMD Table 7), only where the config asks.
    schedule = snapshot_schedule(cfg, args.pretrain)
    snapshots = snapshots_block(schedule, settings.epochs)

    def write_snapshot(done: int) -> None:
        if str(done) in snapshots["files"]:
            write_transfer_checkpoint(args.out / snapshots["files"][str(done)], task.transfer_encoder(),
                                      {**provenance, "epoch": done}, cfg, task.extra_transfer_encoders())
    summary = fit(task, dataset, settings, args.out, tie, on_epoch_end=write_snapshot if snapshots else None)
    if not dist.is_initialized() or dist.get_rank() == 0:
        missing = [f for f in (snapshots or {}).get("files", {}).values() if not (args.out / f).is_file()]
        if missing:  # a resumed run whose earlier snapshots were removed: they cannot be made again
            raise SuiteError(f"{args.out}: snapshot(s) {', '.join(missing)} missing; delete {args.out / 'last.pt'} "
                             f"and pretrain again from the start")
        write_transfer_checkpoint(args.out / "checkpoint.pt", task.transfer_encoder(), provenance, cfg,
                                  task.extra_transfer_encoders(), snapshots)
        write_json(args.out / "summary.json", {**summary, **provenance})
    if dist.is_initialized():
        dist.destroy_process_group()
    return summary


def pick_milestones(cfg: dict, method: str, pretrain: str) -> None:
    """A step schedule's `milestones` given per pretraining set (`{<set>: [epochs]}`, as `epochs`)
    becomes the run's list (Controllable Augmentations §4.2: decay at 150 on UCF101, 70 on K400)."""
    for name, section in [("optimizer", cfg.get("optimizer") or {}), *((f"optimizers.{k}", v) for k, v in (cfg.get("optimizers") or {}).items())]:
        if isinstance(section.get("milestones"), dict):
            if pretrain not in section["milestones"]:
                raise ConfigError(f"methods/{method}/config.yaml: `{name}.milestones` has no entry for pretraining set {pretrain!r}")
            section["milestones"] = list(section["milestones"][pretrain])


def apply_init_weights(cfg: dict, path: Path | None, method: str, variant: str) -> None:
    """Hand `--init-weights FILE` to the method as `cfg["inflate_from"]` or, for `init: public_checkpoint`,
    `cfg["init_checkpoint"]` (core.provenance.initialisation
    records it by sha256). Only a config whose `init` names a pretrained start reads it; such a config
    without the file, or the file without such a config, is refused by name."""
    init = str(cfg.get("init", "scratch"))
    if path is None:
        if init != "scratch":
            raise MissingInputError(f"methods/{method}/config.yaml variant {variant!r}: `init: {init}` starts from a "
                                    f"weights file (the comment on `init` there names it); pass it with --init-weights FILE")
        return
    if init == "scratch":
        raise ConfigError(f"--init-weights {path}: methods/{method}/config.yaml variant {variant!r} starts from scratch "
                          f"(`init: scratch` or no `init`), so the file would be ignored; pick a variant with another `init`")
    if not path.is_file():
        raise MissingInputError(f"--init-weights {path}: no such file (the weights `init: {init}` starts from)")
    # A public checkpoint loaded as it is (methods/supervised `init: public_checkpoint`) is recorded as
    # a checkpoint start; any other `init` inflates a 2D network.
    key = "init_checkpoint" if init == "public_checkpoint" else "inflate_from"
    cfg[key] = str(path)
    cfg[f"{key}_sha256"] = file_hash(path)  # so a resume is tied to the file's contents, not only its path


def input_source(text: str) -> tuple[str, Path]:
    kind, sep, folder = text.partition("=")
    if not sep or kind not in INPUT_KINDS:
        raise argparse.ArgumentTypeError(f"expected KIND=DIR with KIND one of {', '.join(INPUT_KINDS)}, got {text!r}")
    return kind, Path(folder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--pretrain", required=True, help="pretraining dataset id (k400, k400_mini, ...)")
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--root", required=True, type=Path, help="dataset root the manifest's paths are relative to")
    parser.add_argument("--input", action="append", default=[], type=input_source, metavar="KIND=DIR",
                        help="cache folder of a precomputed input the method reads (repeatable)")
    parser.add_argument("--video-dir", type=Path, default=None, help="read <video_id>.mp4 transcodes from here (DALI/NVDEC path)")
    parser.add_argument("--seed", type=int, default=None, help="the run's seed (default: the config's `seed`, else 0)")
    parser.add_argument("--init-weights", type=Path, default=None, metavar="FILE",
                        help="weights file the config's `init` starts from (e.g. MCL's imagenet_moco_inflated: "
                             "2D ImageNet MoCo ResNet-50); recorded by sha256 in the checkpoint's provenance")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    try:
        pretrain(args)
    except SuiteError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
