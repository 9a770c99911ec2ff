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


def window_executor(req, files: dict, dit, work: str):
    """Where each window runs for `--parallel ...` (None: on `dit` as it is). The worker pool loads the model from
    its files; the embedded tiny set is written to the work folder for it first."""
    from ..model.parallel.pool import ModelSource
    from ..model.parallel.settings import make_executor

    s = req.multi_gpu
    if not s.parallel:
        return None
    source = None
    if s.parallel == "sequence_parallel":
        if not files:  # the embedded tiny set: no file to read
            from safetensors.torch import save_file

            path = os.path.join(work, "embedded_dit.safetensors")
            save_file(dit.state_dict(), path)
            source = ModelSource.of_loaded(dit, [path])
        else:
            source = ModelSource.of_loaded(dit, [files["model"], files.get("infinitetalk")], req.loader.load_kwargs(),
                                           [(path, strength) for path, strength in req.models.loras])
    return make_executor(s, source, threads=int(os.environ.get("WANVIDEO_WORKER_THREADS", "1")))
