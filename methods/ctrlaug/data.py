"""Controllable Augmentations' pretraining samples (§3.1, §4.2): per video, the global view (sparse
frames, weak crop) and K local clips cropped inside it, planned by
`methods.ctrlaug.sampling.plan_ctrlaug_sample`, decoded by the shared `ClipReader` at each view's
box, resized to the network input and kept in [0, 1]: the low-level transformations tau_l, drawn per
iteration for 32 groups of the batch (§4.4), are applied by the model on the whole batch
(methods/ctrlaug/augment.py), then the views are normalised there.

- `global`: (3, T_g, S, S); `locals`: (K, 3, T_l, S, S);
- `global_box`: (7,), `local_boxes`: (K, 7): the recorded position parameters (sampling.BOX_FIELDS);
- `video_index`.
"""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from core.errors import ConfigError, VideoDecodeError
from datasets.clips.reader import ClipReader
from datasets.clips.sampling import ClipSpec
from methods.ctrlaug.sampling import View, plan_ctrlaug_sample
from methods.training.method import EpochSeededVideos


def resize_view(clip: torch.Tensor, size: int) -> torch.Tensor:
    """(3, T, h, w) -> (3, T, size, size), bilinear per frame."""
    if clip.shape[-2:] == (size, size):
        return clip
    frames = F.interpolate(clip.permute(1, 0, 2, 3), size=(size, size), mode="bilinear", align_corners=False)
    return frames.permute(1, 0, 2, 3).contiguous()


class CtrlAugPretrainData(EpochSeededVideos):
    def __init__(self, manifest: pd.DataFrame, cfg: dict, root, video_dir, seed: int):
        if cfg.get("decoder", "cpu") != "cpu":
            raise ConfigError("methods/ctrlaug/config.yaml: `decoder` must be cpu (views of several crop sizes are "
                              "resized after decoding, which the batched DALI feed does not do)")
        super().__init__(manifest, seed)
        self.cfg, self.root, self.video_dir = cfg, root, video_dir
        self.input_size = int(cfg["clip"]["crop_size"])
        self.short_side = int(cfg["clip"]["short_side"])
        self._readers: dict[tuple[int, int], ClipReader] = {}

    def reader(self, frames: int, crop: int) -> ClipReader:
        """A reader cutting `crop`-pixel boxes, without augmentation or normalisation ([0, 1])."""
        key = (frames, crop)
        if key not in self._readers:
            spec = ClipSpec(frames, 1, crop, self.short_side)
            self._readers[key] = ClipReader(self.root, spec, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], video_dir=self.video_dir)
        return self._readers[key]

    def read(self, row, view: View) -> torch.Tensor:
        return resize_view(self.reader(len(view.plan.indices), view.crop)(row, view.plan), self.input_size)

    def __getitem__(self, index: int) -> dict:
        row = self.videos.iloc[index]
        cfg = self.cfg
        rng = self.sample_rng(index)
        hw = self.reader(1, self.input_size).frame_hw(row)
        g, l = cfg["global_view"], cfg["clip"]
        try:
            plan = plan_ctrlaug_sample(int(row.num_frames), hw, global_frames=int(g["num_frames"]),
                                       global_scale=tuple(g["scale"]), local_frames=int(l["num_frames"]),
                                       local_stride=int(l["stride"]), local_scale=tuple(cfg["local_scale"]),
                                       num_clips=int(cfg["num_clips"]), rng=rng)
        except ValueError as err:
            raise VideoDecodeError(f"video {row.video_id} ({row.path}), local-global sampling: {err}; drop it from the "
                                   f"manifest (preparation's `min_frames`) or shorten the local clips") from None
        return {
            "global": self.read(row, plan.global_view),
            "locals": torch.stack([self.read(row, v) for v in plan.local_views]),
            "global_box": torch.tensor(plan.global_view.box, dtype=torch.float64),
            "local_boxes": torch.tensor([v.box for v in plan.local_views], dtype=torch.float64),
            "video_index": torch.tensor(index),
        }
