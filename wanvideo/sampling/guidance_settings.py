"""The guidance options (InfiniteTalk Guidance Options node, --guidance-batching, --apg*), declared once: how the
guidance passes of a step run (guidance.py) and adaptive projected guidance (apg.py). A sampler's settings inherit
them."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError
from ..options import option
from .apg import APG_MOMENTUM, APG_NORM_THRESHOLD
from .guidance import BATCH_MODES


@dataclass
class GuidanceOptions:
    guidance_batching: str = option("auto", choices=BATCH_MODES, help=(
        "How the 2-3 guidance passes of a step run. auto: as one batched forward (same result within float "
        "tolerance, faster) unless block swap is on or the GPU lacks memory for it; batched / sequential: force either."))
    apg: bool = option(False, help=(
        "Adaptive projected guidance instead of plain CFG (the reference's --use_apg; off by default)."))
    apg_momentum: float = option(APG_MOMENTUM, min=-1.0, max=1.0, step=0.01, help=(
        "APG momentum of the guidance differences (reference -0.75)."))
    apg_norm_threshold: float = option(APG_NORM_THRESHOLD, min=0.0, max=1000.0, step=0.5, help=(
        "APG cap on the norm of a guidance difference (reference 55; 0 = no cap)."))

    def normalize_guidance_options(self) -> None:
        """Check and normalise these options in place (part of the owning settings' `validated()`)."""
        self.guidance_batching = str(self.guidance_batching).strip().lower()
        if self.guidance_batching not in BATCH_MODES:
            raise InputError(f"guidance batching must be one of {', '.join(BATCH_MODES)}, "
                             f"got {self.guidance_batching!r}")
        self.apg = bool(self.apg)
        self.apg_momentum, self.apg_norm_threshold = float(self.apg_momentum), float(self.apg_norm_threshold)
        if not (math.isfinite(self.apg_momentum) and math.isfinite(self.apg_norm_threshold)) \
                or self.apg_norm_threshold < 0:
            raise InputError(f"APG momentum must be a number and its norm threshold 0 or more, got "
                             f"{self.apg_momentum} and {self.apg_norm_threshold}")
