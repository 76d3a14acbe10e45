"""Full-network fine-tuning (MaCLR §4.2 "Full Network Training": the pretrained backbone and a
new linear classifier are trained end to end on the target dataset; top-1 over 10 temporal x 3
spatial test views, softmax averaged). With a low-shot manifest (`ucf101_lowshot_<pct>`: a
class-balanced subset of the training videos and the full test split) it is the low-shot
protocol of MaCLR Table 3b.

The paper gives no fine-tuning recipe for UCF101/HMDB51; the full profile uses the authors'
released one (self-supervised-maclr, configs/UCF101/SLOW_32x8_R50.yaml), cited key by key there;
MCL's and CMD's checkpoints use their own (`method_recipes: <method>: finetune:` there; CMD's
Scratch baselines use CMD's). Optional settings, off unless a recipe sets them: `nesterov` (SGD with
Nesterov momentum), `grad_clip_norm` (clip the gradient's norm), `score_averaging: logits` (average
the views' logits instead of their softmax), `test_short_side` (resize before the test crop),
`eval_epochs` (test after the listed epochs too: CMD Table 3), `schedule: step` with `milestones`
(instead of PySlowFast's cosine) and `flip_p` (the training flip's probability, 0.5 unless set).

    python -m protocols.finetune --checkpoint C.pt --manifest M.csv --root DIR --scale smoke --out metrics.json
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from core.errors import SuiteError
from datasets.clips.reader import ClipReader, MotionClipReader, clip_spec
from datasets.clips.sampling import ClipSpec, plan_test_clips, plan_train_clip
from methods.backbones import build_backbone
from methods.training.engine import RunSettings, fit
from methods.training.method import EpochSeededVideos, TrainingTask
from methods.training.registry import method_class
from protocols.cli import evaluation_splits, protocol_main


class Classifier(TrainingTask):
    """The transferred backbone with dropout and a new linear layer, trained with cross-entropy
    on the shared engine."""

    def __init__(self, checkpoint: dict, num_classes: int, dropout: float):
        super().__init__()
        enc = checkpoint["encoder"]
        self.backbone = build_backbone(enc["backbone"], width_multiplier=enc["width_multiplier"], in_channels=enc["in_channels"])
        self.backbone.load_state_dict(enc["state_dict"])
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.backbone.out_dim, num_classes))

    def logits(self, clip: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(clip))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"cross_entropy": F.cross_entropy(self.logits(batch["clip"]), batch["label"])}


class TrainClips(EpochSeededVideos):
    """One augmented training clip per video and epoch: random position, crop and flip, then the
    reader's colour augmentations; seeded by (seed, epoch, video)."""

    def __init__(self, videos: pd.DataFrame, reader: ClipReader, seed: int, flip_p: float = 0.5):
        super().__init__(videos, seed)
        self.reader, self.flip_p = reader, flip_p

    def __getitem__(self, index: int):
        row = self.videos.iloc[index]
        rng = self.sample_rng(index)
        torch.manual_seed(int(rng.integers(2**31)))
        plan = plan_train_clip(self.reader.num_frames(row), self.reader.frame_hw(row), self.reader.spec, rng, flip_p=self.flip_p)
        return {"clip": self.reader(row, plan), "label": torch.tensor(int(row.label))}


def evaluate(checkpoint: dict, manifest: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict, seed: int) -> dict:
    """Fine-tune and test. `motion_cache` is read only by a method's own fine-tuning task (CMD
    Table 6's regulariser reads the compressed-domain cache); the classifier reads RGB.

    With `eval_epochs: {<label>: <epoch>}` (CMD Table 3: accuracy after 1, 5, ... fine-tuning
    epochs) the same run is also tested after each listed epoch, as `top1_ep<label>` and
    `top5_ep<label>`; the profile maps each label to an epoch of its own run. These are evaluation
    points of one run: nothing is selected by them, and `top1` is the last epoch's."""
    if checkpoint["input"]["modality"] != "rgb":
        raise SuiteError("fine-tuning is defined for RGB encoders; this checkpoint's encoder reads motion inputs")
    train, test = evaluation_splits(manifest)
    num_classes = int(manifest["label"].max()) + 1
    run = FineTuning(checkpoint, train, test, root, motion_cache, cfg, num_classes, seed)
    points = evaluation_points(cfg.get("eval_epochs"), run.epochs)
    at_epoch: dict[int, dict] = {}

    def evaluation_point(epochs_done: int) -> None:
        if epochs_done in points.values():
            at_epoch[epochs_done] = run.tester(run.model)

    run.fit(on_epoch_end=evaluation_point if points else None)
    final = at_epoch.get(run.epochs) or run.tester(run.model)
    metrics = {**final, **{f"{name}_ep{label}": at_epoch[epoch][name] for label, epoch in points.items() for name in final}}
    return {**metrics, **run.facts(), **({"eval_epochs": points} if points else {})}


