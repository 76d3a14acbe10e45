"""HCML on the shared engine (§3.2-3.3, suppl. C): a backbone with prime motion blocks (PMBs) after
res2, res3 and res4 (methods/backbones/hcml.py), the flow estimator that turns the lowest motion
features P^0 into optical flow for frame reconstruction (Eq. 2-3), and per-level predictors f_delta
for the hierarchical contrastive loss (Eq. 4), trained level by level (`stages`).

Hierarchy index i = 0, 1, 2 is the paper's P^0, P^1, P^2 (§3.2) and Table 1's levels 1, 2, 3 (the
PMBs after res2, res3, res4; `levels` in the config are the backbone's feature points 1, 2, 3).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from core.errors import ConfigError
from methods.backbones import build_backbone
from methods.backbones.hcml import FlowEstimator, HCMLNet
from methods.hcml.data import HCMLClips
from methods.hcml.losses import (hierarchical_contrastive_loss, photometric_loss, reconstruction_loss, smoothness_loss,
                                 warp)
from methods.training.checkpoint import input_block
from methods.training.method import DataSources, PretrainMethod, Stage, TransferEncoder


class Predictor(nn.Module):
    """f_delta(x) = W2_delta relu(W1 x) (§3.2): one hidden layer, W1 shared across the prediction steps."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, steps: int):
        super().__init__()
        self.shared = nn.Linear(in_dim, hidden)
        self.steps = nn.ModuleList(nn.Linear(hidden, out_dim) for _ in range(steps))

    def forward(self, x: torch.Tensor, delta: int) -> torch.Tensor:
        return self.steps[delta - 1](F.relu(self.shared(x)))


def split_epochs(epochs: int, weights: list[float]) -> list[int]:
    """`epochs` split in proportion to `weights` (largest remainders), summing to `epochs`."""
    total = float(sum(weights))
    exact = [epochs * w / total for w in weights]
    parts = [int(e) for e in exact]
    for i in sorted(range(len(weights)), key=lambda i: parts[i] - exact[i])[: epochs - sum(parts)]:
        parts[i] += 1
    return parts


