"""Clip decoding throughput (clips/s) of the CPU pipeline (PyAV) and of the DALI pipeline.

DALI runs on the GPU (NVDEC, H.264 transcodes) when one is visible, else on the CPU (VP9
transcodes: DALI's CPU decoder reads VP8, VP9 and MJPEG only). The CPU pipeline is timed on the
original files and on the same transcodes DALI reads. Inputs: generated videos, and the real
videos of ../shared/data/real-videos when that folder exists. Every clip is a random training
clip (datasets.clips.sampling.plan_train_clip) with the same seed for every pipeline.

Rows per set of videos:
- `CPU PyAV` one process (one core), on the originals and on DALI's transcodes;
- `CPU PyAV xN` the same clips over N processes, N = all usable cores (`--cpu-workers`): what
  DataLoader workers decoding on the CPU deliver on this machine;
- `DALI <device>` the per-batch loader (`DaliClipLoader`, one batch fed and waited for);
- `DALI <device> stream` DALI's own batched pipeline (`DaliClipStream`: parallel external source
  in `--py-workers` processes, `--prefetch` batches ahead), timed after its first batch (worker
  start-up is reported apart), i.e. what a training loop fed by it sees.

Then the sizing: the clips/s a GPU must be fed is `--step-rate` (optimiser steps/s one GPU runs)
x `--per-gpu-batch` (clips per step per GPU); the CPU decoder's clips/s per core gives the CPU
cores per GPU the CPU path needs for it, and the DALI stream's clips/s says whether NVDEC keeps up.
On a GPU machine one command measures all of it (NVDEC on H.264 transcodes against the CPU loader
on all cores):

    python -m benchmarks.decode_throughput --num-frames 16 --stride 2 --short-side 256 --crop 224 \
        --batch-size 16 --step-rate 2 --per-gpu-batch 16 --out results/benchmarks/decode_throughput_gpu.json

    python -m benchmarks.decode_throughput --out results/benchmarks/decode_throughput.json
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-videos"


def machine() -> dict:
    import av
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    desc = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "pyav": av.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import nvidia.dali

        desc["dali"] = nvidia.dali.__version__
    except ImportError:
        desc["dali"] = None
    return desc


def make_inputs(workdir: Path, use_real: bool) -> list[dict]:
    """Sets of videos: {"name", "sources": [paths], "size": (h, w)}."""
    from datasets.transcodes.transcode import write_synthetic_video

    sets = []
    gen = []
    for k in range(4):
        path = workdir / f"generated_{k}.avi"
        write_synthetic_video(path, num_frames=150, width=320, height=240, fps=25)
        gen.append(path)
    sets.append({"name": "generated 320x240 mpeg4 (4 x 150 frames)", "sources": gen})
    if use_real and REAL.is_dir():
        real = sorted(REAL.glob("*.*"))
        sets.append({"name": f"real-videos ({len(real)} files, 57-300 frames)", "sources": real})
    return sets


def plans_for(paths, spec, n_clips, seed):
    from datasets.clips.decode import video_info
    from datasets.clips.sampling import plan_train_clip, resized_hw

    rng = np.random.default_rng(seed)
    infos = {p: video_info(p) for p in paths}
    chosen = [paths[i] for i in rng.integers(0, len(paths), n_clips)]
    plans = []
    for p in chosen:
        info = infos[p]
        hw = resized_hw(info["height"], info["width"], spec.short_side)
        plans.append(plan_train_clip(info["num_frames"], hw, spec, rng))
    return chosen, plans


def time_cpu(paths, plans, spec) -> dict:
    from datasets.clips.decode import load_clip

    load_clip(paths[0], plans[0], spec)  # warm-up
    t0 = time.perf_counter()
    for p, plan in zip(paths, plans):
        load_clip(p, plan, spec)
    dt = time.perf_counter() - t0
    return {"clips": len(plans), "seconds": dt, "clips_per_s": len(plans) / dt}


def _decode_share(args) -> int:
    """One worker's share of the clips (a process of `time_cpu_pool`), decoded with PyAV."""
    import torch

    from datasets.clips.decode import load_clip

    torch.set_num_threads(1)
    paths, plans, spec = args
    for p, plan in zip(paths, plans):
        load_clip(p, plan, spec)
    return len(plans)


