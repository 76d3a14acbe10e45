"""What CMD reads instead of decoding (§1: key frames and motion vectors "can be efficiently
extracted"): per training clip, its supervision from the compressed-domain cache (one I-frame and
the motion vectors of the clip's frames, `datasets.motion.compressed`, cut as `methods.cmd.data`
cuts them) against decoding the same clip's RGB frames with the suite's CPU clip loader
(`datasets.clips.reader.ClipReader`). Same run, same videos, same CMD sample plans
(`methods.cmd.sampling.plan_cmd_sample`), one thread, the two interleaved per clip; clips per
CPU-second (per core) and their ratio.

Not a test: a measurement. The clip is CMD's (§4.1): 16 frames at stride 4, 112 x 112 from a short
side of 128. Inputs: `--videos` generated videos of `--frames` frames at 320 x 240, 25 fps (a
UCF101 video), transcoded to MPEG-4 Part 2 with GOP 12 by the suite's `mpeg4_gop12` profile (CMD's
input), their caches extracted once before timing.

    python -m benchmarks.cmd_loading [--videos 3] [--frames 250] [--clips 30] [--out results/benchmarks/cmd_loading.json]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

HEIGHT, WIDTH, FPS = 240, 320, 25


def make_videos(folder: Path, count: int, frames: int) -> list[dict]:
    """MPEG-4 GOP-12 videos of moving squares with noise, and their compressed-domain caches."""
    from datasets.motion.cache import cache_path
    from datasets.motion.compressed import extract_video
    from datasets.sources.synthetic import write_video
    from datasets.transcodes.transcode import transcode

    rng = np.random.default_rng(0)
    videos = []
    for i in range(count):
        pixels = np.full((frames, HEIGHT, WIDTH, 3), 90, dtype=np.uint8)
        pixels += rng.integers(0, 20, size=pixels.shape, dtype=np.uint8)  # texture, so vectors are not all zero
        for t in range(frames):
            x, y = (40 + 3 * t) % (WIDTH - 48), (30 + t) % (HEIGHT - 48)
            pixels[t, y:y + 48, x:x + 48] = (220, 60 + 40 * i, 40)
        src, video = folder / f"v{i}_src.mp4", folder / f"v{i}.avi"
        write_video(src, pixels, FPS)
        transcode(src, video, "mpeg4_gop12")
        extract_video(video, cache_path(folder / "cache", f"v{i}"))
        videos.append({"video_id": f"v{i}", "path": video.name, "num_frames": frames, "height": HEIGHT, "width": WIDTH})
    return videos


def measure(folder: Path, videos: list[dict], clips: int) -> dict:
    import pandas as pd
    import torch

    from datasets.clips.reader import ClipReader
    from datasets.clips.sampling import ClipSpec
    from datasets.motion.cache import VideoArrays
    from methods.cmd.data import iframe_input, motion_vectors
    from methods.cmd.sampling import plan_cmd_sample

    torch.set_num_threads(1)
    spec = ClipSpec(16, 4, 112, 128)
    reader = ClipReader(folder, spec, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    compressed = VideoArrays(folder / "cache", ("iframes", "iframe_indices", "mv", "grid"), "compressed-domain", "benchmark")
    rows = list(pd.DataFrame(videos).itertuples())
    rng = np.random.default_rng(1)
    seconds = {"compressed": 0.0, "rgb": 0.0}
    for k in range(clips):
        row = rows[k % len(rows)]  # consecutive clips from different videos, as in a shuffled epoch
        compressed.forget()
        data = compressed(row.video_id)
        plan = plan_cmd_sample(int(row.num_frames), data["iframe_indices"], reader.frame_hw(row), spec, rng)
        started = time.process_time()
        data = compressed(row.video_id)
        frame = data["iframes"][int(np.flatnonzero(data["iframe_indices"] == plan.iframe)[0])]
        iframe = iframe_input(frame, spec, plan.clip.crop, plan.clip.flip)
        vectors = motion_vectors(data["mv"], int(data["grid"]), (HEIGHT, WIDTH), plan.clip, spec)
        seconds["compressed"] += time.process_time() - started
        started = time.process_time()
        clip = reader(row, plan.clip)
        seconds["rgb"] += time.process_time() - started
        compressed.forget()
        assert iframe.shape[-1] == vectors.shape[-1] == clip.shape[-1] == spec.crop_size
    per_core = {name: clips / s for name, s in seconds.items()}
    return {"clips": clips, "clips_per_cpu_second": per_core,
            "compressed_over_rgb": per_core["compressed"] / per_core["rgb"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        videos = make_videos(folder, args.videos, args.frames)
        result = measure(folder, videos, args.clips)
    result.update({"videos": args.videos, "frames": args.frames, "size": f"{WIDTH}x{HEIGHT}", "clip": "16x4 @ 112 (short side 128)",
                   "load_average": os.getloadavg()[0]})
    rate = result["clips_per_cpu_second"]
    print(f"| source | clips per CPU-second |\n|---|---:|\n| compressed-domain cache (I-frame + motion vectors) | "
          f"{rate['compressed']:.1f} |\n| RGB decode (CPU clip loader) | {rate['rgb']:.1f} |\n\n"
          f"compressed / RGB: {result['compressed_over_rgb']:.2f}x (load average {result['load_average']:.1f})")
    if args.out:
        from core.io import write_json

        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
