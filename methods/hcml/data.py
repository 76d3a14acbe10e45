"""HCML's training clips (suppl. D.2): one clip per video and epoch, random temporal position
("temporal jittering"), scale jitter of the short side (the clip section's `short_side_jitter`, absent:
none), random crop and horizontal flip; seeded by (seed, epoch, video). The label
rides along for the joint training (Eq. 5); the self-supervised phase ignores it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.errors import SuiteError
from datasets.clips.reader import ClipReader, clip_spec
from datasets.clips.sampling import plan_train_clip, random_short_side
from methods.training.method import EpochSeededVideos


class HCMLClips(EpochSeededVideos):
    def __init__(self, videos: pd.DataFrame, root: Path, cfg: dict, seed: int, video_dir: Path | None = None):
        super().__init__(videos, seed)
        self.reader = ClipReader(root, clip_spec(cfg["clip"]), cfg["normalize_mean"], cfg["normalize_std"],
                                 video_dir=video_dir)
        self.short_side_jitter = cfg["clip"].get("short_side_jitter")
        if self.short_side_jitter is not None:  # a bad range is named before training, not at the first clip
            random_short_side(self.short_side_jitter, self.reader.spec, np.random.default_rng(0))
        short = self.videos[self.videos["num_frames"] < self.reader.spec.span]
        if len(short):  # a clip of the method's span cannot be cut from them: name them, drop nothing silently
            raise SuiteError(f"HCML clips span {self.reader.spec.span} frames ({self.reader.spec.num_frames} x stride "
                             f"{self.reader.spec.stride}); shorter videos: {', '.join(map(str, short['video_id'][:10]))}")

    def __getitem__(self, index: int) -> dict:
        row = self.videos.iloc[index]
        rng = self.sample_rng(index)
        side = None if self.short_side_jitter is None else random_short_side(self.short_side_jitter, self.reader.spec, rng)
        plan = plan_train_clip(self.reader.num_frames(row), self.reader.frame_hw(row, side), self.reader.spec, rng,
                               short_side=side)
        # the video id rides along so that the engine's stop on a non-finite loss names the videos
        return {"clip": self.reader(row, plan), "label": torch.tensor(int(row.label)), "video_id": str(row.video_id)}
