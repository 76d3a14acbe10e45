"""The suite's one (2D/3D/(2+1)D) ResNet builder.

Every ResNet-style backbone of the five papers (R2D, R3D, slow-only R3D, R(2+1)D, MC-style nets
with 2D stages) is an instance of :class:`ResNet`, configured by

- ``depth``: blocks per stage from :data:`STAGE_BLOCKS` (He et al. 2016; Tran et al. 2018 Table 1
  for depths 10/16/26), ``block``: ``"basic"`` (two 3x3 convs) or ``"bottleneck"`` (1x1, 3x3, 1x1);
- ``conv``: how a block's spatial 3x3 conv with temporal extent ``kt`` is realised, ``"3d"``
  (one kt x 3 x 3 conv), ``"2plus1d"`` (1 x 3 x 3 conv to M_i channels, BN, ReLU, kt x 1 x 1 conv;
  M_i = floor(kt*9*N_in*N_out / (9*N_in + kt*N_out)), Tran et al. 2018 §3.5, as torchvision's
  VideoResNet, whose second conv of a basic block reuses the first conv's M_i) or ``"p3da"``
  (1 x 3 x 3 conv then kt x 1 x 1 conv at the output width, no BN/ReLU between: the P3D-A style
  R(2+1)D of MCL's released code, model/backbone.py) or ``"t_then_s"`` (kt x 1 x 1 conv, BN, ReLU,
  then 1 x 3 x 3 conv, both at the block's width: HCML suppl. Table 8's R(2+1)D-101 bottleneck);
- ``temporal_kernels``: the temporal extent kt of each of the four stages res2..res5;
  ``temporal_conv``: in a bottleneck, whether kt sits on the first 1x1 conv (``"a"``, the
  slow-only / SlowFast slow pathway design) or on the 3x3 conv (``"b"``, R3D / R(2+1)D);
- ``temporal_strides`` / ``spatial_strides`` of res2..res5 (applied in the stage's first block);
- the stem: ``stem_temporal_kernel``, ``stem_temporal_stride``, ``stem_pool`` (3x3 max pool with
  spatial stride 2), ``stem_conv`` (``"3d"`` or ``"2plus1d"``, the latter as torchvision's
  R2Plus1dStem: 1x7x7 to 45 channels then kt x 1 x 1 to 64);
- ``width_multiplier``: scales every channel width (stem and all stages), floor 1 channel.

The module maps a clip ``(B, C, T, H, W)`` to globally average-pooled features ``(B, out_dim)``;
``forward_features`` returns the res5 feature map and ``stages`` exposes res2..res5.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

STAGE_BLOCKS = {
    10: (1, 1, 1, 1),   # Tran et al. 2018 (A closer look...), Table 1
    16: (2, 2, 2, 1),   # idem
    18: (2, 2, 2, 2),   # He et al. 2016, Table 1
    26: (2, 3, 4, 3),   # Tran et al. 2018, Table 1
    34: (3, 4, 6, 3),   # He et al. 2016, Table 1
    50: (3, 4, 6, 3),   # idem (bottleneck)
    101: (3, 4, 23, 3),  # idem
    152: (3, 8, 36, 3),  # idem
}
BASE_WIDTHS = (64, 128, 256, 512)   # inner widths of res2..res5 (He et al. 2016)
BOTTLENECK_EXPANSION = 4


def scaled(channels: int, width_multiplier: float) -> int:
    """`channels * width_multiplier`, rounded, at least 1."""
    return max(1, int(round(channels * width_multiplier)))


def _triple(v) -> tuple[int, int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v, v)


def conv_bn_relu(cin, cout, kernel, stride=1, relu=True) -> nn.Sequential:
    kernel, stride = _triple(kernel), _triple(stride)
    layers = [nn.Conv3d(cin, cout, kernel, stride, padding=tuple((k - 1) // 2 for k in kernel), bias=False),
              nn.BatchNorm3d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def midplanes(cin: int, cout: int, kt: int, k: int = 3) -> int:
    """Intermediate width of a (2+1)D conv with the parameters of a kt x k x k conv (Tran et al. §3.5)."""
    return max(1, (cin * cout * kt * k * k) // (cin * k * k + kt * cout))


def spatiotemporal_conv(cin, cout, kt, stride=(1, 1, 1), conv="3d", mid=None, relu=True) -> nn.Sequential:
    """A kt x 3 x 3 conv (then BN, optional ReLU), full 3D or factorised (2+1)D."""
    st, ss = stride[0], stride[1]
    if conv == "3d" or kt == 1:
        return conv_bn_relu(cin, cout, (kt, 3, 3), (st, ss, ss), relu)
    if conv == "p3da":
        spatial = nn.Conv3d(cin, cout, (1, 3, 3), (1, ss, ss), (0, 1, 1), bias=False)
        return nn.Sequential(spatial, conv_bn_relu(cout, cout, (kt, 1, 1), (st, 1, 1), relu))
    if conv == "t_then_s":
        return nn.Sequential(conv_bn_relu(cin, cin, (kt, 1, 1), (st, 1, 1)),
                             conv_bn_relu(cin, cout, (1, 3, 3), (1, ss, ss), relu))
    if conv != "2plus1d":
        raise ValueError(f"conv must be '3d', '2plus1d', 'p3da' or 't_then_s', got {conv!r}")
    mid = mid or midplanes(cin, cout, kt)
    return nn.Sequential(conv_bn_relu(cin, mid, (1, 3, 3), (1, ss, ss)),
                         conv_bn_relu(mid, cout, (kt, 1, 1), (st, 1, 1), relu))


class BasicBlock(nn.Module):
    def __init__(self, cin, width, stride, kt, conv="3d", **_):
        super().__init__()
        self.out_channels = width
        mid = midplanes(cin, width, kt)  # torchvision: conv_b reuses conv_a's M_i
        self.conv_a = spatiotemporal_conv(cin, width, kt, stride, conv, mid)
        self.conv_b = spatiotemporal_conv(width, width, kt, (1, 1, 1), conv, mid, relu=False)
        self.shortcut = _shortcut(cin, width, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.conv_b(self.conv_a(x)) + self.shortcut(x))


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride, kt, conv="3d", temporal_conv="b"):
        super().__init__()
        out = width * BOTTLENECK_EXPANSION
        self.out_channels = out
        kt_a, kt_b = (kt, 1) if temporal_conv == "a" else (1, kt)
        self.conv_a = conv_bn_relu(cin, width, (kt_a, 1, 1))
        self.conv_b = spatiotemporal_conv(width, width, kt_b, stride, conv)
        self.conv_c = conv_bn_relu(width, out, 1, relu=False)
        self.shortcut = _shortcut(cin, out, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.conv_c(self.conv_b(self.conv_a(x))) + self.shortcut(x))


def _shortcut(cin, cout, stride) -> nn.Module:
    if cin == cout and all(s == 1 for s in stride):
        return nn.Identity()
    return conv_bn_relu(cin, cout, 1, stride, relu=False)


class ResNet(nn.Module):
    """Configurable ResNet trunk + global average pool; see the module docstring."""

    def __init__(
        self,
        depth: int = 50,
        *,
        block: str | None = None,
        conv: str = "3d",
        temporal_kernels: Sequence[int] = (1, 1, 1, 1),
        temporal_conv: str = "b",
        temporal_strides: Sequence[int] = (1, 1, 1, 1),
        spatial_strides: Sequence[int] = (1, 2, 2, 2),
        stem_temporal_kernel: int = 1,
        stem_temporal_stride: int = 1,
        stem_pool: bool = True,
        stem_conv: str = "3d",
        width_multiplier: float = 1.0,
        in_channels: int = 3,
    ):
        super().__init__()
        if depth not in STAGE_BLOCKS:
            raise ValueError(f"depth must be one of {sorted(STAGE_BLOCKS)}, got {depth}")
        block = block or ("bottleneck" if depth >= 50 else "basic")
        block_cls = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        w = width_multiplier
        stem_out = scaled(64, w)
        stem_stride = (stem_temporal_stride, 2, 2)
        if stem_conv not in ("3d", "2plus1d"):
            raise ValueError(f"stem_conv must be '3d' or '2plus1d', got {stem_conv!r}")
        if stem_conv == "2plus1d" and stem_temporal_kernel > 1:
            mid = scaled(45, w)  # torchvision R2Plus1dStem
            stem = [conv_bn_relu(in_channels, mid, (1, 7, 7), (1, 2, 2)),
                    conv_bn_relu(mid, stem_out, (stem_temporal_kernel, 1, 1), (stem_temporal_stride, 1, 1))]
        else:
            stem = [conv_bn_relu(in_channels, stem_out, (stem_temporal_kernel, 7, 7), stem_stride)]
        if stem_pool:
            stem.append(nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        self.stem = nn.Sequential(*stem)
        self.stem_dim = stem_out

        stages, cin = [], stem_out
        for i, n in enumerate(STAGE_BLOCKS[depth]):
            width = scaled(BASE_WIDTHS[i], w)
            blocks = []
            for j in range(n):
                stride = (temporal_strides[i], spatial_strides[i], spatial_strides[i]) if j == 0 else (1, 1, 1)
                blk = block_cls(cin, width, stride, temporal_kernels[i], conv=conv, temporal_conv=temporal_conv)
                blocks.append(blk)
                cin = blk.out_channels
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.out_dim = cin
        self.stage_dims = [s[-1].out_channels for s in self.stages]
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(x)).flatten(1)


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
