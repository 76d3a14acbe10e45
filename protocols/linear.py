"""Linear-layer protocol (MaCLR §4.2 "Linear Layer Training"): the pretrained backbone is frozen,
a linear classifier is trained on its features, and top-1 accuracy is reported on the test split
with the standard 10 temporal x 3 spatial views per video [75, 23] (softmax averaged over views).

The paper does not give the classifier's training recipe; the authors' released linear config
(self-supervised-maclr, configs/UCF101/SLOW_32x8_R50_CLSONLY.yaml) trains it by SGD (lr 32,
momentum 0.9, no weight decay, cosine, 4 x 50 epochs, batch 256) on augmented clips and tests on
3 crops of 256. Here `train_clips_per_video` random clips per training video (random position,
crop and flip) are embedded once, and a multinomial logistic regression (a `torch.nn.Linear`)
is fitted to them, with `solver: sgd` (the authors' optimiser settings, in the full profile) or
`solver: lbfgs` (full-batch L-BFGS with an L2 penalty: deterministic and fast, in the smoke
profile). `test_crop_size` sets the test crops (the authors' 256 at full scale).

`features: video_mean` (MCL §4.2 on Kinetics-400, the full profile's `method_recipes: mcl:`)
instead fits the layer to one feature per video, the mean of its test views' clip features, for
training and test videos alike (protocols.features.video_features), and classifies each test video
by the softmax of its mean feature. The default, `features: clips`, is the recipe above.

    python -m protocols.linear --checkpoint C.pt --manifest M.csv --root DIR --scale smoke --out metrics.json
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from core.errors import SuiteError
from methods.training.engine import RunSettings, fit
from methods.training.method import TrainingTask
from protocols.cli import evaluation_splits, protocol_main
from protocols.features import FrozenEncoder, extract, video_features


def fit_linear(features: torch.Tensor, labels: torch.Tensor, num_classes: int, cfg: dict) -> torch.nn.Linear:
    """Multinomial logistic regression on fixed features, by `cfg["solver"]` (see module docstring)."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(features.shape[1], num_classes)
    if cfg["solver"] == "sgd":
        return _fit_sgd(layer, features, labels, cfg)
    if cfg["solver"] != "lbfgs":
        raise SuiteError(f"linear.solver must be sgd or lbfgs, got {cfg['solver']!r}")
    mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
    x = (features - mean) / std  # standardised: L-BFGS and the L2 penalty see comparable scales
    optimizer = torch.optim.LBFGS(layer.parameters(), max_iter=int(cfg["max_iter"]), line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(layer(x), labels) + float(cfg["weight_decay"]) * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    # Fold the standardisation into the layer, so it applies to raw features.
    with torch.no_grad():
        layer.weight.div_(std)
        layer.bias.sub_((layer.weight * mean).sum(1))
    return layer


class LinearProbe(TrainingTask):
    """A linear layer on fixed features, trained with cross-entropy on the shared engine."""

    def __init__(self, layer: torch.nn.Linear):
        super().__init__()
        self.layer = layer

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"cross_entropy": F.cross_entropy(self.layer(batch["features"]), batch["label"])}


class FeatureSet(torch.utils.data.Dataset):
    def __init__(self, features: torch.Tensor, labels: torch.Tensor):
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"features": self.features[index], "label": self.labels[index]}


def _fit_sgd(layer: torch.nn.Linear, features: torch.Tensor, labels: torch.Tensor, cfg: dict) -> torch.nn.Linear:
    """Mini-batch SGD with momentum and a per-step cosine schedule (PySlowFast's), on the raw features."""
    optimizer = {"name": "sgd", "lr": float(cfg["lr"]), "momentum": float(cfg["momentum"]),
                 "weight_decay": float(cfg["weight_decay"]), "schedule": "cosine"}
    fit(LinearProbe(layer), FeatureSet(features, labels),
        RunSettings(epochs=int(cfg["epochs"]), batch_size=min(int(cfg["sgd_batch_size"]), len(features)),
                    optimizer=optimizer, drop_last=False, title="linear layer"))
    return layer


def evaluate(checkpoint: dict, manifest: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict, seed: int) -> dict:
    train, test = evaluation_splits(manifest)
    num_classes = int(manifest["label"].max()) + 1
    per_video = cfg.get("features", "clips") == "video_mean"
    if per_video:  # one mean feature per video, training and test videos alike
        train_x, train_y, test_x, test_y = video_features(checkpoint, train, test, root, motion_cache, cfg, seed)
        layer = fit_linear(train_x, train_y, num_classes, cfg)
        with torch.no_grad():
            probabilities = F.softmax(layer(test_x), dim=-1)
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        encoder = FrozenEncoder(checkpoint, root, motion_cache, device)
        train_x, train_y = extract(encoder, train, False, cfg, seed)
        layer = fit_linear(train_x.flatten(0, 1), train_y.repeat_interleave(train_x.shape[1]), num_classes, cfg)
        test_x, test_y = extract(encoder, test, True, cfg, seed)
        with torch.no_grad():
            probabilities = F.softmax(layer(test_x), dim=-1).mean(dim=1)  # average over the views
    top = probabilities.topk(min(5, num_classes), dim=1).indices
    return {
        "top1": 100.0 * float((top[:, 0] == test_y).float().mean()),
        "top5": 100.0 * float((top == test_y[:, None]).any(1).float().mean()),
        "num_train_videos": len(train), "num_test_videos": len(test), "num_classes": num_classes,
        "views": f"{cfg['temporal_views']}x{cfg['spatial_views']}",
        **({"features": "mean of the clip features of each video"} if per_video
           else {"train_clips_per_video": int(cfg["train_clips_per_video"])}),
        "score_averaging": "features" if per_video else "softmax",
        "input": checkpoint["input"]["modality"] + ("" if checkpoint["input"]["modality"] == "rgb" else f":{checkpoint['input']['motion_kind']}"),
    }


def main(argv: list[str] | None = None) -> None:
    protocol_main("linear", evaluate, __doc__, "top1", argv)


if __name__ == "__main__":
    main()
