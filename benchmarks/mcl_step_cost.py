"""What L_MAL costs per MCL pretraining step: the full MCL (`ta_sa_mal`: L_NCE + L_MAL-v3, whose
gradient maps are taken with create_graph inside `forward`, so the backward is a double backward)
against MCL without L_MAL (`ta_sa`: L_NCE only), at the smoke scale's sizes (backbone, width, clip,
batch, queue), on the same batches, in the same process, interleaved. Each step is the engine's
(`methods.training.engine.train_step`: forward, backward, clipping, SGD step, momentum and queue
update); clips come from fixed random tensors of the smoke shapes, so decoding is not timed.
Reports clips/s of both and the ratio (with / without L_MAL; 1.0 means L_MAL is free): of the
medians, and the median of each repetition's own ratio (the two runs of a repetition are adjacent
in time, so it is the less sensitive to load that drifts on a shared machine).

    python -m benchmarks.mcl_step_cost --out results/benchmarks/mcl_step_cost.json
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from core.config import method_config
from core.io import write_json
from methods.mcl import METHOD
from methods.training.engine import RunSettings, train_step
from methods.training.optim import build_optimizer

WITH, WITHOUT = "ta_sa_mal", "ta_sa"


def batches(cfg: dict, count: int, seed: int = 0) -> list[dict]:
    """`count` batches shaped as MCL's dataset yields them (methods/mcl/data.py), from a fixed seed."""
    g = torch.Generator().manual_seed(seed)
    b, clip, size = int(cfg["batch_size"]), cfg["clip"], int(cfg["mal"]["motion_map_size"])
    shape = (b, 3, int(clip["num_frames"]), int(clip["crop_size"]), int(clip["crop_size"]))
    return [{"q": torch.randn(shape, generator=g), "k": torch.randn(shape, generator=g),
             "motion": torch.rand(b, int(clip["num_frames"]), size, size, generator=g),
             "video_index": torch.randint(0, 1000, (b,), generator=g)} for _ in range(count)]


def run(cfg: dict, data: list[dict], warmup: int = 1) -> tuple[float, list[float]]:
    """Train a fresh model (seed 0) on `data`; returns (clips/s over the steps after `warmup`, losses)."""
    torch.manual_seed(0)
    task = METHOD(cfg)
    task.train()
    settings = RunSettings.from_config(cfg, 1)
    params = [p for p in task.parameters() if p.requires_grad]
    optimizers = {"main": build_optimizer(params, settings.optimizer_config("main"))}
    losses, clips, started = [], 0, None
    for i, batch in enumerate(data):
        if i == warmup:
            started = time.perf_counter()
        loss, _ = train_step(task, task, batch, optimizers, params, settings, torch.device("cpu"), f"step {i}")
        losses.append(loss)
        if i >= warmup:
            clips += len(batch["video_index"])
    seconds = time.perf_counter() - started if started is not None else float("nan")
    return clips / seconds, losses


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repetition (after one untimed step)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/mcl_step_cost.json"))
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be at least 1")
    torch.set_num_threads(1)
    cfgs = {name: method_config("mcl", args.scale, name) for name in (WITH, WITHOUT)}
    data = batches(cfgs[WITH], args.steps + 1)
    speeds: dict[str, list[float]] = {WITH: [], WITHOUT: []}
    losses: dict[str, list[float]] = {}
    for repeat in range(args.repeats):  # interleaved, alternating which goes first, so load hits both alike
        for name in ((WITH, WITHOUT) if repeat % 2 == 0 else (WITHOUT, WITH)):
            speed, losses[name] = run(cfgs[name], data)
            speeds[name].append(speed)
    paired = [w / wo for w, wo in zip(speeds[WITH], speeds[WITHOUT])]
    cfg = cfgs[WITH]
    result = {"with_mal_variant": WITH, "without_mal_variant": WITHOUT,
              "with_mal_clips_per_second": speeds[WITH], "without_mal_clips_per_second": speeds[WITHOUT],
              "ratio_with_over_without": float(np.median(speeds[WITH]) / np.median(speeds[WITHOUT])),
              "paired_ratios": paired, "median_paired_ratio": float(np.median(paired)),
              "final_losses": {name: values[-1] for name, values in losses.items()},
              "scale": args.scale, "backbone": cfg["backbone"], "width_multiplier": cfg["width_multiplier"],
              "clip": cfg["clip"], "batch_size": cfg["batch_size"], "steps": args.steps, "repeats": args.repeats,
              "torch_threads": 1, "torch_version": torch.__version__}
    write_json(args.out, result)
    print(f"with L_MAL {np.median(speeds[WITH]):.2f} clips/s, without {np.median(speeds[WITHOUT]):.2f} clips/s, "
          f"ratio {result['ratio_with_over_without']:.3f} (median paired {result['median_paired_ratio']:.3f}) -> {args.out}")
    return result


if __name__ == "__main__":
    main()
