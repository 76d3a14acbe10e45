"""The training loop every method's pretraining and every supervised training runs on.

    summary = fit(task, dataset, RunSettings.from_config(cfg, epochs), out_dir, fingerprint)

It owns what makes a run trustworthy, so no method repeats it:
- seeding (the caller seeds before building the task; samples are a function of (seed, epoch,
  index), the data order of (seed, epoch)); deterministic on the CPU;
- DDP under `torchrun` (WORLD_SIZE > 1), with SyncBN or MoCo's shuffled BN (`batch_norm`);
- optimizers and learning-rate schedules from the config (`methods.training.optim`), stages
  that train some submodules with the rest frozen, several optimizers;
- bf16 autocast on CUDA (`bf16: true`; the CPU runs in fp32), gradient clipping, and a stop on a
  non-finite loss that names the step and every loss term;
- resume from `last.pt`, bit-identical to an uninterrupted run and tied to its inputs
  (`methods.training.resume`);
- a tqdm bar per epoch, `log.csv` with one row per step, `curve.png`, and `summary.json` with
  clips/s, peak memory and seconds per epoch.
"""
from __future__ import annotations

import math
import os
import resource
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm import tqdm

from core.errors import ConfigError, SuiteError
from core.io import atomic_path, torch_load, torch_save, write_csv, write_json
from methods.training.method import Stage, TrainingTask
from methods.training.optim import build_optimizer, learning_rate, set_learning_rate
from methods.training.resume import rng_state, set_aside, set_rng_state, stale_reason

BATCH_NORM_MODES = ("local", "sync", "shuffle")


@dataclass
class RunSettings:
    """How to train, read from a config (method config merged with its scale profile section)."""

    epochs: int
    batch_size: int  # clips per optimisation step over all processes (the papers' batch size)
    optimizer: dict
    seed: int = 0
    optimizers: dict = field(default_factory=dict)  # per-optimizer overrides of `optimizer`
    grad_clip_norm: float | None = None
    num_workers: int = 0
    spawn_workers: bool = False  # DALI's GPU pipelines cannot live in forked workers
    # `decoder: dali`: batches come from DALI's own batched pipeline (datasets.clips.dali_feed), whose
    # `num_workers` Python workers build the samples while it decodes `dali_prefetch` batches ahead.
    dali_batches: bool = False
    dali_prefetch: int = 2
    bf16: bool = False
    batch_norm: str = "local"  # local | sync (SyncBatchNorm) | shuffle (the task shuffles its key batch)
    checkpoint_every_epochs: int = 1
    drop_last: bool = True  # pretraining drops the last partial batch; fine-tuning keeps it
    max_steps_per_epoch: int | None = None  # a scale profile may cap steps per epoch
    title: str = ""

    @classmethod
    def from_config(cls, cfg: dict, epochs: int, **overrides) -> "RunSettings":
        settings = cls(
            epochs=int(epochs), batch_size=int(cfg["batch_size"]), optimizer=dict(cfg["optimizer"]),
            seed=int(cfg.get("seed", 0)), optimizers=dict(cfg.get("optimizers") or {}),
            grad_clip_norm=float(cfg["grad_clip_norm"]) if cfg.get("grad_clip_norm") else None,
            num_workers=int(cfg.get("num_workers", 0)), spawn_workers=cfg.get("decoder") == "dali",
            dali_batches=cfg.get("decoder") == "dali", dali_prefetch=int(cfg.get("dali_prefetch", 2)),
            bf16=bool(cfg.get("bf16", False)), batch_norm=str(cfg.get("batch_norm", "local")),
            checkpoint_every_epochs=int(cfg.get("checkpoint_every_epochs", 1)),
            max_steps_per_epoch=int(cfg["max_steps_per_epoch"]) if cfg.get("max_steps_per_epoch") else None,
        )
        for key, value in overrides.items():
            setattr(settings, key, value)
        if settings.batch_norm not in BATCH_NORM_MODES:
            raise ConfigError(f"batch_norm must be one of {', '.join(BATCH_NORM_MODES)}, got {settings.batch_norm!r}")
        return settings

    def optimizer_config(self, name: str) -> dict:
        """The `optimizer:` section with optimizer `name`'s overrides from `optimizers:`."""
        return {**self.optimizer, **self.optimizers.get(name, {})}


