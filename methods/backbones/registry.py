"""Name -> backbone, each entry citing where its paper specifies it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from methods.backbones.resnet import ResNet


@dataclass(frozen=True)
class Entry:
    builder: Callable[..., nn.Module]
    kwargs: dict = field(default_factory=dict)
    source: str = ""


BACKBONES: dict[str, Entry] = {
    # MaCLR §3.3: "Our Visual pathway is a 3D ResNet50 (R3D-50) with a structure similar to that of
    # 'Slow-only' in [23,57], which features 2D convs in res2, res3 and nondegenerate 3D convs in
    # res4, res5 ... we set the temporal kernel size of conv1 to 5 following [57]."  Slow-only as in
    # SlowFast / pytorchvideo slow_r50: temporal kernel 3 on the first 1x1 conv of every bottleneck
    # in res4/res5, stem max pool, no temporal downsampling.
    "r3d50_slowonly": Entry(ResNet, dict(depth=50, block="bottleneck", conv="3d",
                                         temporal_kernels=(1, 1, 3, 3), temporal_conv="a",
                                         stem_temporal_kernel=5),
                            "MaCLR §3.3; SlowFast (Feichtenhofer et al. 2019) Table 1 Slow pathway"),
    # MaCLR §3.3: "Our Motion pathway is a 2D ResNet50 ... (1/8 channel sizes across the network)";
    # a 2D ResNet-50 (He et al. 2016) applied to every frame: all temporal kernels 1, no temporal
    # stride, average-pooled over time.  Also HCML's R2D-50 baseline (HCML suppl. Table 8) and
    # MCL's R2D (MCL Table 1).
    "r2d50": Entry(ResNet, dict(depth=50, block="bottleneck"),
                   "MaCLR §3.3 (Motion pathway, width 1/8); HCML suppl. Table 8 (R2D-50); MCL Table 1"),
    # MaCLR Table 2 (R3D-18 at 128x128): 3D ResNet-18 of Hara et al. / Tran et al. 2018 as
    # torchvision r3d_18: 3x7x7 stem with spatial stride 2 and no pool, 3x3x3 convs everywhere,
    # stride 2 in T, H, W at res3, res4, res5.  Also Controllable Augmentations' R3D-18 (§4.1).
    "r3d18": Entry(ResNet, dict(depth=18, block="basic", conv="3d", temporal_kernels=(3, 3, 3, 3),
                                temporal_strides=(1, 2, 2, 2), stem_temporal_kernel=3, stem_pool=False),
                   "MaCLR Table 2; Tran et al. 2018 Table 1 (R3D-18), torchvision r3d_18"),
}


def build_backbone(name: str, *, width_multiplier: float = 1.0, in_channels: int = 3, **overrides) -> nn.Module:
    """Build backbone `name`: a module mapping (B, C, T, H, W) to (B, out_dim) pooled features."""
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    entry = BACKBONES[name]
    kwargs = {**entry.kwargs, **overrides}
    return entry.builder(width_multiplier=width_multiplier, in_channels=in_channels, **kwargs)
