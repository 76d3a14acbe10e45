"""The command line every protocol shares: checkpoint + evaluation manifest -> metrics JSON."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from core.config import deep_merge, load_scale
from datasets.clips.decode import configure_cache
from core.errors import CheckpointError, ConfigError, SuiteError
from core.io import torch_load, write_json
from core.provenance import device_name, file_hash, git_state, package_versions, video_fingerprint
from tables.metrics import check_metrics, check_provenance

# What protocols read of a checkpoint (CONTRIBUTING.md, "Checkpoints").
CHECKPOINT_KEYS = ("encoder", "input", "provenance")

# evaluate(checkpoint, manifest, dataset root, motion cache or None, profile section, seed) -> metrics
Evaluate = Callable[[dict, pd.DataFrame, Path, "Path | None", dict, int], dict]


def evaluation_splits(manifest: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) videos of a manifest. Datasets whose official evaluation split is a
    validation set (Kinetics, Something-Something) are tested on `val` when there is no `test`."""
    train = manifest[manifest["split"] == "train"]
    test = manifest[manifest["split"] == "test"]
    if test.empty:
        test = manifest[manifest["split"] == "val"]
    if train.empty or test.empty:
        raise SuiteError("the evaluation manifest needs train videos and test (or val) videos")
    return train, test


def protocol_main(protocol: str, evaluate: Evaluate, description: str, headline: str, argv: list[str] | None = None,
                  settings: str | None = None, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                  keywords: Callable[[argparse.Namespace], dict] | None = None) -> None:
    """Parse the shared arguments, run `evaluate` with the scale profile's `protocol` section (or
    the `settings` section: V+F fine-tunes with the fine-tuning recipe) and write its metrics (plus
    scale, protocol, checkpoint and the checkpoint's provenance).

    A protocol that needs more than the shared arguments adds its own flags with `add_arguments`
    (they show in --help with the shared ones) and turns the parsed arguments into keyword
    arguments of `evaluate` with `keywords` (which may raise a SuiteError naming a missing input)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--root", required=True, type=Path, help="dataset root the manifest's paths are relative to")
    parser.add_argument("--motion-cache", type=Path, default=None, help="motion cache, for encoders that read motion")
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--protocol", default=protocol, help=f"name written into the metrics (default {protocol})")
    parser.add_argument("--clip", type=clip_arg, default=None, metavar="TxS",
                        help="evaluate at T frames with stride S instead of the pretraining clip (a variant's "
                             "`evaluation_clip`, e.g. MaCLR's 32x8 of §4.2)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        profile = load_scale(args.scale)
        configure_cache(profile.get("decode_cache"))
        extra = keywords(args) if keywords is not None else {}  # before the checkpoint: a missing input is named first
        checkpoint = load_checkpoint(args.checkpoint)
        pretrain_clip = checkpoint["input"].get("clip")
        if args.clip is not None:
            checkpoint = at_clip(checkpoint, args.clip)
        cfg, recipe = protocol_settings(profile, settings or protocol, recipe_owner(checkpoint["provenance"]), args.manifest.stem)
        manifest = pd.read_csv(args.manifest)
        metrics = evaluate(checkpoint, manifest, args.root, args.motion_cache, cfg, int(profile.get("seed", 0)), **extra)
        metrics.update({"scale": args.scale, "protocol": args.protocol, "checkpoint": str(args.checkpoint), "recipe": recipe,
                        **evaluation_provenance(checkpoint, args.checkpoint, args.manifest, manifest, args.root),
                        "eval_seed": int(profile.get("seed", 0)), "pretrain_clip": pretrain_clip})
        check_metrics(metrics, args.protocol, f"{args.out} (not written)", args.scale)  # what a table will accept
        check_provenance(metrics, f"{args.out} (not written)")
    except SuiteError as exc:
        sys.exit(f"error: {exc}")
    write_json(args.out, metrics)
    print(f"{args.protocol}: {headline} {metrics[headline]:.1f}% on {args.manifest.name} -> {args.out}")


def clip_arg(text: str) -> dict:
    """`TxS` (frames x stride) as {"num_frames": T, "stride": S}."""
    try:
        frames, stride = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--clip {text!r}: expected frames x stride, e.g. 32x8") from None
    if frames < 1 or stride < 1:
        raise argparse.ArgumentTypeError(f"--clip {text!r}: frames and stride must be positive")
    return {"num_frames": frames, "stride": stride}


def at_clip(checkpoint: dict, clip: dict) -> dict:
    """The checkpoint with its transferred encoder read at `clip`'s frames and stride (crop and
    short side as pretrained); the metrics' `clip` then records it, `pretrain_clip` the original."""
    return {**checkpoint, "input": {**checkpoint["input"], "clip": {**checkpoint["input"]["clip"], **clip}}}