@dataclass
class Distributed:
    """This process's place in a torchrun job (one process when WORLD_SIZE is unset)."""

    world: int = 1
    rank: int = 0
    device: torch.device = torch.device("cpu")

    @classmethod
    def setup(cls) -> "Distributed":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        if world > 1 and not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(world, dist.get_rank() if world > 1 else 0, device)

    @property
    def main(self) -> bool:
        return self.rank == 0


def stage_at(stages: list[Stage], epoch: int) -> tuple[int, Stage]:
    """(index, stage) that `epoch` belongs to."""
    end = 0
    for index, stage in enumerate(stages):
        end += int(stage.epochs)
        if epoch < end:
            return index, stage
    raise ConfigError(f"epoch {epoch} lies beyond the stages {[(s.name, s.epochs) for s in stages]}")


def enter_stage(task: TrainingTask, stage: Stage, trainable_by_default: dict[str, bool]) -> None:
    """Let only the stage's submodules learn; frozen ones keep their batch-norm statistics."""
    for name, param in task.named_parameters():
        learns = trainable_by_default[name]
        if stage.trainable is not None:
            learns = learns and any(name == m or name.startswith(m + ".") for m in stage.trainable)
        param.requires_grad_(learns)


def set_train_mode(task: TrainingTask, stage: Stage) -> None:
    task.train()
    if stage.trainable is not None:
        for name, module in task.named_children():
            if not any(name == m or m.startswith(name + ".") for m in stage.trainable):
                module.eval()


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class StepLog:
    """log.csv, one row per step, appended as the run goes (rank 0). On resume the rows of the
    epochs being re-run are dropped first, so the log matches the restored state."""

    def __init__(self, path: Path | None, start_epoch: int):
        self.path, self.rows = path, []
        if path is not None and path.exists():
            if start_epoch > 0:
                old = pd.read_csv(path, on_bad_lines="skip")  # a kill may cut the last row short
                old = old[old["epoch"] < start_epoch]
                self.rows = old.to_dict("records")
                write_csv(path, old)
            else:
                path.unlink()
        self.columns: list[str] | None = list(self.rows[0]) if self.rows else None

    def append(self, row: dict) -> None:
        self.rows.append(row)
        if self.path is None:
            return
        if self.columns is None:
            self.columns = list(row)
            with atomic_path(self.path) as tmp:
                tmp.write_text(",".join(self.columns) + "\n")
        with open(self.path, "a") as f:
            f.write(",".join(_csv_value(row.get(c)) for c in self.columns) + "\n")

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def fit(task: TrainingTask, dataset: Dataset, settings: RunSettings, out: Path | None = None,
        fingerprint: dict | None = None, on_epoch_end: Callable[[int], None] | None = None) -> dict:
    """Train `task` on `dataset`; returns the summary (also written to `out/summary.json`).

    With `out`, the run resumes from `out/last.pt` when its fingerprint matches and it is not
    finished, and writes log.csv, curve.png and summary.json there. Without `out` (a protocol's
    fine-tuning) nothing is written and nothing resumes. `on_epoch_end(n)` runs on the main process
    after the n-th epoch (1-based), before its resume state (evaluation points, snapshots); the random
    streams are restored after it, so the training goes on as without it."""
    procs = Distributed.setup()
    device = procs.device
    if settings.batch_size % procs.world:
        raise ConfigError(f"batch size {settings.batch_size} does not split evenly over {procs.world} processes")
    batch = settings.batch_size // procs.world  # per process
    task.to(device)
    if settings.batch_norm == "sync" and procs.world > 1:
        task = torch.nn.SyncBatchNorm.convert_sync_batchnorm(task)
    if settings.drop_last and len(dataset) < settings.batch_size:
        raise SuiteError(f"{len(dataset)} training samples, fewer than one batch of {settings.batch_size}")
    steps_per_epoch = epoch_steps(len(dataset), batch, procs.world, settings)
    total_steps = settings.epochs * steps_per_epoch
    stages = task.stages(settings.epochs)
    if sum(int(s.epochs) for s in stages) != settings.epochs:
        raise ConfigError(f"the stages {[(s.name, s.epochs) for s in stages]} do not add up to {settings.epochs} epochs")
    trainable_by_default = {name: p.requires_grad for name, p in task.named_parameters()}

    out = Path(out) if out is not None else None
    last_path = out / "last.pt" if out is not None else None
    resumed = read_resume_state(last_path, fingerprint, settings.epochs, procs) if last_path is not None else None
    if resumed is not None:
        task.load_state_dict(resumed["model"])
    start_epoch = int(resumed["epoch"]) if resumed is not None else 0
    log = StepLog(out / "log.csv" if out is not None and procs.main else None, start_epoch)

    stage_index, optimizers, runner, epoch_seconds, clips = None, {}, task, [], 0
    for epoch in range(start_epoch, settings.epochs):
        index, stage = stage_at(stages, epoch)
        if index != stage_index:  # a new stage: its trainable parameters, fresh optimizers
            stage_index = index
            optimizers, clipped, runner = start_stage(task, stage, trainable_by_default, settings, procs)
        if resumed is not None:  # the optimizers and RNG exactly as the interrupted run left them
            for name, optimizer in optimizers.items():
                optimizer.load_state_dict(resumed["optimizers"][name])
            set_rng_state(resumed["rng"])
            resumed = None
        sampler, loader = epoch_loader(dataset, settings, epoch, batch, procs, device)
        set_train_mode(task, stage)
        started = time.perf_counter()
        bar = tqdm(loader, total=steps_per_epoch, unit="step", disable=not procs.main,
                   desc=f"{settings.title} epoch {epoch + 1}/{settings.epochs}".strip())
        for i, sample in enumerate(bar):
            if i >= steps_per_epoch:
                break
            step = epoch * steps_per_epoch + i
            lrs = {name: learning_rate(settings.optimizer_config(name), step, steps_per_epoch, total_steps) for name in optimizers}
            for name, optimizer in optimizers.items():
                set_learning_rate(optimizer, lrs[name])
            sample = to_device(sample, device)
            loss, terms = train_step(runner, task, sample, optimizers, clipped, settings, device, f"epoch {epoch} step {i} (global step {step})")
            clips += len(next(v for v in sample.values() if torch.is_tensor(v))) * procs.world
            log.append(step_record(epoch, step, lrs, loss, terms, task.step_log(sample)))
            bar.set_postfix(loss=f"{loss:.3f}")
        epoch_seconds.append(time.perf_counter() - started)
        finished = epoch + 1 == settings.epochs
        # The evaluation point first: a run killed before its resume state is written redoes this
        # epoch and its point (a snapshot written atomically) instead of resuming past a missing one.
        if on_epoch_end is not None and procs.main:
            evaluation_point(on_epoch_end, epoch + 1)
        if last_path is not None and procs.main and ((epoch + 1) % settings.checkpoint_every_epochs == 0 or finished):
            save_resume_state(last_path, task, optimizers, epoch + 1, stage, fingerprint, settings.seed, sampler)

    frame = log.frame()
    summary = run_summary(frame, settings, steps_per_epoch, epoch_seconds, clips, start_epoch, len(dataset), procs, fingerprint)
    if out is not None and procs.main:
        save_curve(frame, out / "curve.png", settings.title)
        write_json(out / "summary.json", summary)
    return summary


