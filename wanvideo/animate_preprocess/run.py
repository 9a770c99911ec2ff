"""One preprocessing run from settings: the entry the node and the command line share."""
from __future__ import annotations

from .model_files import PreprocessModels
from .pipeline import Progress, Sink, preprocess_animate, preprocess_replace
from .settings import PreprocessSettings


def run_preprocess(settings: PreprocessSettings, frames, character, models: PreprocessModels, *, segmenter=None,
                   sink: Sink | None = None, progress: Progress | None = None) -> dict:
    """Animation or replacement preprocessing of `frames` (driving clip) for `character`, as `settings.mode` says."""
    s = settings.validated()
    common = dict(resolution_area=s.area, fps=s.preprocess_fps, sink=sink, progress=progress)
    if s.mode == "animate":
        return preprocess_animate(frames, s.driving_fps, character, models.detector, models.pose,
                                  retarget=bool(s.retarget), **common)
    return preprocess_replace(frames, s.driving_fps, character, models.detector, models.pose,
                              k=int(s.mask_kernel), iterations=int(s.mask_iterations), w_len=int(s.mask_grid_w),
                              h_len=int(s.mask_grid_h), segmenter=segmenter, **common)
