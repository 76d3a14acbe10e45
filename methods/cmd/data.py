"""CMD pretraining samples (§3.2, §3.3, §4.1): per video, the RGB clip (V-Network), an I-frame
around it (I-Network), the motion vectors of the frames after it (M-Network, positive) and three
motion-vector clips from elsewhere in the same video (hard negatives).

Planned by `methods.cmd.sampling.plan_cmd_sample`; I-frames and vectors come from the `compressed`
cache (`datasets.motion.compressed`, rule `cmd_compressed`), cut by its `mv_clip`.

- `clip`: (3, T, crop, crop), colour-augmented and normalised as every RGB clip (ClipReader);
- `iframe`: (3, 1, crop, crop), its own random crop and flip, the same colour augmentations;
- `motion`: (2, 8, crop, crop), the clip's crop and flip; `negatives`: (3, 2, 8, crop, crop);
- `video_index`.

The flip of a motion-vector map: mirroring the columns turns a rightward motion into a leftward
one, so the x component must change sign (`mv_flip: negate_dx`, our default). The authors' code
(alibaba/Deep-Vision, Context-Motion-Decoupling/dataset/transforms.py, `MRandomHFlip`) mirrors
the columns only; `mv_flip: mirror_only` reproduces that.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from core.errors import ConfigError, CorruptInputError, MissingInputError, VideoDecodeError
from datasets.clips.reader import ClipReader, clip_spec, normalize
from datasets.clips.sampling import ClipPlan, ClipSpec, random_crop_offset, resized_hw
from datasets.motion.cache import cache_path
from datasets.motion.compressed import mv_clip
from methods.cmd.sampling import plan_cmd_sample

MV_FLIPS = ("negate_dx", "mirror_only")


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


def iframe_input(frame: np.ndarray, spec: ClipSpec, crop: tuple[int, int], flip: bool) -> torch.Tensor:
    """(3, 1, crop, crop) floats in [0, 1] of one I-frame (H, W, 3) uint8: resized so its short side
    is `spec.short_side` (bilinear, as RGB clips), cropped at `crop` and flipped if `flip`."""
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float().div_(255.0)
    x = F.interpolate(x, size=resized_hw(frame.shape[0], frame.shape[1], spec.short_side), mode="bilinear",
                      align_corners=False, antialias=True)
    top, left = crop
    x = x[..., top:top + spec.crop_size, left:left + spec.crop_size]
    if flip:
        x = x.flip(-1)
    return x.permute(1, 0, 2, 3)  # (C, T=1, H, W)


class CompressedVideo:
    """The cached I-frames and motion vectors of one video (keeps the last one read)."""

    def __init__(self, cache_dir: str | Path):
        self.cache_dir, self._video_id, self._data = Path(cache_dir), None, None

    def __call__(self, video_id) -> dict:
        if self._video_id != video_id:
            path = cache_path(self.cache_dir, video_id)
            if not path.is_file():
                raise MissingInputError(f"video {video_id}: no compressed-domain cache {path}; compute the `compressed` "
                                        f"cache of the manifest's videos (rule cmd_compressed, datasets.motion.compressed) "
                                        f"into {self.cache_dir}")
            try:
                with np.load(path) as data:
                    arrays = {k: data[k] for k in ("iframes", "iframe_indices", "mv", "grid")}
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
                raise CorruptInputError(f"video {video_id}: unreadable compressed-domain cache {path} ({err}); "
                                        f"delete it and recompute it (datasets.motion.compressed)") from None
            self._data, self._video_id = arrays, video_id
        return self._data


class CMDPretrainData(Dataset):
    def __init__(self, manifest: pd.DataFrame, root: str | Path, cache: str | Path, cfg: dict, seed: int,
                 video_dir: str | Path | None = None):
        self.videos = manifest.reset_index(drop=True)
        self.cfg, self.seed, self.epoch = cfg, seed, 0
        self.spec = clip_spec(cfg)
        self.tasks = set(cfg["tasks"])
        self.reader = ClipReader(root, self.spec, cfg["normalize_mean"], cfg["normalize_std"], video_dir=video_dir,
                                 decoder=cfg["decoder"], augment=cfg["augment"])
        self.compressed = CompressedVideo(cache)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        row = self.videos.iloc[index]
        cfg, spec = self.cfg, self.spec
        # One generator per (seed, epoch, video): runs are reproducible and resumable per epoch.
        rng = np.random.default_rng([self.seed, self.epoch, index])
        torch.manual_seed(int(rng.integers(2**31)))
        data = self.compressed(row.video_id)
        frames = min(int(row.num_frames), len(data["mv"]))  # frames with both RGB and motion vectors
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
            cut = lambda p: motion_vectors(data["mv"], grid, (height, width), p, mspec, flip)  # noqa: E731
            sample["motion"] = cut(plan.motion)
            sample["negatives"] = (torch.stack([cut(p) for p in plan.negatives]) if plan.negatives
                                   else sample["motion"].new_zeros((0, *sample["motion"].shape)))
        return sample
