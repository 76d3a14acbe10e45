"""MaCLR's objectives (Xiao, Tighe, Modolo. MaCLR, ECCV 2022, §3.1), and the queue of negatives.

Notation as in the paper: v = visual embeddings, m = motion embeddings; q = query (online
encoder), k = positive key (momentum encoder), n = negatives from a memory queue.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor, tau: float,
             negative_mask: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE, MaCLR Eq. (1):  -log exp(q.k/tau) / (exp(q.k/tau) + sum_i exp(q.n_i/tau)).

    query, key: (B, D), L2-normalised; negatives: (N, D), L2-normalised.
    negative_mask: optional (B, N) boolean, True where negative i may NOT be used for query b
    (MaCLR §3.1: negatives from the positive's own video are excluded); such terms are dropped
    from the denominator. Returns the mean over the batch.
    """
    positive = (query * key).sum(dim=1, keepdim=True) / tau  # (B, 1)
    negative = query @ negatives.t() / tau  # (B, N)
    if negative_mask is not None:
        negative = negative.masked_fill(negative_mask, float("-inf"))
    logits = torch.cat([positive, negative], dim=1)
    # The positive sits at index 0: cross-entropy with target 0 is exactly Eq. (1).
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))


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


def momentum_update(online: torch.nn.Module, momentum: torch.nn.Module, coefficient: float) -> None:
    """Momentum encoder update (MaCLR §3.1, after MoCo):  theta' <- lambda theta' + (1 - lambda) theta."""
    with torch.no_grad():
        for p_online, p_momentum in zip(online.parameters(), momentum.parameters()):
            p_momentum.mul_(coefficient).add_(p_online.detach(), alpha=1.0 - coefficient)
        for b_online, b_momentum in zip(online.buffers(), momentum.buffers()):
            b_momentum.copy_(b_online)


class NegativeQueue(torch.nn.Module):
    """FIFO memory of negative embeddings that carries each one's video index (MaCLR §3.1:
    "when pushing negatives into the pool, we push the video index, along with the embedding, so
    that we can avoid sampling visual or motion clips that are from the same video as positive
    clips"). Slots not yet filled are never used as negatives.
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("embeddings", torch.zeros(size, dim))
        self.register_buffer("video_index", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, embeddings: torch.Tensor, video_index: torch.Tensor) -> None:
        size = len(self.embeddings)
        rows = (self.pointer + torch.arange(len(embeddings), device=embeddings.device)) % size
        self.embeddings[rows] = embeddings.detach()
        self.video_index[rows] = video_index
        self.pointer.copy_((self.pointer + len(embeddings)) % size)

    def negatives_for(self, query_video_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(negatives (N, D), mask (B, N)): mask is True where a slot is empty or holds a clip of
        the query's own video, so it must not be used as a negative for that query."""
        empty = self.video_index < 0
        same_video = query_video_index[:, None] == self.video_index[None, :]
        return self.embeddings, same_video | empty[None, :]
