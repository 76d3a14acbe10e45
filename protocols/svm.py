"""Linear SVM protocol (MCL §4.2 "Linear Protocol"): the pretrained backbone is a frozen feature
extractor; "we densely sample 20 clips from each video and resize each clip with the short edge
of 256. The resized clip is then cropped to 224x224 via the standard center crop ... the
video-level feature is the average of all clip-level features. Finally, we train a linear SVM".

The SVM's settings are not in the paper; the official code (evaluate/linear_probe/
eval_svm_feature_perf.py) trains liblinear with `-s 2 -c 1`: L2-regularised, squared-hinge loss,
solved in the primal, one-vs-rest, C = 1, no bias term (liblinear's default -B -1), on the raw
(unnormalised) mean features. scikit-learn's LinearSVC calls the same liblinear solver:
LinearSVC(penalty='l2', loss='squared_hinge', dual=False, C=1, fit_intercept=False, tol=0.01)
is `-s 2 -c 1` with liblinear's default tolerance for -s 2 (0.01). Training and test videos are
embedded alike (`temporal_views` clips spread uniformly, `spatial_views` = 1 centre crop).

    python -m protocols.svm --checkpoint C.pt --manifest M.csv --root DIR --scale smoke --out metrics.json
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.svm import LinearSVC

from protocols.cli import evaluation_splits, protocol_main
from protocols.features import video_features


def fit_svm(features: np.ndarray, labels: np.ndarray, cfg: dict) -> LinearSVC:
    """liblinear -s 2 -c C (see the module docstring) on (videos, D) features."""
    svm = LinearSVC(penalty="l2", loss="squared_hinge", dual=False, C=float(cfg["C"]),
                    fit_intercept=bool(cfg["fit_intercept"]), tol=float(cfg["tol"]), max_iter=int(cfg["max_iter"]))
    return svm.fit(features, labels)


def accuracies(scores: np.ndarray, classes: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(top-1, top-5) in percent from one-vs-rest decision values (videos, classes)."""
    scores = scores if scores.ndim == 2 else np.stack([-scores, scores], axis=1)  # two classes: one column
    ranked = classes[np.argsort(-scores, axis=1)[:, :5]]
    return 100.0 * float((ranked[:, 0] == labels).mean()), 100.0 * float((ranked == labels[:, None]).any(1).mean())


def evaluate(checkpoint: dict, manifest: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict, seed: int) -> dict:
    train, test = evaluation_splits(manifest)
    # Both splits as test views: the paper samples clips the same way for training and test videos.
    train_x, train_y, test_x, test_y = video_features(checkpoint, train, test, root, motion_cache, cfg, seed)
    svm = fit_svm(train_x.numpy(), train_y.numpy(), cfg)
    top1, top5 = accuracies(svm.decision_function(test_x.numpy()), svm.classes_, test_y.numpy())
    return {
        "top1": top1, "top5": top5,
        "num_train_videos": len(train), "num_test_videos": len(test), "num_classes": int(manifest["label"].max()) + 1,
        "views": f"{cfg['temporal_views']}x{cfg['spatial_views']}",
        "features": "mean of the clip features of each video", "score_averaging": "features",
        # What produced the classifier, so a number can be traced to its solver and settings.
        "classifier": (f"sklearn.svm.LinearSVC(penalty='l2', loss='squared_hinge', dual=False, C={svm.C}, "
                       f"fit_intercept={svm.fit_intercept}, tol={svm.tol}, max_iter={svm.max_iter})"),
        "liblinear": f"-s 2 -c {svm.C}" + (" -B 1" if svm.fit_intercept else ""),
        "sklearn_version": sklearn.__version__,
        "svm_iterations": int(np.max(svm.n_iter_)),
        "input": checkpoint["input"]["modality"] + ("" if checkpoint["input"]["modality"] == "rgb" else f":{checkpoint['input']['motion_kind']}"),
    }


def main(argv: list[str] | None = None) -> None:
    protocol_main("svm", evaluate, __doc__, "top1", argv)


if __name__ == "__main__":
    main()
