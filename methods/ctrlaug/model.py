"""Controllable Augmentations on the shared engine (Qian et al. 2022, §3, §4.2): one encoder f read
at two temporal strides (f on the K local clips, f' on the sparse global view with some temporal
strides set to 1), the region-contrast head, the clip/video head of the L_nce baseline, the MINE
estimator G_theta behind gradient reversal (with its own optimizer) and the temporal dependency head
G_psi, trained with the objectives the config's `objectives` switches on (Table 7)."""
from __future__ import annotations

import itertools
import math
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ConfigError
from methods.backbones import build_backbone
from methods.ctrlaug.augment import apply_low_level, draw_levels, draw_parameters, group_of, parameter_ranges
from methods.ctrlaug.data import CtrlAugPretrainData
from methods.ctrlaug.losses import (ESTIMATORS, clip_video_nce, correspondence_matrix, region_contrast, shortcut_mi,
                                    temporal_dependency, vcop_order)
from methods.training.checkpoint import input_block
from methods.training.contrastive import MLPHead
from methods.training.method import DataSources, PretrainMethod, TransferEncoder

OBJECTIVES = ("nce", "rc", "mi", "td")  # Table 7
TD_HEADS = ("none", "vcop", "mlp", "gru", "gru_mlp")  # Table 6


@contextmanager
def temporal_stride_one(encoder: nn.Module, stages: int):
    """f' (§3.1: "set some convolution layers' temporal stride to 1"): the last `stages` stages of
    the encoder with a temporal stride run at stride 1 while inside, the same weights; restored after."""
    strided = [stage for stage in encoder.stages if any(isinstance(m, nn.Conv3d) and m.stride[0] > 1 for m in stage.modules())]
    changed = []
    for stage in strided[len(strided) - stages:] if stages else []:
        for m in stage.modules():
            if isinstance(m, nn.Conv3d) and m.stride[0] > 1:
                changed.append((m, m.stride))
                m.stride = (1, *m.stride[1:])
    try:
        yield
    finally:
        for m, stride in changed:
            m.stride = stride


