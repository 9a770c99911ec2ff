"""The command line on several processes: `torchrun --nproc_per_node N -m wanvideo generate ... --sequence-parallel
ulysses` splits each window's tokens across N GPUs (N processes on CPUs, with gloo: slower, for tests).

Rank 0 runs the whole pipeline (`pipeline.make_video_file`: inputs, encoders, speech, VAE, frame store, MP4); the
other ranks load only the video model and run each of its calls with rank 0 (`distributed`). Only rank 0 writes.
"""
from __future__ import annotations

import dataclasses
import logging
import os

from ..errors import InputError
from .window_executor import window_executor

__all__ = ["make_video_file_on_ranks", "process_count", "window_executor"]

log = logging.getLogger(__name__)


def process_count() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def make_video_file_on_ranks(req):
    """`make_video_file(req)` with torchrun's ranks: its result on rank 0, None on the others."""
    from ..model.parallel import distributed
    from .pipeline import load_video_model, make_video_file

    if not req.sequence_parallel:
        raise InputError(f"started by torchrun with {process_count()} processes: add --sequence-parallel ulysses "
                         "(or ring) so they share each window, or run one process per GPU on its own job")
    info = distributed.init_from_env(req.device)
    req = dataclasses.replace(req, device=str(info.device))
    try:
        if info.is_main:
            try:
                return make_video_file(req)
            except BaseException:
                distributed.abort_followers()
                raise
        logging.getLogger().setLevel(logging.WARNING)  # one voice: rank 0's
        model = load_video_model(req)
        distributed.run_sequence_parallel(model, req.sequence_parallel)
        return None
    finally:
        distributed.shutdown()

