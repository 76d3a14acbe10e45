"""HCML's losses (Yang et al., BMVC 2021), one function per equation.

Eq. (1), the cost volume, is a layer of the network and lives with the prime motion block in
methods/backbones/hcml.py (`cost_volume`, `temporal_cost_volume`). Here: the generalised
Charbonnier penalty and Eq. (2) photometric loss with the bilinear warp and its out-of-bounds mask,
Eq. (3) smoothness, L_reconstruct, the C.3 sampling space of Eq. (4) and Eq. (4) itself, and
Eq. (5)'s weighted sum.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Types of a ground-truth candidate for a prediction (suppl. C.3).
POSITIVE, SPATIAL, TEMPORAL, EASY = 0, 1, 2, 3


def charbonnier(z: torch.Tensor, alpha: float = 0.45, eps: float = 1e-3) -> torch.Tensor:
    """Generalised Charbonnier penalty rho(z) = (z^2 + eps^2)^alpha (HCML §3.2, after Eq. 2;
    alpha = 0.45, eps = 1e-3 [Sun et al.])."""
    return (z * z + eps * eps) ** alpha


def warp(frames: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward bilinear warp (HCML §3.2: "warp video frames through bilinear interpolation").

    frames (N, C, H, W), flow (N, 2, H, W) in pixels, channel 0 = U (x), 1 = V (y). Returns
    (warped, valid): warped(x, y) = frames(x + U, y + V), bilinear, and valid (N, 1, H, W) = 1 where
    the sampled point lies inside the frame, 0 where it falls out of bounds (Eq. 2's indicator).
    """
    n, _, h, w = frames.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype, device=flow.device),
                            torch.arange(w, dtype=flow.dtype, device=flow.device), indexing="ij")
    x = xs + flow[:, 0]
    y = ys + flow[:, 1]
    # align_corners=True: -1 and 1 are the centres of the corner pixels, so pixel i maps to 2i/(n-1) - 1
    grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], dim=-1)
    warped = F.grid_sample(frames, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    valid = ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).to(frames.dtype).unsqueeze(1)
    return warped, valid


def photometric_loss(target: torch.Tensor, warped: torch.Tensor, valid: torch.Tensor,
                     alpha: float = 0.45, eps: float = 1e-3) -> torch.Tensor:
    """Eq. (2) (HCML §3.2): L_photometric = 1/(HWT) sum_t sum_x sum_y 1 * rho(I_t - I^_t).

    target, warped (B, C, T, H, W); valid (B, 1, T, H, W) the in-bounds indicator. The penalty of a
    pixel is the mean of its channels' (the paper writes I_t(x, y) without a channel sum; our
    reading); the loss is averaged over the batch.
    """
    b, _, t, h, w = target.shape
    per_pixel = charbonnier(target - warped, alpha, eps).mean(dim=1, keepdim=True)
    return (valid * per_pixel).sum() / (b * t * h * w)


def smoothness_loss(flow: torch.Tensor, alpha: float = 0.45, eps: float = 1e-3) -> torch.Tensor:
    """Eq. (3) (HCML §3.2): L_smoothness = 1/T sum_t rho(d_x U_t) + rho(d_y U_t) + rho(d_x V_t) + rho(d_y V_t).

    flow (B, 2, T, H, W). Gradients are forward differences; each rho(.) map is averaged over its
    positions (Eq. 3 leaves the spatial reduction unwritten; the mean keeps it on Eq. 2's scale).
    """
    dx = flow[..., :, 1:] - flow[..., :, :-1]
    dy = flow[..., 1:, :] - flow[..., :-1, :]
    # (B, 2, T) per flow component: the mean penalty of its x- and y-gradients, summed over U, V, x, y
    per_frame = (charbonnier(dx, alpha, eps).mean(dim=(-2, -1)) + charbonnier(dy, alpha, eps).mean(dim=(-2, -1))).sum(1)
    return per_frame.mean()


def reconstruction_loss(photometric: torch.Tensor, smoothness: torch.Tensor, zeta: float) -> torch.Tensor:
    """L_reconstruct = L_photometric + zeta * L_smoothness (HCML §3.2)."""
    return photometric + zeta * smoothness


def negative_types(videos: int, locations: int, steps: int, query: tuple[int, int, int]) -> torch.Tensor:
    """The type of every ground-truth candidate P_{tau,m} of video v for the prediction
    P^_{t,k} of `query` = (v, k, t) (suppl. C.3): POSITIVE (same video, k, t), SPATIAL (same video,
    m != k: (N-1)T^l of them), TEMPORAL (same video and k, tau != t: T^l - 1), EASY (another video:
    (B-1)NT^l). Candidates are laid out (B, N, T) as `hierarchical_contrastive_loss` flattens them."""
    v, k, t = query
    b = torch.arange(videos)[:, None, None]
    m = torch.arange(locations)[None, :, None]
    tau = torch.arange(steps)[None, None, :]
    types = torch.full((videos, locations, steps), EASY, dtype=torch.long)
    same = (b == v).expand_as(types)
    types[same & (m != k).expand_as(types)] = SPATIAL
    types[same & (m == k).expand_as(types) & (tau != t).expand_as(types)] = TEMPORAL
    types[v, k, t] = POSITIVE
    return types.flatten()


def hierarchical_contrastive_loss(predicted: torch.Tensor, ground_truth: torch.Tensor, target: torch.Tensor,
                                  tau: float) -> torch.Tensor:
    """Eq. (4) (HCML §3.2): -log exp(sim(P^_i, P_i)/tau) / sum_{j in S} exp(sim(P^_i, P_j)/tau),
    sim the cosine similarity.

    predicted (Q, D): predictions P^^{l-1}_{t+delta,k}; ground_truth (B, N, T, D): P^{l-1} of every
    video at its N sampled locations and T^l steps; target (Q,) the flat (B, N, T) index of each
    prediction's positive. The sampling space S of a prediction is every ground-truth feature of the
    batch: its positive and the spatial, temporal and easy negatives of C.3 (`negative_types`), which
    together are all B*N*T^l candidates. Averaged over the predictions (the paper sums; the mean
    keeps the loss's scale independent of B, N and T)."""
    gt = F.normalize(ground_truth.flatten(0, 2), dim=1)
    logits = F.normalize(predicted, dim=1) @ gt.t() / tau
    return F.cross_entropy(logits, target)


def joint_objective(classification: torch.Tensor, reconstruct: torch.Tensor | None, contrastive: dict[int, torch.Tensor],
                    lam: float, gammas: dict[int, float]) -> torch.Tensor:
    """Eq. (5) (HCML §3.3): L_total = L_classification + lambda L_reconstruct + sum_l gamma^l L^l_contrastive
    (suppl. D.2: lambda = 15, gamma^1 = gamma^2 = 0.25). Without self-supervision (Table 2's PMB and
    baseline rows) only the classification term is given."""
    total = classification
    if reconstruct is not None:
        total = total + lam * reconstruct
    for level, term in contrastive.items():
        total = total + gammas[level] * term
    return total
