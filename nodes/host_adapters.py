"""ComfyUI objects -> what the engine's window loop takes (no ComfyUI import: duck-typed host objects).

Conventions (ComfyUI comfy/sd.py, nodes.py, comfy/clip_vision.py, comfy/latent_formats.py):
- IMAGE: float [B, H, W, C] in 0..1.
- VAE (Wan 2.1): `encode(pixels [F, H, W, C] 0..1) -> [1, 16, 1 + (F-1)//4, H/8, W/8]` *raw* latents (the
  encoder's mean, not normalised; ComfyUI's Wan21 latent format normalises in `process_in` before the model)
  and `decode(raw latents [1, 16, T, h, w]) -> [1, F, H, W, C]` in 0..1. The DiT consumes normalised
  latents ((mu − mean) / std, what the reference WanVAE.encode returns), so the adapter applies the Wan 2.1
  per-channel mean/std around the host VAE.
- CONDITIONING: `[[cond [1, tokens, 4096], {...}], ...]`; for umt5 ComfyUI pads to 512 tokens with zeros,
  which is what the reference's zero-padding to text_len gives.
- CLIP_VISION_OUTPUT: `.penultimate_hidden_states` [N, 257, 1280] (what Wan's image cross-attention uses).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import torch

from ..wanvideo.errors import InputError
from ..wanvideo.sampling.fingerprint import Digest, module_fingerprint
from ..wanvideo.sampling.vae import LATENT_CHANNELS, wan21_latent_stats

log = logging.getLogger(__name__)


class HostWanVAE:
    """A ComfyUI VAE object seen through the loop's interface (vae.py): [-1, 1] videos, normalised latents."""

    def __init__(self, vae):
        if vae is None or not hasattr(vae, "encode") or not hasattr(vae, "decode"):
            raise InputError("connect a VAE (Load VAE with wan_2.1_vae.safetensors)")
        channels = getattr(vae, "latent_channels", LATENT_CHANNELS)
        dims = getattr(vae, "latent_dim", 3)
        if channels != LATENT_CHANNELS or dims != 3:
            raise InputError(f"this VAE makes {channels}-channel {dims}-D latents; InfiniteTalk needs the Wan 2.1 "
                             "video VAE (16 channels, wan_2.1_vae.safetensors), not the Wan 2.2 or an image VAE")
        self.vae = vae
        mean, std = wan21_latent_stats()
        self.mean, self.std = mean.view(-1, 1, 1, 1), std.view(-1, 1, 1, 1)
        self._fingerprint = None

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        pixels = ((video.float() + 1.0) / 2.0).clamp(0.0, 1.0).permute(1, 2, 3, 0).contiguous()  # [F,H,W,C]
        raw = self.vae.encode(pixels)
        raw = raw[0] if raw.ndim == 5 else raw
        raw = raw.float()
        return (raw - self.mean.to(raw.device)) / self.std.to(raw.device)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        raw = latent.float() * self.std.to(latent.device) + self.mean.to(latent.device)
        pixels = self.vae.decode(raw[None])
        pixels = pixels[0] if pixels.ndim == 5 else pixels  # [F,H,W,C] in 0..1
        return pixels.float().permute(3, 0, 1, 2) * 2.0 - 1.0

    @contextmanager
    def precision(self, name: str):
        """Within this block the host's VAE works in float32 ("fp32") or as loaded ("host").

        ComfyUI's VAE casts its inputs to `vae_dtype` (bf16 on most GPUs); for "fp32" its weights are cast to
        float32 in place (lossless from bf16/fp16 and back: twice the VAE's ~0.25 GB while the loop runs) and
        restored afterwards.
        """
        model = getattr(self.vae, "first_stage_model", None)
        working = getattr(self.vae, "vae_dtype", None)
        if name != "fp32" or not isinstance(model, torch.nn.Module) or working in (None, torch.float32):
            yield
            return
        log.info("WanVideo InfiniteTalk: VAE in float32 for this run (loaded as %s), as the reference", working)
        model.to(torch.float32)
        self.vae.vae_dtype = torch.float32
        try:
            yield
        finally:
            model.to(working)
            self.vae.vae_dtype = working

    @property
    def module(self):
        """ComfyUI's Wan VAE module (its encoder/decoder calls are the loop's progress chunks), if it has one."""
        module = getattr(self.vae, "first_stage_model", None)
        return module if isinstance(module, torch.nn.Module) else None

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            module = getattr(self.vae, "first_stage_model", None)
            if isinstance(module, torch.nn.Module):
                self._fingerprint = module_fingerprint(module)
            else:  # an unknown VAE object: identify it by type (resume then relies on the other inputs)
                self._fingerprint = Digest().add("vae", type(self.vae).__qualname__).hexdigest()
        return self._fingerprint


def conditioning_to_context(conditioning, name: str):
    """CONDITIONING -> [1, tokens, dim] text embeddings (None stays None = empty prompt)."""
    if conditioning is None:
        return None
    try:
        cond = conditioning[0][0]
    except (TypeError, IndexError, KeyError):
        raise InputError(f"{name} is not a CONDITIONING (connect CLIP Text Encode with the umt5 text encoder)") from None
    if not isinstance(cond, torch.Tensor):
        raise InputError(f"{name} is not a CONDITIONING (connect CLIP Text Encode with the umt5 text encoder)")
    if len(conditioning) > 1:
        log.warning("WanVideo InfiniteTalk: %s holds %d conditionings; only the first is used", name, len(conditioning))
    return cond.detach().float().cpu()


def clip_vision_features(output):
    """CLIP_VISION_OUTPUT -> [N, 257, dim] penultimate hidden states."""
    if output is None:
        return None
    try:
        features = output["penultimate_hidden_states"]
    except (TypeError, KeyError):
        features = getattr(output, "penultimate_hidden_states", None)
    if features is None:
        raise InputError("clip_vision_output has no penultimate_hidden_states: connect CLIP Vision Encode with "
                         "clip_vision_h.safetensors")
    return features.detach().float().cpu()


def clip_vision_encoder(clip_vision):
    """CLIP_VISION model -> the loop's per-window encoder: pixels [3, H, W] in 0..1 -> [1, 257, dim].

    The frame the model is conditioned on is already cropped to the output size, so it is resized to 224x224
    whole (crop=False), as the reference's CLIP resizes `cond_image`.
    """
    if clip_vision is None:
        return None
    if not hasattr(clip_vision, "encode_image"):
        raise InputError("clip_vision is not a CLIP vision model: connect Load CLIP Vision with clip_vision_h")

    def encode(pixels: torch.Tensor) -> torch.Tensor:
        return clip_vision_features(clip_vision.encode_image(pixels.permute(1, 2, 0)[None].contiguous(), crop=False))

    def fingerprint() -> str:
        module = getattr(clip_vision, "model", None)
        if isinstance(module, torch.nn.Module):
            return module_fingerprint(module)
        return Digest().add("clip_vision", type(clip_vision).__qualname__).add("id", id(clip_vision)).hexdigest()

    encode.fingerprint = fingerprint
    return encode


def mask_tensor(mask):
    """MASK [B, H, W] or [H, W] -> [H, W] float (first mask of a batch)."""
    if mask is None:
        return None
    mask = torch.as_tensor(mask).float()
    return mask[0] if mask.ndim == 3 else mask
