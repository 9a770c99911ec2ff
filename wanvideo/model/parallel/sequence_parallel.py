"""Sequence parallelism for the DiT: one model call's video tokens split across the ranks of torch.distributed.

Layout (xDiT's USP, as the reference runs it): the token sequence is padded to a multiple of the world size and
rank r holds tokens [r*s, (r+1)*s). Self-attention exchanges heads for tokens inside groups of `ulysses` ranks
(all-to-all: each rank then holds its group's tokens for H/ulysses heads) and, when the heads cannot be split that
far, runs ring attention across the `ring` groups. Everything else in a block is per token and runs on the local
shard: RoPE takes the shard's angles, the audio cross-attention works frame by frame on the frames the shard
touches (`FrameSpan`), the two-speaker routing gathers the first latent frame's keys and the global map range.
The model's output is gathered once per call. Padding tokens never reach a key or a statistic, so every rank
count gives the single-process result (up to float rounding of the merged softmax).

On CUDA, when `yunchang` (the long-context attention xDiT builds on) is installed and the tokens split evenly,
its `LongContextAttention` runs the exchange and the kernels; otherwise (CPU/gloo, uneven splits) the
torch.distributed path below does.
"""
from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ...errors import InputError
from ..attention import attention
from .collectives import all_gather_cat, all_reduce, heads_to_seq, seq_to_heads
from .ring_attention import ring_attention

log = logging.getLogger(__name__)

MODES = ("ulysses", "ring")


