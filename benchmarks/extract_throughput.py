"""Throughput of the MCL and CMD motion extractors, in frames per CPU-second (per core).

Not a test: a measurement to read next to CMD's claim that I-frames and motion vectors "can be
efficiently extracted at over 500 fps on CPU" (CMD abstract and Sec. 1, citing CoViAR). Times are
process CPU time (all threads of this process), so the figures are per core whatever threading
the decoder uses; OpenCV runs single-threaded.

Inputs: a generated fixture video (datasets.sources.synthetic, UCF101-like 320x240) and, when present,
the real videos of <repo>/../shared/data/real-videos/ (skipped cleanly when absent). Each is
transcoded to the suite's `mpeg4_gop12` profile first (CMD's input); the transcode is not timed.
TV-L1 (MCL Sec. 3.1) runs on the first `--tvl1-frames` frames only (it is ~1000x slower).

    python -m benchmarks.extract_throughput [--tvl1-frames 8] [--out results/benchmarks/extract_throughput.json]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real-videos"
CMD_CLAIM_FPS = 500


def _cpu(fn):
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def measure(path: Path, workdir: Path, tvl1_frames: int) -> dict:
    import cv2

    from datasets.motion import compressed, tvl1
    from datasets.clips.decode import decode_frames, video_info
    from datasets.transcodes.transcode import transcode

    cv2.setNumThreads(1)
    mpeg4 = workdir / f"{path.stem}.avi"
    transcode(path, mpeg4, "mpeg4_gop12")
    out, seconds = _cpu(lambda: compressed.extract_compressed(mpeg4))
    n = len(out["pict_types"])
    info = video_info(path)
    frames = decode_frames(path, range(min(tvl1_frames, info["num_frames"])))
    _, tvl1_seconds = _cpu(lambda: tvl1.motion_map(tvl1.tvl1_flow(frames)))
    return {
        "video": path.name, "size": f"{info['width']}x{info['height']}", "frames": n,
        "iframes": int(len(out["iframe_indices"])),
        "compressed_fps_per_core": round(n / seconds, 1) if seconds else None,
        "tvl1_motion_fps_per_core": round(len(frames) / tvl1_seconds, 2) if tvl1_seconds else None,
    }


def main(argv: list[str] | None = None) -> None:
    from core.io import write_json
    from datasets.sources.synthetic import class_patterns, render_frames, write_video

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tvl1-frames", type=int, default=8, help="frames per video for the TV-L1 timing")
    parser.add_argument("--fixture-frames", type=int, default=120)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fixture = tmp / "fixture_320x240.mp4"
        write_video(fixture, render_frames(class_patterns(1)[0], args.fixture_frames, 240, 320, seed=0), 25)
        videos = [fixture]
        if REAL.is_dir():
            videos += sorted(p for p in REAL.iterdir() if p.suffix in (".mp4", ".avi", ".webm", ".mkv"))
        else:
            print(f"real videos absent ({REAL}): fixture only")
        for video in videos:
            results.append(measure(video, tmp, args.tvl1_frames))
    header = f"{'video':45s} {'size':>9s} {'frames':>6s} {'I':>3s} {'I+MV fps/core':>14s} {'TV-L1 fps/core':>15s}"
    print(header)
    for r in results:
        print(f"{r['video']:45s} {r['size']:>9s} {r['frames']:>6d} {r['iframes']:>3d} "
              f"{r['compressed_fps_per_core']:>14} {r['tvl1_motion_fps_per_core']:>15}")
    print(f"CMD's claim: I-frames and motion vectors at over {CMD_CLAIM_FPS} fps on CPU (core count not stated).")
    if args.out:
        write_json(args.out, {"cmd_claim_fps": CMD_CLAIM_FPS, "results": results})


if __name__ == "__main__":
    main()
