"""Clip decoding throughput (clips/s) of the CPU pipeline (PyAV) and of the DALI pipeline.

DALI runs on the GPU (NVDEC, H.264 transcodes) when one is visible, else on the CPU (VP9
transcodes: DALI's CPU decoder reads VP8, VP9 and MJPEG only). The CPU pipeline is timed on the
original files and on the same transcodes DALI reads. Inputs: generated videos, and the real
videos of ../shared/data/real-videos when that folder exists. Every clip is a random training
clip (datasets.clips.sampling.plan_train_clip) with the same seed for both pipelines.

    python -m benchmarks.decode_throughput --out results/benchmarks/decode_throughput.json
"""
from __future__ import annotations

import argparse
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
    args = ap.parse_args(argv)

    import torch

    from core.io import write_json
    from datasets.clips.sampling import ClipSpec
    from datasets.transcodes.transcode import PROFILES, transcode

    spec = ClipSpec(args.num_frames, args.stride, args.crop, args.short_side)
    device = args.device
    if device == "auto":
        device = "gpu" if torch.cuda.is_available() else "cpu"
    dali_profile = "h264_cfr" if device == "gpu" else "vp9"
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
                (
                    f"DALI {device}",
                    dali_profile,
                    lambda: time_dali(tc_paths, plans, spec, device, args.batch_size, args.threads),
                ),
            ]
            for pipeline, codec, run in configs:
                result = run()
                rows.append({"videos": vset["name"], "pipeline": pipeline, "codec": codec, **result})
                print(f"  {vset['name']:<45} {pipeline:<10} {codec:<9} {result['clips_per_s']:8.2f} clips/s")

    header = f"| videos | pipeline | codec | clips/s |\n| --- | --- | --- | ---: |"
    table = "\n".join(
        [header] + [f"| {r['videos']} | {r['pipeline']} | {r['codec']} | {r['clips_per_s']:.2f} |" for r in rows]
    )
    print()
    print(f"clip: {spec.num_frames} frames, stride {spec.stride}, short side {spec.short_side}, crop {spec.crop_size}")
    print(table)
    report = {
        "machine": machine(),
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