class HCML(PretrainMethod):
    name = "hcml"

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        self.net = build_backbone(cfg["backbone"], width_multiplier=float(cfg["width_multiplier"]))
        self.self_supervised = bool(cfg["self_supervision"])
        if self.self_supervised and not isinstance(self.net, HCMLNet):
            raise ConfigError(f"methods/hcml/config.yaml variant {cfg.get('variant')!r}: self-supervision needs prime "
                              f"motion blocks, but backbone {cfg['backbone']} has none")
        self.levels = tuple(self.net.levels) if isinstance(self.net, HCMLNet) else ()
        if not self.self_supervised:
            return
        dims = {i: self.net.pmb[str(level)].out_channels for i, level in enumerate(self.levels)}
        self.reconstruct_level = int(cfg.get("reconstruct_level", 0))
        self.top = int(cfg.get("top_level", len(self.levels) - 1))
        self.flow = FlowEstimator(dims[self.reconstruct_level], float(cfg["width_multiplier"]))
        pred = cfg["predictor"]
        # Contrastive levels sit above the reconstruction level (Table 1's reconstruction rows train
        # one level with frame reconstruction and nothing above it).
        self.contrastive_levels = list(range(1, self.top + 1)) if self.reconstruct_level == 0 else []
        self.predictors = nn.ModuleDict({
            str(i): Predictor(dims[i] + dims[i - 1], int(pred["hidden"]), dims[i - 1], int(pred["steps"]))
            for i in self.contrastive_levels})

    # -- read by the DAG ------------------------------------------------------------------------
    @staticmethod
    def describe(cfg: dict, pretrain: str) -> str:
        clip = cfg["clip"]
        what = ("PMB + self-supervision (Eq. 2-4)" if cfg["self_supervision"]
                else "PMB, no self-supervision" if "pmb" in cfg["backbone"] else "baseline, no PMB")
        if pretrain == "none":
            return f"HCML {cfg['variant']}: {cfg['backbone']} x{cfg['width_multiplier']} at its seeded random start ({what})"
        return (f"HCML {cfg['variant']} on {pretrain}: {cfg['epochs'][pretrain]} epochs over levels "
                f"{cfg['stage_split']}, batch {cfg['batch_size']}, {cfg['backbone']} x{cfg['width_multiplier']} "
                f"{clip['num_frames']}x{clip['stride']}x{clip['crop_size']}^2, {what}")

    # -- the run --------------------------------------------------------------------------------
    def pretrain_dataset(self, manifest, sources: DataSources, seed: int) -> HCMLClips:
        if not self.self_supervised:
            raise ConfigError(f"methods/hcml/config.yaml variant {self.cfg.get('variant')!r} has no self-supervision "
                              f"to pretrain with (self_supervision: false); its rows train with labels (protocol joint_train)")
        return HCMLClips(manifest, sources.root, self.cfg, seed, sources.video_dir)

    def level_active(self, i: int) -> bool:
        """Whether level i learns now: its PMB's parameters require grad (the engine's stage sets them)."""
        return any(p.requires_grad for p in self.net.pmb[str(self.levels[i])].parameters())

    def supervised_levels(self) -> list[int]:
        return [self.reconstruct_level] + self.contrastive_levels

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The self-supervised phase: the loss terms of the levels that learn in this stage."""
        active = [i for i in self.supervised_levels() if self.level_active(i)]
        if not active:
            raise ConfigError("HCML: no level learns in this stage (no PMB parameter requires grad)")
        _, motion = self.net.forward_with_motion(batch["clip"], stop_after=self.levels[max(active)])
        return self.self_supervised_terms(batch["clip"], motion, active)

    def self_supervised_terms(self, clip: torch.Tensor, motion: dict[int, torch.Tensor], active: list[int]) -> dict:
        terms = {}
        for i in active:
            if i == self.reconstruct_level:
                terms["reconstruct"] = self.reconstruction_term(clip, motion[self.levels[i]])
            else:
                terms[f"contrastive{i}"] = self.contrastive_term(i, motion)
        return terms

    def reconstruction_term(self, clip: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """L_reconstruct of §3.2 from motion features P (B, C, T', h, w): the flow estimator's flow,
        resized to the clip's (T, H, W) (its values scaled to pixels of the frame), warps frame t+1 onto
        frame t (the last frame onto itself, as the PMB pairs it); Eq. (2) + zeta Eq. (3).
        Frames are compared in [0, 1] (the clip de-normalised)."""
        cfg = self.cfg
        b, _, t, height, width = clip.shape
        flow = self.flow(p)
        sy, sx = height / flow.shape[-2], width / flow.shape[-1]
        flow = F.interpolate(flow, size=(t, height, width), mode="trilinear", align_corners=False)
        flow = flow * torch.tensor([sx, sy], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1, 1)
        mean = torch.tensor(cfg["normalize_mean"], dtype=clip.dtype, device=clip.device).view(1, 3, 1, 1, 1)
        std = torch.tensor(cfg["normalize_std"], dtype=clip.dtype, device=clip.device).view(1, 3, 1, 1, 1)
        frames = clip * std + mean
        following = torch.cat([frames[:, :, 1:], frames[:, :, -1:]], dim=2)
        per_frame = lambda x: x.transpose(1, 2).flatten(0, 1)  # (B, C, T, H, W) -> (B*T, C, H, W)
        warped, valid = warp(per_frame(following), per_frame(flow))
        back = lambda x: x.reshape(b, t, *x.shape[1:]).transpose(1, 2)
        ch = cfg["charbonnier"]
        photometric = photometric_loss(frames, back(warped), back(valid), float(ch["alpha"]), float(ch["eps"]))
        smoothness = smoothness_loss(flow, float(ch["alpha"]), float(ch["eps"]))
        return reconstruction_loss(photometric, smoothness, float(cfg["zeta"]))

    def contrastive_term(self, i: int, motion: dict[int, torch.Tensor]) -> torch.Tensor:
        """L^i_contrastive (Eq. 4): P^i_t with P^{i-1}_t predicts P^{i-1}_{t+delta}, delta = 1 ..
        `predictor.steps`, at N random locations per video (suppl. C.3). P^{i-1} is average-pooled to
        P^i's (T, H, W) grid and is the fixed ground truth (no gradient into it)."""
        cfg = self.cfg
        upper = motion[self.levels[i]]
        b, _, t, h, w = upper.shape
        if t < 2:
            raise ConfigError(f"HCML level {i}: its motion features have {t} time step(s), so there is no future to "
                              f"predict; use a clip of more frames (clip.num_frames)")
        lower = F.adaptive_avg_pool3d(motion[self.levels[i - 1]].detach(), (t, h, w))
        n = min(int(cfg["locations"]), h * w)
        where = torch.stack([torch.randperm(h * w, device=upper.device)[:n] for _ in range(b)])  # (B, N)

        def at_locations(x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, N, T, C)
            x = x.flatten(3)
            return torch.gather(x, 3, where[:, None, None, :].expand(-1, x.shape[1], t, -1)).permute(0, 3, 2, 1)

        up, truth = at_locations(upper), at_locations(lower)
        inputs = torch.cat([up, truth], dim=-1)
        flat = torch.arange(b * n * t, device=upper.device).view(b, n, t)
        predicted, target = [], []
        for delta in range(1, min(int(cfg["predictor"]["steps"]), t - 1) + 1):
            predicted.append(self.predictors[str(i)](inputs[:, :, : t - delta], delta).flatten(0, 2))
            target.append(flat[:, :, delta:].flatten())
        return hierarchical_contrastive_loss(torch.cat(predicted), truth, torch.cat(target), float(cfg["temperature"]))

    def stages(self, epochs: int) -> list[Stage]:
        """Progressive training (§3.2): one stage per level, bottom-up; a stage trains its level's
        backbone stages, its PMB, the fusion conv g of the level below (the path into this level; it
        learns nothing earlier, as no loss below reaches it) and its head (flow estimator or f_delta);
        everything below stays frozen. Epochs split by `stage_split`."""
        order = self.supervised_levels()[: self.top + 1] if self.self_supervised else []
        if not order:
            return [Stage("train", epochs)]
        split = split_epochs(epochs, [float(w) for w in self.cfg["stage_split"][: len(order)]])
        stages, done = [], -1  # the backbone's feature points trained so far (0 = stem)
        for i, n in zip(order, split):
            level = self.levels[i]
            names = [f"net.trunk.{'stem' if p == 0 else f'stages.{p - 1}'}" for p in range(done + 1, level + 1)]
            names += [f"net.pmb.{level}", "flow" if i == self.reconstruct_level else f"predictors.{i}"]
            # the PMBs and fusion convs on the way up that no earlier stage trained (Table 1's
            # reconstruction rows above level 1 train one stage, from the stem to their level)
            names += [f"net.{part}.{lv}" for lv in self.levels if done < lv < level
                      for part in ("pmb", "g")]
            if done >= 0:
                names.append(f"net.g.{done}")
            stages.append(Stage(f"level{i}", n, tuple(names)))
            done = level
        return stages

    def train(self, mode: bool = True):
        """Frozen batch norms (all of whose parameters are frozen) keep their statistics: progressive
        training freezes "all network parameters up to level l-1" (§3.2), statistics included."""
        super().train(mode)
        if mode:
            for module in self.modules():
                if isinstance(module, _BatchNorm) and module.weight is not None and not module.weight.requires_grad:
                    module.eval()
        return self

    def transfer_encoder(self) -> TransferEncoder:
        """The backbone with its PMBs; the flow estimator and predictors are the side branch dropped
        after training (§3.3)."""
        cfg = self.cfg
        return TransferEncoder(backbone=cfg["backbone"], width_multiplier=float(cfg["width_multiplier"]), in_channels=3,
                               module=self.net,
                               input=input_block("rgb", cfg["clip"], cfg["normalize_mean"], cfg["normalize_std"]))
