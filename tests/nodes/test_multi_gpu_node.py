"""InfiniteTalk Multi-GPU as ComfyUI calls it: its options are the engine's, a wrong device list is refused at once,
and the sampler with its `parallel` input makes the one-device frames — guidance split in the host process, and the
sequence-parallel worker pool started from the pack as ComfyUI imports it (the workers import only the engine)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from testlib.comfy_doubles import HostVAE, TinyClipVision
from wanvideo_infinitetalk_pack.nodes import NODE_CLASS_MAPPINGS
from wanvideo_infinitetalk_pack.nodes.multi_gpu_nodes import VRAM_NOTE, InfiniteTalkMultiGPU
from wanvideo_infinitetalk_pack.nodes.sampler_nodes import InfiniteTalkSampler
from wanvideo_infinitetalk_pack.wanvideo.audio import AudioEmbeddings
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError
from wanvideo_infinitetalk_pack.wanvideo.model.parallel.pool import ModelSource
from wanvideo_infinitetalk_pack.wanvideo.model.parallel.settings import release_executors
from wanvideo_infinitetalk_pack.wanvideo.tiny import tiny_models


@pytest.fixture(scope="module")
def tiny():
    models = tiny_models(seed=0)
    return models, AudioEmbeddings(speakers=[torch.randn(17, 2, 32, generator=torch.Generator().manual_seed(2))],
                                   fps=25.0, waveform=torch.zeros(17 * 640), sample_rate=16000)


def _frames(tiny, **kw) -> np.ndarray:
    models, embeds = tiny
    image = torch.rand(1, 40, 60, 3, generator=torch.Generator().manual_seed(3))
    clip = TinyClipVision("clip_vision_h", models.dit.config["clip_dim"]).encode_image(image, crop=False)
    store = InfiniteTalkSampler().sample(models.dit, HostVAE(models.vae.vae), image, clip, width=48, height=32,
                                         frame_window=17, motion_frames=9, steps=2, audio_embeds=embeds, **kw)[0]
    return store.read_frames()


def _options(**widgets) -> dict:
    return InfiniteTalkMultiGPU().make(**{**{k: v[1]["default"] for k, v in
                                             InfiniteTalkMultiGPU.INPUT_TYPES()["required"].items()}, **widgets})[0]


def test_node_is_registered_and_says_what_the_host_cannot_see():
    assert NODE_CLASS_MAPPINGS["InfiniteTalkMultiGPU"] is InfiniteTalkMultiGPU
    inputs = InfiniteTalkMultiGPU.INPUT_TYPES()["required"]
    assert inputs["parallel"][0] == ["guidance_split", "layer_split", "sequence_parallel"]
    assert VRAM_NOTE in inputs["parallel"][1]["tooltip"] and "cannot see" in VRAM_NOTE
    assert "parallel" in InfiniteTalkSampler.INPUT_TYPES()["optional"]
    with pytest.raises(InputError, match="at least two devices"):
        _options(devices="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="cuda:0 is not available"):
            _options(devices="cuda:0,cuda:1")


def test_guidance_split_and_the_worker_pool_make_the_one_device_frames(tiny, comfy_dirs, tmp_path, monkeypatch):
    one = _frames(tiny, frames_folder="temp")
    split = _frames(tiny, frames_folder="output", parallel=_options(parallel="guidance_split", devices="cpu,cpu"))
    assert np.abs(one.astype(int) - split.astype(int)).max() <= 1

    models, _ = tiny
    path = tmp_path / "tiny.safetensors"
    save_file(models.dit.state_dict(), str(path))
    models.dit.wanvideo_source = ModelSource.of_loaded(models.dit, [str(path)])  # what the loader records
    (tmp_path / "pool").mkdir()
    monkeypatch.setenv("WANVIDEO_OUTPUT_DIR", str(tmp_path / "pool"))  # a fresh folder: nothing to resume
    try:
        pooled = _frames(tiny, frames_folder="output",
                         parallel=_options(parallel="sequence_parallel", devices="cpu,cpu"))
    finally:
        del models.dit.wanvideo_source
        release_executors()
    assert np.abs(one.astype(int) - pooled.astype(int)).max() <= 1


def test_the_hosts_free_button_releases_the_multi_gpu_executors(monkeypatch):
    from testlib import model_management_double
    from wanvideo_infinitetalk_pack.nodes import multi_gpu_nodes
    from wanvideo_infinitetalk_pack.wanvideo.model.parallel import settings

    mm = model_management_double.install(monkeypatch, 8 << 30)
    released = []
    monkeypatch.setattr(settings, "_EXECUTORS", {})
    executor, host_loads = multi_gpu_nodes.parallel_executor(_options(parallel="guidance_split", devices="cpu,cpu"),
                                                             tiny_models(seed=0).dit)
    assert host_loads and settings._EXECUTORS  # warm between runs
    monkeypatch.setattr(executor, "close", lambda: released.append("guidance_split"))
    multi_gpu_nodes.parallel_executor(_options(parallel="guidance_split", devices="cpu,cpu"), tiny_models(seed=0).dit)
    mm.unload_all_models()  # what ComfyUI's "Free model and node cache" calls
    assert released == ["guidance_split"] and not settings._EXECUTORS
