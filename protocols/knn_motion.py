"""HCML Table 5 (suppl. A.1): kNN classification with the motion features of one level.

The checkpoint is a `motion_features_<low|mid|high>` variant's seeded random start (`knn_level` 0,
1, 2: the PMBs after res2, res3, res4). HCML is trained from it on the evaluation set's training
videos as Tables 2-3 train it (self-supervised phase, then Eq. 5; methods/hcml/joint.py). Each video
is the motion features P of a level (one clip, averaged over time and space); a test video takes the
majority class of its `k` nearest training videos by l2 distance (scikit-learn; ties go to the lower
class index). A.1 ranks "the videos in the validation set" for a query and gives no k: here the
training videos are the gallery and the validation (test) videos the queries, so no test label is
used (our reading), and k is the profile's (our choice).

Besides top-1, the file lists per class the accuracy of this level and of the level below, and the
three classes of Table 5's text column: for the low level those with the highest accuracy, above it
those with the largest relative gain over the level below, (acc - acc_below) / max(acc_below, 1)
(accuracies in points; the floor of 1 point ranks gains from 0, as the paper's "0 -> 19.4", by their size).

    python -m protocols.knn_motion --checkpoint C.pt --manifest M.csv --root DIR --scale smoke --out metrics.json
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.neighbors import KNeighborsClassifier

from core.errors import SuiteError
from methods.hcml.joint import level_features, train_with_labels
from protocols.cli import evaluation_splits, protocol_main


def per_class_accuracy(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Top-1 (percent) of every class that has test videos."""
    return {c: 100.0 * float((predicted[labels == c] == c).mean()) for c in range(num_classes) if (labels == c).any()}


def largest_gains(accuracy: dict[int, float], below: dict[int, float] | None, names: dict[int, str], top: int = 3) -> list[dict]:
    """Table 5's text column: the `top` classes by accuracy (no level below) or by relative gain over `below`."""
    if below is None:
        ranked = sorted(accuracy, key=lambda c: (-accuracy[c], c))
    else:
        ranked = sorted(accuracy, key=lambda c: (-(accuracy[c] - below[c]) / max(below[c], 1.0), c))
    return [{"class": names[c], "accuracy": accuracy[c], **({} if below is None else {"below": below[c]})}
            for c in ranked[:top]]


def evaluate(checkpoint: dict, manifest: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict, seed: int) -> dict:
    hcml_cfg = checkpoint.get("config") or {}
    if (checkpoint.get("provenance") or {}).get("method") != "hcml" or "knn_level" not in hcml_cfg:
        raise SuiteError("knn_motion reads an HCML motion_features_<level> variant's checkpoint (HCML Table 5)")
    level = int(hcml_cfg["knn_level"])
    train, test = evaluation_splits(manifest)
    num_classes = int(manifest["label"].max()) + 1
    names = dict(zip(manifest["label"].astype(int), manifest["label_name"].astype(str)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    hcml = train_with_labels(hcml_cfg, checkpoint, train, root, cfg, num_classes, seed).hcml
    k = min(int(cfg["k"]), len(train))
    accuracy, top1 = {}, 0.0
    for lv in range(level + 1) if level else [0]:
        knn = KNeighborsClassifier(n_neighbors=k, metric="euclidean")
        knn.fit(level_features(hcml, train, root, lv, device).numpy(), train["label"].to_numpy())
        predicted = knn.predict(level_features(hcml, test, root, lv, device).numpy())
        accuracy[lv] = per_class_accuracy(predicted, test["label"].to_numpy(), num_classes)
        top1 = 100.0 * float((predicted == test["label"].to_numpy()).mean())
    gains = largest_gains(accuracy[level], accuracy.get(level - 1), names)
    return {"top1": top1, "level": ["low", "mid", "high"][level], "k": k, "classes": gains,
            "per_class_top1": {names[c]: a for c, a in accuracy[level].items()},
            "num_train_videos": len(train), "num_test_videos": len(test), "num_classes": num_classes,
            "views": "1x1", "score_averaging": "features"}


def main(argv: list[str] | None = None) -> None:
    protocol_main("knn_motion", evaluate, __doc__, "top1", argv)


if __name__ == "__main__":
    main()
