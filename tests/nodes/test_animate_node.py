"""The Animate sampler node as ComfyUI calls it (host VAE, CONDITIONING and CLIP vision doubles): IMAGE/MASK batches
of any size in, a frame store of the driving length out, "clip k/n" progress, a wrong model explained."""
import logging

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
    # The badge's lines, as the InfiniteTalk sampler's: each clip's steps, then each clip done, then the total.
    assert texts[0] == "clip 1/2 · step 0/1" and "clip 2/2 · step 1/1" in texts
    assert [t for t in texts if " done " in t] == ["clip 1/2 done (13 frames)", "clip 2/2 done (21 frames)"]
    assert texts[-1] == "21 frames (2 clips)"


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


def test_cache_and_guidance_inputs_drive_the_animate_sampler(tiny, comfy_dirs, caplog):
    from wanvideo_infinitetalk_pack.nodes.speed_nodes import InfiniteTalkGuidanceOptions, InfiniteTalkStepCache

    cache = InfiniteTalkStepCache().make(cache_method="magcache", cache_threshold=10.0, cache_start_step=1,
                                         cache_end_step=-1, cache_magcache_k=2)[0]
    guidance = InfiniteTalkGuidanceOptions().make(guidance_batching="batched", apg=True, apg_momentum=-0.75,
                                                  apg_norm_threshold=55.0)[0]
    with caplog.at_level(logging.INFO):
        store, count, _ = InfiniteTalkAnimateSampler().sample(**_args(tiny, frames=13, steps=3, cfg=2.0, cache=cache,
                                                                      guidance=guidance))
    # two passes (cfg 2) in one batch; steps 1 and 2 of 3 skipped in each
    assert count == 13 and "magcache skipped 4 of 6 model calls (cond 2, uncond 2)" in caplog.text
    assert store.info["settings"]["apg"] is True and store.info["settings"]["guidance_batching"] == "batched"
    with pytest.raises(InputError, match="InfiniteTalk Step Cache"):
        InfiniteTalkAnimateSampler().sample(**_args(tiny, frames=13, cache="teacache"))


def test_model_speed_node_takes_an_animate_model():
    from wanvideo_infinitetalk_pack.nodes.speed_nodes import InfiniteTalkModelSpeed

    model = tiny_animate_models(seed=2).dit
    with pytest.raises(InputError, match="needs fp8 weights"):
        InfiniteTalkModelSpeed().apply(model, compile=False, compile_backend="inductor", compile_mode="default",
                                       fp8_matmul="on")
    out = InfiniteTalkModelSpeed().apply(model, compile=True, compile_backend="eager", compile_mode="default",
                                         fp8_matmul="auto")[0]
    assert out is model and model.compiled == ("eager", "default")
    assert all(getattr(b, "_wanvideo_compiled", None) == ("eager", "default") for b in model.face_adapter.fuser_blocks)


def test_clip_vision_model_encodes_the_letterboxed_image_as_the_command_line(tiny, comfy_dirs):
    """The official loop and `python -m wanvideo animate` encode the character letterboxed to the output size; with
    the CLIP vision model connected the node does the same (clip_vision_output of the raw image is then unused)."""
    from wanvideo_infinitetalk_pack.wanvideo.sampling.animate_inputs import letterbox

    seen = []
    hook = tiny["model"].img_emb.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        args = _args(tiny, frames=13)
        InfiniteTalkAnimateSampler().sample(**args, clip_vision=tiny["clip_vision"])
    finally:
        hook.remove()
    boxed = letterbox(args["image"][0].permute(2, 0, 1), 80, 48).permute(1, 2, 0)[None]  # the pose video's size
    expected = tiny["clip_vision"].encode_image(boxed, crop=False)["penultimate_hidden_states"]
    raw = args["clip_vision_output"]["penultimate_hidden_states"]
    assert seen and all(torch.allclose(s, expected, atol=1e-6) for s in seen)
    assert not torch.allclose(expected, raw, atol=1e-3)  # the raw image's features are another thing
