"""Backbones of the five papers, by name.

    from methods.backbones import build_backbone, BACKBONES
    net = build_backbone("r3d50_slowonly", width_multiplier=1/32)
    feats = net(clip)            # clip (B, C, T, H, W) float -> (B, net.out_dim)

Every name in :data:`BACKBONES` maps to a builder and the paper section that specifies it (see
:mod:`methods.backbones.registry`). ``overrides`` are passed to the builder (for a ResNet, any
argument of :class:`methods.backbones.resnet.ResNet`, e.g. ``temporal_strides=(1, 1, 1, 1)``).
"""
from methods.backbones.registry import BACKBONES, build_backbone

__all__ = ["BACKBONES", "build_backbone"]
