"""The video VAE as the window loop sees it, and its standalone implementation (diffusers' AutoencoderKLWan).

The loop talks to any object with

    encode(video [3, F, H, W] float in [-1, 1]) -> [16, 1 + (F - 1) // 4, H / 8, W / 8] float32
    decode(latent [16, T, h, w]) -> [3, 1 + 4 (T - 1), 8 h, 8 w] float32 in [-1, 1]
    fingerprint() -> str   (identifies the weights, for resuming)

in the DiT's latent space: the reference `WanVAE.encode` returns latents already
normalised per channel, (mu − mean) / std, and `decode` undoes it. diffusers'
AutoencoderKLWan (like ComfyUI's VAE) works on raw latents, so adapters apply the
normalisation with the VAE's published per-channel mean and std.
"""
from __future__ import annotations

import inspect
import os
from contextlib import contextmanager

import torch

from ..errors import ModelFileError
from ..torch_inputs import check_finite, load_torch_state_dict
from .fingerprint import module_fingerprint

LATENT_CHANNELS = 16
SPATIAL_STRIDE = 8
TEMPORAL_STRIDE = 4


def wan21_latent_stats() -> tuple[torch.Tensor, torch.Tensor]:
    """The Wan2.1 VAE's per-channel latent mean and std ([16] each), as diffusers publishes them."""
    from diffusers import AutoencoderKLWan

    params = inspect.signature(AutoencoderKLWan.__init__).parameters
    return (torch.tensor(params["latents_mean"].default, dtype=torch.float32),
            torch.tensor(params["latents_std"].default, dtype=torch.float32))


class DiffusersWanVAE:
    """Adapter for `diffusers.AutoencoderKLWan` (standalone runs, tests, the CLI)."""

    def __init__(self, vae, device=None, dtype=None):
        self.vae = vae.eval()
        params = next(vae.parameters())
        self.device = torch.device(device) if device is not None else params.device
        self.dtype = dtype or params.dtype
        if params.device != self.device or params.dtype != self.dtype:
            self.vae.to(self.device, self.dtype)
        cfg = vae.config
        self.mean = torch.tensor(cfg.latents_mean, dtype=torch.float32).view(-1, 1, 1, 1)
        self.std = torch.tensor(cfg.latents_std, dtype=torch.float32).view(-1, 1, 1, 1)
        self._fingerprint = None

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        x = video.to(self.device, self.dtype)[None]
        mu = self.vae.encode(x).latent_dist.mode()[0].float()
        return (mu - self.mean.to(mu.device)) / self.std.to(mu.device)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        z = latent.float() * self.std.to(latent.device) + self.mean.to(latent.device)
        out = self.vae.decode(z.to(self.device, self.dtype)[None]).sample[0]
        return out.float().clamp_(-1.0, 1.0)

    @contextmanager
    def precision(self, name: str):
        """Within this block the VAE runs in float32 ("fp32", the reference's precision) or as loaded ("host").

        The weights are cast in place and back afterwards (lossless from bf16/fp16).
        """
        if name != "fp32" or self.dtype == torch.float32:
            yield
            return
        working = self.dtype
        self.vae.to(dtype=torch.float32)
        self.dtype = torch.float32
        try:
            yield
        finally:
            self.vae.to(dtype=working)
            self.dtype = working

    @property
    def module(self) -> torch.nn.Module:
        """The torch module whose encoder/decoder calls are the chunks of an encode/decode (vae_progress.py)."""
        return self.vae

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = module_fingerprint(self.vae)
        return self._fingerprint


def load_wan_vae(path: str, dtype=torch.float32, device="cpu"):
    """The Wan 2.1 VAE from its original single file (ComfyUI's wan_2.1_vae.safetensors), via diffusers."""
    from diffusers import AutoencoderKLWan
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
    from safetensors.torch import load_file

    from ..model.file_sniff import check_weights_file, wrong_model

    check_weights_file(path)  # an LFS pointer, a web page, a cut download: the words every loader uses
    try:
        sd = load_file(path) if path.endswith((".safetensors", ".sft")) else load_torch_state_dict(path, "a VAE")
    except Exception as exc:  # noqa: BLE001 - any read failure: name the file
        raise ModelFileError(f"cannot read the VAE {path}: {exc}; re-download it") from None
    if "decoder.middle.0.residual.0.gamma" not in sd and "decoder.mid_block.resnets.0.norm1.gamma" not in sd:
        raise wrong_model(path, "a Wan 2.1 VAE", "use wan_2.1_vae.safetensors (Comfy-Org/Wan_2.1_ComfyUI_repackaged, "
                          "split_files/vae)")
    for key, tensor in sd.items():
        check_finite(tensor, key, path)
    if "decoder.middle.0.residual.0.gamma" in sd:
        sd = convert_wan_vae_to_diffusers(sd)
    with torch.device("meta"):
        vae = AutoencoderKLWan()
    try:
        vae.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{os.path.basename(path)} does not fit the Wan 2.1 VAE ({str(exc)[:300]}); "
                             "the Wan 2.2 VAE is not the one InfiniteTalk uses") from None
    return DiffusersWanVAE(vae.float(), device=device, dtype=dtype)
