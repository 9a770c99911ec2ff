"""Every model loader names the same broken downloads with the same words: a Git LFS pointer, an HTML page
saved under the model's name, a file cut short. (Before, the wav2vec2 and encoder loaders said "header too
large" or passed the safetensors library's message on.)"""
from __future__ import annotations

import json
import struct

import pytest

from wanvideo.errors import ModelFileError

LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 1234567\n"
PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>log in to download</body></html>\n"


def _cut_safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 100


FAULTS = {"lfs": (LFS, "is a Git LFS pointer, not the weights"),
          "html": (PAGE, "is a web page, not weights"),
          "cut": (_cut_safetensors(), "is truncated: the download stopped early")}


def _video(path):
    from wanvideo.model import load_model

    load_model([str(path)])


def _wav2vec(path):
    from wanvideo.audio import load_wav2vec

    load_wav2vec(str(path))


def _umt5(path):
    from wanvideo.app.encoders import load_text_encoder

    load_text_encoder(str(path))


def _clip_vision(path):
    from wanvideo.app.encoders import load_clip_vision

    load_clip_vision(str(path))


def _lora(path):
    from wanvideo.model.lora import apply_lora
    from wanvideo.tiny import tiny_models

    apply_lora(tiny_models(seed=0).dit, str(path))


def _vae(path):
    from wanvideo.sampling.vae import load_wan_vae

    load_wan_vae(str(path))


def _torch_file(folder) -> bytes:
    import torch

    torch.save({"w": torch.zeros(1000)}, folder / "whole.bin")
    return (folder / "whole.bin").read_bytes()


LOADERS = {"video": (_video, ".safetensors"), "gguf": (_video, ".gguf"), "wav2vec2": (_wav2vec, ".safetensors"),
           "wav2vec2-bin": (_wav2vec, ".bin"), "umt5": (_umt5, ".safetensors"),
           "clip-vision": (_clip_vision, ".safetensors"), "lora": (_lora, ".safetensors"),
           "vae": (_vae, ".safetensors")}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("loader", list(LOADERS))
def test_every_loader_names_a_broken_download_the_same_way(tmp_path, loader, fault):
    load, suffix = LOADERS[loader]
    content, words = FAULTS[fault]
    if fault == "cut" and suffix == ".gguf":
        content = b"GGUF\x03\x00\x00\x00" + b"\x01" * 8  # a GGUF cut inside its header
    elif fault == "cut" and suffix == ".bin":
        content = _torch_file(tmp_path)[:300]  # torch.save's zip, cut
    path = tmp_path / f"model{suffix}"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=words) as info:
        load(path)
    assert path.name in str(info.value)


@pytest.mark.parametrize("loader", ["video", "wav2vec2", "umt5", "clip-vision", "vae"])
def test_an_empty_file_is_named_as_a_cut_download(tmp_path, loader):
    load, suffix = LOADERS[loader]
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="is truncated: the download stopped early"):
        load(path)


@pytest.mark.parametrize("loader", ["video", "wav2vec2", "umt5", "clip-vision", "lora", "vae"])
def test_every_loader_names_another_model_the_same_way(tmp_path, loader):
    import torch
    from safetensors.torch import save_file

    load, _ = LOADERS[loader]
    path = tmp_path / "something_else.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(ModelFileError, match=r"something_else.safetensors is another model, not "):
        load(path)
