"""Nearest-neighbour video retrieval (MaCLR Table 3a; the retrieval protocol of CMD, MCL and
Controllable Augmentations): every video is embedded by the frozen backbone as the mean of its
test views; each test video queries the training set by cosine similarity, and R@k is the
percentage of test videos whose k nearest training videos include one of their class (MaCLR
Table 3 caption: "A video is considered to be correctly predicted if its ground-truth label is
among the labels of its k nearest neighbors retrieved from the training set").

    python -m protocols.retrieval --checkpoint C.pt --manifest M.csv --root DIR --scale smoke --out metrics.json
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from protocols.cli import evaluation_splits, protocol_main
from protocols.features import video_features


def recall_at_k(query: torch.Tensor, query_labels: torch.Tensor, gallery: torch.Tensor, gallery_labels: torch.Tensor,
                ks: list[int]) -> dict[str, float]:
    """R@k in percent: a query counts as retrieved when any of its k most cosine-similar gallery
    items has the query's label."""
    similarity = F.normalize(query, dim=1) @ F.normalize(gallery, dim=1).t()
    nearest = similarity.topk(min(max(ks), len(gallery)), dim=1).indices
    hits = gallery_labels[nearest] == query_labels[:, None]  # (queries, max k)
    return {f"r_at_{k}": 100.0 * float(hits[:, :k].any(dim=1).float().mean()) for k in ks}


def evaluate(checkpoint: dict, manifest: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict, seed: int) -> dict:
    train, test = evaluation_splits(manifest)
    gallery, gallery_labels, queries, query_labels = video_features(checkpoint, train, test, root, motion_cache, cfg, seed)
    metrics = recall_at_k(queries, query_labels, gallery, gallery_labels, [int(k) for k in cfg["ks"]])
    metrics.update({"num_train_videos": len(train), "num_test_videos": len(test),
                    "views": f"{cfg['temporal_views']}x{cfg['spatial_views']}",
                    "score_averaging": "features"})  # queries and gallery: the mean clip feature
    return metrics


def main(argv: list[str] | None = None) -> None:
    protocol_main("retrieval", evaluate, __doc__, "r_at_1", argv)


if __name__ == "__main__":
    main()
