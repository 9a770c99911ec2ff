"""LongCat-Video-Avatar timesteps and long-video bookkeeping, as the official pipeline and demo compute them.

- `longcat_timesteps`: the v1.5 distilled 8-step sigmas (or the base linspace), the scheduler's shift, and the
  continuation's optional `enhance_hf` tail.
- `longcat_plan`: audio padding, per-segment audio windows, frames kept per segment, condition/noisy latent
  counts, the masked reference range and RoPE positions of a run of `num_segments` segments.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..audio.longcat_whisper import longcat_segments_for as segments_for_audio
from ..errors import InputError

NUM_TRAIN_TIMESTEPS = 1000
DISTILL_STEPS = 8  # v1.5 distillation
TAIL_START, TAIL_STEPS = 500, 10  # enhance_hf: uniform tail 500, 450, ..., 50


def _base_sigmas(steps: int, use_distill: bool) -> torch.Tensor:
    if not use_distill:
        return torch.linspace(1, 0.001, steps, dtype=torch.float32)
    if steps != DISTILL_STEPS:
        raise InputError(f"the distilled LongCat-Video-Avatar 1.5 samples in exactly {DISTILL_STEPS} steps (got {steps})")
    picks = (torch.arange(1, DISTILL_STEPS + 1, dtype=torch.float32) * (NUM_TRAIN_TIMESTEPS // DISTILL_STEPS)).round()
    grid = torch.flip(torch.linspace(0, 1, NUM_TRAIN_TIMESTEPS), [0])
    return torch.flip(grid[NUM_TRAIN_TIMESTEPS - picks.long()], [0]).float()


def longcat_timesteps(num_inference_steps: int, use_distill: bool = False, shift: float = 1.0,
                      enhance_hf: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(timesteps [N], sigmas [N + 1] ending in 0), float32."""
    if num_inference_steps < 1:
        raise InputError("LongCat sampling needs at least one step")
    if use_distill and enhance_hf:
        raise InputError("enhance_hf is for the non-distilled model only (the official code refuses both)")
    sigmas = _base_sigmas(num_inference_steps, use_distill).numpy().astype(np.float32)
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    sigmas = torch.from_numpy(np.asarray(sigmas)).to(torch.float32)
    timesteps = sigmas * NUM_TRAIN_TIMESTEPS
    if enhance_hf:
        tail = np.linspace(TAIL_START, 0, TAIL_STEPS, dtype=np.float32, endpoint=False)
        timesteps = torch.cat([timesteps[timesteps > TAIL_START], torch.from_numpy(tail)])
        return timesteps, torch.cat([timesteps / NUM_TRAIN_TIMESTEPS, torch.zeros(1)])
    return timesteps, torch.cat([sigmas, torch.zeros(1)])


def _padded(n_samples, num_segments, sample_rate, fps, num_frames, num_cond_frames):
    duration = num_frames / fps + (num_segments - 1) * (num_frames - num_cond_frames) / fps
    added = math.ceil((duration - n_samples / sample_rate) * sample_rate)
    return max(added, 0)


def masked_reference_noisy_range(ref_img_index, mask_frame_range, num_cond_latents, num_ref_latents, num_noisy):
    from ..model.longcat_attention import masked_reference_range

    return masked_reference_range(ref_img_index, mask_frame_range, num_cond_latents, num_ref_latents, num_noisy)


def longcat_plan(n_samples: int, num_segments: int, sample_rate: int = 16000, fps: float = 25,
                 num_frames: int = 93, num_cond_frames: int = 13, audio_stride: int = 1,
                 ref_img_index: int = 10, mask_frame_range: int = 3, vae_scale: int = 4) -> dict:
    """The official continuation bookkeeping for `num_segments` segments of `num_frames` frames."""
    if num_segments < 1:
        raise InputError("num_segments must be at least 1")
    if (num_frames - 1) % vae_scale or (num_cond_frames - 1) % vae_scale or num_cond_frames >= num_frames:
        raise InputError(f"num_frames and num_cond_frames must be 1 + a multiple of {vae_scale}, "
                         "with fewer condition frames than frames")
    added = _padded(n_samples, num_segments, sample_rate, fps, num_frames, num_cond_frames)
    padded = n_samples + added
    emb_len = int(padded / sample_rate * (fps * audio_stride))
    step = num_frames - num_cond_frames
    starts = [audio_stride * step * k for k in range(num_segments)]
    ends = [s + audio_stride * num_frames for s in starts]
    taps = torch.arange(-2, 3)
    centres = torch.stack([torch.arange(s, e, audio_stride) for s, e in zip(starts, ends, strict=True)])
    center_indices = (centres[..., None] + taps).clamp(0, emb_len - 1)
    latent_frames = 1 + (num_frames - 1) // vae_scale
    cond_latents = 1 + (num_cond_frames - 1) // vae_scale + 1  # + the reference latent
    noisy = latent_frames - (cond_latents - 1)
    masked = masked_reference_noisy_range(ref_img_index, mask_frame_range, cond_latents, 1, noisy)
    kept_from = [0] + [num_cond_frames] * (num_segments - 1)
    offsets = [0] + [num_frames + step * (k - 1) for k in range(1, num_segments)]
    return {
        "n_samples": n_samples,
        "num_segments": num_segments,
        "generate_duration_s": num_frames / fps + (num_segments - 1) * step / fps,
        "added_samples": added,
        "padded_samples": padded,
        "full_audio_emb_len": emb_len,
        "audio_start_idx": starts,
        "audio_end_idx": ends,
        "center_indices": center_indices,
        "kept_frames_from": kept_from,
        "kept_frames_to": [num_frames] * num_segments,
        "output_frame_offset": offsets,
        "total_output_frames": num_frames + step * (num_segments - 1),
        "num_latent_frames": latent_frames,
        "num_cond_latents_first_segment": 1,
        "num_cond_latents_continuation": cond_latents,
        "num_ref_latents": 1,
        "num_noisy_latents_continuation": noisy,
        "ref_masked_noisy_latents": list(masked) if masked else None,
        "rope_t_positions_continuation": [ref_img_index] + list(range(latent_frames)),
        "segments_needed_for_audio": segments_for_audio(n_samples, sample_rate, fps, num_frames, num_cond_frames),
    }
