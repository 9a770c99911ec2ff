"""Architecture detection: which model a set of (native-named) weights is, its config, and wrong-file errors."""
from __future__ import annotations

import math
import re
from typing import Any

from ..errors import ModelFileError
from .config import ANIMATE_DEFAULTS, DEFAULTS
from .file_sniff import WAN_I2V, wrong_model

_BLOCK_INDEX = re.compile(r"^blocks\.(\d+)\.")
# Wan uses 128-channel heads; the known sizes spelled out (1.3B: 12 heads, 5B: 24, 14B: 40).
_HEADS_BY_DIM = {1536: 12, 3072: 24, 5120: 40}

WAN_I2V_HINT = "InfiniteTalk needs Wan2.1 I2V 14B (e.g. wan2.1_i2v_480p_14B_bf16.safetensors)"
ANIMATE_ROOTS = ("pose_patch_embedding.", "motion_encoder.", "face_adapter.", "face_encoder.")
ANIMATE_HINT = "WanAnimate needs Wan2.2-Animate-14B (e.g. Wan2_2-Animate-14B_fp8_e4m3fn_scaled_KJ.safetensors)"
_LIA_RESBLOCK = re.compile(r"^motion_encoder\.enc\.net_app\.convs\.(\d+)\.conv2\.1\.weight$")
_FACE_BLOCK = re.compile(r"^face_adapter\.fuser_blocks\.(\d+)\.")


def is_animate(keys) -> bool:
    """True when native-named weights are a WanAnimate model (pose embedding / face path present)."""
    return any(k.startswith(ANIMATE_ROOTS) for k in keys)


def _names(paths) -> str:
    return ", ".join(str(p).replace("\\", "/").rsplit("/", 1)[-1] for p in paths)


_LORA_MARKERS = ("lora_down", "lora_up", "lora_A", "lora_B", ".diff_b", "lora.down", "lora.up", ".alpha")


def classify_foreign(keys) -> str | None:
    """A message for a file that is clearly some other kind of model, or None."""
    keys = list(keys)

    def has(*parts) -> bool:
        return any(any(p in k for p in parts) for k in keys)

    if has(*_LORA_MARKERS):
        return "this is a LoRA file, not a model: load it with the LoRA select node (models/loras)"
    if has("decoder.middle.0.residual", "decoder.conv_in", "encoder.downsamples", "decoder.up_blocks"):
        return "this is a VAE, not the diffusion model: load it with the VAE loader (models/vae)"
    if has("feature_extractor.conv_layers", "feature_projection.projection"):
        return "this is the wav2vec2 audio encoder: load it with the InfiniteTalk Wav2Vec loader"
    if has("encoder.block.0.layer.0.SelfAttention", "shared.weight", "token_embedding", "text_model."):
        return "this is a text encoder, not the diffusion model: load it with the text encoder loader (models/text_encoders)"
    if has("visual.transformer", "vision_model.", "visual.proj", "log_scale"):
        return "this is a CLIP vision model: load it with the CLIP vision loader (models/clip_vision)"
    if has("double_blocks.", "single_blocks.", "input_blocks.", "joint_blocks.", "transformer_blocks."):
        return f"this is not a Wan model (another image/video architecture): {WAN_I2V_HINT}"
    return None