class PairScore(nn.Module):
    """A two-layer MLP scoring a pair (x, y) (§3.2: "We instantiate G_theta as a two-layer MLP"; the
    pair enters concatenated, our choice)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.mlp = MLPHead(2 * dim, hidden, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([x, y], dim=-1)).squeeze(-1)


class TemporalHead(nn.Module):
    """G_psi of Eq. (7), Table 6 / §4.4: `mlp` concatenates f'(v) and the K clip features and maps
    them to a scalar; `gru` runs a GRU over the clip sequence and scores the cosine between its last
    state and (a linear map of) f'(v), divided by `temperature`; `gru_mlp` concatenates the GRU's
    state with f'(v) into an MLP; `vcop` classifies the order of the K clips among the K! orders from
    their pairwise concatenations, without f'(v) (VCOP [71])."""

    def __init__(self, kind: str, dim: int, clips: int, hidden: int, temperature: float):
        super().__init__()
        self.kind, self.temperature = kind, temperature
        if kind == "mlp":
            self.mlp = MLPHead((clips + 1) * dim, hidden, 1)
        elif kind in ("gru", "gru_mlp"):
            self.gru = nn.GRU(dim, hidden, batch_first=True)
            if kind == "gru":
                self.video = nn.Linear(dim, hidden)
            else:
                self.mlp = MLPHead(hidden + dim, hidden, 1)
        elif kind == "vcop":
            self.pair = MLPHead(2 * dim, hidden, hidden, layers=1)
            pairs = clips * (clips - 1) // 2
            self.classify = MLPHead(pairs * hidden, hidden, math.factorial(clips))

    def forward(self, clips: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """Scores (M,) of clip sequences (M, K, D) against video features (M, D); `vcop`: (M, K!) logits."""
        if self.kind == "mlp":
            return self.mlp(torch.cat([clips.flatten(1), video], dim=1)).squeeze(-1)
        if self.kind == "vcop":
            k = clips.shape[1]
            pairs = [F.relu(self.pair(torch.cat([clips[:, i], clips[:, j]], dim=1)))
                     for i, j in itertools.combinations(range(k), 2)]
            return self.classify(torch.cat(pairs, dim=1))
        state = self.gru(clips)[1][-1]  # (M, hidden)
        if self.kind == "gru":
            return F.cosine_similarity(state, self.video(video), dim=1) / self.temperature
        return self.mlp(torch.cat([state, video], dim=1)).squeeze(-1)


def shuffled_orders(batch: int, clips: int, per_video: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch * per_video, K) random orders of K clips, none the correct one (an identity draw is
    replaced by the order rotated by one)."""
    orders = torch.argsort(torch.rand(batch * per_video, clips, generator=generator), dim=1)
    identity = (orders == torch.arange(clips)).all(dim=1)
    orders[identity] = torch.roll(torch.arange(clips), 1)
    return orders


def order_class(orders: torch.Tensor) -> torch.Tensor:
    """Index of each order among `itertools.permutations(range(K))` (VCOP's classes)."""
    table = {p: i for i, p in enumerate(itertools.permutations(range(orders.shape[1])))}
    return torch.tensor([table[tuple(o)] for o in orders.tolist()])


def global_stride_stages(cfg: dict) -> int:
    """How many strided stages f' runs at temporal stride 1 for the config's T_v (Table 4): the
    clip's encoder halves time `time_strides` times; the global view keeps log2(T_g / T_v) of them."""
    keep = math.log2(int(cfg["global_view"]["num_frames"]) / int(cfg["global_feature_frames"]))
    if keep != int(keep) or not 0 <= keep <= int(cfg["time_strides"]):
        raise ConfigError(f"methods/ctrlaug/config.yaml: global_feature_frames {cfg['global_feature_frames']} is not the "
                          f"global view's {cfg['global_view']['num_frames']} frames halved 0..{cfg['time_strides']} times")
    return int(cfg["time_strides"]) - int(keep)


class ControllableAugmentations(PretrainMethod):
    name = "ctrlaug"

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        objectives = set(cfg["objectives"])
        if not objectives or objectives - set(OBJECTIVES):
            raise ConfigError(f"methods/ctrlaug/config.yaml: `objectives: {cfg['objectives']}` must name some of {', '.join(OBJECTIVES)}")
        td = cfg["temporal_dependency"]
        if td["head"] not in TD_HEADS:
            raise ConfigError(f"methods/ctrlaug/config.yaml: `temporal_dependency.head: {td['head']}` is not one of {', '.join(TD_HEADS)}")
        if "td" in objectives and (td["head"] == "none" or int(cfg["num_clips"]) < 2):
            raise ConfigError("methods/ctrlaug/config.yaml: objective td needs a temporal_dependency.head and num_clips >= 2")
        mi = cfg["shortcut"]
        if mi["estimator"] not in ESTIMATORS:
            raise ConfigError(f"methods/ctrlaug/config.yaml: `shortcut.estimator: {mi['estimator']}` is not one of {', '.join(ESTIMATORS)}")
        self.objectives = objectives
        self.global_stages = global_stride_stages(cfg)
        self.encoder = build_backbone(cfg["backbone"], width_multiplier=float(cfg["width_multiplier"]), in_channels=3)
        dim, hidden, out = self.encoder.out_dim, int(cfg["head_hidden"]), int(cfg["embedding_dim"])
        if "rc" in objectives:
            self.region_head = MLPHead(dim, hidden, out)
        if "nce" in objectives:
            self.nce_head = MLPHead(dim, hidden, out)
        if "mi" in objectives:
            self.estimator = PairScore(dim, int(mi["hidden"]))
        if "td" in objectives:
            self.td_head = TemporalHead(td["head"], dim, int(cfg["num_clips"]), int(td["hidden"]), float(td["temperature"]))
        low = cfg["low_level"]
        self.register_buffer("ranges", parameter_ranges(low["strength"], tuple(low["blur_sigma"])), persistent=False)
        self.timing: dict[str, float] = {}

    # -- DAG -------------------------------------------------------------------------------------
    @staticmethod
    def describe(cfg: dict, pretrain: str) -> str:
        levels, opt, clip = cfg["low_level"]["levels"], cfg["optimizer"], cfg["clip"]
        milestones = opt.get("milestones", [])
        milestones = milestones.get(pretrain, []) if isinstance(milestones, dict) else milestones
        return (f"Controllable Augmentations {cfg.get('variant')} on {pretrain}: {cfg['epochs'][pretrain]} epochs "
                f"(lr x{opt.get('gamma', 0.1)} at {list(milestones)}), batch {cfg['batch_size']}, {opt['name']} lr {opt['lr']} "
                f"wd {opt['weight_decay']}, {cfg['backbone']} x{cfg['width_multiplier']} "
                f"{clip['num_frames']}x{clip['stride']}x{clip['crop_size']}^2, K={cfg['num_clips']}, "
                f"global {cfg['global_view']['num_frames']} frames T_v={cfg['global_feature_frames']}, "
                f"objectives {'+'.join(cfg['objectives'])}, levels {levels['bcs']}/{levels['hue']}/{levels['blur']} "
                f"in {cfg['low_level']['groups']} groups, td head {cfg['temporal_dependency']['head']}")

    def pretrain_dataset(self, manifest, sources: DataSources, seed: int):
        return CtrlAugPretrainData(manifest, self.cfg, sources.root, sources.video_dir, seed)

    # -- the step --------------------------------------------------------------------------------
    def low_level(self, views: torch.Tensor, groups: torch.Tensor, level_of_group: torch.Tensor) -> torch.Tensor:
        """tau_l on views (B, V, 3, T, S, S) of videos in `groups` (B,), then normalised."""
        b, v = views.shape[:2]
        params = draw_parameters(level_of_group[groups].repeat_interleave(v), self.cfg["low_level"]["levels"], self.ranges.cpu())
        x = apply_low_level(views.flatten(0, 1), params)
        mean = torch.tensor(self.cfg["normalize_mean"], device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
        std = torch.tensor(self.cfg["normalize_std"], device=x.device, dtype=x.dtype).view(1, 3, 1, 1, 1)
        return ((x - mean) / std).view(b, v, *x.shape[1:])

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        b, k = batch["locals"].shape[:2]
        # §4.4: 32 intensity levels per iteration (this process's share of them), one per group of the batch.
        groups = group_of(b, max(1, int(cfg["low_level"]["groups"]) * b // int(cfg["batch_size"])))
        level_of_group = draw_levels(cfg["low_level"]["levels"], int(groups.max()) + 1)
        global_in = self.low_level(batch["global"][:, None], groups, level_of_group)[:, 0]
        local_in = self.low_level(batch["locals"], groups, level_of_group).flatten(0, 1)
        with temporal_stride_one(self.encoder, self.global_stages):
            fg = self.encoder.forward_features(global_in)  # (B, C, T_v, H, W)
        fl = self.encoder.forward_features(local_in)  # (B K, C, T_c, H, W)
        pooled_l, pooled_g = fl.mean(dim=(2, 3, 4)).view(b, k, -1), fg.mean(dim=(2, 3, 4))
        terms = {}
        if "nce" in self.objectives:
            tau = float(cfg["temperature"])
            terms["nce"] = clip_video_nce(F.normalize(self.nce_head(pooled_l), dim=-1), F.normalize(self.nce_head(pooled_g), dim=-1), tau)
        if "rc" in self.objectives:
            start = time.perf_counter()
            s = correspondence_matrix(batch["local_boxes"], batch["global_box"][:, None], tuple(fl.shape[2:]), tuple(fg.shape[2:]))
            self.timing["correspondence_ms"] = 1000 * (time.perf_counter() - start)
            local = F.normalize(self.region_head(fl.flatten(2).transpose(1, 2)), dim=-1).view(b, k, -1, self.region_head[-1].out_features)
            glob = F.normalize(self.region_head(fg.flatten(2).transpose(1, 2)), dim=-1)
            terms["rc"] = region_contrast(local, glob, s.to(local.dtype), float(cfg["temperature"]))
        if "mi" in self.objectives:
            mi = shortcut_mi(self.estimator, pooled_l, pooled_g, groups, cfg["shortcut"]["estimator"],
                             float(cfg["shortcut"]["reversal_weight"]))
            terms["mi"] = mi["loss"]
            self.timing.update(mi_estimate=float(mi["estimate"].detach()), mi_local_global=float(mi["local_global"].detach()))
        if "td" in self.objectives:
            terms["td"] = self.td_term(pooled_l, pooled_g)
        return terms

    def td_term(self, clips: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """Eq. (7) with the configured head: the clips in their temporal order with f'(v) are the
        joint, `shuffles` arbitrary orders per video the marginal (VCOP: order classification)."""
        td = self.cfg["temporal_dependency"]
        b, k, _ = clips.shape
        orders = shuffled_orders(b, k, int(td["shuffles"])).to(clips.device)
        owner = torch.arange(b, device=clips.device).repeat_interleave(int(td["shuffles"]))
        shuffled = clips[owner[:, None], orders]
        if td["head"] == "vcop":
            return vcop_order(self.td_head(shuffled, video[owner]), order_class(orders.cpu()).to(clips.device))
        return temporal_dependency(self.td_head(clips, video), self.td_head(shuffled, video[owner]), td["estimator"])

    def optimizer_groups(self) -> dict[str, list]:
        """§3.2's estimator G_theta learns by its own optimizer (`optimizers: {estimator: ...}`), the
        rest by the main one."""
        estimator = [p for p in self.estimator.parameters()] if hasattr(self, "estimator") else []
        ids = {id(p) for p in estimator}
        groups = {"main": [p for p in self.parameters() if p.requires_grad and id(p) not in ids]}
        if estimator:
            groups["estimator"] = estimator
        return groups

    def step_log(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Eq. (6)'s two parts (the same-level estimate the estimator maximises, the local-global
        one the encoder minimises) and the milliseconds Eq. (1)'s S_k took in this step."""
        return dict(self.timing)

    def transfer_encoder(self) -> TransferEncoder:
        """f, at its own temporal strides, reading the local clip (§4.2: the video encoder is evaluated)."""
        cfg = self.cfg
        return TransferEncoder(backbone=cfg["backbone"], width_multiplier=float(cfg["width_multiplier"]), in_channels=3,
                               module=self.encoder,
                               input=input_block("rgb", cfg["clip"], cfg["normalize_mean"], cfg["normalize_std"]))
