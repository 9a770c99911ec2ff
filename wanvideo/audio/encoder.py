"""The loaded wav2vec2 audio encoder (the pack type INFINITETALK_WAV2VEC)."""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..torch_inputs import parse_device, parse_dtype
from .checkpoint import clean_config_dict

SAMPLE_RATE = 16000  # wav2vec2 is trained on 16 kHz audio



def as_dtype(dtype) -> torch.dtype:
    return parse_dtype(dtype, "wav2vec2 precision")


def as_device(device) -> torch.device:
    return parse_device(device, "wav2vec2 device")


def build_transformers_model(config: dict):
    """A transformers Wav2Vec2Model for `config` with uninitialised (meta) weights, ready for load_state_dict(assign=True)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(**clean_config_dict(config))
    with torch.device("meta"):
        model = Wav2Vec2Model(cfg)
    return model


@dataclass
class Wav2VecEncoder:
    """A transformers `Wav2Vec2Model` in eval mode plus what the reference's feature extractor adds.

    do_normalize: zero-mean unit-variance input normalisation (from
        preprocessor_config.json; False for chinese-wav2vec2-base).
    source: where it was loaded from (for messages).
    compute_device: where embeddings are computed when the weights are kept
        elsewhere (ComfyUI "offload": weights in RAM, moved to the GPU only
        while embedding); None computes where the weights are.
    """

    model: torch.nn.Module
    do_normalize: bool = False
    source: str = ""
    info: dict = field(default_factory=dict)
    compute_device: torch.device | None = None

    sample_rate = SAMPLE_RATE

    def __post_init__(self):
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @property
    def config(self):
        return self.model.config

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    def to(self, device=None, dtype=None) -> "Wav2VecEncoder":
        kwargs = {}
        if device is not None:
            kwargs["device"] = as_device(device)
        if dtype is not None:
            kwargs["dtype"] = as_dtype(dtype)
        self.model.to(**kwargs)
        return self

    @contextmanager
    def computing(self):
        """Within this block the weights are on `compute_device` (moved back afterwards)."""
        target = None if self.compute_device is None else torch.device(self.compute_device)
        home = self.device
        if target is None or target == home:
            yield self
            return
        self.model.to(target)
        try:
            yield self
        finally:
            self.model.to(home)
            if target.type == "cuda":
                torch.cuda.empty_cache()

    def state_dict(self) -> dict:
        return {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}

    def save_pretrained(self, folder) -> Path:
        """Write a Hugging Face folder (config.json, model.safetensors, preprocessor_config.json)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.to_json_file(str(folder / "config.json"))
        save_file({k: v.cpu() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))
        pre = {
            "do_normalize": bool(self.do_normalize), "feature_extractor_type": "Wav2Vec2FeatureExtractor",
            "feature_size": 1, "padding_side": "right", "padding_value": 0.0,
            "return_attention_mask": False, "sampling_rate": SAMPLE_RATE,
        }
        (folder / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))
        return folder

    def __repr__(self):
        return (f"Wav2VecEncoder({self.source or 'in memory'}, hidden {self.hidden_size}, "
                f"{self.num_layers} layers, {self.dtype}, {self.device})")
