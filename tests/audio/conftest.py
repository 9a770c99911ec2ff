"""Shared fixtures for the audio tests: the reference's tiny wav2vec2 saved in the layouts users have."""
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

NON_PARAM_PREFIXES = ("input", "output", "debug", "derived", "aux")


class AudioFixture:
    """audio_public.safetensors split into the wav2vec2 config, its weights and the reference tensors."""

    def __init__(self, path):
        tensors = load_file(str(path))
        meta = safe_open(str(path), "pt").metadata()
        self.config = dict(json.loads(meta["config"])["wav2vec2_config"], model_type="wav2vec2")
        self.preprocessor = json.loads(meta["config"]).get("preprocessor_config", {"do_normalize": False})
        self.call = json.loads(meta.get("call", "{}"))
        self.weights = {k: v for k, v in tensors.items() if k.split(".")[0] not in NON_PARAM_PREFIXES}
        self.tensors = tensors

    def __getitem__(self, key):
        return self.tensors[key]

    def save_hf_folder(self, folder, weights_file="model.safetensors"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(self.config))
        (folder / "preprocessor_config.json").write_text(json.dumps(self.preprocessor))
        if weights_file.endswith(".safetensors"):
            save_file(self.weights, str(folder / weights_file))
        else:
            torch.save(self.weights, str(folder / weights_file))
        return folder

    def single_file_weights(self, prefix="", weight_norm="parametrizations"):
        out = {}
        for k, v in self.weights.items():
            if weight_norm == "weight_g_v":
                k = k.replace("parametrizations.weight.original0", "weight_g").replace(
                    "parametrizations.weight.original1", "weight_v")
            elif weight_norm == "folded" and "pos_conv_embed.conv.parametrizations" in k:
                if k.endswith("original0"):
                    continue
                k, v = "encoder.pos_conv_embed.conv.weight", self.tensors["derived.encoder.pos_conv_embed.conv.weight"]
            out[prefix + k] = v
        return out


@pytest.fixture(scope="session")
def audio_fixture():
    from testlib import FIXTURES

    path = FIXTURES / "audio_public.safetensors"
    if not path.is_file():
        pytest.fail(f"reference fixture missing: {path}")
    return AudioFixture(path)
