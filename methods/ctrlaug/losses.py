"""Controllable Augmentations' objectives (Qian, Lin, See, Li 2022), one function per equation.

- `correspondence_matrix`: Eq. (1), S_k from the recorded crop, flip and temporal parameters;
- `clip_video_nce`: Eq. (2), the standard InfoNCE (Table 7's L_nce) between clip and video;
- `region_contrast`: Eqs. (3)-(4), InfoNCE with S_k as soft target, other videos as negatives;
- `mine_lower_bound`: Eq. (5), the Donsker-Varadhan bound MINE maximises (`jsd_lower_bound`: the
  Jensen-Shannon estimator of Deep InfoMax [27], the `estimator: jsd` switch);
- `shortcut_mi`: Eq. (6), the min-max low-level shortcut elimination through gradient reversal,
  then the frozen estimator on the local-global pairs;
- `temporal_dependency`: Eq. (7), the local-global temporal order dependency (`vcop_order` for
  Table 6's VCOP head, which classifies the order instead).

Feature maps are flattened t-major: cell i = (t * H + y) * W + x, as `flatten(2)` of (C, T, H, W).
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from methods.training.contrastive import gather_from_all, info_nce


def _cell_intervals(lo: torch.Tensor, hi: torch.Tensor, cells: int, mirrored: torch.Tensor | None = None) -> torch.Tensor:
    """(..., cells, 2) intervals of `cells` equal cells of [lo, hi) (...), in feature-map order;
    where `mirrored` is True, cell 0 is the one at `hi` (a flipped view's first column)."""
    edges = torch.arange(cells + 1, dtype=lo.dtype, device=lo.device) / cells
    start, end = edges[:-1], edges[1:]
    size = (hi - lo)[..., None]
    plain = torch.stack([lo[..., None] + size * start, lo[..., None] + size * end], dim=-1)
    if mirrored is None:
        return plain
    flipped = torch.stack([hi[..., None] - size * end, hi[..., None] - size * start], dim=-1)
    return torch.where(mirrored[..., None, None], flipped, plain)


def _overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., n, m) lengths of the intersections of intervals a (..., n, 2) and b (..., m, 2)."""
    low = torch.maximum(a[..., :, None, 0], b[..., None, :, 0])
    high = torch.minimum(a[..., :, None, 1], b[..., None, :, 1])
    return (high - low).clamp(min=0)


def correspondence_matrix(local_box: torch.Tensor, global_box: torch.Tensor, local_grid: tuple[int, int, int],
                          global_grid: tuple[int, int, int]) -> torch.Tensor:
    """Eq. (1) (§3.1): S_k(i, j) = inter(f(v_k)[i], f'(v)[j]) / vol(f(v_k)[i]).

    local_box (..., 7) and global_box (..., 7) (broadcastable) are the recorded position
    parameters (t0, t1, y0, x0, y1, x1, flip) of methods/ctrlaug/sampling.py: time in frames, space
    in pixels of the resized frame. Grids are the feature maps' (T, H, W): (T_c, H, W) of the clip,
    (T_v, H, W) of the video. Returns (..., N_c, N_v), N = T * H * W.

    How the supplementary's computation is read here (its text is not in the paper): each feature
    cell is the tube of its view's box that it tiles, the box split into T x H x W equal cells
    (the receptive field's centre part, ignoring its overlap with neighbours); a flipped view's
    column x covers the box's columns counted from its right edge (x = 0 is the box's rightmost
    W-th), since the view's pixels were mirrored before the encoder. The intersection volume is
    the product of the three per-axis overlaps, so S_k is built from (N_c per axis) x (N_v per
    axis) overlaps by broadcasting, without a loop over cells. Rows sum to 1 when the clip's box
    lies inside the video's (the sampler's guarantee)."""
    (tc, hc, wc), (tv, hv, wv) = local_grid, global_grid
    lb, gb = torch.broadcast_tensors(local_box.double(), global_box.double())
    axes = []
    for (lo, hi), (n_c, n_v), flip in (((0, 1), (tc, tv), False), ((2, 4), (hc, hv), False), ((3, 5), (wc, wv), True)):
        a = _cell_intervals(lb[..., lo], lb[..., hi], n_c, lb[..., 6] > 0.5 if flip else None)
        b = _cell_intervals(gb[..., lo], gb[..., hi], n_v, gb[..., 6] > 0.5 if flip else None)
        axes.append(_overlap(a, b))
    ot, oy, ox = axes  # (..., n_c, n_v) per axis
    inter = (ot[..., :, None, None, :, None, None] * oy[..., None, :, None, None, :, None]
             * ox[..., None, None, :, None, None, :])
    volume = ((lb[..., 1] - lb[..., 0]) / tc) * ((lb[..., 4] - lb[..., 2]) / hc) * ((lb[..., 5] - lb[..., 3]) / wc)
    shape = inter.shape[:-6] + (tc * hc * wc, tv * hv * wv)
    return (inter.reshape(shape) / volume[..., None, None]).float()


def _offset() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def clip_video_nce(clips: torch.Tensor, videos: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. (2) (§3.1), Table 7's L_nce, "the standard contrastive loss": InfoNCE with the indicator
    prior, each pooled clip embedding (B, K, D) the query, its own video's pooled global embedding
    (B, D) the positive, the other videos' (of every process) the negatives. L2-normalised inputs."""
    b, k, d = clips.shape
    keys = gather_from_all(videos, with_grad=True)
    own = torch.zeros(b, len(keys), dtype=torch.bool, device=clips.device)
    own[torch.arange(b), _offset() * b + torch.arange(b)] = True
    return info_nce(clips.reshape(b * k, d), videos.repeat_interleave(k, dim=0), keys, tau,
                    own.repeat_interleave(k, dim=0))


