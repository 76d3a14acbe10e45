"""Sample loading from the motion caches: the compressed whole-video `.npz` a sample used to load
against the memory-mapped `.npy` folder it reads now (`datasets.motion.cache`), same run, same
random clips, one thread, in samples and clips per CPU-second (per core).

Not a test: a measurement. What a pretraining sample reads from a motion cache:
- MaCLR (§3.3): two flow clips of 16 frames at stride 4, 224 x 224, 2 channels (`input: flow`),
  their starts drawn among the clips above the motion threshold (`frame_mean`), cut by
  `datasets.clips.reader.motion_clip`;
- MCL (§3.2-3.3): two tubelets of 16 frames at stride 2 planned by temporal and spatial motion-focused
  sampling (TA + SA) from the ST-motion, and the query's motion map pooled to `mal.motion_map_size`
  (`methods.mcl.data`).
The earlier path loads the video's whole array from its `.npz` (MCL also checked every value for
finiteness and averaged every frame for TA); the new one maps the files and reads the clip's frames
(MCL's per-frame means are stored). Consecutive samples come from different videos, as in a shuffled
epoch, so no sample reuses the video kept by the previous one.

Inputs: `--videos` generated videos of `--frames` frames at 256 x 340 (a Kinetics video resized to
a short side of 256, 10 s at 30 fps), with sensor noise so the flow is not zero off the moving
objects; flow is Farnebäck's (MaCLR's smoke-scale estimator) from frame t to t-5, and MCL's maps
are Eq. (1) of that flow (TV-L1 runs at about 1 frame/s on a CPU core). `--cold` also times both
paths with the cache files dropped from the page cache before every sample (posix_fadvise), i.e.
read from the disk.

    python -m benchmarks.motion_cache [--videos 3] [--frames 300] [--samples 40] [--cold]
        [--out results/benchmarks/motion_cache.json]
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 256, 340


def make_videos(workdir: Path, videos: int, frames: int) -> list[str]:
    """Write each video's MaCLR flow cache and MCL motion cache in both layouts; the video ids."""
    from datasets.motion.cache import cache_path, write_arrays
    from datasets.motion.flow import FarnebackFlow, flow_to_previous
    from datasets.motion.tvl1 import motion_map, write_motion_cache
    from datasets.sources.synthetic import class_patterns, render_frames

    ids = []
    for v in range(videos):
        rng = np.random.default_rng(v)
        rgb = render_frames(class_patterns(videos)[v], frames, HEIGHT, WIDTH, seed=v, num_objects=3)
        rgb = np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)
        flow = flow_to_previous(rgb, FarnebackFlow()).astype(np.float16)  # (N, 2, H, W)
        frame_mean = np.abs(flow).mean(axis=(1, 2, 3)).astype(np.float32)
        vid = f"video{v}"
        # The earlier layout, as core.io.save_npz wrote it: one compressed archive per video.
        np.savez_compressed(workdir / "flow" / f"{vid}.npz", motion=flow, frame_mean=frame_mean)
        write_arrays(cache_path(workdir / "flow", vid), motion=flow, frame_mean=frame_mean)
        m_st = motion_map(flow.transpose(0, 2, 3, 1).astype(np.float32))  # (N, H, W)
        np.savez_compressed(workdir / "tvl1" / f"{vid}.npz", motion=m_st.astype(np.float16),
                            t_motion=m_st.mean(axis=(1, 2)))
        write_motion_cache(cache_path(workdir / "tvl1", vid), m_st)
        ids.append(vid)
    return ids


def plan_samples(ids: list[str], frames: int, samples: int, seed: int) -> list[tuple[str, int]]:
    """(video, seed) per sample; consecutive samples from different videos."""
    rng = np.random.default_rng(seed)
    return [(ids[i % len(ids)], int(rng.integers(2**31))) for i in range(samples)]


