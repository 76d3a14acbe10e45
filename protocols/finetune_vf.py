"""Late fusion of the fine-tuned Visual and Motion pathways: MaCLR Table 2's "V+F" (§4.2: "We also
tried to keep the Motion pathway during inference and ensemble its prediction with those of the
Visual pathway").

Both pathways are fine-tuned as `protocols.finetune` fine-tunes one encoder, with the same recipe
and seed: the Visual pathway (the checkpoint's transferred encoder) on RGB clips, the Motion pathway
(its extra encoder `motion`) on its motion input (flow edges) from `--motion-cache`. Each test video
gets each stream's softmax averaged over its test views, and the two are averaged with equal
weights. The paper does not say how it ensembles; equal-weight averaging of the class scores is the
late fusion of two-stream networks (Simonyan & Zisserman 2014; Feichtenhofer et al. 2016, the
paper's [26]), our choice. Reports the fused `top1` / `top5` and each stream's `visual_top1`,
`motion_top1`. The recipe is the profile's `finetune:` section; an evaluation clip (`--clip`, Table
2's 32x8) is the Visual pathway's, and the Motion pathway reads its own pretraining clip (the paper
does not say which clip its Motion pathway was fine-tuned at).

    python -m protocols.finetune_vf --checkpoint C.pt --manifest M.csv --root DIR --motion-cache EDGES --scale smoke --out metrics.json
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.errors import SuiteError
from protocols.cli import evaluation_splits, protocol_main
from protocols.finetune import FineTuning

SECOND_STREAM = "motion"


def evaluate(checkpoint: dict, manifest: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict, seed: int) -> dict:
    motion = (checkpoint.get("extra_encoders") or {}).get(SECOND_STREAM)
    if motion is None:
        raise SuiteError(f"V+F fuses the transferred encoder with the checkpoint's extra encoder {SECOND_STREAM!r}, "
                         f"which this checkpoint has not (its extra encoders: "
                         f"{', '.join(checkpoint.get('extra_encoders') or {}) or 'none'})")
    if checkpoint["input"]["modality"] != "rgb":
        raise SuiteError("V+F fuses an RGB stream with a motion stream; this checkpoint's transferred encoder reads motion")
    train, test = evaluation_splits(manifest)
    num_classes = int(manifest["label"].max()) + 1
    streams = {"visual": checkpoint, "motion": {"encoder": motion, "input": motion["input"]}}
    scores, metrics = {}, {}
    for name, encoder in streams.items():
        run = FineTuning(encoder, train, test, root, motion_cache, cfg, num_classes, seed)
        run.fit()
        scores[name] = run.tester.scores(run.model)
        metrics[f"{name}_top1"] = run.tester.metrics(scores[name])["top1"]
    fused = run.tester.metrics((scores["visual"] + scores["motion"]) / 2)
    return {**fused, **metrics, **run.facts(), "fusion": "mean of the two streams' softmax scores"}


def main(argv: list[str] | None = None) -> None:
    protocol_main("finetune_vf", evaluate, __doc__, "top1", argv, settings="finetune")


if __name__ == "__main__":
    main()
