"""Controllable Augmentations' low-level transformations tau_l at discrete intensity levels
(Qian et al. 2022, §3.2, §4.4 and Table 5).

Colour jitter's brightness, contrast and saturation factors lie in [1 - 0.4, 1 + 0.4] and hue's
shift in [-0.1, 0.1] (§4.4: "(B,C,S,H)=(0.4,0.4,0.4,0.1) by default"); the Gaussian blur's sigma
in [0.1, 2.0] (not in the paper: SimCLR's / MoCo v2's range, our choice). Each range is split into
equal sub-ranges, its levels (Table 5: `#B/C/S` for each of B, C and S, `#H`, `#G`); an intensity
level is one sub-range per parameter, so there are #B/C/S^3 x #H x #G of them (§4.4: 32 for
(2, 2, 2), 512 for (4, 2, 4)). In each iteration `groups` (32, §4.4) levels are drawn without
replacement from all of them, the batch is split into that many groups, and every view of a video
of group g takes its own parameters drawn uniformly inside level g's sub-ranges: the videos of a
group share similar low-level statistics (the "joint" pairs of Eq. 5-6).

Applied to a batch of views on its device, vectorised over views, in the order brightness,
contrast, saturation, hue, blur (torchvision's ColorJitter shuffles the order; fixed here, our
choice). Brightness, contrast and saturation follow torchvision's formulas (contrast and
saturation around the frame's grey level, ITU-R 601 luma); hue is a rotation of the chroma plane in
YIQ space by 2 pi h (a linear stand-in for torchvision's HSV hue shift, so all views are processed
at once; our choice); the blur is separable with radius ceil(2 sigma) (§4.4: "we control the
radius and sigma"), every kernel zero-padded to the batch's largest radius.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PARAMETERS = ("brightness", "contrast", "saturation", "hue", "blur")
LUMA = (0.299, 0.587, 0.114)
RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def parameter_ranges(strength: dict, blur_sigma: tuple[float, float]) -> torch.Tensor:
    """(5, 2) ranges of PARAMETERS: factors 1 -/+ B, C, S; hue -/+ H; blur sigma."""
    b, c, s, h = (float(strength[k]) for k in ("brightness", "contrast", "saturation", "hue"))
    return torch.tensor([[max(0.0, 1 - b), 1 + b], [max(0.0, 1 - c), 1 + c], [max(0.0, 1 - s), 1 + s],
                         [-h, h], [float(blur_sigma[0]), float(blur_sigma[1])]])


def level_shape(levels: dict) -> tuple[int, ...]:
    """Number of levels per parameter (Table 5: B, C and S share `bcs`)."""
    return (int(levels["bcs"]),) * 3 + (int(levels["hue"]), int(levels["blur"]))


def level_count(levels: dict) -> int:
    """§4.4: the number of intensity levels, the product over parameters."""
    return math.prod(level_shape(levels))


def draw_levels(levels: dict, groups: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """§4.4: `groups` intensity levels drawn without replacement from all of them (with
    replacement only where there are fewer levels than groups), as flat indices."""
    total = level_count(levels)
    if total >= groups:
        return torch.randperm(total, generator=generator)[:groups]
    return torch.randint(total, (groups,), generator=generator)


def group_of(batch: int, groups: int) -> torch.Tensor:
    """Group of each sample of a batch: contiguous blocks of batch / groups samples (the batch is
    in random order already), at most `batch` groups."""
    groups = max(1, min(groups, batch))
    return torch.arange(batch) * groups // batch


def draw_parameters(level_index: torch.Tensor, levels: dict, ranges: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """(V, 5) parameters of V views: each drawn uniformly inside its level's sub-range per
    parameter. `level_index` (V,) flat level indices."""
    shape = level_shape(levels)
    digits, rest = [], level_index.clone()
    for n in reversed(shape):  # unravel: the last parameter varies fastest
        digits.append(rest % n)
        rest = rest // n
    digits = torch.stack(list(reversed(digits)), dim=1).double()  # (V, 5)
    counts = torch.tensor(shape, dtype=torch.float64)
    lo, hi = ranges[:, 0].double(), ranges[:, 1].double()
    u = torch.rand(digits.shape, generator=generator, dtype=torch.float64)
    return (lo + (hi - lo) * (digits + u) / counts).float()


def _grey(x: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def gaussian_kernels(sigma: torch.Tensor) -> torch.Tensor:
    """(V, 2R + 1) normalised 1-D Gaussian kernels, radius ceil(2 sigma) each, zero beyond it,
    R the largest radius."""
    radius = torch.ceil(2 * sigma).clamp(min=1)
    big = int(radius.max())
    offsets = torch.arange(-big, big + 1, dtype=sigma.dtype, device=sigma.device)
    kernel = torch.exp(-0.5 * (offsets[None] / sigma[:, None]) ** 2) * (offsets.abs()[None] <= radius[:, None])
    return kernel / kernel.sum(dim=1, keepdim=True)


def apply_low_level(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """tau_l on views x (V, 3, T, H, W) in [0, 1] with parameters (V, 5) (PARAMETERS), clamped to [0, 1]."""
    p = params.to(x.dtype).to(x.device).view(-1, 5, 1, 1, 1, 1)
    x = (x * p[:, 0]).clamp(0, 1)
    mean = _grey(x).mean(dim=(-2, -1), keepdim=True)
    x = ((x - mean) * p[:, 1] + mean).clamp(0, 1)
    grey = _grey(x)
    x = (grey + p[:, 2] * (x - grey)).clamp(0, 1)
    angle = 2 * math.pi * params[:, 3].to(x.device, x.dtype)
    cos, sin = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(cos), torch.zeros_like(cos)
    rotate = torch.stack([torch.stack([one, zero, zero], -1), torch.stack([zero, cos, -sin], -1),
                          torch.stack([zero, sin, cos], -1)], -2)  # (V, 3, 3) on the I, Q plane
    yiq = RGB_TO_YIQ.to(x.device, x.dtype)
    hue = torch.linalg.inv(yiq) @ rotate @ yiq
    x = torch.einsum("vij,vjthw->vithw", hue, x).clamp(0, 1)
    v, c, t, h, w = x.shape
    kernel = gaussian_kernels(params[:, 4].to(x.device, x.dtype))  # (V, k)
    k = kernel.shape[1]
    weight = kernel.repeat_interleave(c * t, dim=0)  # one kernel per (view, channel, frame) plane
    planes = x.reshape(1, v * c * t, h, w)
    planes = F.conv2d(F.pad(planes, (k // 2, k // 2, 0, 0), mode="replicate"), weight.view(-1, 1, 1, k), groups=v * c * t)
    planes = F.conv2d(F.pad(planes, (0, 0, k // 2, k // 2), mode="replicate"), weight.view(-1, 1, k, 1), groups=v * c * t)
    return planes.view(v, c, t, h, w)
