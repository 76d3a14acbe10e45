"""MCL on the shared engine (§3, §4.2): a backbone with an MLP head, a momentum copy and a queue
of negatives (MoCo), trained with L = L_NCE + L_MAL (§3.3) on motion-focused tubelets (§3.2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ConfigError
from methods.backbones import build_backbone
from methods.mcl.data import MCLPretrainData, uses_motion
from methods.mcl.init import EXPECTED_FILE, INIT_KINDS, initialise_from_2d
from methods.mcl.losses import (alignment_map, gradient_maps, instance_discrimination, mcl_loss, motion_alignment_terms,
                                motion_at)
from methods.training.checkpoint import input_block
from methods.training.contrastive import MLPHead, NegativeQueue, gather_from_all, momentum_copy, momentum_update, shuffled_forward
from methods.training.method import DataSources, PretrainMethod, TransferEncoder


def last_conv_layer(backbone: nn.Module) -> nn.Conv3d:
    """The backbone's last convolution, whose output h the motion alignment loss reads: for the
    ResNets the last bottleneck's third conv (the official code's target module
    `backbone.layer4.2.conv3`, train.py), before its batch norm, residual sum and ReLU; for S3D / I2D
    the last mixed block's pooling-branch conv (our choice; the official code has only the ResNet)."""
    convs = [m for m in backbone.modules() if isinstance(m, nn.Conv3d)]
    if not convs:
        raise ValueError(f"{type(backbone).__name__} has no Conv3d for the motion alignment loss to read")
    return convs[-1]


class Encoder(nn.Module):
    """Backbone -> 3D global pooling -> MLP head -> L2-normalised embedding (§4.2), keeping the
    output h of the backbone's last convolution, which the motion alignment loss reads.

    h is taken before the last block's batch norm, residual sum and ReLU, as the official code
    does: global average pooling follows the block's output directly, so a gradient taken there
    would be the same at every position and the gradient maps of Eq. (6) would be uniform."""

    def __init__(self, backbone: nn.Module, embedding_dim: int):
        super().__init__()
        self.backbone = backbone
        # §4.2: "two fully-connected layers (2048x2048 and 2048x128)": hidden = the backbone's width.
        self.head = MLPHead(backbone.out_dim, backbone.out_dim, embedding_dim, layers=2)
        self._last_conv = [last_conv_layer(backbone)]  # a list: not a second registration of the module

    def embed(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        captured = []
        hook = self._last_conv[0].register_forward_hook(lambda module, inputs, output: captured.append(output))
        try:
            features = self.backbone.forward_features(clip)
        finally:
            hook.remove()
        return F.normalize(self.head(self.backbone.pool(features).flatten(1)), dim=1), captured[-1]

    def forward(self, clips: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: self.embed(clip)[0] for name, clip in clips.items()}


class MCL(PretrainMethod):
    """Online encoder, its momentum copy and the queue of negative keys."""

    name = "mcl"

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        init = cfg.get("init", "scratch")
        if init not in INIT_KINDS:
            raise ConfigError(f"methods/mcl/config.yaml: `init: {init}` is not one of {', '.join(INIT_KINDS)}")
        backbone = build_backbone(cfg["backbone"], width_multiplier=float(cfg["width_multiplier"]))
        if init == "imagenet_moco_inflated":  # config.yaml `init`; the file comes from --init-weights
            initialise_from_2d(backbone, cfg.get("inflate_from"))
        self.online = Encoder(backbone, int(cfg["embedding_dim"]))
        self.momentum = momentum_copy(self.online)
        self.queue = NegativeQueue(int(cfg["queue_size"]), int(cfg["embedding_dim"]))
        self._keys: torch.Tensor | None = None

    @staticmethod
    def pretrain_inputs(cfg: dict) -> list[str]:
        return ["rgb", "tvl1"] if uses_motion(cfg) else ["rgb"]

    @staticmethod
    def describe(cfg: dict, pretrain: str) -> str:
        aug, mal, clip = cfg["augmentation"], cfg["mal"], cfg["clip"]
        augs = "+".join(name for name, on in (("TA", aug["temporal"]), ("SA", aug["spatial"])) if on) or "random"
        terms = f"L_MAL-{mal['map']} ({'+'.join(mal['terms'])})" if mal["terms"] else "no L_MAL"
        weights = MCL.init_weights_file(cfg)
        return (f"MCL {cfg['variant']} on {pretrain}: {cfg['epochs'][pretrain]} epochs, batch {cfg['batch_size']}, "
                f"{cfg['backbone']} x{cfg['width_multiplier']} {clip['num_frames']}x{clip['stride']}x{clip['crop_size']}^2, "
                f"init {cfg.get('init', 'scratch')}{f' ({weights})' if weights else ''}, "
                f"{augs} tubelets, L_NCE + {terms}, queue {cfg['queue_size']}, decoder {cfg['decoder']}")

    @staticmethod
    def init_weights_file(cfg: dict) -> str | None:
        return EXPECTED_FILE if cfg.get("init", "scratch") == "imagenet_moco_inflated" else None

    def pretrain_dataset(self, manifest, sources: DataSources, seed: int) -> MCLPretrainData:
        motion_cache = sources.cache("tvl1") if uses_motion(self.cfg) else None
        return MCLPretrainData(manifest, sources.root, motion_cache, self.cfg, seed, sources.video_dir)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg, mal = self.cfg, self.cfg["mal"]
        shuffle = cfg.get("batch_norm") == "shuffle"
        groups = int(cfg.get("bn_groups", 1)) if shuffle else 1  # sub-batches standing for processes
        # Queries in consecutive sub-batches (grouped_forward's split), each keeping its own h, the
        # tensor the gradient maps are taken with respect to.
        parts = [self.online.embed(clips) for clips in batch["q"].chunk(groups)]
        q, hs = torch.cat([part[0] for part in parts]), [part[1] for part in parts]
        h = hs[0] if groups == 1 else torch.cat(hs)
        with torch.no_grad():
            keys = {"k": batch["k"]}
            self._keys = (shuffled_forward(self.momentum, keys, groups) if shuffle else self.momentum(keys))["k"]
        negatives, mask = self.queue.negatives_for(batch["video_index"])
        terms = {"nce": instance_discrimination(q, self._keys, negatives, float(cfg["temperature"]), mask)}
        if mal["terms"]:
            g = gradient_maps(q, self._keys, hs) if mal["map"] != "v1" else None  # v1 aligns h itself
            prediction = alignment_map(mal["map"], h, g)
            terms.update(motion_alignment_terms(prediction, motion_at(batch["motion"], h.shape[2:]), mal["terms"]))
        return terms

    def total_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return mcl_loss(terms)

    def after_step(self, batch: dict[str, torch.Tensor]) -> None:
        momentum_update(self.online, self.momentum, float(self.cfg["momentum"]))
        # Every process's keys enter the queue (MoCo).
        self.queue.push(gather_from_all(self._keys), gather_from_all(batch["video_index"]))

    def transfer_encoder(self) -> TransferEncoder:
        """The backbone without its MLP head (§4.2: "MLP head only works for training"), on RGB."""
        cfg = self.cfg
        return TransferEncoder(backbone=cfg["backbone"], width_multiplier=float(cfg["width_multiplier"]), in_channels=3,
                               module=self.online.backbone,
                               input=input_block("rgb", cfg["clip"], cfg["normalize_mean"], cfg["normalize_std"]))