def time_cpu_pool(paths, plans, spec, workers: int) -> dict:
    """The same clips decoded by `workers` processes at once (each one thread), wall clips/s."""
    import multiprocessing as mp

    shares = [(paths[k::workers], plans[k::workers], spec) for k in range(workers)]
    with mp.get_context("spawn").Pool(workers) as pool:
        pool.map(_decode_share, [(paths[:1], plans[:1], spec)] * workers)  # start-up and imports, not timed
        t0 = time.perf_counter()
        done = sum(pool.map(_decode_share, shares))
        dt = time.perf_counter() - t0
    return {"clips": done, "seconds": dt, "clips_per_s": done / dt, "workers": workers,
            "clips_per_s_per_core": done / dt / workers}


def time_dali_stream(paths, plans, spec, device, batch_size, num_threads, py_workers, prefetch) -> dict:
    """DaliClipStream over all the clips; the rate counts the batches after the first."""
    from datasets.clips.dali_decode import DaliClipStream

    stream = DaliClipStream(spec, device=device, batch_size=batch_size, num_threads=num_threads,
                            py_workers=py_workers, prefetch=prefetch)
    t0 = time.perf_counter()
    batches = stream.batches(paths, plans)
    first = next(batches)
    start_up = time.perf_counter() - t0
    t0 = time.perf_counter()
    done = sum(len(b) for b in batches)
    dt = time.perf_counter() - t0
    return {"clips": done, "seconds": dt, "clips_per_s": done / dt if dt else None,
            "start_up_and_first_batch_s": start_up, "first_batch": len(first), "py_workers": py_workers,
            "prefetch": prefetch, "dali_threads": num_threads}


def sizing(rows: list[dict], step_rate: float, per_gpu_batch: int) -> list[dict]:
    """Per set of videos: CPU cores per GPU that the CPU loader needs to feed `step_rate` steps/s of
    `per_gpu_batch` clips, from its clips/s per core, and the DALI stream's margin over that rate."""
    need = step_rate * per_gpu_batch
    out = []
    for videos in dict.fromkeys(r["videos"] for r in rows):
        mine = [r for r in rows if r["videos"] == videos]
        pool = next((r for r in mine if "clips_per_s_per_core" in r), None)
        stream = next((r for r in mine if r["pipeline"].endswith("stream")), None)
        per_core = pool["clips_per_s_per_core"] if pool else None
        out.append({
            "videos": videos, "clips_per_s_needed_per_gpu": need,
            "cpu_clips_per_s_per_core": per_core,
            "cpu_cores_per_gpu": math.ceil(need / per_core) if per_core else None,
            "dali_stream": stream["pipeline"] if stream else None,
            "dali_stream_clips_per_s": stream["clips_per_s"] if stream else None,
            "dali_stream_keeps_up": (stream["clips_per_s"] >= need) if stream and stream["clips_per_s"] else None,
        })
    return out


def time_dali(paths, plans, spec, device, batch_size, num_threads) -> dict:
    from datasets.clips.dali_decode import DaliClipLoader

    t0 = time.perf_counter()
    loader = DaliClipLoader(spec, device=device, batch_size=batch_size, num_threads=num_threads)
    loader.load(paths[:batch_size], plans[:batch_size])  # warm-up batch
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    loader.load(paths, plans)
    dt = time.perf_counter() - t0
    return {"clips": len(plans), "seconds": dt, "clips_per_s": len(plans) / dt, "build_and_warmup_s": build}


