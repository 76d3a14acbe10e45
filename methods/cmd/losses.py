"""CMD's objectives (Huang et al., CVPR 2021), one function per equation, and the Table 1 losses
that replace Eq. (2) in the ablation.

- `context_matching`: Eq. (1), clip vs I-frame embeddings, the other videos' I-frames as negatives;
- `motion_prediction`: Eq. (2), pointwise InfoNCE over the B*N predicted / target motion points;
- `joint_objective`: Eq. (3), J = (1 - alpha) J_I + alpha J_M;
- `pretext_top1`: Table 7's pretext accuracies, which `context_matching` and `motion_prediction`
  record from the queries and gathered keys of their own similarity matrices;
- `motion_value_mse`, `motion_value_cross_entropy`: Table 1's "MSE" and "Cross-Ent." rows, which
  predict motion-vector values (or their quantisation bins) instead of motion features.

Embeddings are L2-normalised by the caller, so dot products are the cosine similarities the
equations write. Keys come from every process (`gather_from_all(with_grad=True)`): in-batch
negatives are the whole batch of B samples, as in the paper, whatever the number of processes.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from methods.training.contrastive import gather_from_all, info_nce


def _own_rows(n_local: int, n_total: int, device) -> torch.Tensor:
    """Mask (n_local, n_total), True at each local query's own key among the gathered keys: that
    key is the positive, so it leaves the negatives (it is already the numerator's term)."""
    offset = dist.get_rank() * n_local if n_total != n_local else 0
    mask = torch.zeros(n_local, n_total, dtype=torch.bool, device=device)
    mask[torch.arange(n_local, device=device), offset + torch.arange(n_local, device=device)] = True
    return mask


def context_matching(clip: torch.Tensor, iframe: torch.Tensor, tau: float, stats: dict | None = None) -> torch.Tensor:
    """Eq. (1), the context matching loss J_I (§3.2):
    J_I = -1/B sum_i log exp(cos(z_i*, x_i*)/tau) / sum_k exp(cos(z_k*, x_i*)/tau).

    clip: x* (B, C), the clip embeddings g^V(x'_i); iframe: z* (B, C), the I-frame embeddings
    g^I(z'_i); both L2-normalised. The clip is the query, the I-frame of its own video the
    positive, and the I-frames of the other B - 1 videos the negatives. With `stats`, its
    `context_matching_top1` is set to `pretext_top1` over the same queries and gathered keys."""
    keys = gather_from_all(iframe, with_grad=True)
    own = _own_rows(len(clip), len(keys), clip.device)
    if stats is not None:
        stats["context_matching_top1"] = pretext_top1(clip, keys, own)
    return info_nce(clip, iframe, keys, tau, own)


def motion_prediction(predicted: torch.Tensor, target: torch.Tensor, tau: float,
                      hard_negatives: torch.Tensor | None = None, stats: dict | None = None) -> torch.Tensor:
    """Eq. (2), the pointwise motion prediction loss J_M (§3.3):
    J_M = -1/(BN) sum_{i,j} log exp(cos(v_ij*, ^v_ij*)/tau) / sum_{k,l} exp(cos(v_kl*, ^v_ij*)/tau).

    predicted: ^v* (B, N, C), g^M_2 of the Transformer's output; target: v* (B, N, C), g^M_1 of the
    M-Network's features of the motion vectors after the clip; N = T3*H3*W3 points, L2-normalised.
    Only the point of the same video i at the same (x, y, t) is the positive; every other point of
    every video is a negative. `hard_negatives` (M, C): the points of the motion clips drawn
    elsewhere in the same videos (§4.1, "three negative clips ... from the same video"), added to
    the denominator's negatives. With `stats`, its `motion_prediction_top1` is set to
    `pretext_top1` over the B*N predicted points and the B*N target points (the hard negatives are
    not candidates: "the positive point ranked first among all B*N points")."""
    b, n, c = predicted.shape
    queries, own = predicted.reshape(b * n, c), target.reshape(b * n, c)
    keys = gather_from_all(own, with_grad=True)
    mask = _own_rows(b * n, len(keys), own.device)
    if stats is not None:
        stats["motion_prediction_top1"] = pretext_top1(queries, keys, mask)
    if hard_negatives is not None and len(hard_negatives):
        extra = gather_from_all(hard_negatives, with_grad=True)
        keys = torch.cat([keys, extra])
        mask = torch.cat([mask, torch.zeros(b * n, len(extra), dtype=torch.bool, device=own.device)], dim=1)
    return info_nce(queries, own, keys, tau, mask)


def top1_accuracy(similarity: torch.Tensor, positive: torch.Tensor) -> float:
    """Percentage of rows of `similarity` (queries, keys) whose largest entry is at column
    `positive[row]` (ties count for the first column, as argmax)."""
    return 100.0 * float((similarity.argmax(dim=1) == positive).float().mean())


@torch.no_grad()
def pretext_top1(queries: torch.Tensor, keys: torch.Tensor, own: torch.Tensor) -> float:
    """Table 7's pretext accuracy: the percentage of queries whose positive key (`own`, (Q, K) True
    at it) has the largest cosine among `keys` (argmax; a tie counts for the first key). On Eq. (1)'s
    terms (clips, the batch's I-frames) it is the context-matching top-1, on Eq. (2)'s (predicted
    points, the batch's B*N target points) the motion-prediction top-1; tau does not change the
    ranking."""
    return top1_accuracy(queries.detach() @ keys.detach().t(), own.float().argmax(dim=1))


def joint_objective(context: torch.Tensor, motion: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. (3), the final loss (§3.4): J = (1 - alpha) J_I + alpha J_M."""
    return (1.0 - alpha) * context + alpha * motion


def motion_value_mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Table 1 "MSE": mean square error between predicted and actual motion-vector values at each
    point, predicted (B, N, 2) and target (B, N, 2) (the normalised vectors pooled to the points)."""
    return F.mse_loss(predicted, target)


def quantise(values: torch.Tensor, bins: int, low: float = -0.5, high: float = 0.5) -> torch.Tensor:
    """Bin index in [0, bins) of values in [low, high] (uniform bins; the normalised vectors of
    `datasets.motion.compressed.normalise_mv` lie in [-0.5, 0.5])."""
    scaled = (values - low) / (high - low) * bins
    return scaled.floor().clamp(0, bins - 1).long()


def motion_value_cross_entropy(logits: torch.Tensor, target: torch.Tensor, bins: int) -> torch.Tensor:
    """Table 1 "Cross-Ent.": cross-entropy between predicted bin scores, logits (B, N, 2, bins), and
    the quantised motion-vector values, target (B, N, 2), of each point and component."""
    return F.cross_entropy(logits.reshape(-1, bins), quantise(target, bins).reshape(-1))
