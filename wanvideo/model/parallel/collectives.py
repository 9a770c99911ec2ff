"""The few torch.distributed exchanges sequence parallelism needs, each exact (data is only moved, never summed
except with zeros).

`all_to_all` uses `dist.all_to_all_single` where the backend has it (nccl; gloo on CPU in recent torch) and an
`all_gather` based exchange where it does not (gloo in older torch raises for all_to_all), so the same code runs
on GPUs and is tested on CPUs.
"""
from __future__ import annotations

import logging

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

_ALL_TO_ALL_WORKS: dict[str, bool] = {}  # backend name -> all_to_all_single available


def group_size(group) -> int:
    return dist.get_world_size(group)


def group_rank(group) -> int:
    return dist.get_rank(group)


def _all_to_all_via_gather(chunks: list[torch.Tensor], group) -> list[torch.Tensor]:
    """Rank r receives chunk r of every rank: gather everything, keep the column addressed to us."""
    size, rank = group_size(group), group_rank(group)
    mine = torch.stack([c.contiguous() for c in chunks])  # [size, ...] all chunks have one shape
    gathered = [torch.empty_like(mine) for _ in range(size)]
    dist.all_gather(gathered, mine, group=group)
    return [gathered[src][rank] for src in range(size)]


def all_to_all(chunks: list[torch.Tensor], group) -> list[torch.Tensor]:
    """Send chunks[i] to group rank i; returns the chunks received, indexed by source rank (equal shapes)."""
    size = group_size(group)
    if size == 1:
        return list(chunks)
    backend = str(dist.get_backend(group))
    if _ALL_TO_ALL_WORKS.get(backend, True):
        send = torch.stack([c.contiguous() for c in chunks])
        recv = torch.empty_like(send)
        try:
            dist.all_to_all_single(recv, send, group=group)
            _ALL_TO_ALL_WORKS[backend] = True
            return list(recv.unbind(0))
        except (RuntimeError, NotImplementedError) as exc:
            # Every rank of the group fails the same way (same backend), so all fall back together.
            if _ALL_TO_ALL_WORKS.get(backend) is True:
                raise
            log.info("all_to_all is not available on the %s backend (%s); using all_gather instead", backend, exc)
            _ALL_TO_ALL_WORKS[backend] = False
    return _all_to_all_via_gather(chunks, group)


def seq_to_heads(x: torch.Tensor, group) -> torch.Tensor:
    """Ulysses forward exchange: [B, s, H, D] (local tokens, all heads) -> [B, size*s, H/size, D]
    (the group's tokens in rank order, this rank's share of the heads)."""
    size = group_size(group)
    if size == 1:
        return x
    received = all_to_all(list(x.chunk(size, dim=2)), group)
    return torch.cat(received, dim=1)


def heads_to_seq(x: torch.Tensor, group) -> torch.Tensor:
    """Inverse of `seq_to_heads`: [B, size*s, H/size, D] -> [B, s, H, D]."""
    size = group_size(group)
    if size == 1:
        return x
    received = all_to_all(list(x.chunk(size, dim=1)), group)
    return torch.cat(received, dim=2)


def all_gather_cat(x: torch.Tensor, dim: int, group=None) -> torch.Tensor:
    """Concatenate every rank's equally shaped x along `dim`, in rank order."""
    size = dist.get_world_size(group)
    if size == 1:
        return x
    x = x.contiguous()
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x, group=group)
    return torch.cat(parts, dim=dim)


def all_reduce(x: torch.Tensor, op=dist.ReduceOp.SUM, group=None) -> torch.Tensor:
    """In-place all-reduce that also returns x (a no-op without a process group of more than one rank)."""
    if dist.get_world_size(group) > 1:
        dist.all_reduce(x, op=op, group=group)
    return x
