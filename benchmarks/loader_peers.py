"""Clip loading against peer loaders, on the same clips of the same videos in one run.

Loaders (each one thread: torch.set_num_threads(1), one decoder thread):
- suite: the suite's CPU clip loader, `datasets.clips.decode.load_clip` without the whole-video
  cache (seek to the keyframe before the clip, decode forward); its stream index is cleared before
  every clip, so it demuxes the file each time, as decord indexes the file when it opens it;
- decord: `decord.VideoReader(path, num_threads=1).get_batch(indices)`;
- pytorchvideo: `EncodedVideo.from_path(path, decoder="pyav").get_clip(start_sec, end_sec)`, the
  clip's frames picked from the decoded span;
- PyAV sequential: the suite's former path, decoding from frame 0 to the clip's last frame.
Each clip is timed from opening the file to the uint8 (3, T, crop, crop) clip: every loader's
frames go through the same resize, crop and flip (`datasets.clips.decode.frames_to_clip`).
Loaders take turns clip by clip (round robin, the first loader rotating), so load from other
processes on the machine hits them alike; the ratios to decord are the figures to read.

Clip specifications of the papers: MaCLR 8 frames at stride 8, MCL 16 x 2, both 224^2 crops of
frames resized to short side 256; CMD and Controllable Augmentations 16 x 4 and 16 x 1, 112^2 from
short side 128. Videos: the real videos of ../shared/data/real-videos when present, and a
generated 5-minute H.264 video (320x240, 25 fps, x264 defaults: keyframe every 250 frames,
B-frames) on which the clip cost is also measured against the clip's start position.

    python -m benchmarks.loader_peers --out results/benchmarks/loader_peers.json
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from benchmarks.decode_throughput import REAL, machine

SPECS = {  # name -> (num_frames, stride, crop_size, short_side)
    "MaCLR 8x8 224 (256)": (8, 8, 224, 256),
    "MCL 16x2 224 (256)": (16, 2, 224, 256),
    "CMD 16x4 112 (128)": (16, 4, 112, 128),
    "CMD 16x1 112 (128)": (16, 1, 112, 128),
}
POSITIONS = (0.0, 0.25, 0.5, 0.75, 0.95)
LONG_SECONDS, LONG_FPS, LONG_SIZE = 300, 25, (320, 240)


def write_long_video(path: Path, seconds: int = LONG_SECONDS, fps: int = LONG_FPS, size=LONG_SIZE) -> None:
    """A textured scene panned by a moving window, with a moving square: real motion for the
    encoder, x264's default settings (CRF 23, preset medium, GOP 250, B-frames)."""
    import av

    width, height = size
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (height // 8 + 1, 2 * width // 8 + 1, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(coarse, 8, 0), 8, 1)[: height + 64, : 2 * width]
    texture = (texture.astype(np.int16) + rng.integers(-12, 13, texture.shape)).clip(0, 255).astype(np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * fps):
            x = int((width / 2) * (1 + np.sin(i / 90)))
            y = int(32 * (1 + np.sin(i / 47)))
            img = np.ascontiguousarray(texture[y : y + height, x : x + width])
            s = (3 * i) % (width - 24)
            img[100:124, s : s + 24] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


class Loaders:
    """The four loaders, each `(path, plan, spec) -> uint8 (3, T, crop, crop)`."""

    def __init__(self):
        from datasets.clips import decode as D

        self.D = D
        self.times: dict[Path, tuple] = {}
        self.mismatches: dict[str, int] = {}  # clips where pytorchvideo's span had another frame count
        try:
            import decord

            self.decord = decord
        except ImportError:
            self.decord = None
        self.names = ["suite", "decord", "pytorchvideo", "pyav_sequential"]
        if self.decord is None:
            self.names.remove("decord")

    def frame_times(self, path: Path):
        """Seconds from the stream's start of every frame, by index (read before timing)."""
        if path not in self.times:
            import av

            with av.open(str(path)) as c:
                stream = c.streams.video[0]
                start = stream.start_time or 0
                tb = Fraction(stream.time_base)
            pts = self.D._read_index(path).pts
            self.times[path] = [(int(p) - start) * tb for p in pts]
        return self.times[path]

    def suite(self, path, plan, spec):
        self.D.clear_index_cache()
        return self.D.load_clip(path, plan, spec, use_cache=False)

    def pyav_sequential(self, path, plan, spec):
        kept = self.D._decode_sequential(Path(path), np.asarray(plan.indices))
        return self.D.frames_to_clip(np.stack([kept[i] for i in plan.indices]), plan, spec)

    def decord_(self, path, plan, spec):
        vr = self.decord.VideoReader(str(path), ctx=self.decord.cpu(0), num_threads=1)
        frames = vr.get_batch(list(plan.indices)).asnumpy()
        return self.D.frames_to_clip(frames, plan, spec)

    def pytorchvideo(self, path, plan, spec):
        import torch
        from pytorchvideo.data.encoded_video import EncodedVideo

        times = self.frame_times(path)
        first, last = min(plan.indices), max(plan.indices)
        end = times[last + 1] if last + 1 < len(times) else times[last] + Fraction(1, 1000)
        video = EncodedVideo.from_path(str(path), decoder="pyav", decode_audio=False)
        video._container.streams.video[0].codec_context.thread_count = 1
        clip = video.get_clip(times[first], end)["video"]  # float (3, frames first..last, H, W)
        video.close()
        if clip is None:
            raise RuntimeError(f"pytorchvideo returned no frame for {path.name} {times[first]}-{end} s")
        if clip.shape[1] != last - first + 1:  # it selects frames by timestamp, which may disagree
            self.mismatches[path.name] = self.mismatches.get(path.name, 0) + 1
        picked = clip[:, [min(i - first, clip.shape[1] - 1) for i in plan.indices]].permute(1, 2, 3, 0).to(torch.uint8)
        return self.D.frames_to_clip(picked.numpy(), plan, spec)

    def run(self, name, path, plan, spec):
        fn = self.decord_ if name == "decord" else getattr(self, name)
        t0 = time.perf_counter()
        clip = fn(path, plan, spec)
        return time.perf_counter() - t0, clip


def conversion_cost(path: Path, frames: int = 16) -> dict:
    """ms per frame of YUV -> RGB: the suite's conversion (swscale flags matched to DALI's CPU
    decoder, see datasets.clips.decode.RGB_CONVERSION_FLAGS) and swscale's default bilinear one."""
    import av
    from av.video.reformatter import VideoReformatter

    from datasets.clips.decode import RGB_CONVERSION_FLAGS

    with av.open(str(path)) as c:
        decoded = [f for _, f in zip(range(frames), c.decode(video=0))]
    out = {}
    for name, flags in (("dali_matched", RGB_CONVERSION_FLAGS), ("swscale_default", None)):
        reformatter = VideoReformatter()
        t0 = time.perf_counter()
        for _ in range(3):
            for f in decoded:
                reformatter.reformat(f, format="rgb24", interpolation=flags).to_ndarray()
        out[name] = 1000 * (time.perf_counter() - t0) / (3 * len(decoded))
    return out


def timed_round_robin(loaders: Loaders, jobs, names, stats: dict, sequential_every: int = 1) -> None:
    """Time every loader on every (path, plan, spec), loaders taking turns per clip; the
    sequential decode only on every `sequential_every`-th clip (it decodes whole long videos)."""
    import torch

    for k, (path, plan, spec) in enumerate(jobs):
        turn = [x for x in names if x != "pyav_sequential" or k % sequential_every == 0]
        order = turn[k % len(turn):] + turn[: k % len(turn)]
        clips = {}
        for name in order:
            dt, clips[name] = loaders.run(name, path, plan, spec)
            stats.setdefault(name, []).append(dt)
        if "pyav_sequential" in clips:  # the seeking decode must equal the sequential one
            stats.setdefault("_suite_equal", []).append(bool(torch.equal(clips["suite"], clips["pyav_sequential"])))


def measure_videos(loaders: Loaders, videos: list[Path], long_path: Path, specs: dict, args) -> list[dict]:
    """One row per (video, clip spec): clips/s of each loader on the same random training clips,
    whether the suite's clips equal the sequential decode's, and the ratios to decord."""
    from datasets.clips import decode as D
    from datasets.clips.sampling import plan_train_clip, resized_hw

    rows = []
    rng = np.random.default_rng(0)
    for path in videos:
        info = D.video_info(path)
        index = D._read_index(path)
        n = len(index.pts)
        for spec_name, spec in specs.items():
            row = {"video": path.name, "frames": n, "keyframes": len(index.key_pts),
                   "seekable": index.seekable, "clip": spec_name,
                   "rgb_conversion_ms_per_frame": conversion_cost(path)}
            if spec.span > n:
                rows.append({**row, "skipped": f"video of {n} frames shorter than the clip span {spec.span}"})
                continue
            hw = resized_hw(info["height"], info["width"], spec.short_side)
            count = args.long_clips if path == long_path else args.clips
            jobs = [(path, plan_train_clip(n, hw, spec, rng), spec) for _ in range(count)]
            stats: dict = {}
            timed_round_robin(loaders, jobs, loaders.names, stats,
                              args.long_sequential_every if path == long_path else 1)
            row["suite_equals_sequential"] = all(stats.pop("_suite_equal"))
            for name in loaders.names:
                row[f"{name}_clips"] = len(stats[name])
                row[f"{name}_clips_per_s"] = len(stats[name]) / sum(stats[name])
            if loaders.decord is not None:
                row["suite_vs_decord"] = row["suite_clips_per_s"] / row["decord_clips_per_s"]
                # the same clip timed back to back: robust to bursts of load from other processes
                row["suite_vs_decord_median_per_clip"] = float(np.median(
                    np.asarray(stats["decord"]) / np.asarray(stats["suite"])))
            rows.append(row)
            print(f"  {path.name:<45} {spec_name:<20} " + "  ".join(
                f"{name} {row[f'{name}_clips_per_s']:6.2f}" for name in loaders.names))
    return rows


def measure_positions(loaders: Loaders, long_path: Path, specs: dict, repeats: int) -> list[dict]:
    """The median clip time of each loader against the clip's start position in the long video."""
    from datasets.clips import decode as D
    from datasets.clips.sampling import ClipPlan, clip_indices, resized_hw

    positions = []
    n = len(D._read_index(long_path).pts)
    info = D.video_info(long_path)
    for spec_name in ("MCL 16x2 224 (256)", "CMD 16x4 112 (128)"):
        spec = specs[spec_name]
        hw = resized_hw(info["height"], info["width"], spec.short_side)
        for frac in POSITIONS:
            start = min(int(frac * n), n - spec.span)
            plan = ClipPlan(tuple(int(i) for i in clip_indices(start, spec)),
                            ((hw[0] - spec.crop_size) // 2, (hw[1] - spec.crop_size) // 2), False)
            stats = {}
            # the sequential decode once per position: at 95 % it decodes the whole video
            timed_round_robin(loaders, [(long_path, plan, spec)] * repeats, loaders.names, stats,
                              sequential_every=repeats)
            stats.pop("_suite_equal", None)
            entry = {"clip": spec_name, "position": frac, "start_frame": start}
            for name in loaders.names:
                entry[f"{name}_ms"] = 1000 * float(np.median(stats[name]))
            positions.append(entry)
            print(f"  position {frac:4.0%} {spec_name:<20} " + "  ".join(
                f"{name} {entry[f'{name}_ms']:7.1f} ms" for name in loaders.names))
    return positions


def markdown_tables(rows: list[dict], positions: list[dict], names: list[str]) -> tuple[str, str]:
    """(clips/s per video and clip, clip time per start position) as Markdown tables."""
    lines = ["| video | clip | " + " | ".join(f"{x} clips/s" for x in names) + " | suite / decord |",
             "| --- | --- | " + " | ".join("---:" for _ in names) + " | ---: |"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['video']} | {r['clip']} | " + " | ".join("-" for _ in names) + " | (shorter than the clip) |")
            continue
        ratio = f"{r['suite_vs_decord']:.2f}x" if "suite_vs_decord" in r else "decord missing"
        lines.append(f"| {r['video']} | {r['clip']} | " + " | ".join(f"{r[f'{x}_clips_per_s']:.1f}" for x in names)
                     + f" | {ratio} |")
    pos_lines = ["| clip | start | " + " | ".join(f"{x} ms" for x in names) + " |",
                 "| --- | ---: | " + " | ".join("---:" for _ in names) + " |"]
    pos_lines += [f"| {p['clip']} | {p['position']:.0%} | " + " | ".join(f"{p[f'{x}_ms']:.0f}" for x in names) + " |"
                  for p in positions]
    return "\n".join(lines), "\n".join(pos_lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Clip loading: the suite's CPU loader against decord, pytorchvideo and PyAV sequential decoding.")
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/loader_peers.json"))
    ap.add_argument("--clips", type=int, default=24, help="random training clips per (real video, clip spec)")
    ap.add_argument("--long-clips", type=int, default=12, help="random training clips per clip spec on the long video")
    ap.add_argument("--long-sequential-every", type=int, default=4,
                    help="time the sequential decode on every k-th clip of the long video only")
    ap.add_argument("--repeats", type=int, default=5, help="clips per start position on the long video")
    ap.add_argument("--long-seconds", type=int, default=LONG_SECONDS)
    ap.add_argument("--no-real", action="store_true", help="skip ../shared/data/real-videos")
    args = ap.parse_args(argv)

    import torch

    from core.io import write_json
    from datasets.clips import decode as D
    from datasets.clips.sampling import ClipPlan, ClipSpec

    torch.set_num_threads(1)
    D.set_decode_threads(1)
    loaders = Loaders()
    if loaders.decord is None:
        print("decord is not installed (pip install '.[bench]'): the decord column and the ratios are missing")
    load_before = os.getloadavg()
    specs = {name: ClipSpec(*v) for name, v in SPECS.items()}

    with tempfile.TemporaryDirectory() as tmp:
        long_path = Path(tmp) / f"generated_{args.long_seconds}s_320x240_25fps_h264.mp4"
        t0 = time.perf_counter()
        write_long_video(long_path, args.long_seconds)
        print(f"generated {long_path.name} in {time.perf_counter() - t0:.0f} s")
        videos = ([] if args.no_real or not REAL.is_dir() else sorted(REAL.glob("*.*"))) + [long_path]

        # warm-up (imports, first allocations), not timed
        warm_spec = specs["CMD 16x1 112 (128)"]
        warm_plan = ClipPlan(tuple(range(16)), (0, 0), False)
        for name in loaders.names:
            loaders.run(name, videos[0], warm_plan, warm_spec)
        loaders.mismatches.clear()

        rows = measure_videos(loaders, videos, long_path, specs, args)
        positions = measure_positions(loaders, long_path, specs, args.repeats)

    load_after = os.getloadavg()
    shared = max(load_before[0], load_after[0]) > 1.0
    clips_table, positions_table = markdown_tables(rows, positions, loaders.names)
    print()
    print(clips_table)
    print()
    print(positions_table)
    report = {
        "machine": machine(),
        "load_average": {"before": load_before, "after": load_after},
        "machine_shared": shared,
        "note": ("one thread per loader; clips/s is per core; loaders interleaved per clip; "
                 + ("the machine was shared with other processes (load average above 1), so absolute "
                    "figures are low and the ratios are the comparison" if shared else "machine not shared")),
        "decord_installed": loaders.decord is not None,
        "loaders": loaders.names,
        "clip_specs": {k: dict(zip(("num_frames", "stride", "crop_size", "short_side"), v)) for k, v in SPECS.items()},
        "long_video": {"seconds": args.long_seconds, "fps": LONG_FPS, "size": LONG_SIZE, "codec": "h264 (x264 defaults)"},
        "pytorchvideo_frame_count_mismatches": loaders.mismatches,
        "results": rows,
        "long_video_position": positions,
    }
    write_json(args.out, report)
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
