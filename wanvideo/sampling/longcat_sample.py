"""One LongCat-Video-Avatar segment: the official `generate_ai2v` / `generate_avc` denoising loops on latents.

mode "ai2v": frame 0 is the (normalised) image latent, the rest is denoised. mode "avc": the condition latents
(re-encoded last frames of the previous segment) and the reference latent are run once through the model to fill
the key/value cache; only the noisy latents are then denoised against it. Guidance as officially: when either
scale is above 1, three passes per step, v = uncond + g_text (cond - uncond_text) + g_audio (uncond_text - uncond)
with cond = (prompt, audio), uncond_text = (negative prompt, audio), uncond = (negative prompt, zero audio);
the Euler step uses -v. Latents stay float32; the model input is cast to the model's dtype each step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError
from .longcat_plan import longcat_timesteps

MODES = ("ai2v", "avc")


def resize_and_crop_masks(masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Speaker masks [n, H, W] resized (bilinear, shorter side) and centre-cropped to the video size."""
    _, h, w = masks.shape
    if width / height > w / h:
        new_w, new_h = width, int(h * width / w)
    else:
        new_h, new_w = height, int(w * height / h)
    resized = F.interpolate(masks[None].float(), size=(new_h, new_w), mode="bilinear", align_corners=False)[0]
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return resized[:, top:top + height, left:left + width]


class _Guided:
    """The model calls of one step: one pass without guidance, three with (two speakers: separate calls)."""

    def __init__(self, model, texts, audio, guidance, masks, common):
        self.model, self.texts, self.audio, self.masks, self.common = model, texts, audio, masks, common
        self.g_text, self.g_audio = guidance
        self.cfg = self.g_text > 1.0 or self.g_audio > 1.0

    def _call(self, x, t, text, audio):
        emb, mask = text
        return self.model(hidden_states=x, timestep=t, encoder_hidden_states=emb, encoder_attention_mask=mask,
                          audio_embs=audio, ref_target_masks=self.masks, **self.common)

    def velocity(self, latents, t_row):
        dtype = self.model.dtype
        x = latents.to(dtype)
        (pos, neg) = self.texts
        if not self.cfg:
            return self._call(x, t_row.to(dtype), pos, self.audio)
        t = t_row.to(dtype)
        if self.masks is not None:  # two speakers: separate batch-1 calls
            uncond_text = self._call(x, t, neg, self.audio)
            cond = self._call(x, t, pos, self.audio)
        else:
            both = self._call(torch.cat([x, x]), torch.cat([t, t]), (torch.cat([neg[0], pos[0]]),
                              _cat_masks(neg[1], pos[1])), torch.cat([self.audio, self.audio]))
            uncond_text, cond = both.chunk(2)
        uncond = self._call(x, t, neg, torch.zeros_like(self.audio))
        return uncond + self.g_text * (cond - uncond_text) + self.g_audio * (uncond_text - uncond)


def _cat_masks(a, b):
    return None if a is None or b is None else torch.cat([a, b])


def _check(mode, noise, cond_latents, audio_emb, ref_latent, ref_img_index):
    if mode not in MODES:
        raise InputError(f"LongCat mode must be one of {MODES} (got {mode!r})")
    if noise.dim() != 5 or cond_latents.dim() != 5 or audio_emb.dim() != 5:
        raise InputError("LongCat latents are [B, C, T, H, W] and audio windows [speakers, frames, 5, layers, C]")
    if mode == "avc" and (ref_latent is None or ref_img_index is None):
        raise InputError("mode 'avc' (continuation) needs ref_latent and ref_img_index")


@torch.no_grad()
def longcat_sample(model, mode, noise, cond_latents, prompt_embeds, prompt_attention_mask, negative_prompt_embeds,
                   negative_prompt_attention_mask, audio_emb, num_inference_steps, use_distill, text_guidance_scale,
                   audio_guidance_scale, shift, ref_target_masks=None, ref_latent=None, ref_img_index=None,
                   mask_frame_range=None, num_cond_frames=None, enhance_hf=False, callback=None):
    """Denoised latents [B, C, T, H, W] float32 of one segment (condition frames included, reference dropped).

    `callback(step, total)` runs after every step (progress, Cancel: it may raise).
    """
    _check(mode, noise, cond_latents, audio_emb, ref_latent, ref_img_index)
    device = noise.device
    timesteps, sigmas = longcat_timesteps(num_inference_steps, use_distill, shift, enhance_hf and mode == "avc")
    texts = ((prompt_embeds, prompt_attention_mask), (negative_prompt_embeds, negative_prompt_attention_mask))
    masks = None
    if ref_target_masks is not None:
        pixel = (noise.shape[3] * 8, noise.shape[4] * 8)
        masks = resize_and_crop_masks(ref_target_masks.to(device), *pixel)
    guidance = (float(text_guidance_scale), float(audio_guidance_scale))
    if mode == "ai2v":
        latents = noise.float().clone()
        latents[:, :, :1] = cond_latents[:, :, :1].float()
        guided = _Guided(model, texts, audio_emb, guidance, masks, {"num_cond_latents": 1})
        return _denoise(guided, latents, timesteps, sigmas, first_noisy=1, callback=callback)

    num_cond = cond_latents.shape[2] if num_cond_frames is None else 1 + (num_cond_frames - 1) // 4
    dtype = model.dtype
    latents = noise.to(dtype).clone()
    latents[:, :, :num_cond] = cond_latents[:, :, -num_cond:].to(dtype)
    clean = torch.cat([ref_latent.to(dtype), latents[:, :, :num_cond]], dim=2)
    ctx = {"num_cond_latents": num_cond + 1, "num_ref_latents": 1, "ref_img_index": ref_img_index}
    empty = torch.zeros(clean.shape[0], 1, prompt_embeds.shape[2], prompt_embeds.shape[3], dtype=dtype, device=device)
    _, kv_cache = model(hidden_states=clean, timestep=torch.zeros(clean.shape[0], clean.shape[2], device=device),
                        encoder_hidden_states=empty, audio_embs=audio_emb, return_kv=True, skip_crs_attn=True, **ctx)
    common = dict(ctx, kv_cache_dict=kv_cache, mask_frame_range=mask_frame_range)
    guided = _Guided(model, texts, audio_emb, guidance, masks, common)
    noisy = _denoise(guided, latents[:, :, num_cond:], timesteps, sigmas, first_noisy=0, callback=callback)
    out = torch.cat([cond_latents[:, :, -num_cond:].to(dtype).float(), noisy.float()], dim=2)
    return out


def _denoise(guided, latents, timesteps, sigmas, first_noisy, callback):
    total = len(timesteps)
    for i, t in enumerate(timesteps):
        t_row = t.expand(latents.shape[0])[:, None].repeat(1, latents.shape[2]).to(latents.device)
        if first_noisy:
            t_row[:, :first_noisy] = 0
        v = guided.velocity(latents, t_row)
        step = latents[:, :, first_noisy:].float() + (sigmas[i + 1] - sigmas[i]) * (-v[:, :, first_noisy:])
        if first_noisy:
            latents[:, :, first_noisy:] = step.to(latents.dtype)
        else:
            latents = step
        if callback is not None:
            callback(i + 1, total)
    return latents