def split_degrees(world: int, heads: int, mode: str) -> tuple[int, int]:
    """(ulysses, ring) degrees for `world` ranks: 'ulysses' splits heads as far as they divide (the rest is ring),
    'ring' uses the ring only."""
    if mode not in MODES:
        raise InputError(f"unknown sequence-parallel mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "ring":
        return 1, world
    ulysses = math.gcd(world, heads)
    return ulysses, world // ulysses


@dataclass(frozen=True)
class FrameSpan:
    """A run of `count` tokens starting at global token `offset`, in frames of `per_frame` tokens.

    `to_frames` pads the run out to whole frames ([B, count, ...] -> [B*frames, per_frame, ...]) so per-frame
    attention runs exactly as on the whole sequence; `from_frames` drops the padding again. With offset 0 and
    whole frames it is a plain reshape.
    """

    offset: int
    count: int
    per_frame: int

    @property
    def first_frame(self) -> int:
        return self.offset // self.per_frame

    @property
    def frames(self) -> int:
        if self.count == 0:
            return 0
        return (self.offset + self.count - 1) // self.per_frame - self.first_frame + 1

    @property
    def _pads(self) -> tuple[int, int]:
        front = self.offset - self.first_frame * self.per_frame
        return front, self.frames * self.per_frame - front - self.count

    def to_frames(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        front, back = self._pads
        if front or back:
            x = torch.cat([x.new_zeros(b, front, *x.shape[2:]), x, x.new_zeros(b, back, *x.shape[2:])], dim=1)
        return x.reshape(b * self.frames, self.per_frame, *x.shape[2:])

    def from_frames(self, y: torch.Tensor, batch: int) -> torch.Tensor:
        front, _ = self._pads
        y = y.reshape(batch, self.frames * self.per_frame, *y.shape[2:])
        return y[:, front:front + self.count]


class SequenceParallel:
    """The process groups and exchanges of one sequence-parallel layout (create it on every rank, same order)."""

    def __init__(self, mode: str, num_heads: int, use_yunchang: bool | None = None):
        if not dist.is_available() or not dist.is_initialized():
            raise InputError("sequence parallel needs torch.distributed: start with "
                             "`torchrun --nproc_per_node N -m wanvideo generate ... --sequence-parallel ulysses`")
        self.mode = mode
        self.world = dist.get_world_size()
        self.rank = dist.get_rank()
        self.ulysses, self.ring = split_degrees(self.world, num_heads, mode)
        self.ulysses_group, self.ring_group = self._make_groups()
        self.ring_rank = self.rank // self.ulysses  # which chunk of ulysses*s tokens this rank's group holds
        self._long_context = self._make_yunchang() if use_yunchang is not False else None
        if use_yunchang and self._long_context is None:
            raise InputError("yunchang was requested for sequence parallel but is not usable here "
                             "(it needs CUDA and `pip install yunchang`)")
        log.info("sequence parallel: %d ranks, ulysses %d x ring %d%s", self.world, self.ulysses, self.ring,
                 " (yunchang)" if self._long_context is not None else "")

    def _make_groups(self):
        world_group = dist.group.WORLD
        if self.ring == 1:
            return world_group, None
        if self.ulysses == 1:
            return None, world_group
        ulysses_group = ring_group = None
        for i in range(self.ring):  # consecutive ranks share heads (the fast links on one host)
            ranks = list(range(i * self.ulysses, (i + 1) * self.ulysses))
            group = dist.new_group(ranks)
            if self.rank in ranks:
                ulysses_group = group
        for j in range(self.ulysses):
            ranks = list(range(j, self.world, self.ulysses))
            group = dist.new_group(ranks)
            if self.rank in ranks:
                ring_group = group
        return ulysses_group, ring_group

    def _make_yunchang(self):
        """yunchang's LongContextAttention on CUDA (not run in this project's CI: it has no GPU)."""
        if str(dist.get_backend()) != "nccl" or importlib.util.find_spec("yunchang") is None:
            return None
        import yunchang  # lazily: it probes for CUDA kernels at import
        from yunchang.kernels import AttnType

        yunchang.set_seq_parallel_pg(self.ulysses, self.ring, self.rank, self.world, use_ulysses_low=True)
        attn_type = AttnType.FA if importlib.util.find_spec("flash_attn") is not None else AttnType.TORCH_FLASH
        return yunchang.LongContextAttention(ring_impl_type="basic", attn_type=attn_type)

    # ----- shards -------------------------------------------------------------------------------------
    def shard(self, tokens: int) -> "TokenShard":
        return TokenShard(self, tokens, -(-tokens // self.world))

    # ----- self-attention -------------------------------------------------------------------------------
    def self_attention(self, q, k, v, shard: "TokenShard", backend: str = "sdpa") -> torch.Tensor:
        """Attention of the local queries over all tokens; q, k, v [B, s, H, D] local shards."""
        if self._long_context is not None and shard.padding == 0:
            dtype = q.dtype
            half = dtype if dtype in (torch.float16, torch.bfloat16) else torch.bfloat16
            return self._long_context(q.to(half), k.to(half), v.to(half)).to(dtype)
        if self.ulysses > 1:
            q, k, v = (seq_to_heads(t, self.ulysses_group) for t in (q, k, v))  # [B, ulysses*s, H/ulysses, D]
        chunk = q.shape[1]
        if self.ring == 1:
            n = shard.total  # the whole sequence is here: drop the padding, attend, pad again
            out = attention(q[:, :n], k[:, :n], v[:, :n], backend)
            if n < chunk:
                out = torch.cat([out, out.new_zeros(out.shape[0], chunk - n, *out.shape[2:])], dim=1)
        else:
            def valid_keys(j):
                return max(0, min(chunk, shard.total - j * chunk))

            out = ring_attention(q, k, v, self.ring_group, valid_keys)
        return heads_to_seq(out, self.ulysses_group) if self.ulysses > 1 else out


@dataclass(frozen=True)
class TokenShard:
    """This rank's share of one call's `total` tokens: rows [start, start + size) of the padded sequence."""

    sp: SequenceParallel
    total: int
    size: int

    @property
    def start(self) -> int:
        return self.sp.rank * self.size

    @property
    def valid(self) -> int:
        """Real (unpadded) tokens on this rank; the padding sits at the end of the last shards."""
        return max(0, min(self.size, self.total - self.start))

    @property
    def padding(self) -> int:
        return self.size * self.sp.world - self.total

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """[B, total, ...] -> this rank's [B, size, ...] (zero rows past the end)."""
        local = x[:, self.start:self.start + self.valid]
        return self.pad(local)

    def pad(self, local: torch.Tensor, value: float = 0.0) -> torch.Tensor:
        """[B, valid, ...] -> [B, size, ...]."""
        missing = self.size - local.shape[1]
        if missing == 0:
            return local
        return torch.cat([local, local.new_full((local.shape[0], missing, *local.shape[2:]), value)], dim=1)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Every rank's [B, size, ...] -> the whole [B, total, ...] on every rank."""
        return all_gather_cat(x, dim=1)[:, :self.total]

    def rope(self, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The local rows of [total, P] RoPE tables (padding rows rotate by nothing)."""
        rows = slice(self.start, self.start + self.valid)
        pad = self.size - self.valid
        cos, sin = cos[rows], sin[rows]
        if pad:
            cos = torch.cat([cos, cos.new_ones(pad, cos.shape[1])])
            sin = torch.cat([sin, sin.new_zeros(pad, sin.shape[1])])
        return cos, sin

    def frame_span(self, per_frame: int) -> FrameSpan:
        return FrameSpan(self.start, self.valid, per_frame)

    def leading_tokens(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """Rows [0, n) of the global [B, total, ...] tensor whose local shard is x, on every rank.

        Each row lives on exactly one rank; the others add zeros, so the sum is exact.
        """
        out = x.new_zeros(x.shape[0], n, *x.shape[2:])
        lo, hi = self.start, min(self.start + self.valid, n)
        if hi > lo:
            out[:, lo:hi] = x[:, :hi - lo]
        return all_reduce(out)

    def global_min(self, x: torch.Tensor) -> torch.Tensor:
        return all_reduce(x.clone(), op=dist.ReduceOp.MIN)

    def global_max(self, x: torch.Tensor) -> torch.Tensor:
        return all_reduce(x.clone(), op=dist.ReduceOp.MAX)

    def attention(self, q, k, v, backend: str = "sdpa") -> torch.Tensor:
        return self.sp.self_attention(q, k, v, self, backend)

