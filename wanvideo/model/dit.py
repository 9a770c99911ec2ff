"""The Wan2.1 I2V DiT with the InfiniteTalk audio adapter (`WanInfiniteTalkModel`) and `build_model`.

Call: `model(x, t, context, clip_fea, y, audio=None, ref_target_masks=None)` with batched
tensors (see `forward`). Inputs of any dtype/device are moved to the model's compute
dtype and main device; the output is float32 on the main device.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import math

import torch
import torch.nn as nn

from ..errors import InputError
from .attention import check_backend
from .audio_adapter import AudioProjModel, audio_tokens_per_frame, token_masks_from
from .blocks import AttentionBlock, ForwardState, Head, MLPProj
from .config import audio_frames_for, normalize_config
from .layers import Conv3d, Linear
from .rope import grid_cos_sin
from .step_residuals import BlockResiduals

log = logging.getLogger(__name__)


def sinusoidal_embedding(dim: int, t: torch.Tensor) -> torch.Tensor:
    """[cos | sin] timestep embedding computed in float64 (as the reference), returned float32."""
    half = dim // 2
    pos = t.to(torch.float64)
    sinusoid = torch.outer(pos, torch.pow(10000, -torch.arange(half, device=t.device).to(pos).div(half)))
    return torch.cat([torch.cos(sinusoid), torch.sin(sinusoid)], dim=1).float()


class WanInfiniteTalkModel(nn.Module):
    """Wan2.1 I2V 14B-style DiT (+ InfiniteTalk adapter when `config['audio_adapter']`)."""

    def __init__(self, config: dict, dtype=torch.float32, device="cpu"):
        super().__init__()
        cfg = normalize_config(config)
        self.config = cfg
        self.compute_dtype = dtype
        self.main_device = torch.device(device)
        self.attention_backend = "sdpa"
        self.block_swap = None  # a BlockSwapper when some blocks live on the offload device
        self.sequence_parallel = None  # a SequenceParallel when one call's tokens are split across ranks
        self.supports_batched_passes = True  # accepts [B, speakers, ...] audio: guidance passes in one batch
        self.step_residuals = BlockResiduals()  # step caching: the last computed residual per guidance pass
        kw = dict(device=device, dtype=dtype)
        dim = cfg["dim"]

        self.patch_embedding = Conv3d(cfg["in_dim"], dim, kernel_size=cfg["patch_size"], stride=cfg["patch_size"], **kw)
        self.text_embedding = nn.Sequential(
            Linear(cfg["text_dim"], dim, **kw), nn.GELU(approximate="tanh"), Linear(dim, dim, **kw)
        )
        self.time_embedding = nn.Sequential(Linear(cfg["freq_dim"], dim, **kw), nn.SiLU(), Linear(dim, dim, **kw))
        self.time_projection = nn.Sequential(nn.SiLU(), Linear(dim, dim * 6, **kw))
        self.blocks = nn.ModuleList([AttentionBlock(cfg, **kw) for _ in range(cfg["num_layers"])])
        self.head = Head(dim, cfg["out_dim"], cfg["patch_size"], cfg["eps"], **kw)
        self.img_emb = MLPProj(cfg["clip_dim"], dim, **kw)
        if cfg["audio_adapter"]:
            self.audio_proj = AudioProjModel(
                cfg["audio_window"], cfg["vae_scale"], cfg["audio_layers"], cfg["audio_channels"],
                cfg["intermediate_dim"], cfg["output_dim"], cfg["context_tokens"], cfg["norm_output_audio"], **kw
            )
        self.requires_grad_(False)
        self.eval()

    @property
    def has_audio_adapter(self) -> bool:
        return self.config["audio_adapter"]

    def set_attention_backend(self, name: str) -> None:
        """'sdpa' (PyTorch, default), 'sage' (SageAttention) or 'flash' (FlashAttention)."""
        self.attention_backend = check_backend(name, self.main_device)

    def enable_block_swap(self, count: int, offload_device="cpu", prefetch: bool = True) -> None:
        """Keep the first `count` blocks on `offload_device`, each moved to the main device just in time."""
        from .block_swap import BlockSwapper

        self.block_swap = BlockSwapper(self, count, self.main_device, offload_device, prefetch) if count > 0 else None

    def enable_sequence_parallel(self, mode: str | None, use_yunchang: bool | None = None) -> None:
        """Split every call's video tokens across the ranks of torch.distributed ('ulysses' or 'ring'; None: off).

        Call on every rank, in the same order (it creates process groups). Each rank then runs the forward on the
        same inputs and gets the same whole output.
        """
        from .parallel.sequence_parallel import SequenceParallel

        self.sequence_parallel = None if mode is None else SequenceParallel(mode, self.config["num_heads"],
                                                                            use_yunchang=use_yunchang)

    def set_fp8_matmul(self, mode: str = "on") -> int:
        """'on': multiply fp8 weights in fp8 (torch._scaled_mm; CUDA compute capability >= 8.9), an error where
        that cannot run; 'auto': on where it can run; 'off': dequantise each layer's weight (any GPU).
        Returns the number of layers that multiply in fp8."""
        from .quant.fp8 import FP8_MATMUL_MODES, fp8_matmul_unavailable_reason, is_fp8

        if mode not in FP8_MATMUL_MODES:
            raise InputError(f"fp8 matmul must be one of {', '.join(FP8_MATMUL_MODES)}, got {mode!r}")
        layers = [m for m in self.modules() if isinstance(m, Linear) and is_fp8(m.weight.dtype)]
        enable = mode != "off"
        if enable and not layers:
            if mode == "on":
                raise InputError("fp8 matmul needs fp8 weights: load an fp8 model file (or set the quantization to "
                                 "fp8_e4m3fn), or turn fp8 matmul off")
            enable = False
        reason = fp8_matmul_unavailable_reason(self.main_device) if enable else None
        if reason:
            if mode == "on":
                raise InputError(f"fp8 matmul cannot run: {reason}; turn it off (weights are then dequantised per "
                                 "layer, which works on every GPU)")
            log.info("fp8 matmul off: %s; fp8 weights are dequantised per layer", reason)
            enable = False
        for layer in layers:
            layer.fp8_matmul = enable
        return len(layers) if enable else 0

    def compile_blocks(self, backend: str = "inductor", mode: str = "default") -> int:
        """torch.compile each transformer block (see compile.py); an InputError where this torch cannot compile."""
        from .compile import compile_blocks

        return compile_blocks(self, backend, mode)

    # ----- input checks -------------------------------------------------------------------------------
    def _check_inputs(self, x, t, context, clip_fea, y, audio, ref_target_masks):
        self._check_video_inputs(x, t, context, clip_fea, y)
        self._check_audio(x, audio, ref_target_masks)

    def _check_video_inputs(self, x, t, context, clip_fea, y):
        """Checks shared by every model variant: latents, y, text, CLIP tokens, timesteps."""
        cfg = self.config
        if x.dim() != 5:
            raise InputError(f"x must be [batch, channels, frames, height, width], got shape {tuple(x.shape)}")
        if y is None or clip_fea is None:
            raise InputError("the I2V model needs both y (mask + reference latents) and clip_fea (CLIP image tokens)")
        if y.dim() != 5 or y.shape[2:] != x.shape[2:]:
            raise InputError(f"y {tuple(y.shape)} must match x {tuple(x.shape)} in frames, height and width")
        if x.shape[1] + y.shape[1] != cfg["in_dim"]:
            raise InputError(
                f"x has {x.shape[1]} and y {y.shape[1]} channels; together they must be the model's in_dim {cfg['in_dim']}"
            )
        b = x.shape[0]
        for name, tensor in (("y", y), ("context", context), ("clip_fea", clip_fea)):
            if tensor.shape[0] not in (1, b):
                raise InputError(f"{name} batch {tensor.shape[0]} does not match x batch {b} (or 1)")
        pf, ph, pw = cfg["patch_size"]
        if x.shape[2] % pf or x.shape[3] % ph or x.shape[4] % pw:
            raise InputError(f"latent size {tuple(x.shape[2:])} is not divisible by the patch size {(pf, ph, pw)}")
        if context.dim() != 3 or context.shape[2] != cfg["text_dim"]:
            raise InputError(f"context must be [batch, tokens, {cfg['text_dim']}], got {tuple(context.shape)}")
        if context.shape[1] > cfg["text_len"]:
            raise InputError(f"context has {context.shape[1]} tokens; the model takes at most text_len={cfg['text_len']}")
        if clip_fea.dim() != 3 or clip_fea.shape[2] != cfg["clip_dim"]:
            raise InputError(f"clip_fea must be [batch, 257, {cfg['clip_dim']}], got {tuple(clip_fea.shape)}")
        if t.dim() > 1 or (t.dim() == 1 and t.shape[0] not in (1, b)):
            raise InputError(f"t must be a scalar or [batch] timesteps, got shape {tuple(t.shape)}")

    def _check_audio(self, x, audio, ref_target_masks):
        cfg = self.config
        pf = cfg["patch_size"][0]
        if audio is None:
            return
        if not cfg["audio_adapter"]:
            raise InputError(
                "this model was loaded without InfiniteTalk weights, so it cannot take audio: "
                "pick the InfiniteTalk file in the model loader (or run plain I2V without audio)"
            )
        want = (cfg["audio_window"], cfg["audio_layers"], cfg["audio_channels"])
        if audio.dim() == 6:  # one audio per batch row (batched guidance)
            if audio.shape[0] != x.shape[0]:
                raise InputError(f"per-row audio has {audio.shape[0]} rows for a batch of {x.shape[0]}")
            audio = audio[0]
        if audio.dim() != 5 or tuple(audio.shape[2:]) != want:
            raise InputError(
                f"audio must be [speakers, frames, {want[0]}, {want[1]}, {want[2]}] (window, wav2vec2 layers, channels), "
                f"got {tuple(audio.shape)}"
            )
        frames = audio_frames_for(x.shape[2] // pf, cfg)
        if audio.shape[1] != frames:
            raise InputError(
                f"audio covers {audio.shape[1]} video frames but {x.shape[2]} latent frames need {frames} "
                f"(1 + {cfg['vae_scale']} per further latent frame)"
            )
        if audio.shape[0] not in (1, 2):
            raise InputError(f"InfiniteTalk supports one or two speakers, got {audio.shape[0]}")
        if audio.shape[0] == 2 and ref_target_masks is None:
            raise InputError("two speakers need ref_target_masks [3, H, W] (speaker 1, speaker 2, background)")

    # ----- forward ------------------------------------------------------------------------------------
    @torch.no_grad()
    def forward(self, x, t, context, clip_fea, y, audio=None, ref_target_masks=None, step_cache=None,
                audio_scale=1.0):
        """x [B,16,F,H,W] noisy latents; t [B] timesteps (0..1000); context [B,L,text_dim] text tokens (L <= text_len);
        clip_fea [B,257,clip_dim]; y [B,20,F,H,W] mask + reference latents; audio [speakers, frames, window, layers,
        channels] shared by the batch, or [B, speakers, ...] one per batch row (batched guidance), or None to skip
        the audio adapter (plain Wan I2V); ref_target_masks [3,H,W] (speaker 1, speaker 2, background; used with two
        speakers); step_cache: a step cache's plan for this call (see step_residuals; None: run every row's blocks);
        audio_scale: multiplies the audio cross-attention's output in every block (1: the reference; 0: the audio
        adapter contributes nothing, as with audio=None). Returns [B,16,F,H,W] float32.

        The same computation in three public parts (`embed`, `run_blocks`, `finish`)."""
        h, e, e0, state = self.embed(x, t, context, clip_fea, y, audio, ref_target_masks, audio_scale)
        return self.finish(self.run_blocks_cached(h, e0, state, step_cache), e, state)

    @property
    def supports_step_cache(self) -> bool:
        """Whether this model's forward follows a step cache's plan (a variant with its own forward takes
        `step_cache` and hands it to `run_blocks_cached`)."""
        return "step_cache" in inspect.signature(type(self).forward).parameters

    def time_modulation(self, t, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(time embedding e [batch, dim], block modulation e0 [batch, 6, dim]) for timesteps t (scalar or [batch]):
        what a forward computes from t alone (step caching decides on e0, the reference's modulated input)."""
        cfg = self.config
        t = torch.as_tensor(t).to(self.main_device).reshape(-1).expand(batch)
        e = self.time_embedding(sinusoidal_embedding(cfg["freq_dim"], t))
        return e, self.time_projection(e).unflatten(1, (6, cfg["dim"]))

    @torch.no_grad()
    def embed(self, x, t, context, clip_fea, y, audio=None, ref_target_masks=None, audio_scale=1.0):
        """Inputs -> (tokens h [B, L, dim] (this rank's share under sequence parallel), time embedding e [B, dim],
        block modulation e0 [B, 6, dim], ForwardState)."""
        t = torch.as_tensor(t)
        self._check_inputs(x, t, context, clip_fea, y, audio, ref_target_masks)
        h = self._patch_embed(x, y)
        state, e, e0 = self._prepare(h, t, context, clip_fea)
        h = h.flatten(2).transpose(1, 2)
        if audio is not None:
            self._prepare_audio(state, audio, ref_target_masks)
            state.audio_scale = check_audio_scale(audio_scale)
        return self._shard_tokens(h, state), e, e0, state

    @torch.no_grad()
    def run_blocks(self, h, e0, state) -> torch.Tensor:
        """The transformer blocks (with `_after_block` after each): the part step caching skips."""
        for i, block in enumerate(self.blocks):
            with self.block_swap.use(i) if self.block_swap is not None else contextlib.nullcontext():
                h = block(h, e0, state)
            h = self._after_block(i, h, state)
        return h

    @torch.no_grad()
    def run_blocks_cached(self, h, e0, state, step_cache=None) -> torch.Tensor:
        """`run_blocks`, or with a step cache's plan only for the rows it runs (the others add their pass's cached
        residual; under sequence parallel each rank keeps its own shard's)."""
        if step_cache is None:
            return self.run_blocks(h, e0, state)
        return self.step_residuals.run(self.run_blocks, h, e0, state, step_cache)

    @torch.no_grad()
    def finish(self, h, e, state) -> torch.Tensor:
        """The head (output gathered once under sequence parallel) and unpatchify -> [B, c, F, H, W] float32."""
        out = self.head(h, e)
        if state.shard is not None:
            out = state.shard.gather(out)
        return self.unpatchify(out, state.grid)

    # ----- the steps of a forward, shared with the WanAnimate model -----------------------------------
    def _patch_embed(self, x, y) -> torch.Tensor:
        """[B, dim, F, H/2, W/2] patch embedding of x and y concatenated on channels."""
        b = x.shape[0]
        dev, dt = self.main_device, self.compute_dtype
        return self.patch_embedding(torch.cat([x.to(dev, dt), y.to(dev, dt).expand(b, -1, -1, -1, -1)], dim=1))

    def _prepare(self, h, t, context, clip_fea):
        """(ForwardState, time embedding e [B, dim], block modulation e0 [B, 6, dim]) for patch tokens h [B, dim, f, h, w]."""
        cfg, dev, dt = self.config, self.main_device, self.compute_dtype
        b = h.shape[0]
        grid = tuple(h.shape[2:])
        e, e0 = self.time_modulation(t, b)

        # Text is zero-padded to text_len before the embedding; the padded rows are attended to (reference).
        ctx = context.to(dev, dt)
        ctx = torch.cat([ctx, ctx.new_zeros(ctx.shape[0], cfg["text_len"] - ctx.shape[1], ctx.shape[2])], dim=1)
        ctx = self.text_embedding(ctx).expand(b, -1, -1)
        ctx_img = self.img_emb(clip_fea.to(dev, dt)).expand(b, -1, -1)

        cos, sin = grid_cos_sin(grid, cfg["dim"] // cfg["num_heads"], dev)
        state = ForwardState(grid=grid, rope_cos=cos, rope_sin=sin, context=ctx, context_img=ctx_img,
                             backend=self.attention_backend)
        return state, e, e0

    def _prepare_audio(self, state, audio, ref_target_masks) -> None:
        dev, dt = self.main_device, self.compute_dtype
        per_row = audio.dim() == 6  # [B, speakers, ...]: each batch row its own audio (batched guidance)
        speakers = audio.shape[1] if per_row else audio.shape[0]
        projected = self.audio_proj(audio.to(dev, dt).flatten(0, 1) if per_row else audio.to(dev, dt))
        if per_row:
            rows = projected.unflatten(0, (audio.shape[0], speakers))
            state.audio_tokens = torch.stack([audio_tokens_per_frame(r) for r in rows])
        else:
            state.audio_tokens = audio_tokens_per_frame(projected)
        state.speakers = speakers
        if state.speakers == 2:
            state.token_masks = token_masks_from(ref_target_masks.to(self.main_device), state.grid)
            sizes = state.token_masks.sum(dim=1)
            for i in (0, 1):
                if sizes[i] == 0:
                    raise InputError(
                        f"speaker {i + 1}'s mask covers no token at latent resolution: draw a larger box/mask"
                    )

    def _shard_tokens(self, h, state) -> torch.Tensor:
        """Under sequence parallel: this rank's share of the tokens (and of the RoPE tables), noted in state.shard."""
        if self.sequence_parallel is None:
            return h
        state.shard = self.sequence_parallel.shard(h.shape[1])
        state.rope_cos, state.rope_sin = state.shard.rope(state.rope_cos, state.rope_sin)
        return state.shard.split(h)

    def _after_block(self, index: int, h: torch.Tensor, state) -> torch.Tensor:
        """Hook for model variants (WanAnimate adds its face blocks here)."""
        return h

    def unpatchify(self, x: torch.Tensor, grid) -> torch.Tensor:
        """[B, L, p*q*r*c] (c fastest) -> [B, c, F*p, H*q, W*r] float32."""
        b = x.shape[0]
        c = self.config["out_dim"]
        p, q, r = self.config["patch_size"]
        f, hh, ww = grid
        x = x.reshape(b, f, hh, ww, p, q, r, c).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.reshape(b, c, f * p, hh * q, ww * r).float()

    def extra_repr(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return f"params={n / 1e9:.2f}B, dtype={self.compute_dtype}, device={self.main_device}"


def check_audio_scale(value) -> float:
    """The audio strength as a finite float (an InputError otherwise)."""
    scale = float(value)
    if not math.isfinite(scale):
        raise InputError(f"audio_scale must be a finite number, got {value!r}")
    return scale


def flops_per_forward(config: dict, latent_shape, text_tokens=None, speakers=1) -> float:
    """Approximate multiply-add FLOPs (x2) of one forward for a batch-1 latent [F, H, W] (for benchmarks)."""
    cfg = normalize_config(config)
    pf, ph, pw = cfg["patch_size"]
    f, h, w = latent_shape[0] // pf, latent_shape[1] // ph, latent_shape[2] // pw
    n = f * h * w
    d, ffn = cfg["dim"], cfg["ffn_dim"]
    ctx = cfg["text_len"] if text_tokens is None else text_tokens
    per_block = 2 * n * d * d * 4  # self-attention projections
    per_block += 2 * 2 * n * n * d  # self-attention scores + weighted sum
    per_block += 2 * n * d * d * 2 + 2 * (ctx + 257) * d * d * 4 + 2 * 2 * n * (ctx + 257) * d  # cross-attention
    per_block += 2 * 2 * n * d * ffn  # FFN
    if cfg["audio_adapter"]:
        per_block += 2 * n * d * d * 2 + 2 * 2 * n * speakers * cfg["context_tokens"] * d
    return float(per_block * cfg["num_layers"] + 2 * n * d * math.prod(cfg["patch_size"]) * cfg["out_dim"])
