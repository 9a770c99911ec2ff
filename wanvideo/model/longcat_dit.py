"""LongCat-Video-Avatar DiT (the official `LongCatVideoAvatarTransformer3DModel`) on our layers and attention.

`LongCatAvatarModel(config)` takes the official constructor names (see longcat_config); the state dict uses
the official key names. `forward` keeps the official keywords and returns float32 [B, C_out, T, H, W]
(with `return_kv=True` also the per-block key/value cache of the condition pass).
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .longcat_blocks import (
    AudioProjModel,
    CaptionEmbedder,
    FinalLayer,
    LongCatBlock,
    PatchEmbed3D,
    TimestepEmbedder,
    audio_frame_windows,
)
from .longcat_config import longcat_config


class LongCatAvatarModel(nn.Module):
    model_type = "longcat_avatar"

    def __init__(self, config: dict, dtype=torch.float32, device="cpu"):
        super().__init__()
        cfg = longcat_config(config)
        self.config = cfg
        kw = {"device": device, "dtype": dtype}
        dim = cfg["hidden_size"]
        self.patch_size = cfg["patch_size"]
        self.out_channels = cfg["out_channels"]
        self.vae_scale, self.audio_window = cfg["vae_scale"], cfg["audio_window"]
        self.text_tokens_zero_pad = cfg["text_tokens_zero_pad"]
        self.x_embedder = PatchEmbed3D(self.patch_size, cfg["in_channels"], dim, **kw)
        self.t_embedder = TimestepEmbedder(cfg["adaln_tembed_dim"], cfg["frequency_embedding_size"], **kw)
        self.y_embedder = CaptionEmbedder(cfg["caption_channels"], dim, **kw)
        self.blocks = nn.ModuleList(LongCatBlock(cfg, **kw) for _ in range(cfg["depth"]))
        self.audio_proj = AudioProjModel(
            cfg["audio_window"], cfg["audio_window"] + cfg["vae_scale"] - 1, cfg["audio_block"],
            cfg["audio_channel"], cfg["intermediate_dim"], cfg["output_dim"], cfg["context_tokens"], **kw)
        self.final_layer = FinalLayer(dim, math.prod(self.patch_size), self.out_channels, cfg["adaln_tembed_dim"],
                                      **kw)
        self.attention_backend = "sdpa"
        self.compute_dtype = dtype
        self.main_device = torch.device(device)
        self.block_swap = None  # a BlockSwapper when some blocks live on the offload device

    @property
    def dtype(self) -> torch.dtype:
        return self.compute_dtype

    def enable_block_swap(self, count: int, offload_device="cpu", prefetch: bool = True) -> None:
        """Keep the first `count` blocks on `offload_device`, each moved to the main device just in time."""
        from .block_swap import BlockSwapper

        self.block_swap = BlockSwapper(self, count, self.main_device, offload_device, prefetch) if count > 0 else None

    def inference_bytes(self, latent_shape, dtype=torch.bfloat16, batch: int = 1) -> int:
        """Estimated peak activation bytes of one forward (residual in float32; q/k/v, attention output, the
        SwiGLU's two hidden tensors in the compute dtype), for a host making room before a segment."""
        f, h, w = (int(v) for v in tuple(latent_shape)[-3:])
        pt, ph, pw = self.patch_size
        tokens = (f // pt) * (h // ph) * (w // pw) * int(batch)
        item = torch.empty((), dtype=dtype).element_size()
        dim = self.config["hidden_size"]
        ffn = self.blocks[0].ffn.w1.out_features
        return int(tokens * (dim * 4 + dim * item * 5 + ffn * item * 3))

    def set_attention_backend(self, backend: str) -> None:
        from .attention import check_backend

        check_backend(backend)
        self.attention_backend = backend
        for block in self.blocks:
            for mod in (block.attn, block.cross_attn, block.audio_cross_attn):
                mod.backend = backend

    # -- inputs -----------------------------------------------------------------------------------------------
    def _audio_tokens(self, audio_embs, frames, num_ref_latents, dtype, device):
        """Audio tokens per latent frame: [B_audio, frames, context_tokens, output_dim]."""
        audio = audio_embs.to(device=device, dtype=dtype)
        first, later = audio_frame_windows(audio, self.vae_scale, self.audio_window)
        tokens = self.audio_proj(first, later)
        if num_ref_latents:
            tokens = torch.cat([tokens[:, :1], tokens], dim=1)  # the reference latent gets frame 0's audio
        return tokens[:, -frames:]

    def _text(self, y, mask):
        """Packed valid text tokens [1, sum(lengths), C] and their lengths per batch item."""
        y = self.y_embedder(y.to(self.dtype))  # [B, 1, L, C]
        if self.text_tokens_zero_pad and mask is not None:
            y = y * mask[:, None, :, None].to(y.dtype)
            mask = torch.ones_like(mask)
        if mask is None:
            lengths = [y.shape[2]] * y.shape[0]
            return y.reshape(1, -1, y.shape[-1]), lengths
        mask = mask.reshape(mask.shape[0], -1) != 0
        lengths = mask.sum(dim=1).tolist()
        return y[:, 0][mask].reshape(1, -1, y.shape[-1]), lengths

    @staticmethod
    def _token_masks(ref_target_masks, grid_hw, dtype):
        masks = F.interpolate(ref_target_masks[None].float(), size=grid_hw, mode="nearest")[0] > 0
        return masks.reshape(masks.shape[0], -1).to(dtype)

    # -- forward ----------------------------------------------------------------------------------------------
    def forward(self, hidden_states, timestep, encoder_hidden_states, encoder_attention_mask=None,
                num_cond_latents=0, audio_embs=None, num_ref_latents=None, ref_img_index=None,
                mask_frame_range=None, ref_target_masks=None, return_kv=False, kv_cache_dict=None,
                skip_crs_attn=False, offload_kv_cache=False):
        b, _, t, h, w = hidden_states.shape
        pt, ph, pw = self.patch_size
        grid = (t // pt, h // ph, w // pw)
        dtype = self.dtype
        if timestep.dim() == 1:
            timestep = timestep[:, None].expand(-1, grid[0])
        x = self.x_embedder(hidden_states.to(dtype))
        temb = self.t_embedder(timestep.to(dtype).float().flatten()).reshape(b, grid[0], -1)
        text, lengths = self._text(encoder_hidden_states, encoder_attention_mask)

        if audio_embs is None:
            raise ValueError("LongCat-Video-Avatar needs audio_embs (zeros for silence)")
        audio = self._audio_tokens(audio_embs, grid[0], num_ref_latents, x.dtype, x.device)
        speakers = None
        token_masks = None
        if ref_target_masks is not None:
            speakers = audio.shape[0]
            audio = torch.cat(audio.split(1), dim=2)[0]  # [frames, speakers*tokens, C]
            token_masks = self._token_masks(ref_target_masks.to(x.device), grid[1:], dtype)
        else:
            audio = audio.reshape(-1, *audio.shape[2:])

        kv_cache_dict = kv_cache_dict or {}
        caches = {}
        for i, block in enumerate(self.blocks):
            with self.block_swap.use(i) if self.block_swap is not None else contextlib.nullcontext():
                    x, cache = block(x, text, temb, lengths, grid, num_cond_latents, return_kv, kv_cache_dict.get(i),
                                 skip_crs_attn, num_ref_latents, audio, ref_img_index, mask_frame_range, token_masks,
                                 speakers)
            if return_kv:
                caches[i] = tuple(c.cpu() if offload_kv_cache else c.contiguous() for c in cache)
        x = self.final_layer(x, temb, grid[0])
        out = self._unpatchify(x, grid).float()
        return (out, caches) if return_kv else out

    def _unpatchify(self, x, grid):
        b = x.shape[0]
        nt, nh, nw = grid
        pt, ph, pw = self.patch_size
        x = x.reshape(b, nt, nh, nw, pt, ph, pw, self.out_channels)
        return x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, self.out_channels, nt * pt, nh * ph, nw * pw)
