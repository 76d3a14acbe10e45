"""HCML Table 1 (§4.1): the efficacy score of the motion features of one level under each
supervision, Score = Acc_train / (Acc_train - Acc_test), of a lightweight classifier trained on
them for action recognition (UCF101).

The checkpoint is an `efficacy_level<k>` variant's seeded random start (`efficacy_level` 0, 1, 2 =
Table 1's levels 1, 2, 3: the PMBs after res2, res3, res4). For each supervision the network is
trained from it on the evaluation set's training videos (methods/hcml/joint.py):
- action: classification only (Eq. 5 without self-supervision, Table 2's "PMB" training);
- reconstruction: frame reconstruction (Eq. 2-3) with the flow estimator on this level's motion
  features, from the stem up to this level in one stage;
- contrastive: the progressive self-supervised phase up to this level (reconstruction at level 1,
  Eq. 4 above); none at level 1, which has no lower level to predict (Table 1 reports none there).
The motion features P of the level (one clip per video, averaged over time and space) then train
the classifier, which the paper does not specify: multinomial logistic regression (scikit-learn,
lbfgs) on features standardised with the training videos' statistics, our choice as the lightest
classifier that reads a feature vector. Acc_train is its top-1 on the training videos' features,
Acc_test on the test videos'.

Acc_train <= Acc_test (no generalisation gap, or a negative one) leaves the score undefined (a
division by zero or a negative score). The gap is floored at `gap_floor` points (profile, our
choice: 1 point), so such a classifier scores Acc_train / gap_floor, the best score a gap of one
point would give; the file records `efficacy_<supervision>_gap_floored: true` for it.

    python -m protocols.efficacy --checkpoint C.pt --manifest M.csv --root DIR --scale smoke --out metrics.json
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.config import deep_merge
from core.errors import SuiteError
from methods.hcml.data import HCMLClips
from methods.hcml.joint import build_from_checkpoint, level_features, recipe_config, self_supervised_phase, train_with_labels
from protocols.cli import evaluation_splits, protocol_main

SUPERVISIONS = ("action", "reconstruction", "contrastive")


def efficacy_score(acc_train: float, acc_test: float, gap_floor: float) -> tuple[float, bool]:
    """(Acc_train / max(Acc_train - Acc_test, gap_floor), whether the floor was used) (§4.1)."""
    if gap_floor <= 0:
        raise SuiteError(f"efficacy.gap_floor must be > 0 points, got {gap_floor}")
    gap = acc_train - acc_test
    return acc_train / max(gap, gap_floor), gap < gap_floor


def supervision_config(cfg: dict, supervision: str, level: int) -> dict:
    """The HCML config that trains `level` with `supervision` only."""
    switch = {"action": {"self_supervision": False},
              "reconstruction": {"self_supervision": True, "reconstruct_level": level, "top_level": level},
              "contrastive": {"self_supervision": True, "reconstruct_level": 0, "top_level": level}}[supervision]
    return deep_merge(cfg, switch)


def probe_accuracies(train_x: torch.Tensor, train_y, test_x: torch.Tensor, test_y, cfg: dict) -> tuple[float, float]:
    """Top-1 (percent) of the logistic-regression classifier on the training and the test features."""
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=float(cfg["C"]), max_iter=int(cfg["max_iter"])))
    classifier.fit(train_x.numpy(), train_y)
    return 100.0 * classifier.score(train_x.numpy(), train_y), 100.0 * classifier.score(test_x.numpy(), test_y)


def evaluate(checkpoint: dict, manifest: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict, seed: int) -> dict:
    hcml_cfg = checkpoint.get("config") or {}
    if (checkpoint.get("provenance") or {}).get("method") != "hcml" or "efficacy_level" not in hcml_cfg:
        raise SuiteError("efficacy reads an HCML efficacy_level<k> variant's checkpoint (HCML Table 1)")
    level = int(hcml_cfg["efficacy_level"])
    train, test = evaluation_splits(manifest)
    num_classes = int(manifest["label"].max()) + 1
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    metrics = {}
    for supervision in SUPERVISIONS:
        if supervision == "contrastive" and level == 0:
            continue
        model_cfg = recipe_config(supervision_config(hcml_cfg, supervision, level), cfg)
        if supervision == "action":
            hcml = train_with_labels(model_cfg, checkpoint, train, root, cfg, num_classes, seed).hcml
        else:
            hcml = build_from_checkpoint(model_cfg, checkpoint, seed)
            data = HCMLClips(train, root, model_cfg, seed)
            self_supervised_phase(hcml, data, cfg, min(int(cfg["batch_size"]), len(data)), seed)
        acc_train, acc_test = probe_accuracies(level_features(hcml, train, root, level, device), train["label"].to_numpy(),
                                               level_features(hcml, test, root, level, device), test["label"].to_numpy(), cfg)
        score, floored = efficacy_score(acc_train, acc_test, float(cfg["gap_floor"]))
        metrics.update({f"efficacy_{supervision}": score, f"efficacy_{supervision}_train_top1": acc_train,
                        f"efficacy_{supervision}_test_top1": acc_test, f"efficacy_{supervision}_gap_floored": floored})
    return {**metrics, "level": level + 1, "num_train_videos": len(train), "num_test_videos": len(test),
            "num_classes": num_classes, "views": "1x1", "score_averaging": "features", "classifier": "logistic_regression"}


def main(argv: list[str] | None = None) -> None:
    protocol_main("efficacy", evaluate, __doc__, "efficacy_action", argv)


if __name__ == "__main__":
    main()
