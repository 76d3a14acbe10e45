"""Nearest-neighbour video retrieval (MaCLR Table 3a; the retrieval protocol of CMD, MCL and
Controllable Augmentations): every video is embedded by the frozen backbone as the mean of its
test views; each test video queries the training set by cosine similarity, and R@k is the
percentage of test videos whose k nearest training videos include one of their class (MaCLR
Table 3 caption: "A video is considered to be correctly predicted if its ground-truth label is
among the labels of its k nearest neighbors retrieved from the training set").

A checkpoint may carry more (CONTRIBUTING.md, "Checkpoints"), and each part adds metrics:
- `extra_encoders` (CMD Table 5: the I-Network and M-Network): `<name>_r_at_<k>` for each, every
  encoder reading its own input (I-frames or motion vectors from the --motion-cache);
- `snapshots` (CMD Table 7: retrieval during pretraining): `r_at_<k>_ep<label>` of the transfer
  encoder of the snapshot after each labelled epoch that precedes the last (the last is the
  checkpoint's own `r_at_<k>`), and `epoch_labels`, {label: epoch of the run}, as the checkpoint's
  schedule maps them (a smoke run trains fewer epochs than the paper's labels).

    python -m protocols.retrieval --checkpoint C.pt --manifest M.csv --root DIR --scale smoke --out metrics.json
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from core.errors import CheckpointError
from core.provenance import file_hash
from protocols.cli import evaluation_splits, load_checkpoint, protocol_main
from protocols.features import video_features


def recall_at_k(query: torch.Tensor, query_labels: torch.Tensor, gallery: torch.Tensor, gallery_labels: torch.Tensor,
                ks: list[int]) -> dict[str, float]:
    """R@k in percent: a query counts as retrieved when any of its k most cosine-similar gallery
    items has the query's label."""
    similarity = F.normalize(query, dim=1) @ F.normalize(gallery, dim=1).t()
    nearest = similarity.topk(min(max(ks), len(gallery)), dim=1).indices
    hits = gallery_labels[nearest] == query_labels[:, None]  # (queries, max k)
    return {f"r_at_{k}": 100.0 * float(hits[:, :k].any(dim=1).float().mean()) for k in ks}


def retrieval(checkpoint: dict, train: pd.DataFrame, test: pd.DataFrame, root: Path, motion_cache: Path | None,
              cfg: dict, seed: int, name: str | None = None) -> dict[str, float]:
    """R@k of one encoder of a checkpoint (its transfer encoder, or extra encoder `name`)."""
    gallery, gallery_labels, queries, query_labels = video_features(checkpoint, train, test, root, motion_cache, cfg, seed, name)
    return recall_at_k(queries, query_labels, gallery, gallery_labels, [int(k) for k in cfg["ks"]])


def evaluate(checkpoint: dict, manifest: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict, seed: int,
             checkpoint_dir: Path | None = None) -> dict:
    train, test = evaluation_splits(manifest)
    metrics = retrieval(checkpoint, train, test, root, motion_cache, cfg, seed)
    for name in checkpoint.get("extra_encoders") or {}:
        metrics.update({f"{name}_{k}": v for k, v in retrieval(checkpoint, train, test, root, motion_cache, cfg, seed, name).items()})
    snapshots = checkpoint.get("snapshots")
    if snapshots:
        metrics.update(snapshot_metrics(snapshots, checkpoint_dir, train, test, root, motion_cache, cfg, seed))
        metrics["epoch_labels"] = {str(k): int(v) for k, v in snapshots["labels"].items()}
    metrics.update({"num_train_videos": len(train), "num_test_videos": len(test),
                    "views": f"{cfg['temporal_views']}x{cfg['spatial_views']}",
                    "score_averaging": "features"})  # queries and gallery: the mean clip feature
    return metrics


def snapshot_metrics(snapshots: dict, checkpoint_dir: Path | None, train: pd.DataFrame, test: pd.DataFrame, root: Path,
                     motion_cache: Path | None, cfg: dict, seed: int) -> dict[str, float]:
    """`r_at_<k>_ep<label>` for each label whose epoch precedes the run's last, from the snapshot
    file of that epoch (evaluated once however many labels share it)."""
    if checkpoint_dir is None:
        raise CheckpointError("the checkpoint lists snapshots, but its folder is unknown (run the protocol's command)")
    last, by_epoch, metrics, hashes = int(snapshots["epochs"]), {}, {}, {}
    for label, epoch in sorted(((int(k), int(v)) for k, v in snapshots["labels"].items())):
        if epoch >= last:
            continue  # the checkpoint itself: its r_at_<k>
        if epoch not in by_epoch:
            path = checkpoint_dir / snapshots["files"][str(epoch)]
            by_epoch[epoch] = retrieval(load_checkpoint(path), train, test, root, motion_cache, cfg, seed)
            hashes[str(epoch)] = file_hash(path)
        metrics.update({f"{k}_ep{label}": v for k, v in by_epoch[epoch].items()})
    return {**metrics, "snapshot_sha256": hashes}  # which files the _ep<label> numbers came from


def main(argv: list[str] | None = None) -> None:
    # The checkpoint's folder, where its snapshots lie (`evaluate` is handed the loaded checkpoint).
    protocol_main("retrieval", evaluate, __doc__, "r_at_1", argv,
                  keywords=lambda args: {"checkpoint_dir": args.checkpoint.parent})


if __name__ == "__main__":
    main()