class FineTuning:
    """One fine-tuning run of a checkpoint's transferred encoder (its `encoder` and `input`): the
    model (the classifier, or the method's own task), its training clips, the engine settings of
    the recipe `cfg`, and the tester of its test views. An encoder of motion inputs reads its
    clips from `motion_cache` (MaCLR's Motion pathway in protocols/finetune_vf.py)."""

    def __init__(self, checkpoint: dict, train: pd.DataFrame, test: pd.DataFrame, root: Path, motion_cache: Path | None,
                 cfg: dict, num_classes: int, seed: int):
        inputs = checkpoint["input"]
        self.cfg, self.seed, self.num_train, self.num_test, self.num_classes = cfg, seed, len(train), len(test), num_classes
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(seed)
        spec = clip_spec(inputs)
        own = own_task(checkpoint, train, root, motion_cache, cfg, num_classes, seed)
        if own is None:
            self.model = Classifier(checkpoint, num_classes, float(cfg["dropout"]))
            self.data = TrainClips(train, clip_reader(inputs, root, motion_cache, spec, cfg["augment"]), seed,
                                   flip_p=float(cfg.get("flip_p", 0.5)))
        else:
            self.model, self.data = own
        self.model = self.model.to(self.device)
        self.epochs = int(cfg["epochs"])
        self.score_averaging = cfg.get("score_averaging", "softmax")
        if self.score_averaging not in ("softmax", "logits"):
            raise SuiteError(f"finetune.score_averaging must be softmax or logits, got {self.score_averaging!r}")
        if inputs["modality"] == "rgb":  # the short side is the crop unless a recipe sets it
            test_crop = int(cfg["test_crop_size"] or spec.crop_size)
            test_short = int(cfg.get("test_short_side") or test_crop)
        else:  # motion is cut from its cache as cached (as protocols.features reads it)
            test_crop, test_short = spec.crop_size, spec.short_side
        test_spec = ClipSpec(spec.num_frames, spec.stride, test_crop, test_short, int(cfg["temporal_views"]), int(cfg["spatial_views"]))
        self.tester = Tester(test, clip_reader(inputs, root, motion_cache, test_spec, None), self.score_averaging,
                             self.device, int(cfg.get("recall_min_events", 0)))

    def fit(self, on_epoch_end=None) -> None:
        cfg = self.cfg
        # PySlowFast's schedule: linear warm-up from warmup_start_lr, then cosine decay (or a recipe's steps).
        optimizer = {"name": "sgd", "lr": cfg["lr"], "momentum": cfg["momentum"], "weight_decay": cfg["weight_decay"],
                     "nesterov": bool(cfg.get("nesterov", False)),
                     "warmup_epochs": cfg["warmup_epochs"], "warmup_start_lr": cfg["warmup_start_lr"],
                     "schedule": cfg.get("schedule", "cosine"), "milestones": cfg.get("milestones", [])}
        grad_clip_norm = float(cfg["grad_clip_norm"]) if cfg.get("grad_clip_norm") else None
        fit(self.model, self.data, RunSettings(epochs=self.epochs, batch_size=min(int(cfg["batch_size"]), len(self.data)),
                                               optimizer=optimizer, grad_clip_norm=grad_clip_norm, seed=self.seed,
                                               drop_last=False, title="fine-tuning"),
            on_epoch_end=on_epoch_end)

    def facts(self) -> dict:
        return {"num_train_videos": self.num_train, "num_test_videos": self.num_test, "num_classes": self.num_classes,
                "views": f"{self.cfg['temporal_views']}x{self.cfg['spatial_views']}", "epochs": self.epochs,
                "score_averaging": self.score_averaging}


def clip_reader(inputs: dict, root: Path, motion_cache: Path | None, spec: ClipSpec, augment: dict | None):
    """The reader of an encoder's input clips: decoded RGB (colour-augmented by `augment` when
    given), or clips of its motion cache (flipped with the plan, no colour augmentation)."""
    if inputs["modality"] == "rgb":
        return ClipReader(root, spec, inputs["mean"], inputs["std"], augment=augment)
    if motion_cache is None:
        raise SuiteError(f"this encoder reads {inputs['kind']} inputs: pass --motion-cache")
    return MotionClipReader(motion_cache, spec, float(inputs["motion_scale"]))


def own_task(checkpoint: dict, train: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict,
             num_classes: int, seed: int):
    """(task, dataset) of a checkpoint whose method fine-tunes it with more than the classifier (CMD
    Table 6: motion prediction as a regulariser; `PretrainMethod.finetune_task`), else None."""
    method = (checkpoint.get("provenance") or {}).get("method")
    if not method or not checkpoint.get("config"):
        return None
    return method_class(method).finetune_task(checkpoint["config"], checkpoint, train, root, motion_cache, cfg,
                                              num_classes, seed)