def check_wan_i2v(shapes: dict, files) -> None:
    """Raise a ModelFileError naming the problem when the merged weights are not Wan2.1 I2V (+ InfiniteTalk)."""
    keys = list(shapes)
    where = _names(files)
    lora_like = sum(1 for k in keys if any(p in k for p in _LORA_MARKERS))
    if keys and lora_like * 2 >= len(keys):
        raise ModelFileError(f"{where}: this is a LoRA file, not a model: load it with the LoRA select node (models/loras)")
    if not any(k.startswith(("blocks.", "patch_embedding.", "audio_proj.")) for k in keys):
        foreign = classify_foreign(keys)
        if foreign:
            raise wrong_model(where, WAN_I2V, foreign)
        sample = ", ".join(keys[:5])
        raise wrong_model(where, WAN_I2V, f"unknown layout: no tensor names of a Wan2.1 DiT (e.g. "
                          f"blocks.0.self_attn.q.weight) were found (first keys: {sample}); {WAN_I2V_HINT}")
    if any(k.startswith("vace_blocks.") for k in keys):
        raise ModelFileError(f"{where}: this is a Wan VACE model; {WAN_I2V_HINT}")
    if is_animate(keys):
        raise ModelFileError(
            f"{where}: this is Wan2.2-Animate (WanAnimate), not Wan2.1 I2V: use it with the InfiniteTalk Animate "
            f"sampler; {WAN_I2V_HINT}"
        )
    if "patch_embedding.weight" not in shapes:
        if any(k.startswith("audio_proj.") for k in keys):
            raise ModelFileError(
                f"{where}: this holds only the InfiniteTalk adapter, not the Wan model: choose the Wan2.1 I2V 14B file "
                "as the model and this file as the InfiniteTalk file"
            )
        raise ModelFileError(f"{where}: the Wan model is incomplete (no patch_embedding): {WAN_I2V_HINT}")
    in_dim = shapes["patch_embedding.weight"][1]
    has_img = any(k.startswith("img_emb.") for k in keys)
    if in_dim == 16:
        raise ModelFileError(f"{where}: this is a T2V (text-to-video) model: {WAN_I2V_HINT}")
    if in_dim == 48:
        raise ModelFileError(f"{where}: this is Wan2.2 TI2V 5B: {WAN_I2V_HINT}")
    if not has_img:
        raise ModelFileError(
            f"{where}: this image-to-video model has no CLIP image embedding (img_emb), as Wan2.2 I2V: {WAN_I2V_HINT}"
        )
    if "img_emb.emb_pos" in shapes:
        raise ModelFileError(f"{where}: this is Wan2.1 FLF2V (first-last-frame): {WAN_I2V_HINT}")
    if in_dim != 36:
        raise ModelFileError(f"{where}: this model takes {in_dim} input channels, Wan2.1 I2V takes 36: {WAN_I2V_HINT}")


def check_wan_animate(shapes: dict, files) -> None:
    """Raise a ModelFileError naming what is missing when the merged weights are not a complete WanAnimate model."""
    where = _names(files)
    keys = list(shapes)
    if any(k.startswith("audio_proj.") for k in keys):
        raise ModelFileError(
            f"{where}: WanAnimate and InfiniteTalk weights are mixed: WanAnimate takes no InfiniteTalk file (set it to none)"
        )
    for root, part in (("patch_embedding.weight", "the Wan DiT"), ("pose_patch_embedding.", "the pose embedding"),
                       ("motion_encoder.", "the LIA motion encoder"), ("face_encoder.", "the face encoder"),
                       ("face_adapter.", "the face blocks")):
        if not any(k.startswith(root) for k in keys):
            raise ModelFileError(f"{where}: the WanAnimate model is incomplete ({part} is missing): {ANIMATE_HINT}")
    in_dim = shapes["patch_embedding.weight"][1]
    if in_dim != 36:
        raise ModelFileError(f"{where}: this Animate model takes {in_dim} input channels, Wan2.2-Animate takes 36")