def start_stage(task: TrainingTask, stage: Stage, trainable_by_default: dict, settings: RunSettings,
                procs: Distributed) -> tuple[dict, list, torch.nn.Module]:
    """(optimizers, parameters to clip, module to run) of a stage that starts: its trainable
    parameters set, fresh optimizers for the task's groups, and DDP's wrapper over several processes."""
    enter_stage(task, stage, trainable_by_default)
    optimizers = {name: build_optimizer(params, settings.optimizer_config(name))
                  for name, params in task.optimizer_groups().items()}
    clipped = [p for o in optimizers.values() for g in o.param_groups for p in g["params"]]
    runner = task
    if procs.world > 1:
        device = procs.device
        runner = torch.nn.parallel.DistributedDataParallel(task, device_ids=[device.index] if device.type == "cuda" else None)
    return optimizers, clipped, runner


def step_record(epoch: int, step: int, lrs: dict, loss: float, terms: dict, extra: dict) -> dict:
    """One log.csv row: the learning rate (`lr`, or `lr_<group>` per optimizer), the loss, its named
    terms and the task's own columns."""
    lr_columns = {"lr": lrs["main"]} if list(lrs) == ["main"] else {f"lr_{n}": v for n, v in lrs.items()}
    return {"epoch": epoch, "step": step, **lr_columns, "loss": loss, **{f"loss_{n}": t.item() for n, t in terms.items()}, **extra}


