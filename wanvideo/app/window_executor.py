"""Where the command line's windows run for `--parallel ...`: its own file so the pipeline (which calls it) and the
multi-process entry (`multi_gpu`, which calls the pipeline) both sit above it."""
from __future__ import annotations

import os


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