def region_contrast(local: torch.Tensor, global_: torch.Tensor, correspondence: torch.Tensor, tau: float) -> torch.Tensor:
    """Eqs. (3)-(4) (§3.1): L_rc(k, i) = -sum_j S_k(i, j) log p_k^{ij}, with
    p_k^{ij} = sim(f(v_k)[i], f'(v)[j]) / (sum_j sim(f(v_k)[i], f'(v)[j]) + sum_n sim(f(v_k)[i], n)),
    sim(a, b) = exp(cos(a, b) / tau), averaged over clips k, cells i and the batch.

    local (B, K, N_c, D) and global_ (B, N_v, D) are the L2-normalised cell embeddings;
    correspondence (B, K, N_c, N_v) is S_k. The negatives n are every cell of the other videos'
    global feature maps, on every process (our reading of "features from other videos in the
    minibatch"). With a one-hot S this is the ordinary InfoNCE of Eq. (2) with the other cells of
    the own video among the negatives."""
    b, k, nc, d = local.shape
    nv = global_.shape[1]
    keys = gather_from_all(global_.reshape(b * nv, d), with_grad=True)  # (B_all * N_v, D)
    log_p = F.log_softmax(local.reshape(b, k * nc, d) @ keys.t() / tau, dim=-1)  # (B, K N_c, B_all N_v)
    log_p = log_p.view(b, k * nc, -1, nv)
    own = log_p[torch.arange(b), :, _offset() * b + torch.arange(b)]  # (B, K N_c, N_v)
    return -(correspondence.reshape(b, k * nc, nv) * own).sum(-1).mean()


def mine_lower_bound(joint: torch.Tensor, marginal: torch.Tensor) -> torch.Tensor:
    """Eq. (5) (§3.2, MINE [7]): I_Theta(X; Y) = E_{P_XY}[G] - log E_{P_X x P_Y}[e^G], the scores
    G of joint pairs (N,) and of marginal pairs (M,)."""
    return joint.mean() - (torch.logsumexp(marginal, dim=0) - math.log(marginal.numel()))


def jsd_lower_bound(joint: torch.Tensor, marginal: torch.Tensor) -> torch.Tensor:
    """The Jensen-Shannon MI estimator of Deep InfoMax [27] (Hjelm et al. 2019, Eq. 4):
    E_P[-softplus(-G)] - E_{P x P}[softplus(G)]; the `estimator: jsd` switch of Eq. (5)."""
    return -F.softplus(-joint).mean() - F.softplus(marginal).mean()


ESTIMATORS = {"mine": mine_lower_bound, "jsd": jsd_lower_bound}


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.weight * grad, None


