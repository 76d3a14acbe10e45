"""AVA v2.2 spatio-temporal action detection (MaCLR §4.4, Table 5): frame-mAP at IoU 0.5 over the 60
evaluated classes.

MaCLR §4.4: "we follow the Faster-RCNN design of [23] (SlowFast) ... finetune for 20 epochs with a
learning rate of 0.1 and batch size of 64", on 8x8 clips (Table 5's caption). The detector is
SlowFast's AVA detector (Feichtenhofer et al. 2019, §5; facebookresearch/SlowFast
`slowfast/models/head_helper.py` ResNetRoIHead, `configs/AVA/SLOW_8x8_R50_SHORT.yaml`):

- person boxes come from precomputed proposals: at full scale the profile's `proposals` file
  (SlowFast's person detections, `video_id,timestamp,x1,y1,x2,y2,action_id,score`, kept at
  `proposal_score_threshold`); where the suite has none (smoke, the fixture) the validation
  keyframes' ground-truth person boxes, each corner moved by up to `gt_jitter` of the box's size
  (`jitter_boxes`), stand in, and the metrics' `proposals` says so;
- the input is the clip of `num_frames` frames `stride` apart centred on the keyframe
  (`keyframe_indices`; the checkpoint's clip, or the variant's `evaluation_clip` via `--clip`);
- the Visual pathway's last-stage features, with res5's spatial stride replaced by a dilation
  (`last_stage_dilation`, SlowFast's RESNET.SPATIAL_STRIDES / SPATIAL_DILATIONS), are averaged over
  time, RoIAligned per box (torchvision.ops.roi_align) and max-pooled (`roi_features`);
- a dropout + linear layer gives one sigmoid score per label-map class, trained with binary
  cross-entropy (`detection_loss`) on the train split's ground-truth boxes, every box's actions as
  a multi-hot target, for a fixed number of epochs (nothing is selected on validation data);
- training clips: the frame's short side jittered in `train_jitter_scales`, a random square crop of
  `train_crop_size` (the checkpoint's crop when null), a horizontal flip with `flip_p`, boxes moved
  with the crop and clipped to it; test clips: the whole frame at `test_short_side`.

The validation keyframes' predictions are written as an AVA CSV (`<out>.predictions.csv`, one row
per proposal and class) beside the ground truth of the manifest's validation videos
(`<out>.groundtruth.csv`, the official file's rows of those videos), and scored by
`protocols.ava_eval` with the label map and the excluded timestamps; the same files give the same
number from `python -m protocols.ava_eval`. The manifest is the `ava` dataset (train and val videos),
its boxes `ava.boxes.csv` beside it (`datasets.sources.parsers.prepare`).

    python -m protocols.detection --checkpoint C.pt --manifest results/smoke/manifests/ava.csv --root DIR --scale smoke --out metrics.json
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from core.errors import MissingInputError, SuiteError
from core.io import write_text
from datasets.clips.decode import decode_frames, resize_short_side
from datasets.clips.reader import normalize
from datasets.clips.sampling import resized_hw
from datasets.sources.parsers.ava import annotation_paths, keyframes
from methods.backbones import build_backbone
from methods.training.engine import RunSettings, fit
from methods.training.method import TrainingTask
from protocols import ava_eval
from protocols.cli import protocol_main

BOX = ["x1", "y1", "x2", "y2"]


def keyframe_indices(frame: int, num_frames: int, stride: int, video_frames: int) -> np.ndarray:
    """Frame indices of the clip centred on keyframe `frame`: `num_frames` frames `stride` apart
    from `frame - num_frames * stride // 2`, clamped to the video (SlowFast
    `datasets/utils.py` get_sequence, which AVA's loader calls with the keyframe as centre)."""
    start = int(frame) - num_frames * stride // 2
    return np.clip(start + stride * np.arange(num_frames), 0, int(video_frames) - 1)


def jitter_boxes(boxes: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Stand-in proposals (smoke / mini, no person detector): each corner of each normalised
    x1,y1,x2,y2 box moved by a uniform draw in [-amount, amount] times the box's width (x) or height
    (y), clipped to [0, 1] and kept ordered (our choice: a detector's boxes are near, not on, the
    people)."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    size = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)  # w, h, w, h
    moved = np.clip(boxes + rng.uniform(-amount, amount, boxes.shape) * size, 0.0, 1.0)
    lo, hi = np.minimum(moved[:, :2], moved[:, 2:]), np.maximum(moved[:, :2], moved[:, 2:])
    return np.concatenate([lo, hi], axis=1)


def crop_boxes(boxes: np.ndarray, frame_hw: tuple[int, int], top: int, left: int, crop: int) -> np.ndarray:
    """Normalised frame boxes as normalised boxes of the square crop at (top, left) of the frame
    resized to `frame_hw`, clipped to the crop (SlowFast cv2_transform crop_boxes and
    clip_boxes_to_image: a box leaving the crop keeps its clipped part and its labels)."""
    h, w = frame_hw
    pixels = np.asarray(boxes, dtype=float) * [w, h, w, h] - [left, top, left, top]
    return np.clip(pixels, 0, crop) / crop


def flip_boxes(boxes: np.ndarray) -> np.ndarray:
    """Normalised boxes of a horizontally flipped frame: x1, x2 -> 1 - x2, 1 - x1."""
    boxes = np.asarray(boxes, dtype=float)
    return np.stack([1 - boxes[:, 2], boxes[:, 1], 1 - boxes[:, 0], boxes[:, 3]], axis=1)


def dilate_last_stage(backbone: nn.Module, dilation: int) -> nn.Module:
    """res5 with spatial stride 1 and its spatial kernels dilated by `dilation` (SlowFast's AVA
    configs: RESNET.SPATIAL_STRIDES [[1], [2], [2], [1]], SPATIAL_DILATIONS [[1], [1], [1], [2]]),
    the pretrained weights unchanged, so the last-stage map has twice the resolution (output stride
    16). `dilation` 1 leaves the backbone as pretrained."""
    if dilation == 1:
        return backbone
    if not hasattr(backbone, "stages"):
        raise SuiteError(f"last_stage_dilation {dilation}: backbone {type(backbone).__name__} has no ResNet stages")
    for conv in (m for m in backbone.stages[-1].modules() if isinstance(m, nn.Conv3d)):
        conv.stride = (conv.stride[0], 1, 1)
        if conv.kernel_size[1] > 1:
            conv.dilation = (conv.dilation[0], dilation, dilation)
            conv.padding = (conv.padding[0], *(dilation * (k - 1) // 2 for k in conv.kernel_size[1:]))
    return backbone


def roi_features(features: torch.Tensor, rois: torch.Tensor, input_hw: tuple[int, int], resolution: int,
                 aligned: bool) -> torch.Tensor:
    """One feature vector per box (SlowFast head_helper.ResNetRoIHead): the (B, C, T, h, w)
    last-stage map averaged over time, RoIAlign of each box to `resolution` x `resolution`
    (`rois`: (N, 5) rows of batch index and x1, y1, x2, y2 in input pixels; spatial scale h / H;
    sampling ratio 0, as DETECTION.ROI_XFORM_RESOLUTION / ALIGNED), then a spatial max pool: (N, C)."""
    from torchvision.ops import roi_align  # as clip_augmentation: torchvision only where it is used

    pooled = features.mean(dim=2)
    scale = features.shape[-1] / input_hw[1]
    regions = roi_align(pooled, rois.to(pooled.dtype), resolution, spatial_scale=scale, sampling_ratio=0, aligned=aligned)
    return regions.amax(dim=(2, 3))


def detection_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-class sigmoid and binary cross-entropy, averaged over boxes and classes (MaCLR §4.4's
    detector of [23]; SlowFast MODEL.HEAD_ACT sigmoid, MODEL.LOSS_FUNC bce, nn.BCELoss mean):
    -mean(y log s(z) + (1 - y) log(1 - s(z))), computed from the logits for stability."""
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))


class Detector(TrainingTask):
    """The transferred backbone (res5 dilated), RoI pooling and a dropout + linear classifier."""

    def __init__(self, checkpoint: dict, num_classes: int, cfg: dict):
        super().__init__()
        enc = checkpoint["encoder"]
        backbone = build_backbone(enc["backbone"], width_multiplier=enc["width_multiplier"], in_channels=enc["in_channels"])
        backbone.load_state_dict(enc["state_dict"])
        if not hasattr(backbone, "forward_features"):
            raise SuiteError(f"detection reads last-stage feature maps; backbone {enc['backbone']} has no forward_features")
        self.backbone = dilate_last_stage(backbone, int(cfg["last_stage_dilation"]))
        self.resolution, self.aligned = int(cfg["roi_resolution"]), bool(cfg["roi_aligned"])
        self.head = nn.Sequential(nn.Dropout(float(cfg["dropout"])), nn.Linear(backbone.out_dim, num_classes))

    def logits(self, clip: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        features = self.backbone.forward_features(clip)
        return self.head(roi_features(features, rois, clip.shape[-2:], self.resolution, self.aligned))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        valid = batch["valid"]
        clip = batch["clip"]
        size = torch.tensor([clip.shape[-1], clip.shape[-2]] * 2, dtype=clip.dtype, device=clip.device)
        rois = torch.cat([valid.nonzero()[:, :1].to(clip.dtype), batch["boxes"][valid] * size], dim=1)
        return {"bce": detection_loss(self.logits(clip, rois), batch["labels"][valid])}


def keyframe_clip(path: Path, indices: np.ndarray, short_side: int, mean, std, crop: tuple[int, int, int] | None = None,
                  flip: bool = False) -> torch.Tensor:
    """Normalised float (3, T, H, W): the frames at `indices`, short side resized to `short_side`,
    optionally cut to the square `crop` (top, left, size) and flipped."""
    x = torch.from_numpy(np.ascontiguousarray(decode_frames(path, indices, use_cache=True))).permute(0, 3, 1, 2)
    x = resize_short_side(x, short_side)
    if crop is not None:
        top, left, size = crop
        x = x[..., top : top + size, left : left + size]
    if flip:
        x = x.flip(-1)
    return normalize(x.permute(1, 0, 2, 3).float().div_(255.0), mean, std)


def labelled_keyframes(boxes: pd.DataFrame, classes: list[int]) -> list[dict]:
    """One entry per keyframe of ground-truth rows: its video, timestamp, frame, unique boxes and
    their multi-hot targets over `classes` (an AVA row is one (box, action) pair)."""
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for (vid, ts), rows in boxes.groupby(["video_id", "timestamp"], sort=True):
        unique = rows.drop_duplicates(BOX)[BOX].to_numpy(float)
        targets = np.zeros((len(unique), len(classes)), dtype=np.float32)
        for row in rows.itertuples():
            box = np.array([row.x1, row.y1, row.x2, row.y2])
            targets[np.flatnonzero((unique == box).all(axis=1))[0], index[int(row.action_id)]] = 1.0
        out.append({"video_id": vid, "timestamp": int(ts), "frame": int(rows["frame"].iloc[0]), "boxes": unique,
                    "targets": targets})
    return out


class TrainKeyframes(Dataset):
    """One augmented clip per training keyframe and epoch with its boxes, padded to the most boxes
    of a keyframe (`valid` marks the real ones); seeded by (seed, epoch, keyframe)."""

    def __init__(self, frames: list[dict], videos: pd.DataFrame, root: Path, inputs: dict, cfg: dict, seed: int):
        self.frames, self.root, self.inputs, self.seed = frames, root, inputs, seed
        self.videos = videos.set_index("video_id")
        clip = inputs["clip"]
        self.num_frames, self.stride = int(clip["num_frames"]), int(clip["stride"])
        self.crop = int(cfg.get("train_crop_size") or clip["crop_size"])
        self.scales = [int(s) for s in cfg["train_jitter_scales"]]
        self.flip_p = float(cfg["flip_p"])
        self.max_boxes = max(len(f["boxes"]) for f in frames)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict:
        kf = self.frames[index]
        video = self.videos.loc[kf["video_id"]]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        short = int(rng.integers(self.scales[0], self.scales[1] + 1))
        h, w = resized_hw(int(video.height), int(video.width), short)
        if self.crop > min(h, w):
            raise SuiteError(f"detection: train_crop_size {self.crop} exceeds video {kf['video_id']}'s {h}x{w} frame "
                             f"at short side {short}")
        top, left = int(rng.integers(0, h - self.crop + 1)), int(rng.integers(0, w - self.crop + 1))
        flip = bool(rng.random() < self.flip_p)
        indices = keyframe_indices(kf["frame"], self.num_frames, self.stride, int(video.num_frames))
        clip = keyframe_clip(self.root / video.path, indices, short, self.inputs["mean"], self.inputs["std"],
                             (top, left, self.crop), flip)
        boxes = crop_boxes(kf["boxes"], (h, w), top, left, self.crop)
        boxes = flip_boxes(boxes) if flip else boxes
        k, pad = len(boxes), self.max_boxes - len(boxes)
        return {"clip": clip,
                "boxes": torch.tensor(np.pad(boxes, ((0, pad), (0, 0))), dtype=torch.float32),
                "labels": torch.tensor(np.pad(kf["targets"], ((0, pad), (0, 0)))),
                "valid": torch.arange(self.max_boxes) < k}


def read_proposals(path: Path, videos: set[str], threshold: float) -> pd.DataFrame:
    """Person boxes of a precomputed proposals CSV (SlowFast's `ava_detection_val_boxes_and_labels.csv`:
    `video_id,timestamp,x1,y1,x2,y2,action_id,score`, the action id empty or ignored) for `videos`,
    kept when their score is at least `threshold` (AVA.DETECTION_SCORE_THRESH), each box once."""
    if not path.is_file():
        raise MissingInputError(f"detection: proposals file {path} not found (the profile's `detection: proposals:`, "
                                f"relative to the dataset root; SlowFast's person detections of AVA's validation set)")
    rows = pd.read_csv(path, header=None, dtype={0: str}, usecols=range(8),
                       names=["video_id", "timestamp", *BOX, "action_id", "score"])
    bad = rows[rows[["timestamp", *BOX, "score"]].isna().any(axis=1)]
    if len(bad):
        raise SuiteError(f"{path}:{int(bad.index[0]) + 1}: proposal row without timestamp, box or score")
    rows = rows[rows["video_id"].isin(videos) & (rows["score"] >= threshold)]
    return rows.drop_duplicates(["video_id", "timestamp", *BOX])[["video_id", "timestamp", *BOX]].reset_index(drop=True)


def validation_proposals(cfg: dict, root: Path, val_boxes: pd.DataFrame, videos: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, str]:
    """(proposals of the validation keyframes with their `frame`, how they were made): the
    profile's proposals file, or the ground-truth boxes jittered by `gt_jitter` where it names none."""
    if cfg.get("proposals"):
        found = read_proposals(root / cfg["proposals"], set(videos["video_id"]), float(cfg["proposal_score_threshold"]))
        source = f"{cfg['proposals']} (score >= {cfg['proposal_score_threshold']})"
    elif cfg.get("gt_jitter") is not None:
        found = val_boxes.drop_duplicates(["video_id", "timestamp", *BOX])[["video_id", "timestamp", *BOX]].reset_index(drop=True)
        found[BOX] = jitter_boxes(found[BOX].to_numpy(), float(cfg["gt_jitter"]), np.random.default_rng(seed))
        source = f"stand-in: ground-truth person boxes jittered by {cfg['gt_jitter']} of their size"
    else:
        raise SuiteError("detection: the profile sets neither `proposals` (a file of person boxes) nor `gt_jitter`")
    if found.empty:
        raise SuiteError(f"detection: no proposal ({source}) on the validation videos of the manifest")
    fps = dict(zip(videos["video_id"], videos["fps"]))
    frames = pd.concat([keyframes(group, fps[vid]) for vid, group in found.groupby("video_id")])
    return found.merge(frames[["video_id", "timestamp", "frame"]], on=["video_id", "timestamp"]), source


def predict(model: Detector, proposals: pd.DataFrame, videos: pd.DataFrame, root: Path, inputs: dict, short_side: int,
            classes: list[int], device: torch.device) -> pd.DataFrame:
    """AVA prediction rows (video_id, timestamp, box, action_id, score): every proposal scored for
    every class, one whole-frame clip per keyframe."""
    clip_cfg, table = inputs["clip"], videos.set_index("video_id")
    model.eval()
    rows = []
    with torch.no_grad():
        for (vid, ts), group in tqdm(proposals.groupby(["video_id", "timestamp"], sort=True), desc="keyframes", unit="frame"):
            video = table.loc[vid]
            indices = keyframe_indices(int(group["frame"].iloc[0]), int(clip_cfg["num_frames"]), int(clip_cfg["stride"]),
                                       int(video.num_frames))
            clip = keyframe_clip(root / video.path, indices, short_side, inputs["mean"], inputs["std"])[None].to(device)
            boxes = torch.tensor(group[BOX].to_numpy(float), dtype=clip.dtype, device=device)
            size = torch.tensor([clip.shape[-1], clip.shape[-2]] * 2, dtype=clip.dtype, device=device)
            rois = torch.cat([torch.zeros(len(boxes), 1, dtype=clip.dtype, device=device), boxes * size], dim=1)
            scores = torch.sigmoid(model.logits(clip, rois)).cpu().numpy()
            for box, box_scores in zip(group[BOX].to_numpy(float), scores):
                rows += [(vid, int(ts), *box, c, float(s)) for c, s in zip(classes, box_scores)]
    return pd.DataFrame(rows, columns=["video_id", "timestamp", *BOX, "action_id", "score"])


def write_ava_csv(path: Path, rows: pd.DataFrame) -> None:
    """Prediction rows as an AVA CSV: no header, 4-digit timestamps, boxes with 3 decimals as in the
    official files, scores with 6."""
    write_text(path, "".join(f"{r.video_id},{int(r.timestamp):04d},{r.x1:.3f},{r.y1:.3f},{r.x2:.3f},{r.y2:.3f},"
                             f"{int(r.action_id)},{r.score:.6f}\n" for r in rows.itertuples()))


def write_ground_truth(path: Path, official: Path, videos: set[str]) -> int:
    """The official ground-truth file's lines of `videos`, unchanged; returns how many."""
    kept = [line for line in official.read_text().splitlines(keepends=True) if line.split(",", 1)[0] in videos]
    write_text(path, "".join(kept))
    return len(kept)


def evaluate(checkpoint: dict, manifest: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict, seed: int,
             boxes: pd.DataFrame | None = None, out: Path | None = None) -> dict:
    """Train the detector on the train split's keyframes, predict the validation keyframes' proposals,
    write the AVA CSVs beside `out` and score them with protocols.ava_eval. `boxes` are the
    manifest's evaluated boxes (`ava.boxes.csv`, with `split` and `frame`)."""
    if checkpoint["input"]["modality"] != "rgb":
        raise SuiteError("detection is defined for RGB encoders; this checkpoint's encoder reads motion inputs")
    if boxes is None or out is None:
        raise SuiteError("detection needs the manifest's boxes (ava.boxes.csv) and an output path")
    paths = annotation_paths(root, "val")
    classes = sorted(ava_eval.read_labelmap(paths["label_map"]))
    train_videos, val_videos = manifest[manifest["split"] == "train"], manifest[manifest["split"] == "val"]
    train_boxes = boxes[(boxes["split"] == "train") & boxes["video_id"].isin(set(train_videos["video_id"]))]
    val_boxes = boxes[(boxes["split"] == "val") & boxes["video_id"].isin(set(val_videos["video_id"]))]
    if train_boxes.empty or val_boxes.empty:
        raise SuiteError("detection: the manifest needs train and val videos with boxes (ava.boxes.csv)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(seed)
    frames = labelled_keyframes(train_boxes, classes)
    data = TrainKeyframes(frames, train_videos, root, checkpoint["input"], cfg, seed)
    model = Detector(checkpoint, len(classes), cfg).to(device)
    optimizer = {"name": "sgd", "lr": cfg["lr"], "momentum": cfg["momentum"], "weight_decay": cfg["weight_decay"],
                 "warmup_epochs": cfg["warmup_epochs"], "warmup_start_lr": cfg["warmup_start_lr"],
                 "schedule": cfg["schedule"], "milestones": cfg.get("milestones", [])}
    fit(model, data, RunSettings(epochs=int(cfg["epochs"]), batch_size=min(int(cfg["batch_size"]), len(data)),
                                 optimizer=optimizer, seed=seed, drop_last=False, title="detection"))
    proposals, source = validation_proposals(cfg, root, val_boxes, val_videos, seed)
    predictions = predict(model, proposals, val_videos, root, checkpoint["input"], int(cfg["test_short_side"]),
                          classes, device)
    pred_csv, gt_csv = out.with_suffix(".predictions.csv"), out.with_suffix(".groundtruth.csv")
    write_ava_csv(pred_csv, predictions)
    write_ground_truth(gt_csv, paths["boxes"], set(val_videos["video_id"]))
    annotated = set(pd.read_csv(paths["boxes"], header=None, usecols=[0], dtype={0: str})[0])
    result = ava_eval.ava_frame_map(gt_csv, pred_csv, paths["label_map"], paths["excluded"])
    return {"map": 100.0 * result["map"],
            "ap_per_class": {str(c): 100.0 * ap for c, ap in result["per_class"].items() if ap is not None},
            "num_classes": len(classes), "classes_with_ground_truth": sum(ap is not None for ap in result["per_class"].values()),
            "num_train_videos": int(train_boxes["video_id"].nunique()), "num_test_videos": int(val_boxes["video_id"].nunique()),
            "num_train_keyframes": len(frames), "num_test_keyframes": int(proposals.groupby(["video_id", "timestamp"]).ngroups),
            "num_proposals": len(proposals), "proposals": source,
            **({"eval_stand_in": f"proposals {source}"} if source.startswith("stand-in") else {}),
            "val_videos_left_out": sorted(annotated - set(val_videos["video_id"])),  # quarantined or absent
            "predictions": str(pred_csv), "ground_truth": str(gt_csv),
            "views": "1x1", "score_averaging": "none", "epochs": int(cfg["epochs"])}


def main(argv: list[str] | None = None) -> None:
    protocol_main("detection", evaluate, __doc__, "map", argv,
                  keywords=lambda args: {"boxes": manifest_boxes(args.manifest), "out": args.out})


def manifest_boxes(manifest: Path) -> pd.DataFrame:
    """The boxes evaluated with `manifest` (the `.boxes.csv` beside it, which rule ava_boxes writes)."""
    path = manifest.with_name(manifest.stem + ".boxes.csv")
    if not path.is_file():
        raise SuiteError(f"{path}: the manifest's evaluated boxes are missing (rule ava_boxes writes them)")
    return pd.read_csv(path, dtype={"video_id": str})


if __name__ == "__main__":
    main()
