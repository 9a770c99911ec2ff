"""A complete tiny random-weight model set (DiT, video VAE, wav2vec2, text/CLIP stand-ins).

For tests, benchmarks and the command line's embedded demo: every part has
the real model's interfaces and data layout (16 latent channels, 8x spatial
and 4x temporal VAE compression, 257 CLIP tokens, wav2vec2 layers x channels)
at a size that runs in seconds on a CPU. Weights are random but deterministic
in `seed`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..audio import tiny_wav2vec2
from ..model import build_model, preset, tiny_config
from ..sampling.vae import DiffusersWanVAE

# A small AutoencoderKLWan keeping the Wan2.1 VAE's data layout: 16 latent channels, three 2x spatial
# downsamples (8x), two temporal ones (4x). Base width 4 instead of 96 and one residual block per decoder
# stage (none in the encoder's) instead of two/three: decoding 480x832 stays affordable on a CPU.
TINY_VAE_CONFIG = dict(
    base_dim=4,
    z_dim=16,
    dim_mult=[1, 1, 1, 1],
    num_res_blocks=0,
    attn_scales=[],
    temperal_downsample=[False, True, True],
    dropout=0.0,
)


@dataclass
class TinyModelSet:
    dit: torch.nn.Module  # wanvideo.model.WanInfiniteTalkModel (tiny preset)
    vae: DiffusersWanVAE  # adapter around a diffusers AutoencoderKLWan (`.vae` is the diffusers model)
    wav2vec: object  # wanvideo.audio.Wav2VecEncoder (tiny)
    context: torch.Tensor  # [1, 7, text_dim] "prompt" embeddings
    context_null: torch.Tensor  # [1, 11, text_dim] "negative prompt" embeddings
    clip_fea: torch.Tensor  # [1, 257, clip_dim] CLIP image tokens


def tiny_vae(seed: int = 0, dtype=torch.float32, device="cpu") -> DiffusersWanVAE:
    """A random-weight diffusers AutoencoderKLWan of real compression, wrapped for the window loop."""
    from diffusers import AutoencoderKLWan

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKLWan(**TINY_VAE_CONFIG)
    return DiffusersWanVAE(vae, device=device, dtype=dtype)


def tiny_models(seed: int = 0, dtype=torch.float32, device="cpu", audio_adapter: bool = True) -> TinyModelSet:
    """The whole tiny set; `audio_adapter=False` gives a plain Wan2.1 I2V DiT (no InfiniteTalk weights)."""
    config = tiny_config(audio_adapter=audio_adapter)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dit = build_model(config, dtype=dtype, device=device)
    gen = torch.Generator().manual_seed(seed + 1)
    text_dim, clip_dim = config["text_dim"], config["clip_dim"]
    return TinyModelSet(
        dit=dit,
        vae=tiny_vae(seed + 2, dtype=dtype, device=device),
        wav2vec=tiny_wav2vec2(seed=seed + 3),
        context=torch.randn(1, 7, text_dim, generator=gen),
        context_null=torch.randn(1, 11, text_dim, generator=gen),
        clip_fea=torch.randn(1, 257, clip_dim, generator=gen),
    )


# Timestep range the sinusoid's frequencies are measured against (the schedule runs t from 1000 down to 0).
TRAIN_TIMESTEPS = 1000.0


def smooth_time_embedding(dit: torch.nn.Module, timescale: float = TRAIN_TIMESTEPS) -> torch.nn.Module:
    """Make a random-weight DiT's time embedding vary with t as slowly as a trained one: in place, returns `dit`.

    The time embedding reads [cos | sin](w_k t) for frequencies w_k = 10000^(-k/half), from 1 to 1e-4 per unit of
    t. A random first layer weights them all alike, so the fast ones (a whole turn every few timesteps, while a
    sampling step moves t by 4 to 150) make the block modulation e0 jump by ~30 % between steps, far outside
    what TeaCache's polynomials were fitted on (a trained model: a few 0.1 % to a few %). Here each frequency's
    input columns are scaled by min(1, 1 / (w_k * timescale)): no input then turns by more than about one radian
    over `timescale` timesteps (a first-order low-pass). Only the benchmark's TeaCache figures and tests use it;
    the tiny set itself (and its fixture parity) is unchanged.
    """
    half = dit.config["freq_dim"] // 2
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half)
    gain = torch.clamp(1.0 / (freqs * float(timescale)), max=1.0)
    layer = dit.time_embedding[0]
    with torch.no_grad():
        layer.weight.mul_(torch.cat([gain, gain]).to(layer.weight.device, layer.weight.dtype)[None, :])
    return dit


@dataclass
class TinyAnimateSet:
    dit: torch.nn.Module  # wanvideo.model.animate_dit.WanAnimateModel (tiny-animate preset: 32x32 faces)
    vae: DiffusersWanVAE
    context: torch.Tensor  # [1, 7, text_dim]
    context_null: torch.Tensor  # [1, 11, text_dim]
    clip_fea: torch.Tensor  # [1, 257, clip_dim]


def tiny_animate_models(seed: int = 0, dtype=torch.float32, device="cpu") -> TinyAnimateSet:
    """A tiny WanAnimate DiT (the fixture animate_a's sizes) with the tiny VAE and text/CLIP stand-ins."""
    config = preset("tiny-animate")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dit = build_model(config, dtype=dtype, device=device)
    gen = torch.Generator().manual_seed(seed + 1)
    return TinyAnimateSet(
        dit=dit,
        vae=tiny_vae(seed + 2, dtype=dtype, device=device),
        context=torch.randn(1, 7, config["text_dim"], generator=gen),
        context_null=torch.randn(1, 11, config["text_dim"], generator=gen),
        clip_fea=torch.randn(1, 257, config["clip_dim"], generator=gen),
    )
