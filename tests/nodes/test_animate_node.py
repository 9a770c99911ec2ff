"""The Animate sampler node as ComfyUI calls it (host VAE, CONDITIONING and CLIP vision doubles): IMAGE/MASK batches
of any size in, a frame store of the driving length out, "clip k/n" progress, a wrong model explained."""
import pytest
import torch
from testlib.comfy_doubles import HostVAE, TinyClipVision, TinyTextEncoder
from wanvideo_infinitetalk_pack import NODE_CLASS_MAPPINGS
from wanvideo_infinitetalk_pack.nodes import host
from wanvideo_infinitetalk_pack.nodes.animate_nodes import InfiniteTalkAnimateSampler
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError
from wanvideo_infinitetalk_pack.wanvideo.tiny import tiny_animate_models, tiny_models


@pytest.fixture(scope="module")
def tiny():
    models = tiny_animate_models(seed=1)
    cfg = models.dit.config
    return dict(model=models.dit, vae=HostVAE(models.vae.vae), text=TinyTextEncoder("umt5", cfg["text_dim"]),
                clip_vision=TinyClipVision("clip_vision_h", cfg["clip_dim"]))


def _args(tiny, frames=21, **kw):
    g = torch.Generator().manual_seed(4)
    image = torch.rand(1, 50, 40, 3, generator=g)
    text = tiny["text"]
    args = dict(model=tiny["model"], vae=tiny["vae"], image=image,
                clip_vision_output=tiny["clip_vision"].encode_image(image, crop=False),
                pose_video=torch.rand(frames, 80, 48, 3, generator=g), face_video=torch.rand(frames, 40, 40, 3, generator=g),
                clip_len=13, steps=1, fps=24.0,
                positive=text.encode_from_tokens_scheduled(text.tokenize("a person dancing")))
    args.update(kw)
    return args


def test_node_id_is_pack_unique_and_registered():
    assert "InfiniteTalkAnimateSampler" in NODE_CLASS_MAPPINGS
    assert not {"WanAnimateToVideo", "WanVideoAnimateEmbeds"} & set(NODE_CLASS_MAPPINGS)


def test_animate_node_makes_the_driving_length(tiny, comfy_dirs, monkeypatch):
    texts = []
    monkeypatch.setattr(host, "send_progress_text", lambda text, node_id=None: texts.append(text))
    store, count, fps = InfiniteTalkAnimateSampler().sample(**_args(tiny))
    assert (count, fps, store.width, store.height) == (21, 24.0, 48, 80)
    assert texts[:2] == ["clip 1/2", "clip 2/2"]


def test_replacement_with_a_mask_batch(tiny, comfy_dirs):
    g = torch.Generator().manual_seed(5)
    store, count, _ = InfiniteTalkAnimateSampler().sample(**_args(
        tiny, background_video=torch.rand(21, 80, 48, 3, generator=g), character_mask=(torch.rand(21, 80, 48) > 0.5).float(),
        refert_frames=5))
    assert count == 21 and store.complete


def test_an_infinitetalk_model_in_the_animate_sampler_is_explained(tiny, comfy_dirs):
    with pytest.raises(InputError, match="not Wan2.2-Animate"):
        InfiniteTalkAnimateSampler().sample(**_args(tiny, model=tiny_models(seed=0).dit))


def test_animate_sampler_asks_the_host_to_load_the_model_per_clip(tiny, comfy_dirs, monkeypatch):
    """The model loader's output (a patcher for ComfyUI's model management) drives WanAnimate as it does InfiniteTalk."""
    from testlib import model_management_double
    from wanvideo_infinitetalk_pack.nodes.model_patcher import InfiniteTalkModelPatcher

    mm = model_management_double.install(monkeypatch, total_vram=64 * model_management_double.GB)
    patcher = InfiniteTalkModelPatcher(tiny["model"], mm.get_torch_device(), mm.unet_offload_device(), "yes")
    store, count, _ = InfiniteTalkAnimateSampler().sample(**_args(tiny, model=patcher))
    assert count == 21
    assert [r["models"] for r in mm.load_requests] == [[patcher], [patcher]]  # once per clip
    assert all(r["memory_required"] > 0 for r in mm.load_requests)
    assert patcher not in mm.loaded_models() and patcher.loaded_size() == 0  # offloaded after sampling
