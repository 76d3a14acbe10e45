"""Frozen-feature extraction shared by the protocols that train nothing on the backbone (linear,
retrieval, SVM): a checkpoint's transfer encoder (CONTRIBUTING.md, "Checkpoints")
in eval mode, fed training clips (random position, crop and flip, seeded per video) or the
temporal x spatial test views of each video.

A checkpoint's `extra_encoders` (CONTRIBUTING.md, "Checkpoints") are read the same way, by name:
`FrozenEncoder(checkpoint, ..., name=...)`. An encoder whose input is `kind: compressed` (CMD's
I-Network and M-Network) reads I-frames or motion-vector maps of the `compressed` cache given as
--motion-cache, cut by `methods.cmd.data.CMDTestInputs` as CMD's pretraining feeds them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from core.errors import SuiteError
from datasets.clips.reader import ClipReader, MotionClipReader
from datasets.clips.sampling import ClipSpec, plan_test_clips, plan_train_clip
from methods.backbones import build_backbone


class FrozenEncoder:
    """A checkpoint's transfer encoder and the clip reader of its input."""

    def __init__(self, checkpoint: dict, root: Path, motion_cache: Path | None, device: torch.device,
                 name: str | None = None):
        if name is None:
            enc, self.input = checkpoint["encoder"], checkpoint["input"]
        else:
            enc = (checkpoint.get("extra_encoders") or {}).get(name)
            if enc is None:
                raise SuiteError(f"the checkpoint has no extra encoder {name!r} (it has: "
                                 f"{', '.join(checkpoint.get('extra_encoders') or {}) or 'none'})")
            self.input = enc["input"]
        self.backbone = build_backbone(enc["backbone"], width_multiplier=enc["width_multiplier"], in_channels=enc["in_channels"])
        self.backbone.load_state_dict(enc["state_dict"])
        self.backbone.eval().to(device)  # frozen: eval-mode BN, no gradients
        self.root, self.motion_cache, self.device = root, motion_cache, device
        if self.input["modality"] == "motion" and motion_cache is None:
            raise SuiteError(f"this checkpoint's encoder{'' if name is None else ' ' + name} reads "
                             f"{self.input['kind']} inputs: pass --motion-cache")

    def spec(self, test: bool, temporal_views: int, spatial_views: int, test_crop_size: int | None = None,
             test_short_side: int | None = None) -> ClipSpec:
        c = self.input["clip"]
        crop, short = int(c["crop_size"]), int(c["short_side"])
        if test and (self.input["modality"] == "rgb" or self.input["kind"] == "compressed"):
            # Test views: the short side is resized to the test crop and 3 crops tile the long
            # side (PySlowFast's multi-view test), or to `test_short_side` before the crops (MCL
            # §4.2: short edge 256, centre crop 224). I-frames and motion-vector maps are resized
            # from the compressed cache as RGB frames; other motion is cut from its cache as cached.
            crop = int(test_crop_size or crop)
            short = int(test_short_side or crop)
        return ClipSpec(int(c["num_frames"]), int(c["stride"]), crop, short, temporal_views, spatial_views)

    def reader(self, spec: ClipSpec) -> ClipReader | MotionClipReader:
        """Reader of this encoder's input clips at `spec`: decoded RGB or cached motion, unaugmented."""
        if self.input["kind"] == "compressed":
            raise SuiteError("a compressed-domain encoder reads whole test views (test_views), not clips of plans")
        if self.input["modality"] == "rgb":
            return ClipReader(self.root, spec, self.input["mean"], self.input["std"])
        return MotionClipReader(self.motion_cache, spec, self.input["motion_scale"])

    @torch.no_grad()
    def embed(self, clips: list[torch.Tensor], batch_size: int) -> torch.Tensor:
        out = [self.backbone(torch.stack(clips[i : i + batch_size]).to(self.device)).cpu() for i in range(0, len(clips), batch_size)]
        return torch.cat(out)


def extract(encoder: FrozenEncoder, videos: pd.DataFrame, test: bool, cfg: dict, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (videos, views, D) and labels (videos,): the `temporal_views` x `spatial_views`
    test views of each video, or `train_clips_per_video` random clips drawn with seed (seed, video)."""
    views = (int(cfg["temporal_views"]), int(cfg["spatial_views"])) if test else (1, 1)
    spec = encoder.spec(test, *views, cfg.get("test_crop_size"), cfg.get("test_short_side"))
    if encoder.input["kind"] == "compressed":
        return extract_compressed(encoder, videos, test, spec, int(cfg["batch_size"]))
    reader = encoder.reader(spec)
    features = []
    for n, row in enumerate(tqdm(list(videos.itertuples()), desc="test views" if test else "train clips", unit="video")):
        num_frames, hw = reader.num_frames(row), reader.frame_hw(row)
        if test:
            plans = plan_test_clips(num_frames, hw, spec)
        else:
            rng = np.random.default_rng([seed, n])
            plans = [plan_train_clip(num_frames, hw, spec, rng) for _ in range(int(cfg["train_clips_per_video"]))]
        features.append(encoder.embed([reader(row, plan) for plan in plans], int(cfg["batch_size"])))
    return torch.stack(features), torch.as_tensor(videos["label"].to_numpy())


def extract_compressed(encoder: FrozenEncoder, videos: pd.DataFrame, test: bool, spec: ClipSpec,
                       batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`extract` for an encoder reading I-frames or motion vectors (`kind: compressed`): each
    video's test views as CMD's pretraining feeds them (methods/cmd/sampling.py plan_cmd_test_views;
    its docstring says how the temporal views map to I-frames and motion-vector windows)."""
    from methods.cmd.data import CMDTestInputs  # the one reader of CMD's compressed-domain inputs

    if not test:
        raise SuiteError("a compressed-domain encoder is evaluated on test views only (retrieval), not on training clips")
    reader = CMDTestInputs(encoder.motion_cache, encoder.input, spec)
    features = [encoder.embed(reader(row), batch_size)
                for row in tqdm(list(videos.itertuples()), desc=f"{encoder.input.get('stream')} views", unit="video")]
    return torch.stack(features), torch.as_tensor(videos["label"].to_numpy())


def video_features(checkpoint: dict, train: pd.DataFrame, test: pd.DataFrame, root: Path, motion_cache: Path | None,
                   cfg: dict, seed: int, name: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train features, train labels, test features, test labels), one feature per video: the mean
    of its test views' clip features, for both splits (the SVM and retrieval protocols sample the
    training videos as they sample the test videos). `name`: one of the checkpoint's
    `extra_encoders` instead of its transfer encoder."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    encoder = FrozenEncoder(checkpoint, root, motion_cache, device, name)
    train_x, train_y = extract(encoder, train, True, cfg, seed)
    test_x, test_y = extract(encoder, test, True, cfg, seed)
    return train_x.mean(1), train_y, test_x.mean(1), test_y
