"""Name -> backbone, each entry citing where its paper specifies it."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from torch import nn

from methods.backbones.hcml import HCMLNet
from methods.backbones.others import C3D, S3D
from methods.backbones.resnet import ResNet


@dataclass(frozen=True)
class Entry:
    builder: Callable[..., nn.Module]
    kwargs: dict = field(default_factory=dict)
    source: str = ""


def hcml_net(trunk_name: str, *, levels=(1, 2, 3), beta: float = 4, max_displacement: int = 6,
             stride: int = 2, fusion_kernel: int = 3, width_multiplier: float = 1.0, in_channels: int = 3,
             **overrides) -> HCMLNet:
    """A registered trunk with HCML's prime motion blocks fused at `levels` (HCML §3.2-3.3); here
    rather than in hcml.py because it builds its trunk through this registry."""
    trunk = build_backbone(trunk_name, width_multiplier=width_multiplier, in_channels=in_channels, **overrides)
    return HCMLNet(trunk, levels, beta, max_displacement, stride, fusion_kernel)


# Tran et al. 2018 Table 1 / torchvision VideoResNet layout: basic blocks, 3x7x7 stem with spatial
# stride 2 and no pool, 3x3x3 convs, stride 2 in T, H, W at res3-res5. Entries below vary depth/conv.
R3D = dict(block="basic", conv="3d", temporal_kernels=(3, 3, 3, 3), temporal_strides=(1, 2, 2, 2),
           stem_temporal_kernel=3, stem_pool=False)

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
    "r3d18": Entry(ResNet, dict(R3D, depth=18),
                   "MaCLR Table 2; Tran et al. 2018 Table 1 (R3D-18), torchvision r3d_18"),
    # Controllable Augmentations §4.1: "We resize the input frame sequence into 16x112x112, and use
    # R3D-18 [25] as the video encoder" (Table 1 also R3D-34): the torchvision-style R3D.
    "r3d34": Entry(ResNet, dict(R3D, depth=34),
                   "Controllable Augmentations §4.1 / Table 1 (R3D-34); Tran et al. 2018 Table 1"),
    # Controllable Augmentations §4.1: local clips give a 2x4x4 feature map, "For global video feature
    # resolution is 8x4x4": of the R3D-18's three temporal strides (16 -> 2) one is kept (16 -> 8).
    # The paper does not say which two stages drop theirs; res4 and res5 run at stride 1 here.
    "r3d18_global": Entry(ResNet, dict(R3D, depth=18, temporal_strides=(1, 2, 1, 1)),
                          "Controllable Augmentations §4.1 (global view 8x4x4 features)"),
    # CMD §4.1: "three video backbones: C3D [44], R(2+1)D-26 [45], and R3D-26 [20, 45]"; depth 26 =
    # basic blocks (2, 3, 4, 3) of Tran et al. 2018 Table 1, R3D / R(2+1)D as torchvision's VideoResNet.
    "r3d26": Entry(ResNet, dict(R3D, depth=26),
                   "CMD §4.1 (V-Network R3D-26); Tran et al. 2018 Table 1"),
    "r2plus1d26": Entry(ResNet, dict(R3D, depth=26, conv="2plus1d", stem_conv="2plus1d"),
                        "CMD §4.1 (V-Network R(2+1)D-26); Tran et al. 2018 §3.5 / Table 1"),
    # CMD §4.1: "For the I-Network and M-Network, we use shallow R2D-10 and R3D-10 backbones,
    # respectively, where each of them comprises 4 layers of ResNet BasicBlocks".  The M-Network reads
    # 2-channel motion vectors: build_backbone("r3d10", in_channels=2).  R3D-10 is also IIC's network
    # (MCL Table 3, 14.4M).
    "r3d10": Entry(ResNet, dict(R3D, depth=10),
                   "CMD §4.1 (M-Network R3D-10, 2-channel motion vectors); MCL Table 3 (IIC, R3D-10)"),
    "r2d10": Entry(ResNet, dict(depth=10, block="basic"),
                   "CMD §4.1 (I-Network R2D-10 on I-frames; T = 1)"),
    # MCL Table 3: PRP's R(2+1)D with 14.4M parameters, the R(2+1)D-10 of VCOP (Xu et al. 2019).
    "r2plus1d10": Entry(ResNet, dict(R3D, depth=10, conv="2plus1d", stem_conv="2plus1d"),
                        "MCL Table 3 (PRP, R(2+1)D, 14.4M); Tran et al. 2018"),
    # MCL §4.1: "R(2+1)D based on ResNet-50 [27, 37]"; Table 3: 27.3M parameters.  The layout is not
    # in the paper; MCL's released model/backbone.py (P3D-A ResNet-50): conv1 4x7x7 with temporal
    # stride 4, every bottleneck's 1x3x3 conv followed by a 3x1x1 conv, no other temporal stride.
    "r2plus1d50": Entry(ResNet, dict(depth=50, block="bottleneck", conv="p3da", temporal_kernels=(3, 3, 3, 3),
                                     stem_temporal_kernel=4, stem_temporal_stride=4),
                        "MCL §4.1, Table 3 (27.3M); MCL code model/backbone.py (P3D-A)"),
    # MCL Table 3: CVRL's R3D-50 (31.7M, 45.8G): the slow-only R3D-50 with the 5x7x7 conv1 (as
    # r3d50_slowonly) taking 16 frames with temporal stride 2 in conv1 (Qian et al. 2021, CVRL §4).
    "r3d50_cvrl": Entry(ResNet, dict(depth=50, block="bottleneck", conv="3d", temporal_kernels=(1, 1, 3, 3),
                                     temporal_conv="a", stem_temporal_kernel=5, stem_temporal_stride=2),
                        "MCL Table 3 (CVRL R3D-50); CVRL (Qian et al. 2021)"),
    # HCML suppl. Table 8: R2D-50 / R(2+1)D-101 with conv1 1x7x7, temporal striding from res3
    # (T, T/2, T/4, T/4 after res2..res5); R(2+1)D-101 adds a 3x1x1 conv before the 1x3x3 conv of each
    # bottleneck in res4 and res5 only ("top-heavy"), with the block's width (256 / 512) kept
    # ("bottleneck layers with consistent number of channels").
    "r2d50_hcml": Entry(ResNet, dict(depth=50, block="bottleneck", temporal_strides=(1, 2, 2, 1)),
                        "HCML suppl. Table 8 (R2D-50)"),
    "r2plus1d101_hcml": Entry(ResNet, dict(depth=101, block="bottleneck", conv="t_then_s",
                                           temporal_kernels=(1, 1, 3, 3), temporal_strides=(1, 2, 2, 1)),
                              "HCML suppl. Table 8 (R(2+1)D-101, temporal convs in res4/res5)"),
    # HCML §3.2-3.3, suppl. C.2: the backbones with prime motion blocks after res2, res3, res4.
    "r2d50_hcml_pmb": Entry(partial(hcml_net, "r2d50_hcml"), {}, "HCML §3.2-3.3, suppl. C.2, Table 8"),
    "r2plus1d101_hcml_pmb": Entry(partial(hcml_net, "r2plus1d101_hcml"), {}, "HCML §3.2-3.3, suppl. C.2, Table 8"),
    # MCL §4.1 / Table 1.
    "s3d": Entry(S3D, {}, "MCL §4.1, Tables 1 and 3 (7.9M); Xie et al. 2018; torchvision s3d"),
    "i2d": Entry(partial(S3D, temporal=False), {}, "MCL Table 1 (I2D: the 2D Inception counterpart of S3D)"),
    # CMD §4.1.
    "c3d": Entry(C3D, {}, "CMD §4.1 (V-Network C3D); Tran et al. 2015"),
}


def build_backbone(name: str, *, width_multiplier: float = 1.0, in_channels: int = 3, **overrides) -> nn.Module:
    """Build backbone `name`: a module mapping (B, C, T, H, W) to (B, out_dim) pooled features."""
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    entry = BACKBONES[name]
    kwargs = {**entry.kwargs, **overrides}
    return entry.builder(width_multiplier=width_multiplier, in_channels=in_channels, **kwargs)
