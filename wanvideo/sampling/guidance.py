"""Classifier-free guidance: the reference's three-way text/audio formula and which model passes it needs.

Passes (what the model is called with):
  cond        positive text, audio
  drop_text   negative text, audio
  uncond      negative text, silent audio (zeros, one speaker)
  drop_audio  positive text, silent audio

With audio (the reference, `generate_infinitetalk`):
  cfg != 1:  v = uncond + cfg·(cond − drop_text) + audio_cfg·(drop_text − uncond)
  cfg == 1:  v = drop_audio + audio_cfg·(cond − drop_audio)          (two passes)
Without audio (plain Wan I2V): v = uncond + cfg·(cond − uncond), one pass when cfg == 1.

Two passes are skipped where the result is provably the same: when the positive and
negative text are identical (then drop_text is cond), and when cfg == audio_cfg == 1
(then v is cond).
"""
from __future__ import annotations

import math

COND, DROP_TEXT, UNCOND, DROP_AUDIO = "cond", "drop_text", "uncond", "drop_audio"


def needed_passes(cfg: float, audio_cfg: float, has_audio: bool, same_text: bool = False) -> list[str]:
    """Model passes to run per step, in the reference's order."""
    if not has_audio:
        return [COND] if math.isclose(cfg, 1.0) or same_text else [COND, UNCOND]
    if math.isclose(cfg, 1.0):
        return [COND] if math.isclose(audio_cfg, 1.0) else [COND, DROP_AUDIO]
    if same_text:
        return [COND, UNCOND]
    return [COND, DROP_TEXT, UNCOND]


def combine(preds: dict, cfg: float, audio_cfg: float, has_audio: bool):
    """The guided velocity from the passes' predictions (same operation order as the reference)."""
    cond = preds[COND]
    if not has_audio:
        if UNCOND not in preds:
            return cond
        uncond = preds[UNCOND]
        return uncond + cfg * (cond - uncond)
    if math.isclose(cfg, 1.0):
        if DROP_AUDIO not in preds:
            return cond
        drop_audio = preds[DROP_AUDIO]
        return drop_audio + audio_cfg * (cond - drop_audio)
    drop_text = preds.get(DROP_TEXT, cond)  # identical text: the drop-text pass is the cond pass
    uncond = preds[UNCOND]
    return uncond + cfg * (cond - drop_text) + audio_cfg * (drop_text - uncond)