def infer_animate_config(shapes: dict, explicit: dict | None = None) -> dict:
    """WanAnimate config: the Wan sizes as for I2V, plus the face path's sizes read from its tensor shapes."""
    explicit = dict(explicit or {})
    cfg = infer_config(shapes, {k: v for k, v in explicit.items() if k in DEFAULTS})
    cfg.update(ANIMATE_DEFAULTS, model_type="animate", audio_adapter=False)
    q_norm = shapes.get("face_adapter.fuser_blocks.0.q_norm.weight")
    if q_norm and "num_heads" not in explicit:  # the face blocks use the model's heads: head_dim tells them
        cfg["num_heads"] = cfg["dim"] // q_norm[0]
    blocks = {int(m.group(1)) for k in shapes for m in [_FACE_BLOCK.match(k)] if m}
    if blocks and cfg["num_layers"]:
        cfg["face_block_every"] = max(1, -(-cfg["num_layers"] // (max(blocks) + 1)))
    conv1 = shapes.get("face_encoder.conv1_local.conv.weight")
    conv2 = shapes.get("face_encoder.conv2.conv.weight")
    if conv1 and conv2:
        cfg["face_encoder_width"] = conv2[0]
        cfg["face_encoder_num_heads"] = conv1[0] // conv2[0]
        cfg["motion_encoder_dim"] = conv1[1]
    direction = shapes.get("motion_encoder.dec.direction.weight")
    first = shapes.get("motion_encoder.enc.net_app.convs.0.0.weight")
    resblocks = sorted(int(m.group(1)) for k in shapes for m in [_LIA_RESBLOCK.match(k)] if m)
    if direction and first:
        size = 4 << len(resblocks)
        channels = {size: first[0]}
        for n, idx in enumerate(resblocks, start=1):
            channels[size >> n] = shapes[f"motion_encoder.enc.net_app.convs.{idx}.conv2.1.weight"][0]
        last = shapes.get(f"motion_encoder.enc.net_app.convs.{len(resblocks) + 1}.weight")
        cfg["motion_encoder"] = {"size": size, "style_dim": last[0] if last else first[0], "motion_dim": direction[1],
                                 "channels": channels}
    cfg.update(explicit)
    return cfg


def check_infinitetalk(shapes: dict, files, dim: int) -> None:
    """The InfiniteTalk file(s) must hold audio_proj and match the Wan model's width."""
    where = _names(files)
    if not any(k.startswith("audio_proj.") for k in shapes):
        raise ModelFileError(
            f"{where}: this file has no audio_proj: not an InfiniteTalk checkpoint (expected e.g. "
            "Wan2_1-InfiniteTalk_Single_fp16.safetensors or infinitetalk_single.safetensors)"
        )
    kv = shapes.get("blocks.0.audio_cross_attn.kv_linear.weight")
    if kv is not None and kv[0] != 2 * dim:
        raise ModelFileError(
            f"{where}: this InfiniteTalk adapter is for a model of width {kv[0] // 2}, but the Wan model has width {dim}: "
            "use the InfiniteTalk file made for Wan2.1 I2V 14B"
        )


def infer_config(shapes: dict, explicit: dict | None = None) -> dict:
    """The defaults, overridden by what tensor shapes tell, overridden by `explicit` (config.json, caller)."""
    explicit = dict(explicit or {})
    cfg: dict[str, Any] = dict(DEFAULTS)
    cfg.update({k: explicit[k] for k in ("audio_layers", "audio_channels") if k in explicit})
    pe = shapes["patch_embedding.weight"]
    cfg["dim"], cfg["in_dim"] = pe[0], pe[1]
    cfg["patch_size"] = tuple(pe[2:])
    blocks = {int(m.group(1)) for k in shapes for m in [_BLOCK_INDEX.match(k)] if m}
    cfg["num_layers"] = max(blocks) + 1 if blocks else 0
    cfg["num_heads"] = _HEADS_BY_DIM.get(cfg["dim"], max(1, cfg["dim"] // 128))
    if "blocks.0.ffn.0.weight" in shapes:
        cfg["ffn_dim"] = shapes["blocks.0.ffn.0.weight"][0]
    if "text_embedding.0.weight" in shapes:
        cfg["text_dim"] = shapes["text_embedding.0.weight"][1]
    if "time_embedding.0.weight" in shapes:
        cfg["freq_dim"] = shapes["time_embedding.0.weight"][1]
    if "head.head.weight" in shapes:
        cfg["out_dim"] = shapes["head.head.weight"][0] // math.prod(cfg["patch_size"])
    if "img_emb.proj.1.weight" in shapes:
        cfg["clip_dim"] = shapes["img_emb.proj.1.weight"][1]
    cfg["qk_norm"] = "blocks.0.self_attn.norm_q.weight" in shapes
    cfg["cross_attn_norm"] = "blocks.0.norm3.weight" in shapes
    cfg["audio_adapter"] = any(k.startswith("audio_proj.") for k in shapes)
    if cfg["audio_adapter"]:
        p1 = shapes.get("audio_proj.proj1.weight")
        vf = shapes.get("audio_proj.proj1_vf.weight")
        p3 = shapes.get("audio_proj.proj3.weight")
        kv = shapes.get("blocks.0.audio_cross_attn.kv_linear.weight")
        cfg["norm_output_audio"] = "audio_proj.norm.weight" in shapes
        cfg["norm_input_visual"] = "blocks.0.norm_x.weight" in shapes
        if p1 is not None:
            cfg["intermediate_dim"] = p1[0]
        if kv is not None:
            cfg["output_dim"] = kv[1]
        if p3 is not None and cfg["output_dim"]:
            cfg["context_tokens"] = p3[0] // cfg["output_dim"]
        per_row = cfg["audio_layers"] * cfg["audio_channels"]
        if p1 is not None and vf is not None and p1[1] % per_row == 0 and vf[1] % per_row == 0:
            cfg["audio_window"] = p1[1] // per_row
            cfg["vae_scale"] = vf[1] // per_row - cfg["audio_window"] + 1
    cfg.update(explicit)
    return cfg