def reverse_gradient(x: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """Identity forward; backward multiplies the gradient by -weight (Ganin & Lempitsky 2015): the
    encoder below descends what the estimator above ascends (§3.2)."""
    return _GradientReversal.apply(x, weight)


def same_group_partners(groups: torch.Tensor, videos: torch.Tensor, generator: torch.Generator | None = None):
    """(anchors, partners): for every element with another video in its low-level group, one such
    element drawn uniformly (the joint pairs of Eq. 6); groups, videos (N,)."""
    candidates = (groups[:, None] == groups[None, :]) & (videos[:, None] != videos[None, :])
    anchors = torch.nonzero(candidates.any(dim=1)).flatten()
    if anchors.numel() == 0:
        return anchors, anchors
    weights = candidates[anchors].float().cpu()
    partners = torch.multinomial(weights, 1, generator=generator).flatten().to(anchors.device)
    return anchors, partners


def shortcut_mi(estimator: nn.Module, clips: torch.Tensor, videos_feat: torch.Tensor, groups: torch.Tensor,
                bound: str = "mine", weight: float = 1.0, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Eq. (6) (§3.2): L_mi = min_f max_theta E_{P_XY}[G_theta] - log E_{P_X x P_Y}[e^{G_theta}].

    clips (B, K, D): pooled local-clip features f(v_k); videos_feat (B, D): pooled global features
    f'(v); groups (B,): each video's low-level intensity group. Two parts, one backward:
    - `estimate`: G_theta on clip pairs of different videos of the same group (joint) against the
      same anchors with clips of random videos (marginal), its inputs behind gradient reversal:
      minimising -I trains theta to maximise Eq. (6) and sends the encoder the reversed gradient,
      so f minimises it;
    - `local_global`: the estimator with theta frozen (detached copies of its parameters) on
      (f(v_k), f'(v)) of the same video (joint) against (f(v_k), f'(v')) of another video
      (marginal), minimised by f only.
    Returns {"loss": -estimate + local_global, "estimate": ..., "local_global": ...}."""
    lower_bound = ESTIMATORS[bound]
    b, k, d = clips.shape
    flat = clips.reshape(b * k, d)
    video_of = torch.arange(b, device=clips.device).repeat_interleave(k)
    anchors, partners = same_group_partners(groups.to(clips.device).repeat_interleave(k), video_of, generator)
    zero = clips.sum() * 0
    if anchors.numel():
        x = reverse_gradient(flat, weight)
        shuffled = torch.randint(b * k, (anchors.numel(),), generator=generator).to(clips.device)
        estimate = lower_bound(estimator(x[anchors], x[partners]), estimator(x[anchors], x[shuffled]))
    else:  # no group holds two videos: nothing to estimate from
        estimate = zero
    frozen = {name: p.detach() for name, p in estimator.named_parameters()}
    other = (torch.arange(b, device=clips.device) + 1) % b if b > 1 else torch.arange(b, device=clips.device)
    g = videos_feat[:, None].expand(b, k, d).reshape(b * k, d)
    g_other = videos_feat[other][:, None].expand(b, k, d).reshape(b * k, d)
    local_global = lower_bound(functional_call(estimator, frozen, (flat, g)),
                               functional_call(estimator, frozen, (flat, g_other))) if b > 1 else zero
    return {"loss": -estimate + local_global, "estimate": estimate, "local_global": local_global}


def temporal_dependency(ordered: torch.Tensor, shuffled: torch.Tensor, bound: str = "mine") -> torch.Tensor:
    """Eq. (7) (§3.3): L_td = max_{f, psi} E_{P_XY}[G_psi] - log E_{P_X x P_Y}[e^{G_psi}], the
    head's scores G_psi of (correctly ordered clip features, f'(v)) pairs (B,) as the joint and of
    (arbitrarily ordered clip features, f'(v)) pairs (M,) as the marginal. Returned as the loss to
    minimise, minus the bound."""
    return -ESTIMATORS[bound](ordered, shuffled)


def vcop_order(logits: torch.Tensor, order_class: torch.Tensor) -> torch.Tensor:
    """Table 6's "VCOP [71]" head in place of Eq. (7): clip order prediction (Xu et al. 2019) as
    cross-entropy over the K! orders, logits (M, K!) for shuffled clip sequences of class (M,)."""
    return F.cross_entropy(logits, order_class)
