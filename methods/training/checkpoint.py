"""The one writer of the checkpoint every protocol reads (CONTRIBUTING.md, "Checkpoints").

What an encoder reads comes from the checkpoint's `input` block, never from a method's config
keys, so a protocol evaluates any method's checkpoint without importing the method.

Optional parts (a checkpoint without them reads as before):
- `extra_encoders: {name: {backbone, width_multiplier, in_channels, state_dict, input}}`: other
  encoders the method trained beside the transferred one (CMD's I-Network and M-Network), each
  with its own `input` block; the retrieval protocol reports `<name>_r_at_<k>` for each.
- `snapshots: {"labels": {label: epoch}, "files": {epoch: path}, "epochs": n}`: transfer
  checkpoints written after some epochs (`snapshot_schedule`), paths relative to the checkpoint's
  folder; `labels` maps the epochs a table names (its columns) to epochs of this run.
"""
from __future__ import annotations

from pathlib import Path

from core.errors import ConfigError
from core.io import torch_save
from methods.training.method import INPUT_KINDS, TransferEncoder


def input_block(kind: str, clip: dict, mean=None, std=None, scale: float = 1.0, **extra) -> dict:
    """What the transferred encoder reads: the input `kind` (one of INPUT_KINDS), its clip
    (num_frames, stride, crop_size, short_side), the RGB normalisation, or the factor a
    precomputed input is multiplied by. `extra`: what else a reader of that kind needs (the
    `compressed` kind: `stream` iframe | mv, and for mv `motion_frames` and `period`)."""
    if kind not in INPUT_KINDS:
        raise ConfigError(f"unknown encoder input {kind!r}; known: {', '.join(INPUT_KINDS)}")
    return {
        "kind": kind,
        "modality": "rgb" if kind == "rgb" else "motion",
        "motion_kind": None if kind == "rgb" else kind,
        "clip": {k: int(clip[k]) for k in ("num_frames", "stride", "crop_size", "short_side")},
        "mean": None if mean is None else [float(v) for v in mean],
        "std": None if std is None else [float(v) for v in std],
        "motion_scale": float(scale),
        **plain(extra),
    }


def encoder_block(encoder: TransferEncoder) -> dict:
    """An encoder as the checkpoint stores it: what `build_backbone` needs, its weights and its input."""
    return {"backbone": encoder.backbone, "width_multiplier": float(encoder.width_multiplier),
            "in_channels": int(encoder.in_channels), "state_dict": encoder.module.state_dict(),
            "input": plain(encoder.input)}


def snapshot_schedule(cfg: dict, pretrain: str) -> dict[int, int]:
    """{epoch label: epoch of this run} of the transfer snapshots a config asks for on pretraining
    set `pretrain`, {} for none.

    `snapshot_epochs: {<pretrain set>: [...]}` (the method's config) lists the epochs a table
    reports, in the paper's epochs (CMD Table 7: 1, 5, 10, 20, 50 on UCF101). At full scale the run
    has those epochs and the labels are the identity, plus the run's last epoch. A scale profile
    that trains fewer epochs maps each label, and the label of the paper's last epoch, to an epoch
    of its run: `snapshot_epoch_map: {<pretrain set>: {label: epoch}}`. The run's last epoch is the
    checkpoint itself (no snapshot file). Every label maps to an epoch in 1 ... the run's epochs,
    so no label claims an epoch the run did not have."""
    labels = [int(e) for e in (cfg.get("snapshot_epochs") or {}).get(pretrain) or []]
    if not labels:
        return {}
    epochs = int(cfg["epochs"][pretrain])
    mapping = (cfg.get("snapshot_epoch_map") or {}).get(pretrain)
    if mapping is None:  # the run has the paper's epochs: each label is its own epoch
        schedule = {label: label for label in labels} | {epochs: epochs}
    else:
        schedule = {int(k): int(v) for k, v in mapping.items()}
        missing = [label for label in labels if label not in schedule]
        if missing:
            raise ConfigError(f"`snapshot_epoch_map: {pretrain}: {mapping}` has no entry for snapshot epoch(s) {missing}; "
                              f"map each of `snapshot_epochs: {labels}` and the paper's last epoch to an epoch of the run")
        if epochs not in schedule.values():
            raise ConfigError(f"`snapshot_epoch_map: {pretrain}: {mapping}` maps no label to the run's last epoch {epochs}")
    wrong = {label: epoch for label, epoch in schedule.items() if not 1 <= epoch <= epochs}
    if wrong:
        raise ConfigError(f"snapshot epochs {wrong} (label: epoch) lie outside the run's epochs 1 ... {epochs} on {pretrain}")
    return dict(sorted(schedule.items()))


def snapshot_path(epoch: int) -> str:
    """Where the snapshot after `epoch` lies, relative to the checkpoint's folder."""
    return f"snapshots/checkpoint_ep{int(epoch)}.pt"


def snapshots_block(schedule: dict[int, int], epochs: int) -> dict | None:
    """The checkpoint's `snapshots` entry for a schedule (None when it is empty)."""
    if not schedule:
        return None
    files = {str(e): snapshot_path(e) for e in sorted(set(schedule.values())) if e < epochs}
    return {"labels": {str(k): int(v) for k, v in schedule.items()}, "files": files, "epochs": int(epochs)}


def plain(obj):
    """Plain Python values (dicts, lists, numbers, strings), so a checkpoint loads with
    `weights_only=True`."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def transfer_checkpoint(encoder: TransferEncoder, provenance: dict, cfg: dict,
                        extra_encoders: dict[str, TransferEncoder] | None = None, snapshots: dict | None = None) -> dict:
    main = encoder_block(encoder)
    checkpoint = {"encoder": {k: v for k, v in main.items() if k != "input"}, "input": main["input"],
                  "provenance": plain(provenance), "config": plain(cfg)}
    if extra_encoders:
        checkpoint["extra_encoders"] = {str(name): encoder_block(e) for name, e in extra_encoders.items()}
    if snapshots:
        checkpoint["snapshots"] = plain(snapshots)
    return checkpoint


def write_transfer_checkpoint(path: str | Path, encoder: TransferEncoder, provenance: dict, cfg: dict,
                              extra_encoders: dict[str, TransferEncoder] | None = None, snapshots: dict | None = None) -> None:
    torch_save(path, transfer_checkpoint(encoder, provenance, cfg, extra_encoders, snapshots))
