"""Non-ResNet backbones: S3D (MCL), C3D and the motion-prediction Transformer (CMD)."""
from __future__ import annotations

import torch
from torch import nn

from methods.backbones.resnet import conv_bn_relu, scaled

# S3D's feature stack (Xie et al. 2018, as torchvision's s3d): inception widths
# (b0_out, b1_mid, b1_out, b2_mid, b2_out, b3_out) between max pools (kernel, stride, padding).
_S3D_LAYOUT = [
    ("sep", 64, 7, 2, 3), ("pool", (1, 3, 3), (1, 2, 2), (0, 1, 1)), ("conv1", 64), ("sep", 192, 3, 1, 1),
    ("pool", (1, 3, 3), (1, 2, 2), (0, 1, 1)),
    ("inc", 64, 96, 128, 16, 32, 32), ("inc", 128, 128, 192, 32, 96, 64),
    ("pool", (3, 3, 3), (2, 2, 2), (1, 1, 1)),
    ("inc", 192, 96, 208, 16, 48, 64), ("inc", 160, 112, 224, 24, 64, 64), ("inc", 128, 128, 256, 24, 64, 64),
    ("inc", 112, 144, 288, 32, 64, 64), ("inc", 256, 160, 320, 32, 128, 128),
    ("pool", (2, 2, 2), (2, 2, 2), (0, 0, 0)),
    ("inc", 256, 160, 320, 32, 128, 128), ("inc", 384, 192, 384, 48, 128, 128),
]


def _sep_conv(cin, cout, k, stride, temporal: bool) -> nn.Sequential:
    """1 x k x k conv, then (S3D) a k x 1 x 1 conv; each with BN + ReLU."""
    spatial = conv_bn_relu(cin, cout, (1, k, k), (1, stride, stride))
    if not temporal:
        return spatial
    return nn.Sequential(spatial, conv_bn_relu(cout, cout, (k, 1, 1), (stride, 1, 1)))


class _Inception(nn.Module):
    def __init__(self, cin, b0, b1m, b1, b2m, b2, b3, temporal: bool):
        super().__init__()
        kt = 3 if temporal else 1
        self.branches = nn.ModuleList([
            conv_bn_relu(cin, b0, 1),
            nn.Sequential(conv_bn_relu(cin, b1m, 1), _sep_conv(b1m, b1, 3, 1, temporal)),
            nn.Sequential(conv_bn_relu(cin, b2m, 1), _sep_conv(b2m, b2, 3, 1, temporal)),
            nn.Sequential(nn.MaxPool3d((kt, 3, 3), 1, (kt // 2, 1, 1)), conv_bn_relu(cin, b3, 1)),
        ])
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], dim=1)


class _PooledFeatures(nn.Module):
    """A trunk `self.features` whose output is averaged over T, H, W into `out_dim` features."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


class S3D(_PooledFeatures):
    """S3D (Xie et al. 2018) trunk, every width scaled, global average pool; ``temporal=False`` is
    its 2D counterpart I2D (Inception-v1 with BN applied per frame: no temporal convs, no temporal
    pooling).

    MCL §4.1: "We exploit the backbones of R(2+1)D based on ResNet-50 [27, 37] or S3D [46]";
    MCL Table 1 compares R2D, R(2+1)D, I2D, S3D; MCL Table 3 gives S3D 7.9M parameters.  At width 1
    S3D has exactly torchvision's ``s3d`` layers and parameters without its classifier.
    """

    def __init__(self, width_multiplier: float = 1.0, in_channels: int = 3, temporal: bool = True):
        super().__init__()
        w = lambda c: scaled(c, width_multiplier)
        layers, c = [], in_channels
        for kind, *args in _S3D_LAYOUT:
            if kind == "sep":
                out, k, s, _ = args
                layers.append(_sep_conv(c, w(out), k, s, temporal))
                c = w(out)
            elif kind == "pool":
                k, s, p = args
                if not temporal:
                    k, s, p = (1, *k[1:]), (1, *s[1:]), (0, *p[1:])
                layers.append(nn.MaxPool3d(k, s, p))
            elif kind == "conv1":
                layers.append(conv_bn_relu(c, w(args[0]), 1))
                c = w(args[0])
            else:
                block = _Inception(c, *(w(a) for a in args), temporal=temporal)
                layers.append(block)
                c = block.out_channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.out_dim = c


class C3D(_PooledFeatures):
    """C3D (Tran et al. 2015, Fig. 3): 8 3x3x3 convs (64, 128, 256x2, 512x2, 512x2), 5 max pools
    (the first 1x2x2), BN after every conv as in the self-supervised C3D of VCOP (Xu et al. 2019);
    fc6/fc7 dropped, features are the global average of conv5b (512-d).  CMD §4.1 "Networks".
    """

    WIDTHS = ((64,), (128,), (256, 256), (512, 512), (512, 512))

    def __init__(self, width_multiplier: float = 1.0, in_channels: int = 3):
        super().__init__()
        layers, c = [], in_channels
        for i, group in enumerate(self.WIDTHS):
            for out in group:
                layers.append(conv_bn_relu(c, scaled(out, width_multiplier), 3))
                c = scaled(out, width_multiplier)
            if i < len(self.WIDTHS) - 1:
                k = (1, 2, 2) if i == 0 else (2, 2, 2)
                layers.append(nn.MaxPool3d(k, k, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.out_dim = c


class MotionPredictor(nn.Module):
    """CMD's encoder-decoder (§3.3, §4.1): a Transformer with 2 encoder and 4 decoder layers,
    hidden size 512.  The clip feature map (B, C1, T1, H1, W1) is read as a sequence of length
    T1*H1*W1; learned queries, one per output location T3*H3*W3, are decoded into (B, C3, T3, H3, W3).
    Heads (8) and feed-forward width (2048) are not in the paper: torch.nn.Transformer's defaults.
    """

    def __init__(self, in_dim: int, out_dim: int, in_positions: int, out_shape: tuple[int, int, int],
                 d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 2, num_decoder_layers: int = 4,
                 dim_feedforward: int = 2048):
        super().__init__()
        self.out_shape = tuple(out_shape)
        n_out = self.out_shape[0] * self.out_shape[1] * self.out_shape[2]
        self.inp = nn.Linear(in_dim, d_model)
        self.pos = nn.Parameter(torch.zeros(1, in_positions, d_model))
        self.queries = nn.Parameter(torch.zeros(1, n_out, d_model))
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.queries, std=0.02)
        self.transformer = nn.Transformer(d_model, nhead, num_encoder_layers, num_decoder_layers,
                                          dim_feedforward, dropout=0.1, batch_first=True)
        self.out = nn.Linear(d_model, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bsz = x.shape[0]
        src = self.inp(x.flatten(2).transpose(1, 2)) + self.pos
        tgt = self.queries.expand(bsz, -1, -1)
        y = self.out(self.transformer(src, tgt))
        return y.transpose(1, 2).reshape(bsz, -1, *self.out_shape)
