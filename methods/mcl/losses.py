"""MCL's objectives (Li et al., "Motion-Focused Contrastive Learning of Video Representations",
ICCV 2021, §3.3). The queue and InfoNCE are the shared ones of `methods.training.contrastive`.

Notation as in the paper: q = query embedding, k+ = its positive key, h = output feature map of
the backbone's last convolution (B, C, T, H, W; model.last_conv_layer), g_c = d(q^T k+)/d h_c its gradient map,
w_c = mean of g_c, m^ST / m^S / m^T = ST-, S- and T-motion of the query clip (Eq. 2), each
resampled to h's (T, H, W). <x> is the L2 normalisation of a map, per sample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.training import contrastive

MAPS = ("v1", "v2", "v3")  # what is aligned with the motion: Eq. (4), (5), (6)
TERMS = ("t", "s", "st")  # the three terms of Eq. (7): L_t, L_s, L_st (Table 1)


def instance_discrimination(q: torch.Tensor, k: torch.Tensor, negatives: torch.Tensor, tau: float,
                            negative_mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_NCE, MCL Eq. (3): -log exp(q.k+/tau) / (exp(q.k+/tau) + sum_i exp(q.k_i^-/tau)), the
    negatives k_i^- taken from MoCo's queue (§3.3); queue slots of the query's own video are masked."""
    return contrastive.info_nce(q, k, negatives, tau, negative_mask)


def normalized(x: torch.Tensor) -> torch.Tensor:
    """<x>: each sample's map flattened and L2-normalised, (B, ...) -> (B, N)."""
    return F.normalize(x.flatten(1), dim=1)


def alignment(prediction: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    """||<prediction> - <motion>||_2^2 per sample, averaged over the batch (the distance of Eq. 4-7)."""
    return (normalized(prediction) - normalized(motion)).pow(2).sum(1).mean()


def channel_weights(g: torch.Tensor) -> torch.Tensor:
    """w_c, MCL §3.3 (after Grad-CAM): the mean value of each channel's gradient map, (B, C, 1, 1, 1)."""
    return g.mean(dim=(2, 3, 4), keepdim=True)


def feature_map(h: torch.Tensor) -> torch.Tensor:
    """sum_c h_c, the map MAL-v1 aligns (Eq. 4), (B, T, H, W)."""
    return h.sum(1)


def weighted_feature_map(h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """ReLU(sum_c w_c h_c), the map MAL-v2 aligns (Eq. 5), (B, T, H, W)."""
    return F.relu((channel_weights(g) * h).sum(1))


def weighted_gradient_map(g: torch.Tensor) -> torch.Tensor:
    """ReLU(sum_c w_c g_c), the map MAL-v3 aligns (Eq. 6), (B, T, H, W); <.> of it is g-bar^ST."""
    return F.relu((channel_weights(g) * g).sum(1))


def mal_v1(h: torch.Tensor, m_st: torch.Tensor) -> torch.Tensor:
    """MAL-v1, MCL Eq. (4): ||<sum_c h_c> - <m^ST>||_2^2 (align the feature map)."""
    return alignment(feature_map(h), m_st)


def mal_v2(h: torch.Tensor, g: torch.Tensor, m_st: torch.Tensor) -> torch.Tensor:
    """MAL-v2, MCL Eq. (5): ||<ReLU(sum_c w_c h_c)> - <m^ST>||_2^2 (align the weighted feature map)."""
    return alignment(weighted_feature_map(h, g), m_st)


def mal_v3(g: torch.Tensor, m_st: torch.Tensor) -> torch.Tensor:
    """MAL-v3, MCL Eq. (6): ||<ReLU(sum_c w_c g_c)> - <m^ST>||_2^2 (align the weighted gradient map)."""
    return alignment(weighted_gradient_map(g), m_st)


def motion_alignment_terms(prediction: torch.Tensor, m_st: torch.Tensor, terms=TERMS) -> dict[str, torch.Tensor]:
    """The enabled terms of L_MAL, MCL Eq. (7), for a (B, T, H, W) map to align (Eq. 6's by default):

        L_MAL = ||g-bar^S - <m^S>||^2 + ||g-bar^T - <m^T>||^2 + ||g-bar^ST - <m^ST>||^2,

    with g-bar^ST = <prediction>, and g-bar^S / g-bar^T its average over time / space (the pooling
    P_t / P_s of Eq. 2). The paper prints no normalisation of the pooled maps, but then perfect
    alignment (g-bar^ST = <m^ST>) would not give zero: <m^ST> pooled over time has norm
    ||m^S|| / ||m^ST||, not 1. We L2-normalise them, as the official code does (model/mal.py
    normalises each pooled map before comparing it). Keys `mal_t`, `mal_s`, `mal_st` (Table 1's
    L_t, L_s, L_st); `terms` switches them."""
    unknown = set(terms) - set(TERMS)
    if unknown:
        raise ValueError(f"unknown motion alignment terms {sorted(unknown)}; known: {', '.join(TERMS)}")
    g_st = normalized(prediction).view_as(prediction)
    pooled = {"st": (g_st, m_st),
              "s": (g_st.mean(1), m_st.mean(1)),  # P_t: over time -> (B, H, W)
              "t": (g_st.mean((2, 3)), m_st.mean((2, 3)))}  # P_s: over space -> (B, T)
    return {f"mal_{name}": alignment(*pooled[name]) for name in TERMS if name in terms}


def mcl_loss(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The overall objective, MCL §3.3: L = L_NCE + L_MAL, "we empirically treat each loss equally
    and simply summate the two losses"; L_MAL (Eq. 7) is the sum of its enabled terms."""
    return sum(terms.values())


def alignment_map(kind: str, h: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
    """The map `kind` (v1, v2 or v3: Eq. 4, 5, 6) that L_MAL aligns with the motion."""
    if kind == "v1":
        return feature_map(h)
    if kind == "v2":
        return weighted_feature_map(h, g)
    if kind == "v3":
        return weighted_gradient_map(g)
    raise ValueError(f"unknown motion alignment map {kind!r}; known: {', '.join(MAPS)}")


def gradient_maps(q: torch.Tensor, k: torch.Tensor, h: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """g_c = d(q^T k+)/d h_c (MCL §3.3), for every sample and channel at once, (B, C, T, H, W).

    The gradient of the batch's summed q_b^T k_b, as the official code takes it (train.py: grad of
    l_pos with ones as grad_outputs); the batch norm between h and q couples the samples a little
    in training mode. The key k is the momentum encoder's,
    a constant here. create_graph=True keeps g a differentiable function of the encoder's weights:
    L_MAL-v3 is a function of g, so its gradient reaches the encoder only through this
    second-order path (without it g would be a constant and L_MAL-v3 would train nothing).
    `h` may be the list of the sub-batches' h when the queries were encoded in sub-batches
    (`bn_groups`); the maps are concatenated in batch order."""
    parts = h if isinstance(h, (list, tuple)) else [h]
    return torch.cat(torch.autograd.grad((q * k.detach()).sum(), list(parts), create_graph=True))


def motion_at(motion: torch.Tensor, size) -> torch.Tensor:
    """A batch of ST-motion maps (B, T0, H0, W0) average-pooled to the feature map's (T, H, W)."""
    return F.adaptive_avg_pool3d(motion.unsqueeze(1), tuple(size)).squeeze(1)
