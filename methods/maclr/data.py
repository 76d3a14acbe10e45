"""MaCLR pretraining samples: two visual clips and two motion clips of one video (§3.1).

- v^q, v^k: two visual clips at independent random positions ("random clips with
  spatiotemporal jittering", after [57]), each with the §4.1 augmentations.
- m^q, m^k: two motion clips, sampled only where the motion is strong (mean motion above
  gamma, §3.1 "Motion thresholding"); with `temporal_jitter` they are drawn independently of
  the visual clips (§3.1: "v^q is not necessarily in temporal synchronization with m^k");
  without it (Table 1c "-t. jitter"), m^k covers the time span of v^q and m^q that of v^k.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from datasets.clips.reader import ClipReader, MotionClipReader, clip_spec
from datasets.clips.sampling import ClipPlan, ClipSpec, clip_indices, random_crop_offset, random_start, valid_starts
from methods.training.method import EpochSeededVideos


def motion_allowed_starts(frame_mean: np.ndarray, spec: ClipSpec, threshold: float) -> np.ndarray:
    """Boolean mask over clip starts: True where the clip's mean motion exceeds `threshold`
    (MaCLR §3.1: sum_i P_i / K > gamma, here averaged over the clip's frames)."""
    n = valid_starts(len(frame_mean), spec)
    if n == 0:
        return np.zeros(0, dtype=bool)
    per_clip = np.stack([frame_mean[clip_indices(s, spec)].mean() for s in range(n)])
    return per_clip > threshold


def sample_starts(num_frames: int, visual: ClipSpec, motion: ClipSpec, allowed: np.ndarray | None, jitter: bool,
                  rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Starts of (v^q, v^k) and of (m^q, m^k).

    With temporal jitter (MaCLR §3.1) the motion clips are drawn independently of the visual
    ones, among the starts `allowed` by the motion threshold. Without it (Table 1c "-t. jitter")
    the pairs [v^q, m^k] and [m^q, v^k] of Eq. (2) are synchronised: each shares one start,
    drawn where both clips fit and the motion clip passes the threshold.
    """
    if jitter:
        v_starts = [random_start(num_frames, visual, rng) for _ in range(2)]
        m_starts = [random_start(num_frames, motion, rng, allowed) for _ in range(2)]
        return v_starts, m_starts
    both = min(valid_starts(num_frames, visual), valid_starts(num_frames, motion))
    mask = np.ones(both, dtype=bool) if allowed is None else allowed[:both]
    if not mask.any():  # only clips that overrun the visual span pass: fall back to any common start
        mask = np.ones(both, dtype=bool)
    v_starts = [random_start(num_frames, motion, rng, mask) for _ in range(2)]
    return v_starts, v_starts[::-1]  # m^q shares v^k's start, m^k shares v^q's


class MaCLRPretrainData(EpochSeededVideos):
    def __init__(self, manifest: pd.DataFrame, root: str | Path, motion_cache: str | Path | None, cfg: dict, seed: int,
                 video_dir: str | Path | None = None):
        """`video_dir`: read `<video_dir>/<video_id>.mp4` (the H.264 CFR transcodes DALI's NVDEC
        path decodes) instead of the original files under `root`."""
        super().__init__(manifest, seed)
        self.cfg = cfg
        self.use_visual = "visual" in cfg["pathways"]
        self.use_motion = "motion" in cfg["pathways"]
        self.visual_spec = clip_spec(cfg["visual"])
        self.motion_spec = clip_spec(cfg["motion"])
        # MaCLR §4.1 visual augmentations (flip and crop are part of the clip plan).
        self.visual = ClipReader(root, self.visual_spec, cfg["visual"]["normalize_mean"], cfg["visual"]["normalize_std"],
                                 video_dir=video_dir, decoder=cfg["decoder"], augment=cfg["visual"]["augment"])
        self.motion = None
        if self.use_motion:
            scale = cfg["motion"]["input_scale"][cfg["motion"]["input"]]
            self.motion = MotionClipReader(motion_cache, self.motion_spec, scale)

    def _visual(self, row, start: int, rng: np.random.Generator) -> torch.Tensor:
        spec = self.visual_spec
        h, w = self.visual.frame_hw(row)
        flip = bool(rng.random() < self.cfg["visual"]["augment"]["flip_p"])
        plan = ClipPlan(tuple(clip_indices(start, spec).tolist()), random_crop_offset(h, w, spec.crop_size, rng), flip)
        return self.visual(row, plan)

    def _motion(self, row, start: int, rng: np.random.Generator) -> torch.Tensor:
        spec = self.motion_spec
        h, w = self.motion.frame_hw(row)
        plan = ClipPlan(tuple(clip_indices(start, spec).tolist()), random_crop_offset(h, w, spec.crop_size, rng), False)
        return self.motion(row, plan)

    def __getitem__(self, index: int) -> dict:
        row = self.videos.iloc[index]
        rng = self.sample_rng(index)
        torch.manual_seed(int(rng.integers(2**31)))
        n = int(row.num_frames)
        # `threshold_fallback` flags a video with no clip above gamma, sampled uniformly instead;
        # the trainer counts these in its log, so the fallback is never silent.
        sample = {"video_index": torch.tensor(index), "threshold_fallback": torch.tensor(False)}
        allowed = None
        if self.use_motion:
            _, frame_mean = self.motion.video(row)
            n = self.motion.num_frames(row)
            allowed = motion_allowed_starts(frame_mean[:n], self.motion_spec, float(self.cfg["motion"]["threshold"]))
            if not allowed.any():
                sample["threshold_fallback"] = torch.tensor(True)
                allowed = None
        jitter = self.cfg["temporal_jitter"] or not (self.use_motion and self.use_visual)
        v_starts, m_starts = sample_starts(n, self.visual_spec, self.motion_spec, allowed, jitter, rng)
        if self.use_visual:
            sample["v_q"], sample["v_k"] = (self._visual(row, s, rng) for s in v_starts)
        if self.use_motion:
            sample["m_q"], sample["m_k"] = (self._motion(row, s, rng) for s in m_starts)
        return sample
