"""MaCLR's motion inputs: optical flow, flow edges and frame differences, cached per video.

MaCLR §3.2 and §4.1 ("Flow Edge Maps"): optical flow from frame t to t-5 with RAFT-things
(trained on synthetic data only: torchvision's `Raft_Large_Weights.C_T_V1`), a Sobel filter on
the flow magnitude, clamped to [0, 10]. Table 1b compares this with the frame difference and
with the optical flow itself. Each video's motion frames are computed once and cached as
`results/<scale>/motion/<kind>/<DATASET_DIR>/<video_id>.npz` with

- `motion`: (N, C, H, W) float16, one motion frame per video frame (C = 1 edge, 2 flow, 3 diff);
- `frame_mean`: (N,) float32, the mean over pixels of |motion| per frame — MaCLR's motion
  threshold (§3.1: "only sample frames with sum_i P_i / K > gamma") reads it.

The flow estimator is a switch (`flow_estimator` in the scale profile): `raft_things` is the
paper's; `farneback` (OpenCV) is a fast CPU stand-in used at smoke scale, and every table built
on it says so.

    python -m datasets.motion.flow --manifest M.csv --root DIR --kind edge --scale smoke --cache-dir D --summary S.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from core.config import load_scale
from core.errors import CorruptInputError, MissingInputError, SuiteError
from core.io import write_json
from datasets.clips.decode import decode_all, resize_short_side
from datasets.motion import KINDS
from datasets.motion.cache import CACHE_LAYOUT, cache_path, extract_each, read_arrays, write_arrays

FLOW_OFFSET = 5  # MaCLR §4.1: "optical flow from frame t to t-5"
EDGE_CLAMP = (0.0, 10.0)  # MaCLR §4.1: "clamp the resulting edge map in [0, 10]"


# ------------------------------------------------------------------------------ flow estimators
class FarnebackFlow:
    """OpenCV's Farnebäck flow: a CPU stand-in for RAFT at smoke scale (not the paper's)."""

    name = "farneback"

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow (N, 2, H, W) from each `source` frame to its `target` frame, both (N, H, W, 3) uint8."""
        import cv2

        flows = []
        for a, b in zip(source, target):
            ga, gb = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
            # 5 pyramid levels and a 21 px window: displacements of t -> t-5 reach 10+ px
            flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 5, 21, 5, 7, 1.5, 0)
            flows.append(flow.transpose(2, 0, 1))
        return np.stack(flows).astype(np.float32)


class RaftThingsFlow:
    """torchvision RAFT-large with the RAFT-things weights (`Raft_Large_Weights.C_T_V1`).

    MaCLR §4.1: "RAFT-things [67] model trained entirely on synthetic data". The weights cannot
    be downloaded by the suite; they are read from `weights_path`, or from torch hub's cache.
    """

    name = "raft_things"

    def __init__(self, weights_path: str | None = None, device: str = "cpu", num_flow_updates: int = 12, weights: str = "C_T_V1"):
        from torchvision.models.optical_flow import Raft_Large_Weights, raft_large

        self.weights = Raft_Large_Weights[weights]
        path = Path(weights_path) if weights_path else Path(torch.hub.get_dir()) / "checkpoints" / Path(self.weights.url).name
        if not path.exists():
            raise MissingInputError(
                f"RAFT-things weights not found at {path}. They cannot be downloaded here: fetch "
                f"{self.weights.url} on a machine with internet access and put the file at that path, "
                f"or pass --config raft_weights=/path/to/{Path(self.weights.url).name}"
            )
        self.model = raft_large(weights=None).eval().to(device)
        self.model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        self.device, self.num_flow_updates = device, num_flow_updates

    @torch.no_grad()
    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        return raft_flow(self.model, source, target, self.device, self.num_flow_updates)


def raft_flow(model, source: np.ndarray, target: np.ndarray, device: str, num_flow_updates: int) -> np.ndarray:
    """Run a torchvision RAFT model on uint8 frame pairs. Frames are padded (replicating borders)
    to a multiple of 8 and at least 128 px, the smallest size RAFT's correlation pyramid takes."""
    a = torch.from_numpy(source).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1.0
    b = torch.from_numpy(target).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1.0
    h, w = a.shape[-2:]
    pad = (0, max(128, w + (-w) % 8) - w, 0, max(128, h + (-h) % 8) - h)
    a, b = F.pad(a, pad, mode="replicate"), F.pad(b, pad, mode="replicate")
    flow = model(a, b, num_flow_updates=num_flow_updates)[-1]
    return flow[..., :h, :w].cpu().numpy().astype(np.float32)


def make_flow_estimator(name: str, raft_weights: str | None = None, device: str = "cpu", num_flow_updates: int = 12):
    if name == "farneback":
        return FarnebackFlow()
    if name == "raft_things":
        return RaftThingsFlow(raft_weights, device=device, num_flow_updates=num_flow_updates)
    raise SuiteError(f"unknown flow_estimator {name!r}; known: raft_things, farneback")


# -------------------------------------------------------------------------------- motion inputs
def flow_to_previous(frames: np.ndarray, estimator, offset: int = FLOW_OFFSET) -> np.ndarray:
    """Flow of every frame t to frame max(t - offset, 0) (MaCLR §4.1); frame 0 gets zero flow."""
    previous = np.maximum(np.arange(len(frames)) - offset, 0)
    return estimator(frames, frames[previous])


