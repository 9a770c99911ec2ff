"""Device lists of the multi-device modes ('cuda:0,cuda:1', ['cuda:0', 'cuda:1'], 'cpu,cpu' for tests)."""
from __future__ import annotations

import os

import torch

from ...errors import InputError


def parse_devices(devices) -> list[torch.device]:
    names = [d.strip() for d in devices.split(",")] if isinstance(devices, str) else [str(d) for d in devices]
    names = [n for n in names if n]
    out = []
    for name in names:
        try:
            device = torch.device(name)
        except RuntimeError:
            raise InputError(f"unknown device {name!r}: list devices like cuda:0,cuda:1") from None
        if device.type == "cuda":
            if device.index is None:
                raise InputError(f"name each GPU with its number ({name!r} -> cuda:0, cuda:1, ...)")
            if device.index >= torch.cuda.device_count():
                raise InputError(f"{name} is not available: this machine shows {torch.cuda.device_count()} GPU(s)")
        out.append(device)
    return out


def free_bytes(device: torch.device) -> int:
    """Free memory on a device now (CUDA: what the driver reports; CPU: available RAM)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def label(device: torch.device, rank: int) -> str:
    """How messages name a device's worker: 'GPU 1' (cuda:1), 'CPU 1' (rank 1 on the CPU)."""
    return f"GPU {device.index}" if device.type == "cuda" else f"CPU {rank}"