def evaluation_point(on_epoch_end: Callable[[int], None], epochs_done: int) -> None:
    """`on_epoch_end(epochs_done)` with the random streams restored after it, so an evaluation
    point does not change the rest of the training."""
    state = rng_state()
    on_epoch_end(epochs_done)
    set_rng_state(state)


def save_resume_state(path: Path, task: TrainingTask, optimizers: dict, epochs_done: int, stage: Stage,
                      fingerprint: dict | None, seed: int, sampler) -> None:
    """`last.pt`: weights, optimizers, random streams and data order after `epochs_done` epochs."""
    torch_save(path, {
        "model": task.state_dict(), "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
        "epoch": epochs_done, "stage": stage.name, "rng": rng_state(), "fingerprint": dict(fingerprint or {}),
        "data_order": {"seed": seed, "next_epoch": epochs_done, "sampler": type(sampler).__name__},
    })


def run_summary(frame: pd.DataFrame, settings: RunSettings, steps_per_epoch: int, epoch_seconds: list[float], clips: int,
                start_epoch: int, samples: int, procs: Distributed, fingerprint: dict | None) -> dict:
    """summary.json: sizes, speed (clips/s, seconds per epoch), peak memory, the final loss, and the
    sum of each extra per-step column (e.g. MaCLR's threshold fallbacks)."""
    seconds = sum(epoch_seconds)
    summary = {
        "epochs": settings.epochs, "steps": len(frame), "steps_per_epoch": steps_per_epoch,
        "batch_size": settings.batch_size, "world_size": procs.world, "resumed_from_epoch": start_epoch,
        "seconds": seconds, "seconds_per_epoch": epoch_seconds,
        "clips_per_second": clips / seconds if seconds else None,
        "peak_memory_mb": peak_memory_mb(procs.device), "device": str(procs.device),
        "bf16": settings.bf16 and procs.device.type == "cuda",
        "final_loss": float(frame["loss"].tail(max(1, steps_per_epoch)).mean()) if len(frame) else None,
        "samples": samples, "seed": settings.seed, "fingerprint": dict(fingerprint or {}),
    }
    extra = [c for c in frame.columns if c not in ("epoch", "step", "loss") and not c.startswith(("loss_", "lr"))]
    summary.update({c: float(frame[c].sum()) for c in extra})
    return summary


