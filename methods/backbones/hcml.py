"""HCML's motion modules (Yang et al., BMVC 2021): cost volume, prime motion block, flow estimator,
and a ResNet with prime motion blocks fused at chosen levels.

- Cost volume (§3.2 Eq. 1): cosine similarity between the feature vector of frame t at (x, y) and
  that of frame t+1 at every displacement in [-d, d]^2 with stride s; the last frame is paired
  with itself so T is kept; M = (2*floor(d/s)+1)^2 output channels.  d = 6, s = 2 (suppl. C.2).
- Prime motion block (§3.2, suppl. C.2, Fig. 6): 1x1x1 conv reducing channels by 1/beta, cost
  volume, concatenation [reduced, cost volume], a 2D conv (1 x k x k), BN + ReLU after each conv and
  after the cost volume layer.  beta and the 2D conv's kernel k are not given in the paper.
- Residual fusion (§3.3): Z = F + g(P), g a 1x1x1 conv.
- Flow estimator (§3.2 "Preliminary Motion Cues"): "5 convolutional layers with dense connections"
  following PWC-Net [38]; widths (128, 128, 96, 64, 32) and the final 3x3 conv to 2 flow channels
  are PWC-Net's (the paper does not list them).  It is the reconstruction side branch, discarded
  at inference (§3.3), so it is not part of the fused network.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from methods.backbones.resnet import ResNet, conv_bn_relu, scaled


def cost_volume(a: torch.Tensor, b: torch.Tensor, max_displacement: int = 6, stride: int = 2) -> torch.Tensor:
    """Cosine-similarity correlation of `a` (N, C, H, W) with `b` shifted over a displacement grid.

    Returns (N, M, H, W), M = (2*floor(d/s)+1)^2; displacements outside the map see zeros.
    One einsum per displacement, so FLOP counters see the multiply-adds and memory stays O(M*H*W).
    """
    d, s = max_displacement, stride
    a = F.normalize(a, dim=1)
    b = F.pad(F.normalize(b, dim=1), (d, d, d, d))
    h, w = a.shape[-2:]
    offsets = range(-(d // s) * s, d + 1, s)
    return torch.stack([torch.einsum("nchw,nchw->nhw", a, b[:, :, d + dy:d + dy + h, d + dx:d + dx + w])
                        for dy in offsets for dx in offsets], dim=1)


# Elements of the largest temporary product `strided_cost_volume` forms at once (256 MiB of fp32).
STRIDED_CHUNK_ELEMENTS = 2**26


def strided_cost_volume(a: torch.Tensor, b: torch.Tensor, max_displacement: int = 6, stride: int = 2) -> torch.Tensor:
    """`cost_volume` vectorised over the displacements: every displaced window of `b` is a strided
    view (unfold, no copy), multiplied with `a` and summed over channels, a block of displacement rows
    at a time so the temporary product stays under STRIDED_CHUNK_ELEMENTS. Equal to `cost_volume`
    (tests/test_hcml.py); 4-5x faster on the CPU at the paper's res2 / res3 sizes (README, "HCML as
    built"). The network computes with it; FLOP counts (traced) read `cost_volume`'s einsums."""
    d, s = max_displacement, stride
    k = 2 * (d // s) + 1
    a = F.normalize(a, dim=1)
    skip = d - (d // s) * s  # padding no displacement reaches when s does not divide d
    b = F.pad(F.normalize(b, dim=1), (d, d, d, d))[:, :, skip:, skip:]
    n, c, h, w = a.shape
    windows = b.unfold(2, h, s).unfold(3, w, s)[:, :, :k, :k]  # (N, C, dy, dx, H, W) views
    rows = max(1, min(k, STRIDED_CHUNK_ELEMENTS // max(1, n * c * k * h * w)))
    out = [(a[:, :, None, None] * windows[:, :, i:i + rows]).sum(1) for i in range(0, k, rows)]
    return torch.cat(out, dim=1).flatten(1, 2)


def temporal_cost_volume(x: torch.Tensor, max_displacement: int = 6, stride: int = 2,
                         correlate=cost_volume) -> torch.Tensor:
    """Cost volumes of the pairs (x_t, x_{t+1}), the last frame paired with itself (§3.2): (B, M, T, H, W).
    `correlate` is Eq. (1)'s implementation: `cost_volume` (one einsum per displacement, what the
    compute counts read) or `strided_cost_volume` (the same numbers, faster; the network's)."""
    bsz, c, t, h, w = x.shape
    nxt = torch.cat([x[:, :, 1:], x[:, :, -1:]], dim=2)
    flat = lambda v: v.transpose(1, 2).reshape(bsz * t, c, h, w)
    cv = correlate(flat(x), flat(nxt), max_displacement, stride)
    return cv.reshape(bsz, t, -1, h, w).transpose(1, 2)


def cost_volume_channels(max_displacement: int = 6, stride: int = 2) -> int:
    return (2 * (max_displacement // stride) + 1) ** 2


class PrimeMotionBlock(nn.Module):
    """Reduce (1x1x1, C -> C/beta), cost volume, concat, 2D conv; BN+ReLU after each (suppl. C.2)."""

    def __init__(self, channels: int, beta: float = 4, max_displacement: int = 6, stride: int = 2,
                 fusion_kernel: int = 3):
        super().__init__()
        reduced = max(1, int(channels // beta))
        m = cost_volume_channels(max_displacement, stride)
        self.d, self.s = max_displacement, stride
        self.reduce = conv_bn_relu(channels, reduced, 1)
        self.cv_norm = nn.Sequential(nn.BatchNorm3d(m), nn.ReLU(inplace=True))
        self.fuse = conv_bn_relu(reduced + m, reduced, (1, fusion_kernel, fusion_kernel))
        self.out_channels = reduced

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.reduce(x)
        # Under tracing (fvcore's FLOP counts) the one-einsum-per-displacement version, whose
        # multiply-adds the counter sees; the same numbers as the strided one, which trains faster.
        correlate = cost_volume if torch.jit.is_tracing() else strided_cost_volume
        cv = self.cv_norm(temporal_cost_volume(r, self.d, self.s, correlate=correlate))
        return self.fuse(torch.cat([r, cv], dim=1))


class FlowEstimator(nn.Module):
    """Five densely connected 1x3x3 conv layers then a 1x3x3 conv to a 2-channel flow (PWC-Net style)."""

    WIDTHS = (128, 128, 96, 64, 32)

    def __init__(self, in_channels: int, width_multiplier: float = 1.0):
        super().__init__()
        layers, c = [], in_channels
        for wdt in self.WIDTHS:
            wdt = scaled(wdt, width_multiplier)
            layers.append(conv_bn_relu(c, wdt, (1, 3, 3)))
            c += wdt
        self.layers = nn.ModuleList(layers)
        self.flow = nn.Conv3d(c, 2, (1, 3, 3), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return self.flow(x)


class HCMLNet(nn.Module):
    """A ResNet with a prime motion block fused (Z = F + g(P)) after chosen levels.

    Levels index the feature points: 0 = stem output, 1..4 = after res2..res5.  HCML Table 1 and §4.1
    use levels 1, 2, 3 ("after res2, res3 and res4 of R2D").  `forward` returns pooled features;
    `forward_with_motion` also returns {level: P} for the hierarchical contrastive losses.
    """

    def __init__(self, trunk: ResNet, levels: Sequence[int] = (1, 2, 3), beta: float = 4,
                 max_displacement: int = 6, stride: int = 2, fusion_kernel: int = 3):
        super().__init__()
        self.trunk = trunk
        dims = [trunk.stem_dim] + trunk.stage_dims
        self.levels = tuple(levels)
        self.pmb = nn.ModuleDict({str(l): PrimeMotionBlock(dims[l], beta, max_displacement, stride, fusion_kernel)
                                  for l in self.levels})
        self.g = nn.ModuleDict({str(l): nn.Conv3d(self.pmb[str(l)].out_channels, dims[l], 1, bias=False)
                                for l in self.levels})
        self.out_dim = trunk.out_dim

    def forward_with_motion(self, x: torch.Tensor, stop_after: int | None = None):
        """(pooled features, {level: P}); with `stop_after` the pass ends at that level's P (the
        self-supervised phase needs nothing above its active level) and the features are None."""
        motion = {}
        feats = [self.trunk.stem] + list(self.trunk.stages)
        for level, layer in enumerate(feats):
            x = layer(x)
            if level in self.levels:
                p = self.pmb[str(level)](x)
                motion[level] = p
                if level == stop_after:
                    return None, motion
                x = x + self.g[str(level)](p)
        return self.trunk.pool(x).flatten(1), motion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_motion(x)[0]