def recipe_owner(provenance: dict) -> str | None:
    """The method whose evaluation recipe a checkpoint is evaluated with: its pretraining method, or
    for a baseline with no pretraining (methods/random_init) the method it is compared with."""
    return provenance.get("recipe_method") or provenance.get("method")


def protocol_settings(profile: dict, protocol: str, method: str | None, evaluation_set: str = "") -> tuple[dict, str]:
    """(settings, recipe name) of `protocol` for a checkpoint pretrained by `method`: the profile's
    shared `<protocol>:` section, with the method's own recipe (`method_recipes: {<method>:
    {<protocol>: {...}}}`) merged over it key by key where the profile has one. The full profile
    lists the methods' recipes; smoke sets only what a table needs of one (CMD's evaluation
    epochs), so its sizes stay the shared sections'.

    A recipe or a shared section whose values differ per evaluation dataset (CMD §4.1: UCF101 and
    HMDB51 fine-tune at different learning rates; MaCLR §4.3 fine-tunes SSv2 with SlowFast's recipe)
    lists them under `per_dataset: {<dataset>: {...}}`, merged last for every evaluation set whose id
    starts with `<dataset>` (hmdb51 -> hmdb51_split1, ...)."""
    if protocol not in profile:
        raise ConfigError(f"--scale: profile {profile.get('scale')!r} has no `{protocol}:` section")
    own = ((profile.get("method_recipes") or {}).get(method) or {}).get(protocol)
    settings = deep_merge(profile[protocol], own) if own else dict(profile[protocol])
    per_dataset = settings.pop("per_dataset", None) or {}
    matches = [name for name in per_dataset if evaluation_set.startswith(name)]
    if len(matches) > 1:
        raise ConfigError(f"`{method}: {protocol}: per_dataset:` has several entries for {evaluation_set!r}: {matches}")
    for name in matches:
        settings = deep_merge(settings, per_dataset[name])
    return settings, str(method) if own else "shared"


def evaluation_provenance(checkpoint: dict, checkpoint_path: Path, manifest_path: Path, manifest: pd.DataFrame,
                          root: Path) -> dict:
    """What produced the checkpoint (its `provenance`), and what produced this evaluation: the code,
    the evaluation data (manifest hash, videos used against those the official annotations list,
    the data's fingerprint), the packages and the device (tables/metrics.py, PROVENANCE_FIELDS)."""
    made = dict(checkpoint["provenance"])
    made.setdefault("initialisation", {"kind": "not recorded"})  # checkpoints written before it was recorded
    made.setdefault("motion_estimator", made.get("flow_estimator"))
    code = git_state()
    quarantine = manifest_path.with_name(manifest_path.stem + ".quarantine.csv")
    quarantined = pd.read_csv(quarantine) if quarantine.exists() else None
    present = [(str(r.video_id), (root / str(r.path)).stat().st_size) for r in manifest.itertuples()]
    if quarantined is not None:  # quarantined videos that are there count as present, as in datasets.fingerprint
        present += [(str(r.video_id), (root / str(r.path)).stat().st_size) for r in quarantined.itertuples()
                    if (root / str(r.path)).exists()]
    return {**made, "checkpoint_sha256": file_hash(checkpoint_path),
            "eval_git_commit": code["git_commit"], "eval_git_dirty": code["git_dirty"],
            "eval_manifest_sha256": file_hash(manifest_path), "eval_videos_used": len(manifest),
            # a subset manifest (low-shot) has no quarantine report of its own: the annotations' count is its parent's
            "eval_videos_listed": None if quarantined is None else len(manifest) + len(quarantined),
            "eval_data_fingerprint": video_fingerprint(present), "clip": checkpoint["input"].get("clip"),
            "packages": package_versions(), "device": device_name()}


def load_checkpoint(path: Path) -> dict:
    """A pretraining checkpoint, refused by name when it lacks what protocols read."""
    checkpoint = torch_load(path)
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise CheckpointError(f"{path}: not a pretraining checkpoint (no {', '.join(missing)}; see CONTRIBUTING.md)")
    return checkpoint
