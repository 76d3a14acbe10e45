"""CMD pretraining samples (§3.2, §3.3, §4.1): per video, the RGB clip (V-Network), an I-frame
around it (I-Network), the motion vectors of the frames after it (M-Network, positive) and three
motion-vector clips from elsewhere in the same video (hard negatives).

Planned by `methods.cmd.sampling.plan_cmd_sample`; I-frames and vectors come from the `compressed`
cache (`datasets.motion.compressed`, rule `cmd_compressed`), cut by its `mv_clip`.

- `clip`: (3, T, crop, crop), colour-augmented and normalised as every RGB clip (ClipReader);
- `iframe`: (3, 1, crop, crop), its own random crop and flip, the same colour augmentations;
- `motion`: (2, 8, crop, crop), the clip's crop and flip; `negatives`: (3, 2, 8, crop, crop);
- `video_index`.

At test time (the retrieval protocol on the checkpoint's `extra_encoders`), `CMDTestInputs` cuts
the I-Network's and M-Network's views with `plan_cmd_test_views`, the same I-frame and motion-window
rules as training, and the same `iframe_input` / `motion_vectors`.

Table 4's "I + Optical flow" row (`motion.source: tvl1_flow`) reads the same windows from the TV-L1
flow of the `tvl1` cache (rule `mcl_motion`, `flow` array) instead of the motion vectors.

The flip of a motion-vector map: mirroring the columns turns a rightward motion into a leftward
one, so the x component must change sign (`mv_flip: negate_dx`, our default). The authors' code
(alibaba/Deep-Vision, Context-Motion-Decoupling/dataset/transforms.py, `MRandomHFlip`) mirrors
the columns only; `mv_flip: mirror_only` reproduces that.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from core.errors import ConfigError, CorruptInputError, MissingInputError, VideoDecodeError
from datasets.clips.reader import ClipReader, clip_spec, normalize
from datasets.clips.sampling import ClipPlan, ClipSpec, random_crop_offset, resized_hw
from datasets.motion.cache import VideoArrays
from datasets.motion.compressed import flip_mv, mv_clip, normalise_mv
from datasets.motion.tvl1 import dequantise_flow
from methods.cmd.sampling import plan_cmd_sample, plan_cmd_test_views
from methods.training.method import EpochSeededVideos

MV_FLIPS = ("negate_dx", "mirror_only")
MOTION_SOURCES = ("mv", "tvl1_flow")  # Table 4: motion vectors (the paper's) or TV-L1 optical flow


def motion_vectors(mv: np.ndarray, grid: int, frame_hw: tuple[int, int], plan: ClipPlan, spec: ClipSpec,
                   flip: str = "negate_dx") -> torch.Tensor:
    """(2, T, crop, crop) network input of the motion vectors a plan names (`mv_clip`).

    `flip`: `negate_dx` mirrors the columns and negates dx (a flipped video moves the other way);
    `mirror_only` mirrors the columns and keeps dx, as the authors' code does. Normalisation acts
    per value, so mirroring after it is the same as mirroring before."""
    if flip not in MV_FLIPS:
        raise ConfigError(f"methods/cmd/config.yaml: `mv_flip: {flip}` is not one of {', '.join(MV_FLIPS)}")
    if flip == "mirror_only" and plan.flip:
        maps = mv_clip(mv, grid, frame_hw, ClipPlan(plan.indices, plan.crop, False), spec)[:, :, ::-1]
    else:
        maps = mv_clip(mv, grid, frame_hw, plan, spec)
    return torch.from_numpy(np.ascontiguousarray(maps)).permute(3, 0, 1, 2).contiguous()


def flow_vectors(flow: np.ndarray, frame_hw: tuple[int, int], plan: ClipPlan, spec: ClipSpec,
                 flip: str = "negate_dx") -> torch.Tensor:
    """(2, T, crop, crop) network input of the TV-L1 flow under a plan, cut as `motion_vectors` cuts
    vectors, from the quantised flow (N, h, w, 2) of the `tvl1` cache (computed at h x w).

    Frame t gets flow t - 1 (frame t-1 to t), the motion a P-frame's vectors carry into frame t
    (frame 0 gets flow 0). Displacements are rescaled from the flow's pixels to the decoded frame's
    (`frame_hw`), in which motion vectors are measured, and the maps resized bilinearly to the RGB
    clip's frame size; then crop, flip and `normalise_mv` as for vectors (TV-L1 flow and vectors are
    both clipped at +-20 px). Our choices: the paper gives no detail of its flow input."""
    if flip not in MV_FLIPS:
        raise ConfigError(f"methods/cmd/config.yaml: `mv_flip: {flip}` is not one of {', '.join(MV_FLIPS)}")
    import cv2

    height, width = frame_hw
    out_h, out_w = resized_hw(height, width, spec.short_side)
    indices = np.maximum(plan.indices_array - 1, 0)
    maps = dequantise_flow(np.asarray(flow)[indices]) * (height / flow.shape[1])
    maps = np.stack([cv2.resize(m, (out_w, out_h), interpolation=cv2.INTER_LINEAR) for m in maps])
    top, left = plan.crop
    maps = maps[:, top:top + spec.crop_size, left:left + spec.crop_size]
    if plan.flip:
        maps = flip_mv(maps) if flip == "negate_dx" else maps[:, :, ::-1]
    maps = normalise_mv(maps)
    return torch.from_numpy(np.ascontiguousarray(maps)).permute(3, 0, 1, 2).contiguous()


def iframe_input(frame: np.ndarray, spec: ClipSpec, crop: tuple[int, int], flip: bool) -> torch.Tensor:
    """(3, 1, crop, crop) floats in [0, 1] of one I-frame (H, W, 3) uint8: resized so its short side
    is `spec.short_side` (bilinear, as RGB clips), cropped at `crop` and flipped if `flip`."""
    x = torch.from_numpy(np.array(frame)).permute(2, 0, 1)[None].float().div_(255.0)  # a copy: the cache is read-only
    x = F.interpolate(x, size=resized_hw(frame.shape[0], frame.shape[1], spec.short_side), mode="bilinear",
                      align_corners=False, antialias=True)
    top, left = crop
    x = x[..., top:top + spec.crop_size, left:left + spec.crop_size]
    if flip:
        x = x.flip(-1)
    return x.permute(1, 0, 2, 3)  # (C, T=1, H, W)


class CMDPretrainData(EpochSeededVideos):
    def __init__(self, manifest: pd.DataFrame, root: str | Path, cache: str | Path, cfg: dict, seed: int,
                 video_dir: str | Path | None = None, flow_cache: str | Path | None = None):
        super().__init__(manifest, seed)
        self.cfg = cfg
        self.spec = clip_spec(cfg)
        self.tasks = set(cfg["tasks"])
        self.reader = ClipReader(root, self.spec, cfg["normalize_mean"], cfg["normalize_std"], video_dir=video_dir,
                                 decoder=cfg["decoder"], augment=cfg["augment"])
        self.compressed = VideoArrays(cache, ("iframes", "iframe_indices", "mv", "grid"), "compressed-domain",
                                      "rule cmd_compressed, datasets.motion.compressed")
        source = cfg["motion"]["source"]
        if source not in MOTION_SOURCES:
            raise ConfigError(f"methods/cmd/config.yaml: `motion.source: {source}` is not one of {', '.join(MOTION_SOURCES)}")
        self.flow = None
        if source == "tvl1_flow" and "motion" in self.tasks:
            if flow_cache is None:
                raise MissingInputError("motion.source tvl1_flow reads the `tvl1` cache's flow; pass --input tvl1=DIR")
            self.flow = VideoArrays(flow_cache, ("flow",), "TV-L1 flow",
                                    "rule mcl_motion with motion_inputs.tvl1_store_flow: true, datasets.motion.tvl1")

    def __getitem__(self, index: int) -> dict:
        row = self.videos.iloc[index]
        cfg, spec = self.cfg, self.spec
        rng = self.sample_rng(index)
        torch.manual_seed(int(rng.integers(2**31)))
        data = self.compressed(row.video_id)
        frames = min(int(row.num_frames), len(data["mv"]))  # frames with both RGB and motion vectors
        flow = self.flow(row.video_id)["flow"] if self.flow is not None else None
        if flow is not None:
            frames = min(frames, len(flow))
        motion = cfg["motion"]
        try:
            plan = plan_cmd_sample(frames, data["iframe_indices"], self.reader.frame_hw(row), spec, rng,
                                   int(motion["frames"]), int(motion["negatives"]), str(motion["period"]))
        except ValueError as err:
            raise VideoDecodeError(f"video {row.video_id} ({row.path}): {err}; drop it from the manifest "
                                   f"(preparation's `min_frames`) or shorten the clip") from None
        sample = {"clip": self.reader(row, plan.clip), "video_index": torch.tensor(index)}
        height, width = data["iframes"].shape[1:3]
        if resized_hw(height, width, spec.short_side) != self.reader.frame_hw(row):
            raise CorruptInputError(f"video {row.video_id}: compressed-domain frames are {height}x{width}, the manifest "
                                    f"says {row.height}x{row.width}; recompute its cache (datasets.motion.compressed)")
        if "context" in self.tasks:
            k = int(np.flatnonzero(data["iframe_indices"] == plan.iframe)[0])
            crop = random_crop_offset(*self.reader.frame_hw(row), spec.crop_size, rng)
            frame = iframe_input(data["iframes"][k], spec, crop, bool(rng.random() < 0.5))
            if self.reader.augment is not None:  # §4.1: the clips' augmentations for I-frames too
                frame = self.reader.augment(frame.permute(1, 0, 2, 3)).permute(1, 0, 2, 3)
            sample["iframe"] = normalize(frame, cfg["normalize_mean"], cfg["normalize_std"])
        if "motion" in self.tasks:
            mspec = ClipSpec(int(motion["frames"]), 1, spec.crop_size, spec.short_side)
            grid, flip = int(data["grid"]), str(cfg["mv_flip"])
            if flow is None:
                cut = lambda p: motion_vectors(data["mv"], grid, (height, width), p, mspec, flip)  # noqa: E731
            else:
                cut = lambda p: flow_vectors(flow, (height, width), p, mspec, flip)  # noqa: E731
            sample["motion"] = cut(plan.motion)
            sample["negatives"] = (torch.stack([cut(p) for p in plan.negatives]) if plan.negatives
                                   else sample["motion"].new_zeros((0, *sample["motion"].shape)))
        return sample


STREAMS = ("iframe", "mv")  # what an `input: {kind: compressed}` encoder reads: I-frames or motion vectors


class CMDTestInputs:
    """The test views of an encoder whose input block is `kind: compressed` (the checkpoint's
    `extra_encoders`: CMD's I-Network, `stream: iframe`, and M-Network, `stream: mv`), cut from the
    `compressed` cache as pretraining feeds them (`plan_cmd_test_views`): (3, 1, crop, crop)
    normalised I-frames or (2, motion_frames, crop, crop) normalised motion-vector maps, at the
    crops of `spec` (whose short side the frames are resized to), unflipped."""

    def __init__(self, cache: str | Path, input_block: dict, spec: ClipSpec):
        stream = input_block.get("stream")
        if input_block.get("kind") != "compressed" or stream not in STREAMS:
            raise ConfigError(f"an input block {input_block.get('kind')!r} / stream {stream!r} is not a compressed-domain "
                              f"input (stream one of {', '.join(STREAMS)})")
        self.input, self.spec, self.stream = input_block, spec, stream
        self.motion_frames = int(input_block.get("motion_frames", 8))
        self.period = str(input_block.get("period", "future"))
        self.arrays = VideoArrays(cache, ("iframes", "iframe_indices", "mv", "grid"), "compressed-domain",
                                  "rule cmd_compressed, datasets.motion.compressed")

    def __call__(self, row) -> list[torch.Tensor]:
        data = self.arrays(row.video_id)
        height, width = data["iframes"].shape[1:3]
        frames = min(int(row.num_frames), len(data["mv"]))
        try:
            views = plan_cmd_test_views(frames, data["iframe_indices"], resized_hw(height, width, self.spec.short_side),
                                        self.spec, self.motion_frames, self.period)
        except ValueError as err:
            raise VideoDecodeError(f"video {row.video_id} ({row.path}): {err}") from None
        if self.stream == "iframe":
            keys = {(v.iframe, v.clip.crop) for v in views}
            index = {int(f): k for k, f in enumerate(data["iframe_indices"])}
            cut = {key: normalize(iframe_input(data["iframes"][index[key[0]]], self.spec, key[1], False),
                                  self.input["mean"], self.input["std"]) for key in keys}
            return [cut[(v.iframe, v.clip.crop)] for v in views]
        mspec = ClipSpec(self.motion_frames, 1, self.spec.crop_size, self.spec.short_side)
        return [motion_vectors(data["mv"], int(data["grid"]), (height, width), v.motion, mspec) for v in views]
