"""Contrastive building blocks shared by the methods, each citing the equation it serves.

- `info_nce`: InfoNCE with a mask over negatives (MaCLR Eq. 1, MCL Eq. 3, CMD Eq. 1-2, Controllable
  Augmentations Eq. 1, HCML Eq. 4 all instantiate it);
- `NegativeQueue`: MoCo's memory of negatives, carrying each one's video index (MaCLR §3.1);
- `momentum_copy` / `momentum_update`: the momentum encoder (MoCo; MaCLR §3.1, MCL §4.2);
- `MLPHead`: the projection head (MoCo v2 / SimCLR);
- `gather_from_all`, `shuffled_forward`, `grouped_forward`: what contrastive learning needs across
  DDP processes (the queue is filled with every process's keys; MoCo's shuffling BN, MCL §4.2),
  and the same shuffling BN on one process, over sub-batches that stand for processes.
"""
from __future__ import annotations

import copy

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.nn.functional import all_gather as differentiable_all_gather


def info_nce(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor, tau: float,
             negative_mask: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE (van den Oord et al. 2018; MaCLR Eq. 1, MCL Eq. 3):
    -log exp(q.k/tau) / (exp(q.k/tau) + sum_i exp(q.n_i/tau)), averaged over the batch.

    query, key: (B, D); negatives: (N, D), all L2-normalised. `negative_mask` (B, N), True where
    negative i must NOT be used for query b (an empty queue slot, or a clip of the query's own
    video, MaCLR §3.1): such terms leave the denominator.
    """
    positive = (query * key).sum(dim=1, keepdim=True) / tau  # (B, 1)
    negative = query @ negatives.t() / tau  # (B, N)
    if negative_mask is not None:
        negative = negative.masked_fill(negative_mask, float("-inf"))
    logits = torch.cat([positive, negative], dim=1)
    # The positive sits at index 0: cross-entropy with target 0 is exactly the InfoNCE term.
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))


class NegativeQueue(nn.Module):
    """FIFO memory of negative embeddings that carries each one's video index (MaCLR §3.1:
    "when pushing negatives into the pool, we push the video index, along with the embedding, so
    that we can avoid sampling visual or motion clips that are from the same video as positive
    clips"). Slots not yet filled are never used as negatives. Its buffers are part of the
    method's state, so a resumed run continues with the same negatives.
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
        self.embeddings[rows] = embeddings.detach().to(self.embeddings.dtype)
        self.video_index[rows] = video_index
        self.pointer.copy_((self.pointer + len(embeddings)) % size)

    def negatives_for(self, query_video_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(negatives (N, D), mask (B, N)): mask is True where a slot is empty or holds a clip of
        the query's own video, so it must not be used as a negative for that query."""
        empty = self.video_index < 0
        same_video = query_video_index[:, None] == self.video_index[None, :]
        return self.embeddings, same_video | empty[None, :]


def momentum_copy(online: nn.Module) -> nn.Module:
    """A frozen copy of `online`, to be moved by `momentum_update` only (MoCo's key encoder)."""
    momentum = copy.deepcopy(online)
    for p in momentum.parameters():
        p.requires_grad_(False)
    return momentum


@torch.no_grad()
def momentum_update(online: nn.Module, momentum: nn.Module, coefficient: float) -> None:
    """Momentum encoder update (MoCo Eq. 2; MaCLR §3.1):  theta' <- lambda theta' + (1 - lambda) theta.
    Buffers (batch-norm statistics) are copied, as MoCo's reference code does."""
    for p_online, p_momentum in zip(online.parameters(), momentum.parameters()):
        p_momentum.mul_(coefficient).add_(p_online.detach(), alpha=1.0 - coefficient)
    for b_online, b_momentum in zip(online.buffers(), momentum.buffers()):
        b_momentum.copy_(b_online)


class MLPHead(nn.Sequential):
    """Projection head: `layers` linear layers with ReLU between them (MoCo v2 / SimCLR: two),
    `hidden` wide, output `out_dim`. The L2 normalisation of the embedding is the caller's."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int = 2, batch_norm: bool = False):
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        modules: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            modules.append(nn.Linear(a, b))
            if i < layers - 1:
                if batch_norm:
                    modules.append(nn.BatchNorm1d(b))
                modules.append(nn.ReLU(inplace=True))
        super().__init__(*modules)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_from_all(tensor: torch.Tensor, with_grad: bool = False) -> torch.Tensor:
    """Concatenate `tensor` over all DDP processes along dim 0 (identity on one process).
    `with_grad` keeps the gradient path to every process's part (in-batch negatives); keys for a
    queue need none."""
    if not _distributed():
        return tensor
    if with_grad:
        return torch.cat(differentiable_all_gather(tensor.contiguous()))
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def grouped_forward(encoder: nn.Module, clips: dict[str, torch.Tensor], groups: int = 1) -> dict[str, torch.Tensor]:
    """`encoder` over `groups` consecutive sub-batches, so that batch norm computes its statistics
    per sub-batch, as it does per process under DDP. `groups` = 1 is one forward of the batch."""
    if groups <= 1:
        return encoder(clips)
    size = len(next(iter(clips.values())))
    if size % groups:
        raise ValueError(f"bn_groups = {groups} must divide the batch of {size} clips")
    parts = [encoder({name: x[i : i + size // groups] for name, x in clips.items()}) for i in range(0, size, size // groups)]
    return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}


@torch.no_grad()
def shuffled_forward(encoder: nn.Module, clips: dict[str, torch.Tensor], groups: int = 1) -> dict[str, torch.Tensor]:
    """MoCo's shuffling BN (He et al. 2020 §3.3; MCL §4.2 "shuffling BN"): the key batch is
    permuted across processes before the key encoder and un-permuted after, so batch-norm
    statistics of a key never come from its own query's process.

    On one process, `groups` > 1 stands for that many processes: the key batch is permuted and
    encoded in `groups` sub-batches, while the queries are encoded in the same sub-batches unpermuted
    (`grouped_forward`). Without it a single process has no defence against the leak MoCo §3.3
    describes: a query and its key share their batch's statistics, which the queue's negatives,
    encoded in earlier batches, do not, so the positive can be told apart without learning anything
    about the clips. `groups` = 1 on one process is the identity order."""
    if not _distributed():
        if groups <= 1:
            return encoder(clips)
        size = len(next(iter(clips.values())))
        permutation = torch.randperm(size, device=next(iter(clips.values())).device)
        keys = grouped_forward(encoder, {name: x[permutation] for name, x in clips.items()}, groups)
        restore = torch.argsort(permutation)
        return {name: k[restore] for name, k in keys.items()}
    if groups > 1:
        raise ValueError("bn_groups stands for processes on one process; under DDP the processes shuffle (set bn_groups: 1)")
    world, rank = dist.get_world_size(), dist.get_rank()
    gathered = {name: gather_from_all(x) for name, x in clips.items()}
    total = len(next(iter(gathered.values())))
    permutation = torch.randperm(total, device=next(iter(gathered.values())).device)
    dist.broadcast(permutation, src=0)
    restore = torch.argsort(permutation)
    local = total // world
    mine = permutation.view(world, local)[rank]
    keys = encoder({name: x[mine] for name, x in gathered.items()})
    back = restore.view(world, local)[rank]
    return {name: gather_from_all(k)[back] for name, k in keys.items()}
