"""The share of HCML's cost volume (Eq. 1, `methods.backbones.hcml.temporal_cost_volume`) in one
training step: a joint-training step (Eq. 5 with every self-supervised term: forward, backward,
SGD update) with the cost volume as built, against the same step with the cost volume replaced by a
zero tensor of its shape (no work); the share is the difference over the full step's time. The
same for the one-einsum-per-displacement version the compute counts read (`einsum_cost_volume_share`). Time,
not FLOPs: it includes the cost volume's backward and its memory traffic.

Not a test: a measurement. Two inputs: the smoke profile's (1/16 widths, 8 x 32^2 clips, batch 8)
and the paper's (R2D-50 at full width, 16 x 224^2, D.2), at batch `--full-batch` on the CPU. One
thread, CPU time of the process (so other load on the machine does not count); the two steps
interleaved, each timed `--repeats` times after one warm-up, the fastest kept.

    python -m benchmarks.hcml_cost_volume [--repeats 3] [--full-batch 1] [--out results/benchmarks/hcml_cost_volume.json]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from unittest import mock

import torch

from core.config import method_config
from core.io import write_json
from methods.backbones import hcml as hcml_blocks
from methods.hcml.joint import JointTraining
from methods.hcml.model import HCML


def no_cost_volume(x: torch.Tensor, max_displacement: int = 6, stride: int = 2, correlate=None) -> torch.Tensor:
    b, _, t, h, w = x.shape
    return x.new_zeros(b, hcml_blocks.cost_volume_channels(max_displacement, stride), t, h, w)


def one_step(model: JointTraining, optimizer: torch.optim.Optimizer, data: dict) -> float:
    started = time.process_time()
    loss = model.total_loss(model(data))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.process_time() - started


def einsum_cost_volume(x: torch.Tensor, max_displacement: int = 6, stride: int = 2, correlate=None) -> torch.Tensor:
    return ORIGINAL(x, max_displacement, stride, correlate=hcml_blocks.cost_volume)


ORIGINAL = hcml_blocks.temporal_cost_volume


def measure(name: str, cfg: dict, batch: int, repeats: int) -> dict:
    """Steps with and without the cost volume, interleaved (so a change of the machine's load hits
    both), one warm-up pair, the fastest of `repeats` kept for each."""
    torch.manual_seed(0)
    model = JointTraining(HCML(cfg), num_classes=10)
    clip = cfg["clip"]
    data = {"clip": torch.randn(batch, 3, clip["num_frames"], clip["crop_size"], clip["crop_size"]),
            "label": torch.randint(0, 10, (batch,))}
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    full, einsum, without = [], [], []
    for _ in range(repeats + 1):
        full.append(one_step(model, optimizer, data))
        with mock.patch.object(hcml_blocks, "temporal_cost_volume", einsum_cost_volume):
            einsum.append(one_step(model, optimizer, data))
        with mock.patch.object(hcml_blocks, "temporal_cost_volume", no_cost_volume):
            without.append(one_step(model, optimizer, data))
    full, einsum, without = min(full[1:]), min(einsum[1:]), min(without[1:])
    row = {"input": name, "backbone": cfg["backbone"], "width_multiplier": cfg["width_multiplier"], "batch": batch,
           "clip": f"{clip['num_frames']}x{clip['crop_size']}^2", "step_s": round(full, 4),
           "step_without_cost_volume_s": round(without, 4), "cost_volume_share": round((full - without) / full, 4),
           "step_einsum_cost_volume_s": round(einsum, 4), "einsum_cost_volume_share": round((einsum - without) / einsum, 4)}
    print(row, flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-batch", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/hcml_cost_volume.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [measure("smoke", method_config("hcml", "smoke", "pmb_selfsup"), 8, args.repeats),
            measure("full", method_config("hcml", "full", "pmb_selfsup"), args.full_batch, args.repeats)]
    write_json(args.out, {"rows": rows, "threads": 1, "device": "cpu"})


if __name__ == "__main__":
    main()