def epoch_steps(samples: int, batch: int, world: int, settings: RunSettings) -> int:
    """Optimisation steps per epoch for a per-process batch, capped by `max_steps_per_epoch`."""
    per_process = samples // world if settings.drop_last else math.ceil(samples / world)
    steps = per_process // batch if settings.drop_last else math.ceil(per_process / batch)
    return min(steps, settings.max_steps_per_epoch) if settings.max_steps_per_epoch else steps


def read_resume_state(last_path: Path, fingerprint: dict | None, epochs: int, procs: Distributed) -> dict | None:
    """`last.pt` when it may be resumed; otherwise it is set aside (methods.training.resume) and None."""
    if not last_path.exists():
        return None
    try:
        state = torch_load(last_path)  # on the CPU: RNG states must stay there; weights are copied over
        reason = stale_reason(state, fingerprint or {}, epochs)
    except SuiteError as exc:  # truncated or corrupt: keep it for inspection, never resume it
        reason = f"it cannot be read ({exc})"
    if reason:
        if procs.world > 1:
            dist.barrier()  # every process has read it before rank 0 renames it
        if procs.main:
            set_aside(last_path, reason)
        return None
    if procs.main:
        print(f"resuming {last_path.parent} from epoch {int(state['epoch'])} of {epochs}", file=sys.stderr)
    return state


def epoch_loader(dataset: Dataset, settings: RunSettings, epoch: int, batch: int, procs: Distributed,
                 device: torch.device) -> tuple:
    """(sampler, loader) of one epoch: the data order is a function of (seed, epoch), so a resumed
    epoch draws the same one."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    if procs.world > 1:
        sampler = DistributedSampler(dataset, seed=settings.seed, drop_last=settings.drop_last)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(settings.seed * 1000 + epoch))
    if settings.dali_batches:
        from datasets.clips.dali_feed import DaliBatches

        loader = DaliBatches(dataset, list(sampler), epoch, batch, settings.drop_last,
                             device="gpu" if device.type == "cuda" else "cpu", device_id=device.index or 0,
                             py_workers=max(1, settings.num_workers), prefetch=settings.dali_prefetch)
        return sampler, loader
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=settings.drop_last,
                        num_workers=settings.num_workers,
                        multiprocessing_context="spawn" if settings.num_workers and settings.spawn_workers else None,
                        pin_memory=device.type == "cuda")
    return sampler, loader


def train_step(runner, task: TrainingTask, sample: dict, optimizers: dict, clipped: list, settings: RunSettings,
               device: torch.device, where: str) -> tuple[float, dict]:
    """One optimisation step: forward (bf16 autocast on CUDA when asked), the non-finite check,
    backward, clipping, every optimizer's step and the task's after-step work."""
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if settings.bf16 and device.type == "cuda" else nullcontext()
    with autocast:
        terms = runner(sample)
        loss = task.total_loss(terms)
    if not torch.isfinite(loss):
        values = ", ".join(f"{n} = {t.item():.6g}" for n, t in terms.items())
        videos = f"; videos {', '.join(map(str, sample['video_id']))}" if "video_id" in sample else ""
        raise SuiteError(f"non-finite loss at {where}: {values}{videos}")
    for optimizer in optimizers.values():
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if settings.grad_clip_norm:
        torch.nn.utils.clip_grad_norm_(clipped, settings.grad_clip_norm)
    for optimizer in optimizers.values():
        optimizer.step()
    task.after_step(sample)
    return loss.item(), terms


def save_curve(log: pd.DataFrame, path: Path, title: str) -> None:
    """The training curve: every loss term per step, and the learning rate on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    if len(log):
        for column in [c for c in log.columns if c.startswith("loss")]:
            ax.plot(log["step"], log[column], label=column, linewidth=1.5 if column == "loss" else 0.8)
        lr = [c for c in log.columns if c.startswith("lr")]
        if lr:
            twin = ax.twinx()
            for column in lr:
                twin.plot(log["step"], log[column], color="grey", linestyle=":", linewidth=0.8)
            twin.set_ylabel("learning rate (dotted)")
        ax.legend(fontsize=7)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
