"""Ring attention over a process group: each rank keeps its queries and the key/value blocks travel around the ring;
block results are merged through their log-sum-exp, which is exact softmax attention over all keys.

Used for more ranks than the head count lets Ulysses split (and for `--sequence-parallel ring`). Blocks are
computed in float32 by plain matmuls (the CPU/gloo path and any GPU without yunchang); keys past the real token
count (padding of the last shard) are cut off before they can take part.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

# Query rows per block computation: bounds the float32 score matrix (heads x rows x keys) to about this many elements.
_SCORE_ELEMENTS = 1 << 26


def block_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(D)) v and its log-sum-exp for [B, Lq, H, D] q and [B, Lk, H, D] k/v.

    Returns (out [B, Lq, H, D] float32, lse [B, H, Lq] float32). Lk may be 0 (out 0, lse -inf).
    """
    b, lq, h, d = q.shape
    out = q.new_zeros(b, lq, h, d, dtype=torch.float32)
    lse = torch.full((b, h, lq), float("-inf"), device=q.device, dtype=torch.float32)
    if k.shape[1] == 0 or lq == 0:
        return out, lse
    scale = d ** -0.5
    kt = k.float().permute(0, 2, 3, 1)  # [B, H, D, Lk]
    vt = v.float().transpose(1, 2)  # [B, H, Lk, D]
    rows = max(1, _SCORE_ELEMENTS // max(1, b * h * k.shape[1]))
    for start in range(0, lq, rows):
        qc = q[:, start:start + rows].float().transpose(1, 2) * scale  # [B, H, r, D]
        scores = torch.matmul(qc, kt)  # [B, H, r, Lk]
        m = scores.amax(dim=-1, keepdim=True)
        p = torch.exp(scores - m)
        total = p.sum(dim=-1, keepdim=True)
        out[:, start:start + rows] = (torch.matmul(p, vt) / total).transpose(1, 2)
        lse[:, :, start:start + rows] = (m + torch.log(total)).squeeze(-1)
    return out, lse


def merge_blocks(out: torch.Tensor, lse: torch.Tensor, block_out: torch.Tensor, block_lse: torch.Tensor):
    """Combine two partial attentions over disjoint key sets (float32 tensors as `block_attention` returns)."""
    new_lse = torch.logaddexp(lse, block_lse)
    keep = torch.exp(lse - new_lse).nan_to_num_(0.0)  # -inf - -inf (no keys yet) gives nan: weight 0
    add = torch.exp(block_lse - new_lse).nan_to_num_(0.0)
    out = out * keep.transpose(1, 2).unsqueeze(-1) + block_out * add.transpose(1, 2).unsqueeze(-1)
    return out, new_lse


def _start_exchange(tensors: list[torch.Tensor], group, send_to: int, recv_from: int):
    """Start sending `tensors` to group rank `send_to` and receiving the same shapes from `recv_from`.

    Returns (received tensors, requests to wait on): the transfer overlaps the block computation.
    """
    received = [torch.empty_like(t) for t in tensors]
    ops = []
    for t, r in zip(tensors, received, strict=True):
        ops.append(dist.P2POp(dist.isend, t, dist.get_global_rank(group, send_to), group))
        ops.append(dist.P2POp(dist.irecv, r, dist.get_global_rank(group, recv_from), group))
    return received, dist.batch_isend_irecv(ops)


def ring_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group, valid_keys) -> torch.Tensor:
    """Exact attention of this rank's queries over the keys of every rank of `group`.

    q, k, v [B, c, H, D]: this rank's chunk of c tokens; `valid_keys(j)` is how many leading tokens of group
    rank j's chunk are real (the rest is padding and is never attended to). Returns [B, c, H, D] in q's dtype.
    """
    size, rank = dist.get_world_size(group), dist.get_rank(group)
    out = lse = None
    kv = [k.contiguous(), v.contiguous()]
    for step in range(size):
        source = (rank - step) % size  # whose keys we hold in this step
        incoming = requests = None
        if step + 1 < size:  # pass what we hold on to the next rank while computing on it
            incoming, requests = _start_exchange(kv, group, (rank + 1) % size, (rank - 1) % size)
        n = valid_keys(source)
        block_out, block_lse = block_attention(q, kv[0][:, :n], kv[1][:, :n])
        if out is None:
            out, lse = block_out, block_lse
        else:
            out, lse = merge_blocks(out, lse, block_out, block_lse)
        if requests is not None:
            for req in requests:
                req.wait()
            kv = incoming
    return out.to(q.dtype)
