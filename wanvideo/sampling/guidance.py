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

WanAnimate (Wan2.2 `animate.py`): cond, and with cfg > 1 uncond = negative text and all −1 face
pixels ("no face"); v = uncond + cfg·(cond − uncond). Its pose latents, y and CLIP tokens are the
same in both passes.

The passes of one step can run as rows of one batched forward (`pass_groups`,
`stack_pass_inputs`): same numbers within float tolerance, one pass over the weights
instead of two or three (sampling/passes.py decides when).
"""
from __future__ import annotations

import math

import torch

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


# ----- running the passes of a step in one batched forward ------------------------------------------------
BATCH_MODES = ("auto", "batched", "sequential")
# Inputs that may differ between passes (WanAnimate's uncond pass has its own face pixels); every other input
# must be shared. Beyond context and audio, a per-pass input is one batch row per pass, stacked on dim 0.
_PER_PASS = ("context", "audio", "face_pixel_values")
_ROW_STACKED = ("face_pixel_values",)


def _same(a, b) -> bool:
    if a is b:
        return True
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return a == b if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor) else False
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))


def _compatible(a: dict, b: dict) -> bool:
    """Whether two passes' model inputs can be rows of one batch."""
    if set(a) != set(b) or any(not _same(a[k], b[k]) for k in a if k not in _PER_PASS):
        return False
    ca, cb = a.get("context"), b.get("context")
    if ca is not None and (cb is None or ca.shape[0] != 1 or cb.shape[0] != 1 or ca.shape[2:] != cb.shape[2:]):
        return False
    aa, ab = a.get("audio"), b.get("audio")
    if (aa is None) != (ab is None) or (aa is not None and ab is not None and aa.shape != ab.shape):
        return False
    return all(_one_row_alike(a.get(k), b.get(k)) for k in _ROW_STACKED)


def _one_row_alike(a, b) -> bool:
    """Whether two passes' row-stacked inputs fit one batch: both absent, or one row each of the same shape."""
    if a is None or b is None:
        return a is None and b is None
    return a is b or (a.shape[0] == 1 and a.shape == b.shape)


def pass_groups(passes: dict) -> list[list[str]]:
    """The passes grouped so that each group can run as one batched forward (order kept).

    Passes differ in text context and audio only (WanAnimate: context and face pixels); a pass with another number of speakers (the silent
    audio of two-speaker guidance has one) gets its own group.
    """
    groups: list[list[str]] = []
    for name, kwargs in passes.items():
        for group in groups:
            if _compatible(passes[group[0]], kwargs):
                group.append(name)
                break
        else:
            groups.append([name])
    return groups


def stack_pass_inputs(names: list[str], passes: dict) -> dict:
    """Model keyword arguments of one batched forward whose row r is pass names[r].

    Contexts are zero-padded to a common length (the model pads them with zeros to text_len anyway);
    audio is shared when every pass has the same tensor, else stacked as [rows, speakers, ...]; face pixels
    are shared or concatenated as [rows, 3, T, S, S].
    """
    first = passes[names[0]]
    if len(names) == 1:
        return dict(first)
    stacked = {k: v for k, v in first.items() if k not in _PER_PASS}
    contexts = [passes[n]["context"] for n in names]
    length = max(c.shape[1] for c in contexts)
    stacked["context"] = torch.cat([torch.nn.functional.pad(c, (0, 0, 0, length - c.shape[1])) for c in contexts])
    audios = [passes[n].get("audio") for n in names]
    if "audio" in first:
        if audios[0] is None or all(a is audios[0] for a in audios):
            stacked["audio"] = audios[0]
        else:
            stacked["audio"] = torch.stack(audios)
    for key in _ROW_STACKED:
        rows = [passes[n].get(key) for n in names]
        if rows[0] is not None:
            stacked[key] = rows[0] if all(r is rows[0] for r in rows) else torch.cat(rows)
    return stacked