# ---------------------------------------------------------------------------------------- MaCLR
def maclr_sample(motion: np.ndarray, frame_mean: np.ndarray, spec, threshold: float, scale: float, seed: int):
    """What MaCLRPretrainData reads from the cache for one sample: two clips above the threshold."""
    from datasets.clips.reader import motion_clip
    from datasets.clips.sampling import ClipPlan, clip_indices, random_crop_offset, random_start
    from methods.maclr.data import motion_allowed_starts

    rng = np.random.default_rng(seed)
    allowed = motion_allowed_starts(frame_mean, spec, threshold)
    clips = []
    for _ in range(2):
        start = random_start(len(frame_mean), spec, rng, allowed if allowed.any() else None)
        crop = random_crop_offset(motion.shape[2], motion.shape[3], spec.crop_size, rng)
        clips.append(motion_clip(motion, ClipPlan(tuple(clip_indices(start, spec).tolist()), crop, False), spec, scale))
    return clips


def maclr_old(workdir: Path, plan, spec, threshold, scale):
    for vid, seed in plan:
        with np.load(workdir / "flow" / f"{vid}.npz") as z:
            motion, frame_mean = z["motion"], z["frame_mean"]
        maclr_sample(motion, frame_mean, spec, threshold, scale, seed)


def maclr_new(workdir: Path, plan, spec, threshold, scale):
    from datasets.clips.reader import MotionClipReader

    reader = MotionClipReader(workdir / "flow", spec, scale)
    for vid, seed in plan:
        motion, frame_mean = reader.video(argparse.Namespace(video_id=vid))
        maclr_sample(motion, frame_mean, spec, threshold, scale, seed)


# ------------------------------------------------------------------------------------------ MCL
def mcl_sample(motion: np.ndarray, frame_mean: np.ndarray | None, spec, size: int, seed: int):
    """What MCLPretrainData reads from the cache for one sample: TA + SA plans of the query and
    key, and the query's motion map (`frame_mean` None: averaged from every frame, as before)."""
    from methods.mcl.data import clip_motion
    from methods.mcl.sampling import plan_motion_focused_clip

    rng = np.random.default_rng(seed)
    query = plan_motion_focused_clip(motion, spec, rng, frame_motion=frame_mean)
    plan_motion_focused_clip(motion, spec, rng, frame_motion=frame_mean)
    return clip_motion(motion, query, motion.shape[1:], spec.crop_size, size)


def mcl_old(workdir: Path, plan, spec, size):
    for vid, seed in plan:
        with np.load(workdir / "tvl1" / f"{vid}.npz") as z:
            motion = z["motion"]
        if not np.isfinite(motion).all():  # the earlier MotionMaps check, over the whole video
            raise ValueError(vid)
        mcl_sample(motion, None, spec, size, seed)


def mcl_new(workdir: Path, plan, spec, size):
    from methods.mcl.data import MotionMaps

    maps = MotionMaps(workdir / "tvl1")
    for vid, seed in plan:
        motion, frame_mean = maps(vid)
        mcl_sample(motion, frame_mean, spec, size, seed)