def measure(spec, device: str, dali_profile: str, cores: int, py_workers: int, args) -> list[dict]:
    """clips/s of every pipeline on each video set: PyAV on the originals and on the DALI transcodes,
    PyAV over `cores` processes, DALI per clip and DALI's batched stream, on the same clips."""
    from datasets.transcodes.transcode import PROFILES, transcode

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for vset in make_inputs(workdir, not args.no_real):
            sources = list(vset["sources"])
            transcodes = []
            for src in sources:
                dst = workdir / f"{Path(src).stem}.{dali_profile}.{PROFILES[dali_profile].ext}"
                transcode(src, dst, dali_profile)
                transcodes.append(dst)
            # same seed: the same videos (by position) and plans for every pipeline
            src_paths, plans = plans_for(sources, spec, args.clips, seed=0)
            index = {p: i for i, p in enumerate(sources)}
            tc_paths = [transcodes[index[p]] for p in src_paths]
            configs = [
                ("CPU PyAV", "original", lambda: time_cpu(src_paths, plans, spec)),
                ("CPU PyAV", dali_profile, lambda: time_cpu(tc_paths, plans, spec)),
                (f"CPU PyAV x{cores}", "original", lambda: time_cpu_pool(src_paths, plans, spec, cores)),
                (
                    f"DALI {device}",
                    dali_profile,
                    lambda: time_dali(tc_paths, plans, spec, device, args.batch_size, args.threads),
                ),
                (
                    f"DALI {device} stream",
                    dali_profile,
                    lambda: time_dali_stream(tc_paths, plans, spec, device, args.batch_size, args.threads,
                                             py_workers, args.prefetch),
                ),
            ]
            for pipeline, codec, run in configs:
                result = run()
                rows.append({"videos": vset["name"], "pipeline": pipeline, "codec": codec, **result})
                print(f"  {vset['name']:<45} {pipeline:<10} {codec:<9} {result['clips_per_s']:8.2f} clips/s")

    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Clip decoding throughput: CPU (PyAV) and DALI.")
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/decode_throughput.json"))
    ap.add_argument("--clips", type=int, default=32, help="clips timed per configuration")
    ap.add_argument("--num-frames", type=int, default=16)
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--crop", type=int, default=112)
    ap.add_argument("--short-side", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8, help="DALI batch size")
    ap.add_argument("--threads", type=int, default=2, help="DALI CPU threads")
    ap.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto", help="DALI device")
    ap.add_argument("--no-real", action="store_true", help="skip ../shared/data/real-videos")
    ap.add_argument("--cpu-workers", type=int, default=0, help="processes of the all-cores CPU row (0: all usable cores)")
    ap.add_argument("--py-workers", type=int, default=0, help="DALI stream's Python workers (0: usable cores, at most 4)")
    ap.add_argument("--prefetch", type=int, default=2, help="DALI stream's prefetch queue depth (batches, >= 2)")
    ap.add_argument("--step-rate", type=float, default=2.0, help="optimiser steps/s one GPU runs, for the sizing")
    ap.add_argument("--per-gpu-batch", type=int, default=16, help="clips per step per GPU, for the sizing")
    args = ap.parse_args(argv)
    if args.clips < 2 * args.batch_size:  # else the stream row would read 0 clips/s
        ap.error(f"--clips {args.clips}: at least twice --batch-size ({args.batch_size}), since the DALI stream's "
                 "rate counts the batches after its first")

    import torch

    from core.io import write_json
    from datasets.clips.sampling import ClipSpec

    spec = ClipSpec(args.num_frames, args.stride, args.crop, args.short_side)
    device = args.device
    if device == "auto":
        device = "gpu" if torch.cuda.is_available() else "cpu"
    dali_profile = "h264_cfr" if device == "gpu" else "vp9"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = args.cpu_workers or usable
    py_workers = args.py_workers or min(usable, 4)
    rows = measure(spec, device, dali_profile, cores, py_workers, args)

    header = "| videos | pipeline | codec | clips/s |\n| --- | --- | --- | ---: |"
    table = "\n".join(
        [header] + [f"| {r['videos']} | {r['pipeline']} | {r['codec']} | {r['clips_per_s']:.2f} |" for r in rows]
    )
    print()
    print(f"clip: {spec.num_frames} frames, stride {spec.stride}, short side {spec.short_side}, crop {spec.crop_size}")
    print(table)
    sized = sizing(rows, args.step_rate, args.per_gpu_batch)
    print(f"\nsizing: {args.step_rate:g} steps/s x {args.per_gpu_batch} clips per GPU = "
          f"{args.step_rate * args.per_gpu_batch:g} clips/s per GPU")
    for z in sized:
        print(f"  {z['videos']}: CPU loader {z['cpu_clips_per_s_per_core']:.2f} clips/s per core -> "
              f"{z['cpu_cores_per_gpu']} cores per GPU; {z['dali_stream']} {z['dali_stream_clips_per_s']:.2f} clips/s"
              f" ({'keeps up' if z['dali_stream_keeps_up'] else 'does not keep up'})")
    if device != "gpu":
        print("  no GPU: the DALI rows are DALI's CPU decoder on VP9, not NVDEC; run this on a GPU machine for NVDEC.")
    report = {
        "machine": machine(),
        "dali_device": device,
        "nvdec_measured": device == "gpu",
        "sizing": {"step_rate": args.step_rate, "per_gpu_batch": args.per_gpu_batch, "results": sized},
        "clip_spec": {"num_frames": spec.num_frames, "stride": spec.stride, "crop_size": spec.crop_size,
                      "short_side": spec.short_side},
        "dali_batch_size": args.batch_size,
        "dali_threads": args.threads,
        "results": rows,
    }
    write_json(args.out, report)
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
