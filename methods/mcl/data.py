"""MCL pretraining samples: two RGB tubelets of one video (the query and its positive key) planned
by the motion-focused augmentation (§3.2, `methods.mcl.sampling`), and the query's ST-motion
cut to the same frames and crop (the target of the motion alignment loss, §3.3).

- `q`, `k`: (3, T, crop, crop) clips with the §3.2 appearance augmentations; TA (temporal
  sampling) and SA (spatial cropping) are the config's `augmentation.temporal` / `.spatial`.
- `motion`: (T, S, S) ST-motion of the query clip, average-pooled to S = `mal.motion_map_size`
  (the model pools it again to the feature map's exact size); only when L_MAL is on.
- `video_index`: so the queue never offers a query its own video as a negative.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from datasets.clips.reader import ClipReader, clip_spec
from datasets.clips.sampling import ClipPlan, plan_train_clip
from core.errors import CorruptInputError, VideoDecodeError
from datasets.motion.cache import VideoArrays
from methods.mcl.sampling import plan_motion_focused_clip, resize_map
from methods.training.method import EpochSeededVideos


def uses_motion(cfg: dict) -> bool:
    """Whether a variant reads the TV-L1 motion cache: for TA, SA or L_MAL."""
    aug = cfg["augmentation"]
    return bool(aug["temporal"] or aug["spatial"] or cfg["mal"]["terms"])


class MotionMaps:
    """ST-motion (N, H, W) of the videos in a `datasets.motion.tvl1` cache, memory-mapped, with its
    per-frame means (N,), checked for the layout and finiteness that L_MAL and the TA/SA choices
    need; keeps the last video, since a sample cuts two clips of one video."""

    def __init__(self, cache_dir: str | Path):
        self.arrays = VideoArrays(cache_dir, ("motion", "motion_frame_mean"), "TV-L1 motion",
                                  "the `tvl1` motion cache of the manifest's videos, datasets.motion.tvl1")
        self._checked = None

    def __call__(self, video_id) -> tuple[np.ndarray, np.ndarray]:
        """(motion (N, H, W), motion_frame_mean (N,)) of one video."""
        data = self.arrays(video_id)
        motion, frame_mean = data["motion"], data["motion_frame_mean"]
        if self._checked != video_id:
            path = self.arrays.path(video_id)
            if motion.ndim != 3 or frame_mean.shape != motion.shape[:1]:  # a flow field or a single map is another file's layout
                self.arrays.forget()
                raise CorruptInputError(f"video {video_id}: TV-L1 motion cache {path} holds `motion` of shape {motion.shape}, "
                                        f"not (frames, height, width) with one `motion_frame_mean` per frame "
                                        f"(shape {frame_mean.shape}); delete it and recompute it (datasets.motion.tvl1)")
            # A frame's mean is finite exactly when the frame is (the mean of finite float16 values
            # stays within float16's range), so only a bad cache costs a read of every frame.
            if not np.isfinite(frame_mean).all():  # would make L_MAL and the TA/SA choices non-finite
                bad = int((~np.isfinite(motion)).sum())
                self.arrays.forget()
                raise CorruptInputError(f"video {video_id}: TV-L1 motion cache {path} holds {bad} non-finite value(s); "
                                        f"delete it and recompute it (datasets.motion.tvl1)")
            self._checked = video_id
        return motion, frame_mean


def clip_motion(motion: np.ndarray, plan: ClipPlan, frame_hw: tuple[int, int], crop: int, size: int) -> torch.Tensor:
    """The ST-motion under a planned clip: its frames, resized as the RGB frames are, cropped and
    flipped as the clip is, then average-pooled to size x size, (T, size, size) float32."""
    top, left = plan.crop
    frames = np.stack([resize_map(motion[i], *frame_hw)[top : top + crop, left : left + crop] for i in plan.indices])
    maps = torch.from_numpy(frames)
    if plan.flip:
        maps = maps.flip(-1)
    return F.adaptive_avg_pool2d(maps, size)


class MCLPretrainData(EpochSeededVideos):
    def __init__(self, manifest: pd.DataFrame, root: str | Path, motion_cache: str | Path | None, cfg: dict, seed: int,
                 video_dir: str | Path | None = None):
        super().__init__(manifest, seed)
        self.cfg = cfg
        self.spec = clip_spec(cfg)
        self.reader = ClipReader(root, self.spec, cfg["normalize_mean"], cfg["normalize_std"], video_dir=video_dir,
                                 decoder=cfg["decoder"], augment=cfg["augment"])
        self.motion = MotionMaps(motion_cache) if uses_motion(cfg) else None

    def _plan(self, row, motion: np.ndarray | None, frame_mean: np.ndarray | None, rng: np.random.Generator,
              start_of: ClipPlan | None = None) -> ClipPlan:
        aug = self.cfg["augmentation"]
        frames = int(row.num_frames) if motion is None else len(motion)
        if frames < self.spec.span:
            what = "frames" if motion is None else f"frames with both RGB ({int(row.num_frames)}) and TV-L1 motion maps"
            raise VideoDecodeError(f"video {row.video_id} ({row.path}): {frames} {what}, fewer than the {self.spec.span} "
                                   f"a clip of {self.spec.num_frames} frames at stride {self.spec.stride} spans; "
                                   f"drop it from the manifest (preparation's `min_frames`) or recompute its motion cache")
        if motion is None:
            plan = plan_train_clip(int(row.num_frames), self.reader.frame_hw(row), self.spec, rng)
        else:
            plan = plan_motion_focused_clip(motion, self.spec, rng, temporal=bool(aug["temporal"]), spatial=bool(aug["spatial"]),
                                            frame_motion=frame_mean)
        if start_of is not None:  # `key_clip: same_frames`: the query's frames, a crop and flip of its own
            plan = ClipPlan(start_of.indices, plan.crop, plan.flip)
        return plan

    def __getitem__(self, index: int) -> dict:
        row = self.videos.iloc[index]
        rng = self.sample_rng(index)
        torch.manual_seed(int(rng.integers(2**31)))
        motion = frame_mean = None
        if self.motion is not None:
            motion, frame_mean = self.motion(row.video_id)
            n = min(len(motion), int(row.num_frames))  # frames with both RGB and motion
            motion, frame_mean = motion[:n], frame_mean[:n]
        query = self._plan(row, motion, frame_mean, rng)
        key = self._plan(row, motion, frame_mean, rng, query if self.cfg["key_clip"] == "same_frames" else None)
        sample = {"q": self.reader(row, query), "k": self.reader(row, key), "video_index": torch.tensor(index)}
        if self.cfg["mal"]["terms"]:
            sample["motion"] = clip_motion(motion, query, self.reader.frame_hw(row), self.spec.crop_size,
                                           int(self.cfg["mal"]["motion_map_size"]))
        return sample