# ---------------------------------------------------------------------------------------- timing
def drop_page_cache(folder: Path) -> None:
    """Ask the kernel to drop the cached pages of every file under `folder` (no root needed)."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def timed(run, workdir: Path, plan, cold: bool, *args) -> dict:
    """Samples per CPU-second and per wall-second; with `cold`, each sample starts from the disk."""
    cpu = wall = 0.0
    chunks = [[s] for s in plan] if cold else [plan]
    for chunk in chunks:
        if cold:
            drop_page_cache(workdir)
        c0, w0 = time.process_time(), time.perf_counter()
        run(workdir, chunk, *args)
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
    return {"samples": len(plan), "cpu_seconds": round(cpu, 3), "wall_seconds": round(wall, 3),
            "samples_per_cpu_second": round(len(plan) / cpu, 2), "samples_per_wall_second": round(len(plan) / wall, 2)}


def folder_bytes(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def main(argv: list[str] | None = None) -> None:
    import cv2
    import torch

    from core.config import method_config
    from core.io import write_json
    from datasets.clips.reader import clip_spec

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--samples", type=int, default=40, help="samples per path and method (each a fresh video)")
    parser.add_argument("--cold", action="store_true", help="also time reads from the disk (page cache dropped per sample)")
    parser.add_argument("--workdir", type=Path, help="where to write the caches (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

    maclr = method_config("maclr", "full", "flow")
    maclr_spec = clip_spec(maclr["motion"])
    threshold, scale = float(maclr["motion"]["threshold"]), float(maclr["motion"]["input_scale"]["flow"])
    mcl = method_config("mcl", "full", "ta_sa_mal")  # TA, SA and L_MAL: every read of the motion cache
    mcl_spec, mal_size = clip_spec(mcl), int(mcl["mal"]["motion_map_size"])

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        (workdir / "flow").mkdir()
        (workdir / "tvl1").mkdir()
        started = time.perf_counter()
        ids = make_videos(workdir, args.videos, args.frames)
        print(f"{args.videos} videos of {args.frames} frames at {HEIGHT}x{WIDTH} cached in {time.perf_counter() - started:.0f} s")
        plan = plan_samples(ids, args.frames, args.samples, seed=0)
        # Same clips on both paths: equal outputs, checked before timing.
        a = np.load(workdir / "flow" / f"{ids[0]}.npz")
        from datasets.motion.flow import load_motion
        b = load_motion(workdir / "flow", ids[0])
        assert all(np.array_equal(x, y) for x, y in zip(maclr_sample(a["motion"], a["frame_mean"], maclr_spec, threshold, scale, 1),
                                                      maclr_sample(*b, maclr_spec, threshold, scale, 1)))
        from methods.mcl.data import MotionMaps
        old_motion = np.load(workdir / "tvl1" / f"{ids[0]}.npz")["motion"]
        assert np.array_equal(mcl_sample(old_motion, None, mcl_spec, mal_size, 1),
                              mcl_sample(*MotionMaps(workdir / "tvl1")(ids[0]), mcl_spec, mal_size, 1))
        sizes = {
            "flow_npz_bytes_per_video": folder_bytes(workdir / "flow", "*.npz") // args.videos,
            "flow_npy_bytes_per_video": folder_bytes(workdir / "flow", "*.npy") // args.videos,
            "tvl1_npz_bytes_per_video": folder_bytes(workdir / "tvl1", "*.npz") // args.videos,
            "tvl1_npy_bytes_per_video": folder_bytes(workdir / "tvl1", "*.npy") // args.videos,
        }
        rows = []
        for cold in ([False, True] if args.cold else [False]):
            for name, old, new, extra in (("maclr_flow", maclr_old, maclr_new, (maclr_spec, threshold, scale)),
                                          ("mcl_motion_map", mcl_old, mcl_new, (mcl_spec, mal_size))):
                timed(new, workdir, plan[:2], False, *extra)  # warm up imports
                r_old = timed(old, workdir, plan, cold, *extra)
                r_new = timed(new, workdir, plan, cold, *extra)
                rows.append({"sample": name, "page_cache": "cold" if cold else "warm", "old_npz": r_old, "new_mmap": r_new,
                             "clips_per_sample": 2,
                             "speedup_per_core": round(r_new["samples_per_cpu_second"] / r_old["samples_per_cpu_second"], 1)})

    print(f"{'sample':16s} {'page cache':>10s} {'npz clips/s/core':>17s} {'mmap clips/s/core':>18s} {'speed-up':>9s}")
    for r in rows:
        print(f"{r['sample']:16s} {r['page_cache']:>10s} {2 * r['old_npz']['samples_per_cpu_second']:>17.1f} "
              f"{2 * r['new_mmap']['samples_per_cpu_second']:>18.1f} {r['speedup_per_core']:>8.1f}x")
    print(", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items()))
    if args.out:
        write_json(args.out, {
            "videos": args.videos, "frames": args.frames, "size": f"{WIDTH}x{HEIGHT}", "samples": args.samples,
            "maclr_clip": {"num_frames": maclr_spec.num_frames, "stride": maclr_spec.stride, "crop": maclr_spec.crop_size,
                           "channels": 2},
            "mcl_clip": {"num_frames": mcl_spec.num_frames, "stride": mcl_spec.stride, "crop": mcl_spec.crop_size,
                         "motion_map_size": mal_size},
            "threads": 1, "cpus": os.cpu_count(), "machine": platform.machine(), "load_average": os.getloadavg(),
            **sizes, "results": rows,
        })


if __name__ == "__main__":
    main()
