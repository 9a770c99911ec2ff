"""FSDP2 weight sharding for the sequence-parallel workers: each rank holds about 1/N of the weights.

The DiT is built on the meta device (no memory), `fully_shard` is applied per transformer block and once to the
whole model (the embeddings and the head), then each rank materialises only its shards and fills them from the
file, reading only its rows (`ShardReader`). Buffers (an fp8 weight's scale) are not sharded: every rank reads
them whole, they are a few bytes. During a call FSDP gathers each block's weights just before it runs and frees
them after, so a rank's peak is its shards plus about one block.
"""
from __future__ import annotations

import logging

import torch
import torch.distributed as dist

from ...errors import InputError
from .shard_reader import ShardReader

log = logging.getLogger(__name__)


def rows_of_rank(length: int, rank: int, world: int) -> tuple[int, int]:
    """Rows [start, stop) of a dimension of `length` that rank holds (torch.chunk's split, as FSDP2's Shard(0))."""
    chunk = -(-length // world)
    start = min(length, rank * chunk)
    return start, min(length, start + chunk)


def load_sharded(config: dict, paths, dtype: torch.dtype, device) -> tuple[torch.nn.Module, dict]:
    """(the model with FSDP2-sharded weights on `device`, {param_bytes, total_param_bytes, bytes_read,
    file_bytes}). Every rank of the default process group calls it together."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    from ..build import build_model

    device = torch.device(device)
    rank, world = dist.get_rank(), dist.get_world_size()
    reader = ShardReader(paths)
    model = build_model(config, dtype=dtype, device="meta")
    scales = _keep_fp8_weights(model, reader)
    mesh = init_device_mesh(device.type, (world,))
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    model.to_empty(device=device)
    model.main_device = device
    held = total = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name not in reader.entries:
                raise InputError(f"FSDP loading: {name} is not in {', '.join(reader.paths)}; FSDP needs the "
                                 "model's weights in the native (original Wan) layout, in .safetensors files")
            if tuple(reader.shape(name)) != tuple(param.shape):
                raise InputError(f"FSDP loading: {name} has shape {tuple(reader.shape(name))} in the file, the "
                                 f"model expects {tuple(param.shape)}")
            local = param.to_local() if isinstance(param, DTensor) else param
            if isinstance(param, DTensor) and param.dim() > 0:
                start, stop = rows_of_rank(param.shape[0], rank, world)
                if stop - start != local.shape[0]:
                    raise RuntimeError(f"{name}: FSDP holds {local.shape[0]} rows on rank {rank}, expected "
                                       f"{stop - start}")
                local.copy_(reader.read(name, start, stop))
            else:
                local.copy_(reader.read(name))
            held += local.numel() * local.element_size()
            total += param.numel() * local.element_size()
        for module_name, key in scales:  # replicated: every rank reads every scale (a number per layer)
            model.get_submodule(module_name).weight_scale.copy_(reader.read(key))
    info = dict(param_bytes=held, total_param_bytes=total, bytes_read=reader.bytes_read,
                file_bytes=reader.total_bytes, fp8_scales=len(scales))
    log.info("FSDP holds %.1f%% of the weights, read %.1f%% of the file",
             100 * held / max(1, total), 100 * reader.bytes_read / max(1, reader.total_bytes))
    return model, info


def _keep_fp8_weights(model, reader) -> list[tuple[str, str]]:
    """Linear weights stored as fp8 in the file stay fp8 (still on the meta device), with their scale as a buffer
    (FSDP shards parameters, never buffers: the scales are replicated). Returns (layer, scale key) pairs."""
    from ..layers import Linear
    from ..layouts import SCALE_SUFFIXES
    from ..quant.fp8 import is_fp8

    scales = []
    for name, module in model.named_modules():
        key = f"{name}.weight"
        if not isinstance(module, Linear) or key not in reader.entries or not is_fp8(reader.entries[key][2]):
            continue
        module._parameters["weight"] = torch.nn.Parameter(
            torch.empty(module.weight.shape, dtype=reader.entries[key][2], device="meta"), requires_grad=False)
        scale_key = next((name + s for s in SCALE_SUFFIXES if name + s in reader.entries), None)
        if scale_key is not None:
            module.weight_scale = torch.empty(reader.shape(scale_key), dtype=torch.float32, device="meta")
            scales.append((name, scale_key))
    return scales
