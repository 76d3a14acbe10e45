"""MaCLR pretraining (§3.1, §4.1): momentum encoders, two queues of negatives with video
indices, L = L_v + L_m + L_mv over the terms the variant enables.

Resumable: `last.pt` (model, optimizer, queues, epoch) is written atomically after every
`checkpoint_every_epochs`; a restarted run continues from it. The final `checkpoint.pt` holds
the backbones for evaluation. Runs under torchrun with DDP when WORLD_SIZE > 1.

    python -m methods.maclr.pretrain --variant maclr --pretrain k400_mini --scale smoke \
        --manifest results/smoke/manifests/k400_mini.csv --root results/smoke/data/Kinetics400 \
        --motion-cache results/smoke/motion/edge/Kinetics400 --out results/smoke/pretrain/maclr/maclr/k400_mini
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from core.config import load_scale, method_config
from core.errors import SuiteError
from core.io import torch_load, torch_save, write_csv, write_json
from datasets.motion import KINDS
from methods.maclr.data import MaCLRPretrainData
from methods.maclr.losses import NegativeQueue, info_nce, maclr_loss, momentum_update, motion_visual_loss
from methods.maclr.model import MaCLR


def learning_rate(cfg: dict, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Linear warm-up, then cosine decay to zero (config `optimizer`; not in the paper)."""
    opt = cfg["optimizer"]
    warmup = int(opt["warmup_epochs"] * steps_per_epoch)
    if step < warmup:
        return opt["lr"] * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return opt["lr"] * 0.5 * (1.0 + math.cos(math.pi * progress))


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor across DDP ranks (identity on one process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def loss_terms(cfg: dict, q: dict, k: dict, video_index: torch.Tensor, queues: dict) -> dict[str, torch.Tensor]:
    """The enabled terms of Eq. (3), each with same-video negatives masked out."""
    tau, enabled, terms = float(cfg["temperature"]), cfg["losses"], {}
    neg = {p: queues[p].negatives_for(video_index) for p in queues}
    if "v" in enabled:
        terms["v"] = info_nce(q["visual"], k["visual"], *neg["visual"][:1], tau, neg["visual"][1])
    if "m" in enabled:
        terms["m"] = info_nce(q["motion"], k["motion"], *neg["motion"][:1], tau, neg["motion"][1])
    if "mv" in enabled:
        # Eq. (2) as printed contrasts a visual query with visual negatives v^n (and a motion query
        # with m^n); `mv_negatives: key_modality` draws them from the key's modality instead (as
        # cross-modal methods such as CMC do), to test whether the printed form matters.
        swap = cfg.get("mv_negatives", "query_modality") == "key_modality"
        for_visual, for_motion = (neg["motion"], neg["visual"]) if swap else (neg["visual"], neg["motion"])
        terms["mv"] = motion_visual_loss(
            q["visual"], k["visual"], q["motion"], k["motion"], for_visual[0], for_motion[0], tau, for_visual[1], for_motion[1],
        )
    return terms


def save_curve(log: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.io import atomic_path

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for column in [c for c in log.columns if c.startswith("loss")]:
        ax.plot(log["step"], log[column], label=column)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def train(args: argparse.Namespace) -> None:
    cfg = method_config("maclr", args.scale, args.variant)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    seed = int(cfg.get("seed", 0))
    torch.manual_seed(seed)
    if args.threads:
        torch.set_num_threads(args.threads)

    manifest = pd.read_csv(args.manifest)
    manifest = manifest[manifest["split"] == "train"]
    if manifest.empty:
        raise SuiteError(f"{args.manifest}: no train videos")
    data = MaCLRPretrainData(manifest, args.root, args.motion_cache, cfg, seed, args.video_dir)
    batch, world = int(cfg["batch_size"]), dist.get_world_size() if distributed else 1
    if len(data) < batch * world:
        raise SuiteError(f"{args.manifest}: {len(data)} train videos, fewer than one batch of {batch} on each of {world} process(es)")
    epochs = int(cfg["epochs"][args.pretrain])

    model = MaCLR(cfg).to(device)
    online = model.online
    if distributed:
        online = torch.nn.parallel.DistributedDataParallel(online, device_ids=[device.index] if device.type == "cuda" else None)
    opt_cfg = cfg["optimizer"]
    optimizer = torch.optim.SGD(model.online.parameters(), lr=opt_cfg["lr"], momentum=opt_cfg["momentum"], weight_decay=opt_cfg["weight_decay"])
    queues = torch.nn.ModuleDict({p: NegativeQueue(int(cfg["queue_size"]), int(cfg["embedding_dim"])) for p in model.pathways}).to(device)

    out = Path(args.out)
    last_path, start_epoch, history = out / "last.pt", 0, []
    if last_path.exists():  # resume
        state = torch_load(last_path, map_location=str(device))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        queues.load_state_dict(state["queues"])
        start_epoch = int(state["epoch"])
        history = pd.read_csv(out / "log.csv").to_dict("records") if (out / "log.csv").exists() else []
        if rank == 0:
            print(f"resuming {out} from epoch {start_epoch}", file=sys.stderr)

    steps_per_epoch = len(data) // world // batch
    total_steps = epochs * steps_per_epoch
    started = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        data.set_epoch(epoch)
        if distributed:
            sampler = DistributedSampler(data, seed=seed, drop_last=True)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(data, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        workers = int(cfg["num_workers"])
        # DALI's GPU pipelines cannot live in forked workers (CUDA): spawn them instead.
        context = "spawn" if workers and cfg["decoder"] == "dali" else None
        loader = DataLoader(data, batch_size=batch, sampler=sampler, drop_last=True, num_workers=workers,
                            multiprocessing_context=context, pin_memory=device.type == "cuda")
        bar = tqdm(loader, desc=f"{args.variant}/{args.pretrain} epoch {epoch + 1}/{epochs}", unit="step", disable=rank != 0)
        for i, sample in enumerate(bar):
            step = epoch * steps_per_epoch + i
            lr = learning_rate(cfg, step, total_steps, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            clips = {p: sample["v_q" if p == "visual" else "m_q"].to(device, non_blocking=True) for p in model.pathways}
            key_clips = {p: sample["v_k" if p == "visual" else "m_k"].to(device, non_blocking=True) for p in model.pathways}
            video_index = sample["video_index"].to(device)
            q = online(clips)  # through DDP when distributed, so gradients are synchronised
            k = model.keys(key_clips)
            terms = loss_terms(cfg, q, k, video_index, queues)
            loss = maclr_loss(terms, cfg["losses"])
            if not torch.isfinite(loss):
                raise SuiteError(f"non-finite loss at epoch {epoch} step {i} ({ {n: t.item() for n, t in terms.items()} })")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.get("grad_clip_norm"):
                torch.nn.utils.clip_grad_norm_(model.online.parameters(), float(cfg["grad_clip_norm"]))
            optimizer.step()
            momentum_update(model.online, model.momentum, float(cfg["momentum"]))
            all_index = gather(video_index)
            for p in model.pathways:
                queues[p].push(gather(k[p]), all_index)
            history.append({"epoch": epoch, "step": step, "lr": lr, "loss": loss.item(),
                            **{f"loss_{n}": t.item() for n, t in terms.items()},
                            "threshold_fallbacks": int(sample["threshold_fallback"].sum())})
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if rank == 0 and ((epoch + 1) % int(cfg["checkpoint_every_epochs"]) == 0 or epoch + 1 == epochs):
            torch_save(last_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "queues": queues.state_dict(), "epoch": epoch + 1})
            write_csv(out / "log.csv", pd.DataFrame(history))

    if rank == 0:
        log = pd.DataFrame(history)
        save_curve(log, out / "curve.png", f"MaCLR {args.variant} on {args.pretrain} ({args.scale})")
        torch_save(out / "checkpoint.pt", transfer_checkpoint(model, cfg, args))
        write_json(out / "summary.json", {
            "epochs": epochs, "steps": len(log), "seconds": time.perf_counter() - started,
            "final_loss": float(log["loss"].tail(max(1, steps_per_epoch)).mean()) if len(log) else None,
            "threshold_fallbacks": int(log["threshold_fallbacks"].sum()) if len(log) else 0,
            "videos": len(data), "variant": args.variant, "scale": args.scale,
        })
    if distributed:
        dist.destroy_process_group()


def transfer_checkpoint(model: MaCLR, cfg: dict, args: argparse.Namespace) -> dict:
    """What evaluation protocols read (CONTRIBUTING.md, "Checkpoints"): the encoder to transfer
    (the Visual pathway, §3; the Motion pathway for M-only) and how to feed it."""
    pathway = cfg["eval_pathway"]
    section = cfg[pathway]
    backbone = model.online[pathway].backbone
    uses_flow = "motion" in cfg["pathways"] and cfg["motion"]["input"] != "diff"
    return {
        "encoder": {"backbone": section["backbone"], "width_multiplier": float(section["width_multiplier"]),
                    "in_channels": 3 if pathway == "visual" else KINDS[cfg["motion"]["input"]], "state_dict": backbone.state_dict()},
        "input": {"modality": "rgb" if pathway == "visual" else "motion", "motion_kind": cfg["motion"]["input"],
                  "clip": _plain(section["clip"]), "mean": cfg["visual"]["normalize_mean"], "std": cfg["visual"]["normalize_std"],
                  "motion_scale": float(cfg["motion"]["input_scale"][cfg["motion"]["input"]])},
        "provenance": {"method": "maclr", "variant": args.variant, "pretrain": args.pretrain, "scale": args.scale,
                       "flow_estimator": load_scale(args.scale)["motion"]["flow_estimator"] if uses_flow else None},
        "config": _plain(cfg),
    }


def _plain(obj):
    """Config as plain Python values, so the checkpoint loads with weights_only=True."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--pretrain", required=True, help="pretraining dataset id (k400, k400_mini)")
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--motion-cache", type=Path, default=None)
    parser.add_argument("--video-dir", type=Path, default=None, help="read <video_id>.mp4 transcodes from here (DALI/NVDEC path)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    try:
        train(args)
    except SuiteError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
