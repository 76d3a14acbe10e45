"""Eq. (1)'s correspondence matrices S_k as a share of a Controllable Augmentations training step:
the model at the paper's sizes (R3D-18 at full width, 16 x 112 x 112 local clips and global view,
K = 4, T_c = 2, T_v = 8: S_k is 32 x 128 per clip) on a batch of `--batch` videos, timed for
(a) building S_k for the batch (`methods.ctrlaug.losses.correspondence_matrix`, vectorised) and
(b) one whole step (low-level augmentation, both encoder passes, every loss, backward), on the CPU
threads given. Both scale linearly with the batch, so the share at a small batch stands for the
paper's 128 (S_k alone is also timed at 128). Not a test: a measurement.

    python -m benchmarks.ctrlaug_step_share [--batch 2] [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from core.config import method_config
from methods.ctrlaug.losses import correspondence_matrix
from methods.ctrlaug.model import ControllableAugmentations
from methods.ctrlaug.sampling import plan_ctrlaug_sample


def batch_of(cfg: dict, size: int, seed: int = 0) -> dict:
    """A synthetic batch with sampler-planned boxes on 250-frame 128 x 170 videos (a UCF101 video)."""
    rng = np.random.default_rng(seed)
    k, clip, frames = int(cfg["num_clips"]), cfg["clip"], int(cfg["global_view"]["num_frames"])
    plans = [plan_ctrlaug_sample(250, (128, 170), global_frames=frames, global_scale=tuple(cfg["global_view"]["scale"]),
                                 local_frames=int(clip["num_frames"]), local_stride=int(clip["stride"]),
                                 local_scale=tuple(cfg["local_scale"]), num_clips=k, rng=rng) for _ in range(size)]
    s = int(clip["crop_size"])
    return {"global": torch.rand(size, 3, frames, s, s), "locals": torch.rand(size, k, 3, int(clip["num_frames"]), s, s),
            "global_box": torch.tensor([p.global_view.box for p in plans], dtype=torch.float64),
            "local_boxes": torch.tensor([[v.box for v in p.local_views] for p in plans], dtype=torch.float64),
            "video_index": torch.arange(size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = method_config("ctrlaug", "full", "abl_default")
    cfg["batch_size"] = args.batch  # all 32 groups' share of this batch
    model = ControllableAugmentations(cfg)
    batch = batch_of(cfg, args.batch)
    grid_c, grid_v = (2, 4, 4), (8, 4, 4)
    big = batch_of(cfg, 128, seed=1)
    timings = {"s_k_batch": [], "s_k_128": [], "step": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        correspondence_matrix(batch["local_boxes"], batch["global_box"][:, None], grid_c, grid_v)
        timings["s_k_batch"].append(time.perf_counter() - start)
        start = time.perf_counter()
        correspondence_matrix(big["local_boxes"], big["global_box"][:, None], grid_c, grid_v)
        timings["s_k_128"].append(time.perf_counter() - start)
        model.zero_grad()
        start = time.perf_counter()
        sum(model(batch).values()).backward()
        timings["step"].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in timings.items()}
    print(f"batch {args.batch}, {args.threads} thread(s), best of {args.repeats}: step {best['step']:.3f} s, "
          f"S_k {1000 * best['s_k_batch']:.3f} ms ({100 * best['s_k_batch'] / best['step']:.4f} % of the step); "
          f"S_k for a batch of 128: {1000 * best['s_k_128']:.2f} ms")


if __name__ == "__main__":
    main()