def evaluation_points(eval_epochs: dict | None, epochs: int) -> dict[int, int]:
    """{label: epoch of this run} from a profile's `eval_epochs`, each epoch within the run."""
    points = {int(label): int(epoch) for label, epoch in (eval_epochs or {}).items()}
    outside = {label: epoch for label, epoch in points.items() if not 1 <= epoch <= epochs}
    if outside:
        raise SuiteError(f"finetune.eval_epochs {outside}: epochs outside this run's 1..{epochs}")
    return points


def verb_metrics(scores: torch.Tensor, label_sets: list[list[int]], min_events: int) -> dict:
    """VidSitu verb prediction (Sadhu et al., CVPR 2021; MaCLR Table 4b), as the official evaluation
    computes it (TheShadow29/VidSitu, vidsitu_code/evl_fns.py, EvlFn_Vb.vb_classf_metrics_all):

    - `top1`, `top5` (Acc@K): an event counts as right when any of the K highest-scoring verbs is
      one of the verbs its (up to 10) annotators gave;
    - `macro_recall_at_5` (Rec@5): for each verb, over the events where at least 2 annotators gave
      it, the share of events whose 5 highest-scoring verbs contain it; averaged over the verbs with
      more than `min_events` such events (the official evaluation reports `recall_macro_1_th_9`).

    `label_sets[i]` holds event i's annotators' class indices (-1: a verb absent from training,
    which no prediction can match). Percentages."""
    top5 = scores.topk(min(5, scores.shape[1]), dim=1).indices.tolist()
    hits = {k: [bool(set(top[:k]) & set(labels)) for top, labels in zip(top5, label_sets)] for k in (1, 5)}
    per_verb: dict[int, list[bool]] = {}
    for top, labels in zip(top5, label_sets):
        for verb in {v for v in labels if v >= 0 and labels.count(v) >= 2}:
            per_verb.setdefault(verb, []).append(verb in top)
    recalls = [sum(found) / len(found) for found in per_verb.values() if len(found) > min_events]
    if not recalls:
        raise SuiteError(f"macro recall@5: no verb was given by 2 annotators in more than {min_events} test events")
    return {"top1": 100.0 * float(np.mean(hits[1])), "top5": 100.0 * float(np.mean(hits[5])),
            "macro_recall_at_5": 100.0 * float(np.mean(recalls)), "recall_verbs": len(recalls)}


class Tester:
    """Top-1 and top-5 over the test views of every test video, scores averaged per video. Where
    the manifest lists every annotator's label (`label_set`: VidSitu), the official verb metrics
    (`verb_metrics`) instead."""

    def __init__(self, test: pd.DataFrame, reader: ClipReader, score_averaging: str, device: torch.device,
                 recall_min_events: int = 0):
        self.test, self.reader, self.score_averaging, self.device = test, reader, score_averaging, device
        self.labels = torch.tensor(test["label"].to_numpy())
        self.label_sets = ([[int(v) for v in str(s).split(";")] for s in test["label_set"]]
                           if "label_set" in test.columns else None)
        self.recall_min_events = recall_min_events

    def __call__(self, model: Classifier) -> dict:
        return self.metrics(self.scores(model))

    def metrics(self, scores: torch.Tensor) -> dict:
        """Top-1 / top-5 (or VidSitu's verb metrics) of per-video scores (videos, classes)."""
        if self.label_sets is not None:
            return verb_metrics(scores, self.label_sets, self.recall_min_events)
        top = scores.topk(min(5, scores.shape[1]), dim=1).indices
        return {"top1": 100.0 * float((top[:, 0] == self.labels).float().mean()),
                "top5": 100.0 * float((top == self.labels[:, None]).any(1).float().mean())}

    def scores(self, model: Classifier) -> torch.Tensor:
        """Per test video, its views' softmax (or logits) averaged: (videos, classes)."""
        model.eval()
        scores = []
        with torch.no_grad():
            for row in tqdm(list(self.test.itertuples()), desc="test views", unit="video"):
                plans = plan_test_clips(self.reader.num_frames(row), self.reader.frame_hw(row), self.reader.spec)
                clips = [self.reader(row, plan) for plan in plans]
                logits = torch.cat([model.logits(torch.stack(clips[i : i + 32]).to(self.device)).cpu()
                                    for i in range(0, len(clips), 32)])
                scores.append((F.softmax(logits, dim=1) if self.score_averaging == "softmax" else logits).mean(0))
        return torch.stack(scores)


def main(argv: list[str] | None = None) -> None:
    protocol_main("finetune", evaluate, __doc__, "top1", argv)


if __name__ == "__main__":
    main()
