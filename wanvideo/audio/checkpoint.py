"""wav2vec2 checkpoint layouts: key names, weight-norm naming, and the config when a file has none.

Files in the wild (Hugging Face folders, ComfyUI / wrapper fp16 repacks of
TencentGameMate/chinese-wav2vec2-base, pre-training checkpoints) all use
transformers' parameter names, but differ in three ways handled here:

* a prefix (`wav2vec2.` in `Wav2Vec2ForPreTraining`/`ForCTC` files, none in
  `Wav2Vec2Model` files), plus heads we do not need (quantizer, projections, lm_head);
* the positional convolution's weight norm, stored as `weight_g`/`weight_v`
  (old PyTorch), `parametrizations.weight.original0/1` (current PyTorch), or
  already folded into a plain `weight`;
* whether a config travels with the weights: when it does not, the bundled
  chinese-wav2vec2-base architecture is used, corrected by the sizes the
  weights themselves reveal (a large model has 1024 wide, 24 layers...).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ..errors import ModelFileError
from ..model.file_sniff import wrong_model

BUNDLED_CONFIG_PATH = Path(__file__).with_name("chinese_wav2vec2_base.json")

ANCHOR = "feature_extractor.conv_layers.0.conv.weight"
ESSENTIAL_KEYS = (
    ANCHOR,
    "feature_projection.projection.weight",
    "encoder.layer_norm.weight",
    "encoder.layers.0.attention.q_proj.weight",
)
POS_CONV = "encoder.pos_conv_embed.conv."
WN_G = POS_CONV + "parametrizations.weight.original0"
WN_V = POS_CONV + "parametrizations.weight.original1"
# Keys a Wav2Vec2Model may declare that checkpoints often lack; unused in inference.
OPTIONAL_KEYS = ("masked_spec_embed",)

# Config entries that select an attention backend: dropped so that neither
# transformers 4.5x nor 5.x can fail on them (we run attention ourselves).
_ATTENTION_CONFIG_KEYS = ("attn_implementation", "_attn_implementation", "_attn_implementation_internal")


def bundled_config() -> tuple[dict, dict]:
    """(wav2vec2 config dict, preprocessor dict) of chinese-wav2vec2-base, shipped with the pack."""
    data = json.loads(BUNDLED_CONFIG_PATH.read_text())
    return dict(data["config"]), dict(data["preprocessor"])


def clean_config_dict(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in _ATTENTION_CONFIG_KEYS}


def _guess_other_model(keys) -> str:
    """A short human description of what a non-wav2vec2 state dict probably is."""
    joined = " ".join(list(keys)[:2000])
    guesses = (
        (r"(^|\s)(model\.diffusion_model\.)?blocks\.\d+\.self_attn", "a Wan video diffusion model (DiT)"),
        (r"audio_proj\.proj1", "an InfiniteTalk / MultiTalk audio adapter"),
        (r"decoder\.(up_blocks|upsamples|conv_in)|encoder\.downsamples", "a VAE"),
        (r"encoder\.block\.\d+\.layer|shared\.weight", "a T5 / UMT5 text encoder"),
        (r"vision_model\.|visual\.transformer|clip", "a CLIP (vision) model"),
        (r"encoder\.embed_positions|model\.encoder\.conv1", "a Whisper model"),
        (r"feature_extractor\.conv_layers\.\d+\.\d+\.weight|encoder\.layers\.\d+\.self_attn\.k_proj",
         "a fairseq wav2vec2 checkpoint (convert it to the Hugging Face format first)"),
        (r"lora_(up|down|A|B)", "a LoRA"),
    )
    for pattern, label in guesses:
        if re.search(pattern, joined):
            return label
    return "not a wav2vec2 model"


def find_prefix(keys, source: str) -> str:
    """The key prefix in front of the wav2vec2 parameters ('' or e.g. 'wav2vec2.'); raises for other models."""
    candidates = [k[: -len(ANCHOR)] for k in keys if k.endswith(ANCHOR)]
    if not candidates:
        keys = list(keys)
        sample = ", ".join(keys[:4]) + (" ..." if len(keys) > 4 else "")
        raise wrong_model(
            source, "a wav2vec2 model", f"it looks like {_guess_other_model(keys)}: expected Hugging Face "
            f"wav2vec2 weights such as '{ANCHOR}' (optionally prefixed 'wav2vec2.'), found {len(keys)} tensors "
            f"like {sample}. Pick a wav2vec2 file, e.g. TencentGameMate/chinese-wav2vec2-base "
            f"(or its fp16 .safetensors repack), placed in models/wav2vec2."
        )
    return min(candidates, key=len)


def normalize_state_dict(state_dict: dict, source: str) -> dict:
    """Strip the prefix, drop non-encoder heads, and bring the weight norm to parametrization names."""
    prefix = find_prefix(state_dict.keys(), source)
    sd = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    # Heads of pre-training / CTC / classification checkpoints that a Wav2Vec2Model does not have.
    sd = {k: v for k, v in sd.items() if not k.startswith(("quantizer.", "project_q.", "project_hid.", "lm_head.", "adapter."))}
    if POS_CONV + "weight_g" in sd:
        sd[WN_G] = sd.pop(POS_CONV + "weight_g")
        sd[WN_V] = sd.pop(POS_CONV + "weight_v")
    elif POS_CONV + "weight" in sd and WN_G not in sd:
        # Weight norm already folded into the kernel: g = |w| per tap, v = w gives back w exactly.
        weight = sd.pop(POS_CONV + "weight")
        sd[WN_G] = torch.linalg.vector_norm(weight.float(), dim=(0, 1), keepdim=True).to(weight.dtype)
        sd[WN_V] = weight
    missing = [k for k in ESSENTIAL_KEYS if k not in sd]
    if missing or WN_G not in sd:
        raise ModelFileError(
            f"{source} holds only part of a wav2vec2 model: missing {', '.join(missing or [WN_G])}. "
            f"The file may be truncated or a different layout; download it again."
        )
    return sd


def _count_indexed(sd: dict, pattern: str) -> int:
    regex = re.compile(pattern)
    indices = {int(m.group(1)) for k in sd for m in [regex.match(k)] if m}
    return max(indices) + 1 if indices else 0


def infer_config(sd: dict, base: dict | None = None) -> dict:
    """The wav2vec2 config of normalized weights `sd`, starting from `base` (default: the bundled one).

    Sizes are read off the weights; what weights cannot tell (strides, heads,
    the layer-norm variant) follows the base config or, for other sizes, the
    published wav2vec2 family (64-wide heads; per-layer conv norms come with
    the "stable" pre-norm encoder, as in the large LV-60 / XLSR models). A
    config stored in the file's metadata or in a `<name>.json` beside it wins.
    """
    cfg = dict(base if base is not None else bundled_config()[0])
    n_conv = _count_indexed(sd, r"feature_extractor\.conv_layers\.(\d+)\.conv\.weight$")
    conv_w = [sd[f"feature_extractor.conv_layers.{i}.conv.weight"] for i in range(n_conv)]
    cfg["conv_dim"] = [int(w.shape[0]) for w in conv_w]
    kernels = [int(w.shape[2]) for w in conv_w]
    if n_conv != len(cfg["conv_stride"]):
        raise ModelFileError(
            f"wav2vec2 weights with {n_conv} convolution layers need their config.json "
            f"(strides cannot be read from weights): use the model's Hugging Face folder."
        )
    cfg["conv_kernel"] = kernels
    cfg["num_feat_extract_layers"] = n_conv
    cfg["conv_bias"] = "feature_extractor.conv_layers.0.conv.bias" in sd
    per_layer_norm = "feature_extractor.conv_layers.1.layer_norm.weight" in sd
    cfg["feat_extract_norm"] = "layer" if per_layer_norm else "group"
    cfg["do_stable_layer_norm"] = bool(per_layer_norm)
    hidden = int(sd["feature_projection.projection.weight"].shape[0])
    if hidden != cfg["hidden_size"]:
        # Heads cannot be read off the weights. Every published wav2vec2 size uses 64-wide heads
        # (base 768/12, large 1024/16); widths that are no multiple of 64 (test models) get 16-wide heads.
        cfg["num_attention_heads"] = hidden // 64 if hidden % 64 == 0 else max(1, hidden // 16)
    cfg["hidden_size"] = hidden
    cfg["num_hidden_layers"] = _count_indexed(sd, r"encoder\.layers\.(\d+)\.")
    cfg["intermediate_size"] = int(sd["encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0])
    pos_v = sd[WN_V]
    cfg["num_conv_pos_embeddings"] = int(pos_v.shape[2])
    cfg["num_conv_pos_embedding_groups"] = max(1, hidden // int(pos_v.shape[1]))
    if "masked_spec_embed" not in sd:
        cfg["mask_time_prob"] = 0.0
        cfg["mask_feature_prob"] = 0.0
    return cfg


def default_preprocessor(config: dict) -> dict:
    """Waveform normalisation when no preprocessor_config.json is given.

    chinese-wav2vec2-base (group-norm feature encoder) does not normalise; the
    layer-norm (large LV-60 / XLSR style) models were trained with zero-mean
    unit-variance input.
    """
    pre = bundled_config()[1]
    pre["do_normalize"] = config.get("feat_extract_norm", "group") == "layer"
    return pre
