"""Standalone text and image encoders for the command line (inside ComfyUI the host's own nodes do this).

- umt5-xxl text encoder: transformers' `UMT5EncoderModel`, from ComfyUI's single-file repack
  (`umt5_xxl_fp8_e4m3fn_scaled.safetensors`, `umt5_xxl_fp16.safetensors`: Hugging Face key names, fp8
  weights with a per-tensor `<layer>.scale_weight`, the sentencepiece model in a `spiece_model` tensor)
  or a Hugging Face folder (`google/umt5-xxl` layout). Output as the reference's T5 encoder gives it:
  the prompt's tokens (with the closing `</s>`), no padding, `[tokens, 4096]`.
- CLIP ViT-H/14 image encoder: transformers' `CLIPVisionModel`, from ComfyUI's `clip_vision_h.safetensors`
  (Hugging Face key names) or a folder. Output as the reference uses it: the hidden states after the
  second-to-last transformer block (31 of 32), `[257, 1280]`, for the image resized to 224x224 and
  normalised with CLIP's mean and std.
"""
from __future__ import annotations

import logging
import math
import os

import torch

from ..errors import ModelFileError
from ..torch_inputs import check_finite

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TEXT_LEN = 512  # the reference truncates prompts at 512 tokens


def _open_safetensors(path: str) -> dict:
    """Every tensor of a single-file encoder, each checked for NaN/Inf (fp8 by bit pattern, scales too)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..model.file_sniff import check_weights_file

    check_weights_file(path)  # an LFS pointer, a web page, a cut download: the words every loader uses
    try:
        sd = load_file(path)
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"cannot read {path}: {exc}; re-download the file") from exc
    for key, tensor in sd.items():
        check_finite(tensor, key, path)  # NaN weights would give NaN prompt/image features: black video
    return sd


def _check_parameters(model: torch.nn.Module, path: str) -> None:
    """NaN/Inf in the weights of an encoder loaded from a Hugging Face folder (the error names the folder)."""
    for key, tensor in model.state_dict().items():
        check_finite(tensor, key, path)


def _dequantize(sd: dict, dtype: torch.dtype) -> dict:
    """Plain tensors in `dtype`: fp8 weights times their `scale_weight` (ComfyUI's scaled fp8), markers dropped."""
    out = {}
    for key, value in sd.items():
        if key in ("scaled_fp8", "spiece_model") or key.endswith((".scale_weight", ".scale_input", ".weight_scale")):
            continue
        tensor = value.to(torch.float32)
        base = key[: -len(".weight")] if key.endswith(".weight") else None
        scale = None
        if base is not None:
            scale = sd.get(base + ".scale_weight", sd.get(base + ".weight_scale"))
        if scale is not None:
            tensor = tensor * scale.to(torch.float32)
        out[key] = tensor.to(dtype)
    return out


def _materialize_buffers(model: torch.nn.Module) -> None:
    """Give buffers that files do not carry (position ids) real values after a meta-device build."""
    for module_name, module in model.named_modules():
        for name, buf in list(module.named_buffers(recurse=False)):
            if buf.device.type != "meta":
                continue
            if name == "position_ids":
                module.register_buffer(name, torch.arange(buf.shape[-1]).expand(buf.shape).clone(), persistent=False)
            else:
                raise ModelFileError(f"internal: buffer {module_name}.{name} has no value after loading")


# ----------------------------------------------------------------------------- umt5


class SentencePieceTokenizer:
    """The umt5 sentencepiece model carried inside ComfyUI's text-encoder file."""

    def __init__(self, model_proto: bytes):
        try:
            import sentencepiece
        except ImportError as exc:  # ComfyUI installs it; a bare venv may not have it
            raise ModelFileError("reading the tokenizer inside a ComfyUI umt5 file needs the sentencepiece "
                                 "package: pip install sentencepiece") from exc
        self.sp = sentencepiece.SentencePieceProcessor(model_proto=model_proto)

    def __call__(self, text: str) -> list[int]:
        return self.sp.encode(text) + [self.sp.eos_id() if self.sp.eos_id() >= 0 else 1]


class UMT5TextEncoder:
    """`encode(text) -> [tokens, dim]` float32 on the CPU: the reference's T5 context for one prompt."""

    def __init__(self, model, tokenizer, device):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.dim = model.config.d_model

    @torch.no_grad()
    def encode(self, text: str) -> torch.Tensor:
        # The reference cleans whitespace before tokenising.
        text = " ".join((text or "").split())
        ids = self.tokenizer(text)[:TEXT_LEN]
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        mask = torch.ones_like(input_ids)
        out = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state[0]
        return out.float().cpu()


def _umt5_config_from_weights(sd: dict):
    from transformers import UMT5Config

    try:
        vocab, d_model = sd["shared.weight"].shape
        layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.block."))
        buckets, heads = sd["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].shape
        inner = sd["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0]
        d_ff = sd["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape[0]
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"not a umt5 text encoder (missing {exc}); InfiniteTalk needs umt5-xxl, e.g. "
                             "umt5_xxl_fp8_e4m3fn_scaled.safetensors in models/text_encoders") from None
    return UMT5Config(vocab_size=vocab, d_model=d_model, d_kv=inner // heads, d_ff=d_ff, num_layers=layers,
                      num_heads=heads, relative_attention_num_buckets=buckets, feed_forward_proj="gated-gelu",
                      dense_act_fn="gelu_pytorch_tanh", is_gated_act=True, layer_norm_epsilon=1e-6,
                      tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)


def load_text_encoder(path: str, dtype=torch.bfloat16, device="cpu") -> UMT5TextEncoder:
    """umt5 from a ComfyUI single file (with its `spiece_model`) or a Hugging Face folder."""
    from transformers import UMT5EncoderModel

    if not os.path.exists(path):
        raise FileNotFoundError(f"text encoder {path!r} not found (expected umt5_xxl_*.safetensors from "
                                "models/text_encoders, or a Hugging Face umt5 folder)")
    if os.path.isdir(path):
        from transformers import AutoTokenizer

        model = UMT5EncoderModel.from_pretrained(path, torch_dtype=dtype)
        _check_parameters(model, path)
        model = model.to(device)
        hf_tok = AutoTokenizer.from_pretrained(path)
        return UMT5TextEncoder(model, lambda text: hf_tok(text)["input_ids"], device)
    if path.endswith((".pth", ".pt")):
        raise ModelFileError(f"{os.path.basename(path)}: the original Wan .pth text encoder is not supported; "
                             "use ComfyUI's umt5_xxl_fp8_e4m3fn_scaled.safetensors (or _fp16) from "
                             "Comfy-Org/Wan_2.1_ComfyUI_repackaged")
    raw = _open_safetensors(path)
    if "spiece_model" not in raw and not any(k.startswith(("encoder.block.", "shared.")) for k in raw):
        from ..model.file_sniff import wrong_model

        raise wrong_model(path, "the umt5-xxl text encoder", "no umt5 tensors (encoder.block.*) and no tokenizer: use "
                          "ComfyUI's umt5_xxl_*.safetensors repack (models/text_encoders)")
    if "spiece_model" not in raw:
        raise ModelFileError(f"{os.path.basename(path)} carries no tokenizer (no 'spiece_model' tensor): use "
                             "ComfyUI's umt5_xxl_*.safetensors repack or a Hugging Face umt5 folder")
    tokenizer = SentencePieceTokenizer(raw["spiece_model"].numpy().tobytes())
    sd = _dequantize(raw, dtype)
    sd = {k: v for k, v in sd.items() if not k.startswith("decoder.")}
    config = _umt5_config_from_weights(sd)
    with torch.device("meta"):
        model = UMT5EncoderModel(config)
    sd.setdefault("encoder.embed_tokens.weight", sd["shared.weight"])
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    missing = [k for k in missing if k != "encoder.embed_tokens.weight"]
    if missing or unexpected:
        raise ModelFileError(f"{os.path.basename(path)} does not fit umt5: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
    _materialize_buffers(model)
    return UMT5TextEncoder(model.to(device=device, dtype=dtype), tokenizer, device)


# ----------------------------------------------------------------------------- CLIP vision

KNOWN_HEADS = {1280: 16, 1024: 16, 768: 12, 1664: 16}


class ClipVisionEncoder:
    """`encode(image [H, W, 3] float 0..1) -> [tokens, dim]` float32: penultimate hidden states."""

    def __init__(self, model, device):
        self.model = model.eval()
        self.device = torch.device(device)
        self.size = model.config.image_size
        self.dim = model.config.hidden_size

    @torch.no_grad()
    def encode(self, image: torch.Tensor) -> torch.Tensor:
        x = image[..., :3].float().movedim(-1, 0)[None]
        x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False)
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        x = ((x - mean) / std).to(device=self.device, dtype=next(self.model.parameters()).dtype)
        out = self.model(pixel_values=x, output_hidden_states=True)
        return out.hidden_states[-2][0].float().cpu()


def _clip_config_from_weights(sd: dict):
    from transformers import CLIPVisionConfig

    try:
        hidden, _, patch, _ = sd["embeddings.patch_embedding.weight"].shape
        positions = sd["embeddings.position_embedding.weight"].shape[0]
        layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.layers."))
        inter = sd["encoder.layers.0.mlp.fc1.weight"].shape[0]
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"not a CLIP vision model (missing {exc}); InfiniteTalk needs CLIP ViT-H/14, e.g. "
                             "clip_vision_h.safetensors in models/clip_vision") from None
    side = math.isqrt(positions - 1)
    heads = KNOWN_HEADS.get(hidden, max(1, hidden // 64))
    return CLIPVisionConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                            num_attention_heads=heads, image_size=side * patch, patch_size=patch,
                            hidden_act="gelu", layer_norm_eps=1e-5)


def load_clip_vision(path: str, dtype=torch.float16, device="cpu") -> ClipVisionEncoder:
    from transformers import CLIPVisionModel

    if not os.path.exists(path):
        raise FileNotFoundError(f"CLIP vision model {path!r} not found (expected clip_vision_h.safetensors "
                                "from models/clip_vision)")
    if os.path.isdir(path):
        model = CLIPVisionModel.from_pretrained(path, torch_dtype=dtype)
        _check_parameters(model, path)
        return ClipVisionEncoder(model.to(device), device)
    raw = _open_safetensors(path)
    if not any(k.endswith("embeddings.patch_embedding.weight") or k.startswith("visual.") for k in raw):
        from ..model.file_sniff import wrong_model

        raise wrong_model(path, "a CLIP vision model", "not a CLIP vision model (no embeddings.patch_embedding); "
                          "InfiniteTalk needs CLIP ViT-H/14, e.g. clip_vision_h.safetensors in models/clip_vision")
    if any(k.startswith("visual.transformer.") for k in raw):
        raise ModelFileError(f"{os.path.basename(path)} is an open_clip checkpoint; use ComfyUI's "
                             "clip_vision_h.safetensors (Comfy-Org/Wan_2.1_ComfyUI_repackaged)")
    # ComfyUI's files use transformers 4 names ("vision_model.embeddings..."); transformers 5 drops the prefix.
    sd = {k[len("vision_model."):] if k.startswith("vision_model.") else k: v
          for k, v in _dequantize(raw, dtype).items()
          if k.startswith(("vision_model.", "embeddings.", "encoder.layers.", "pre_layrnorm.", "post_layernorm."))}
    config = _clip_config_from_weights(sd)
    with torch.device("meta"):
        model = CLIPVisionModel(config)
    expected = set(model.state_dict())
    if any(k.startswith("vision_model.") for k in expected):
        sd = {"vision_model." + k: v for k, v in sd.items()}
    # position_ids is a buffer some files carry and some do not.
    sd = {k: v for k, v in sd.items() if k in expected}
    missing, _ = model.load_state_dict(sd, strict=False, assign=True)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing:
        raise ModelFileError(f"{os.path.basename(path)} does not fit CLIP vision: missing {missing[:5]}")
    _materialize_buffers(model)
    return ClipVisionEncoder(model.to(device=device, dtype=dtype), device)

