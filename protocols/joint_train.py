"""Training with labels on the evaluation dataset, HCML's protocol for Tables 2, 3 and 6 (§3.3,
§4, suppl. D.2: "all models are trained from scratch"): from the checkpoint's backbone (the seeded
random start of the specs' `pretrain: none` rows), HCML's self-supervised phase where the variant
has self-supervision, then the joint training of Eq. (5) (methods/hcml/joint.py), then the test.

Two tests of the same model: a single centre clip per video (Table 2's caption: "evaluated using a
single clip per video"; `top1_single_clip`, `top5_single_clip`) and `temporal_views` x
`spatial_views` clips, softmax-averaged (§4.2: 30 clips at 256^2 for K400, 9 for Something; `top1`,
`top5`). Nothing is selected on the test videos.

    python -m protocols.joint_train --checkpoint C.pt --manifest M.csv --root DIR --scale smoke --out metrics.json
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from core.errors import SuiteError
from datasets.clips.reader import ClipReader, clip_spec
from datasets.clips.sampling import ClipSpec
from methods.hcml.joint import recipe_config, train_with_labels
from protocols.cli import evaluation_splits, protocol_main
from protocols.finetune import Tester


def evaluate(checkpoint: dict, manifest: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict, seed: int) -> dict:
    method = (checkpoint.get("provenance") or {}).get("method")
    if method != "hcml" or not checkpoint.get("config"):
        raise SuiteError(f"joint_train trains HCML's variants (Eq. 5); this checkpoint is {method!r}'s")
    train, test = evaluation_splits(manifest)
    num_classes = int(manifest["label"].max()) + 1
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = train_with_labels(checkpoint["config"], checkpoint, train, root, cfg, num_classes, seed).to(device)
    method_cfg = recipe_config(checkpoint["config"], cfg)
    spec = clip_spec(method_cfg["clip"])
    inputs = checkpoint["input"]
    crop = int(cfg.get("test_crop_size") or spec.crop_size)
    short = int(cfg.get("test_short_side") or crop)

    def tester(temporal: int, spatial: int) -> Tester:
        views = ClipSpec(spec.num_frames, spec.stride, crop, short, temporal, spatial)
        return Tester(test, ClipReader(root, views, inputs["mean"], inputs["std"]), "softmax", device)

    single = tester(1, 1)(model)
    views = tester(int(cfg["temporal_views"]), int(cfg["spatial_views"]))(model)
    return {**views, "top1_single_clip": single["top1"], "top5_single_clip": single["top5"],
            "num_train_videos": len(train), "num_test_videos": len(test), "num_classes": num_classes,
            "views": f"{cfg['temporal_views']}x{cfg['spatial_views']}", "single_clip_views": "1x1",
            "ss_epochs": int(cfg["ss_epochs"]) if model.hcml.self_supervised else 0, "epochs": int(cfg["joint_epochs"]),
            "score_averaging": "softmax"}


def main(argv: list[str] | None = None) -> None:
    protocol_main("joint_train", evaluate, __doc__, "top1", argv)


if __name__ == "__main__":
    main()
