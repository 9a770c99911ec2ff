"""The model's side of step caching: run the transformer blocks only for the batch rows a step cache keeps, and add
each skipped row's cached residual (the blocks' output minus their input at that pass's last computed call).

The decisions come with the call (`model(..., step_cache=plan)`, plan = (cache key, pass name per row, run per row),
made by `wanvideo.sampling.cache.StepCache`), so under sequence parallel rank 0 decides once and the plan reaches
the other ranks with the call's other arguments; every rank keeps the residuals of its own token shard. A plan with
a new cache key (the next window's cache) drops the previous residuals first.
"""
from __future__ import annotations

import torch

from ..errors import WanVideoError


class StepCachePlanError(WanVideoError):
    """A step-cache plan the model cannot follow (a skipped pass without a computed call before it)."""


class BlockResiduals:
    """Per guidance pass, the blocks' residual of its last computed call (this rank's tokens)."""

    def __init__(self):
        self.key = None
        self.residuals: dict[str, torch.Tensor] = {}

    def clear(self, key=None) -> None:
        """Drop the residuals (only if they belong to cache `key`, when given)."""
        if key is None or key == self.key:
            self.key, self.residuals = None, {}

    def run(self, run_blocks, h: torch.Tensor, e0: torch.Tensor, state, plan) -> torch.Tensor:
        """`run_blocks(h, e0, state)` for the rows the plan runs; the others get h + their pass's residual."""
        key, names, compute = plan
        if len(names) != h.shape[0] or len(compute) != h.shape[0]:
            raise StepCachePlanError(f"a step-cache plan for {len(names)} rows came with a batch of {h.shape[0]}")
        if key != self.key:
            self.clear()
            self.key = key
        missing = [n for n, run in zip(names, compute, strict=True) if not run and n not in self.residuals]
        if missing:
            raise StepCachePlanError(f"step cache: pass {missing[0]!r} is skipped before any computed call")
        rows = [r for r, run in enumerate(compute) if run]
        if len(rows) == len(names):
            out = run_blocks(h, e0, state)
        else:
            out = torch.stack([h[r] + self.residuals[n].to(h.dtype) for r, n in enumerate(names)])
            if rows:
                index = torch.tensor(rows, device=h.device)
                out[index] = run_blocks(h.index_select(0, index), e0.index_select(0, index), state.select(rows))
        for r in rows:
            self.residuals[names[r]] = out[r] - h[r]
        return out