def flow_edges(flow: np.ndarray) -> np.ndarray:
    """Flow edge map (MaCLR §3.2, §4.1): Sobel filter on the flow magnitude, clamped to [0, 10].

    `flow` is (N, 2, H, W); returns (N, 1, H, W). The Sobel gradient magnitude
    sqrt(Gx^2 + Gy^2) uses the standard 3x3 kernels with replicated borders.
    """
    magnitude = torch.from_numpy(np.linalg.norm(flow, axis=1, keepdims=True)).float()
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel_x, sobel_x.T]).unsqueeze(1)  # (2, 1, 3, 3): d/dx, d/dy
    gradients = F.conv2d(F.pad(magnitude, (1, 1, 1, 1), mode="replicate"), kernels)
    edges = gradients.pow(2).sum(dim=1, keepdim=True).sqrt()
    return edges.clamp(*EDGE_CLAMP).numpy()


def frame_difference(frames: np.ndarray) -> np.ndarray:
    """Difference of consecutive frames (MaCLR §3.2, Table 1b "Diff"), RGB in [-1, 1], (N, 3, H, W).

    Frame 0 has no predecessor and gets zeros.
    """
    x = frames.astype(np.float32) / 255.0
    diff = np.zeros_like(x)
    diff[1:] = x[1:] - x[:-1]
    return diff.transpose(0, 3, 1, 2)


def compute_motion(frames: np.ndarray, kind: str, estimator=None) -> np.ndarray:
    """Motion frames (N, C, H, W) float32 of one video's frames (N, H, W, 3) uint8."""
    if kind == "diff":
        return frame_difference(frames)
    flow = flow_to_previous(frames, estimator)
    if kind == "flow":
        return flow
    if kind == "edge":
        return flow_edges(flow)
    raise SuiteError(f"unknown motion kind {kind!r}; known: {', '.join(KINDS)}")


def load_motion(cache_dir: str | Path, video_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(motion (N, C, H, W) float16, frame_mean (N,)) of one cached video, memory-mapped: a clip
    cut from it reads only its own frames."""
    data = read_arrays(cache_path(cache_dir, video_id), ("motion", "frame_mean"), video_id, "motion",
                       "the motion rule of its dataset, datasets.motion.flow")
    motion, frame_mean = data["motion"], data["frame_mean"]
    if motion.ndim != 4 or frame_mean.shape != motion.shape[:1]:
        raise CorruptInputError(f"video {video_id}: motion cache {cache_path(cache_dir, video_id)} holds `motion` of shape "
                                f"{motion.shape} and `frame_mean` of shape {frame_mean.shape}, not (frames, channels, "
                                f"height, width) and (frames,); delete it and recompute it (datasets.motion.flow)")
    return motion, frame_mean


def build_cache(manifest: pd.DataFrame, root: Path, kind: str, cache_dir: Path, short_side: int, estimator) -> dict:
    """Compute and cache the motion of every manifest video; videos already cached are kept.

    The loop is `datasets.motion.cache.extract_each` (tqdm, resume); a video that cannot be
    decoded stops the run (the manifest has already quarantined undecodable videos)."""

    def extract(src: Path, dst: Path) -> dict:
        started = time.perf_counter()
        frames = torch.from_numpy(np.array(decode_all(src))).permute(0, 3, 1, 2)
        frames = resize_short_side(frames, short_side).permute(0, 2, 3, 1).numpy()
        motion = compute_motion(frames, kind, estimator)
        frame_mean = np.abs(motion).mean(axis=(1, 2, 3)).astype(np.float32)
        write_arrays(dst, motion=motion.astype(np.float16), frame_mean=frame_mean)
        return {"frames": len(frames), "seconds": time.perf_counter() - started}

    stats = extract_each(manifest, root, cache_dir, extract, kind, catch=())
    return {
        "kind": kind,
        "layout": CACHE_LAYOUT,
        "videos": len(manifest),
        "computed_now": stats.extracted,
        "reused": stats.skipped_existing,
        "frames_per_second": stats.frames / stats.seconds if stats.seconds > 0 and stats.frames else None,
        "flow_estimator": getattr(estimator, "name", None),
        "short_side": short_side,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--root", required=True, type=Path, help="dataset root the manifest's paths are relative to")
    parser.add_argument("--kind", required=True, choices=sorted(KINDS))
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--cache-dir", required=True, type=Path)
    parser.add_argument("--summary", required=True, type=Path)
    parser.add_argument("--raft-weights", default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    cfg = load_scale(args.scale)["motion"]
    try:
        estimator = None if args.kind == "diff" else make_flow_estimator(
            cfg["flow_estimator"], args.raft_weights, args.device, int(cfg.get("raft_flow_updates", 12))
        )
        summary = build_cache(pd.read_csv(args.manifest), args.root, args.kind, args.cache_dir, int(cfg["short_side"]), estimator)
    except SuiteError as exc:
        sys.exit(f"error: {exc}")
    summary["flow_estimator"] = summary["flow_estimator"] or "none (frame difference)"
    write_json(args.summary, summary)


if __name__ == "__main__":
    main()
