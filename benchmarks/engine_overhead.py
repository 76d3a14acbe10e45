"""What the shared training engine costs per step: MaCLR's smoke pretraining step on the engine
(`methods.training.engine.fit`: schedule, clipping, the non-finite check, per-step log, after-step
hooks) against a bare loop doing the same forward, backward, optimizer step and momentum/queue
update on the same data, in the same process, interleaved. Reports clips/s of both and their
ratio (engine / bare; 1.0 means no overhead).

    python -m benchmarks.engine_overhead --out results/benchmarks/engine_overhead.json
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from core.config import method_config
from core.io import write_json
from datasets.manifests.manifest import build_manifest, entries_for
from datasets.motion.flow import build_cache, make_flow_estimator
from datasets.sources.fixtures import make_kinetics400
from methods.maclr.model import MaCLR
from methods.training.engine import RunSettings, fit
from methods.training.method import DataSources
from methods.training.optim import build_optimizer, learning_rate, set_learning_rate


def tiny_kinetics(folder: Path):
    root = folder / "Kinetics400"
    make_kinetics400(root, {"frames": 24, "height": 48, "width": 64, "fps": 10, "num_classes": 4, "train_per_class": 8,
                            "val_per_class": 1}, seed=0)
    manifest, _ = build_manifest(entries_for("k400", root), root, min_frames=8, verify=False)
    manifest = manifest[manifest["split"] == "train"]
    build_cache(manifest, root, "edge", folder / "edge", 40, make_flow_estimator("farneback"))
    return manifest, DataSources(root, None, {"edge": folder / "edge"})


def bare_loop(task, dataset, settings: RunSettings) -> float:
    """The same training, written as a plain loop; returns clips/s."""
    optimizer = build_optimizer([p for p in task.parameters() if p.requires_grad], settings.optimizer)
    steps = len(dataset) // settings.batch_size
    clips, started = 0, time.perf_counter()
    for epoch in range(settings.epochs):
        dataset.set_epoch(epoch)
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(epoch))
        for i, batch in enumerate(DataLoader(dataset, batch_size=settings.batch_size, sampler=sampler, drop_last=True)):
            set_learning_rate(optimizer, learning_rate(settings.optimizer, epoch * steps + i, steps, settings.epochs * steps))
            loss = task.total_loss(task(batch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in task.parameters() if p.requires_grad], settings.grad_clip_norm)
            optimizer.step()
            task.after_step(batch)
            clips += len(batch["video_index"])
    return clips / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/engine_overhead.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = method_config("maclr", "smoke", "maclr")
    settings = RunSettings.from_config(cfg, args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        manifest, sources = tiny_kinetics(Path(tmp))
        engine, bare = [], []
        torch.manual_seed(0)
        task = MaCLR(cfg)  # a first pass, not timed, fills the decoder's frame cache for both
        bare_loop(task, task.pretrain_dataset(manifest, sources, 0), RunSettings.from_config(cfg, 1))
        for _ in range(args.repeats):  # interleaved, so load on the machine hits both alike
            torch.manual_seed(0)
            task = MaCLR(cfg)
            engine.append(fit(task, task.pretrain_dataset(manifest, sources, 0), settings)["clips_per_second"])
            torch.manual_seed(0)
            task = MaCLR(cfg)
            bare.append(bare_loop(task, task.pretrain_dataset(manifest, sources, 0), settings))
    result = {"engine_clips_per_second": engine, "bare_clips_per_second": bare,
              "ratio_engine_over_bare": float(np.median(engine) / np.median(bare)),
              "videos": len(manifest), "batch_size": settings.batch_size, "epochs": args.epochs, "torch_threads": 1}
    write_json(args.out, result)
    print(f"engine {np.median(engine):.1f} clips/s, bare loop {np.median(bare):.1f} clips/s, "
          f"ratio {result['ratio_engine_over_bare']:.3f} -> {args.out}")


if __name__ == "__main__":
    main()
