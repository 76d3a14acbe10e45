"""MaCLR's objectives (Xiao, Tighe, Modolo. MaCLR, ECCV 2022, §3.1). The queue of negatives and
the momentum update are the shared ones of `methods.training.contrastive`.

Notation as in the paper: v = visual embeddings, m = motion embeddings; q = query (online
encoder), k = positive key (momentum encoder), n = negatives from a memory queue.
"""
from __future__ import annotations

import torch

from methods.training import contrastive


def info_nce(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor, tau: float,
             negative_mask: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE, MaCLR Eq. (1):  -log exp(q.k/tau) / (exp(q.k/tau) + sum_i exp(q.n_i/tau)).

    Negatives of the positive's own video are masked out of the denominator (§3.1); the shared
    implementation is `methods.training.contrastive.info_nce`."""
    return contrastive.info_nce(query, key, negatives, tau, negative_mask)


def motion_visual_loss(v_q, v_k, m_q, m_k, v_neg, m_neg, tau, v_mask=None, m_mask=None) -> torch.Tensor:
    """Cross-modal objective, MaCLR Eq. (2):  L_mv = IN(v^q, m^k, v^n) + IN(m^q, v^k, m^n).

    A visual query is pulled to a motion key of the same video (and pushed from visual
    negatives), and a motion query to a visual key (pushed from motion negatives).
    """
    return info_nce(v_q, m_k, v_neg, tau, v_mask) + info_nce(m_q, v_k, m_neg, tau, m_mask)


def maclr_loss(terms: dict[str, torch.Tensor], enabled: list[str]) -> torch.Tensor:
    """Final objective, MaCLR Eq. (3):  L = L_v + L_m + L_mv, over the terms a variant enables
    (the ablations of Table 1 switch terms off: V-only keeps L_v, -L_m drops L_m)."""
    missing = [name for name in enabled if name not in terms]
    if missing:
        raise KeyError(f"loss terms {missing} enabled but not computed")
    return sum(terms[name] for name in enabled)


def loss_terms(cfg: dict, q: dict, k: dict, video_index: torch.Tensor, queues) -> dict[str, torch.Tensor]:
    """The terms of Eq. (3) the variant enables (`cfg["losses"]`), each with the query's own video
    masked out of its negatives (§3.1). q, k: embeddings by pathway; queues: NegativeQueue by pathway."""
    tau, enabled, terms = float(cfg["temperature"]), cfg["losses"], {}
    neg = {p: queues[p].negatives_for(video_index) for p in queues}
    if "v" in enabled:
        terms["v"] = info_nce(q["visual"], k["visual"], neg["visual"][0], tau, neg["visual"][1])
    if "m" in enabled:
        terms["m"] = info_nce(q["motion"], k["motion"], neg["motion"][0], tau, neg["motion"][1])
    if "mv" in enabled:
        # Eq. (2) as printed contrasts a visual query with visual negatives v^n (and a motion query
        # with m^n); `mv_negatives: key_modality` draws them from the key's modality instead (as
        # cross-modal methods such as CMC do), to test whether the printed form matters.
        swap = cfg.get("mv_negatives", "query_modality") == "key_modality"
        for_visual, for_motion = (neg["motion"], neg["visual"]) if swap else (neg["visual"], neg["motion"])
        terms["mv"] = motion_visual_loss(
            q["visual"], k["visual"], q["motion"], k["motion"], for_visual[0], for_motion[0], tau, for_visual[1], for_motion[1],
        )
    return terms
