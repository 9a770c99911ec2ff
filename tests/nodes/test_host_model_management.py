"""Our model under the host's model management (a stand-in that keeps ComfyUI's VRAM accounting).

What a user of a 16-24 GB card relies on: ComfyUI knows our model (it is registered when the sampler
runs), evicts its own models (the text encoder) to make room before our first denoising step, loads ours
partially (streaming blocks) when it does not fit, offloads it after sampling on smaller cards, and
releases it on "Free model and node cache" -- and the video is the same whichever way the weights moved.
"""
import pytest
import torch
from testlib import model_management_double
from testlib.comfy_doubles import HostVAE, TinyClipVision, TinyTextEncoder
from testlib.model_management_double import GB, HostModel
from wanvideo_infinitetalk_pack.nodes import host
from wanvideo_infinitetalk_pack.nodes.model_patcher import InfiniteTalkModelPatcher
from wanvideo_infinitetalk_pack.nodes.sampler_nodes import InfiniteTalkSampler
from wanvideo_infinitetalk_pack.wanvideo.audio import AudioEmbeddings
from wanvideo_infinitetalk_pack.wanvideo.model import build_model
from wanvideo_infinitetalk_pack.wanvideo.model.placement import tensor_bytes
from wanvideo_infinitetalk_pack.wanvideo.tiny import tiny_models

LATENT = (1, 16, 5, 4, 6)  # a 17-frame 48x32 window


@pytest.fixture(scope="module")
def tiny():
    models = tiny_models(seed=0)
    cfg = models.dit.config
    image = torch.rand(1, 40, 60, 3, generator=torch.Generator().manual_seed(3))
    text = TinyTextEncoder("umt5", cfg["text_dim"])
    encode = lambda prompt: text.encode_from_tokens_scheduled(text.tokenize(prompt))  # noqa: E731
    return dict(
        dit=models.dit, vae=HostVAE(models.vae.vae), image=image,
        clip=TinyClipVision("clip_vision_h", cfg["clip_dim"]).encode_image(image, crop=False),
        embeds=AudioEmbeddings(speakers=[torch.randn(25, 2, 32, generator=torch.Generator().manual_seed(2))],
                               fps=25.0, waveform=torch.zeros(25 * 640), sample_rate=16000),
        positive=encode("a person talking"), negative=encode("blurry"),
    )


def _patcher(tiny, mm, offload_after="no", dit=None):
    dit = tiny["dit"] if dit is None else dit
    # The shared tiny model as the loader hands it over: offloaded, no blocks swapped, no placement yet (the
    # placement belongs to the module, shared by its patcher's clones; each test here starts a fresh host).
    if hasattr(dit, "wanvideo_placement"):
        dit.wanvideo_placement.unload()
        del dit.wanvideo_placement
    dit.block_swap = None
    return InfiniteTalkModelPatcher(dit, mm.get_torch_device(), mm.unet_offload_device(), offload_after)


def _sample(tiny, patcher, temp_dir, monkeypatch, vae=None):
    monkeypatch.setenv("WANVIDEO_TEMP_DIR", str(temp_dir))  # a fresh store: no resume between runs
    store, count, _ = InfiniteTalkSampler().sample(
        model=patcher, vae=vae or tiny["vae"], image=tiny["image"], clip_vision_output=tiny["clip"], width=48,
        height=32, frame_window=17, motion_frames=9, steps=2, cfg=5.0, audio_cfg=4.0, seed=7,
        audio_embeds=tiny["embeds"], positive=tiny["positive"], negative=tiny["negative"])
    assert count == 25
    return torch.from_numpy(__import__("numpy").stack(list(store.iter_frames())))


@pytest.fixture
def watch_forward(tiny):
    """Record every forward of our DiT (and how many blocks it streamed) into the host's event list."""
    handles = []

    def install(mm, dit=None):
        def hook(module, args):
            swapper = module.block_swap
            mm.events.append(("forward", len(swapper.indices) if swapper is not None else 0))
        handles.append((tiny["dit"] if dit is None else dit).register_forward_pre_hook(hook))

    yield install
    for h in handles:
        h.remove()


def test_host_evicts_the_text_encoder_before_sampling_and_releases_ours_on_request(
        tiny, comfy_dirs, monkeypatch, watch_forward):
    probe = _patcher(tiny, model_management_double.FakeModelManagement(GB))
    ours = probe.model_size()
    assert ours == tensor_bytes(tiny["dit"]) and probe.loaded_size() == 0  # nothing on the GPU before sampling
    need = probe.memory_required(LATENT)
    # Room for our weights and activations, not for the text encoder as well.
    mm = model_management_double.install(monkeypatch, total_vram=int(ours + need * 1.2 + ours // 2))
    watch_forward(mm)
    text_encoder = HostModel("umt5", ours, mm)
    mm.load_models_gpu([text_encoder])  # CLIP Text Encode ran first
    patcher = _patcher(tiny, mm)

    _sample(tiny, patcher, comfy_dirs[1] / "a", monkeypatch)

    # Registered with the host, loaded completely, and the host was told how much the window needs.
    assert patcher in mm.loaded_models() and patcher.loaded_size() == ours
    assert mm.load_requests[-1]["memory_required"] == patcher.memory_required(LATENT)
    assert len([r for r in mm.load_requests if r["models"] == [patcher]]) == 2  # once per window
    # The text encoder went before our first denoising step, and all steps ran on fully loaded weights.
    names = [e[0] if e[0] == "forward" else e for e in mm.events]
    assert names.index(("unload", "umt5")) < names.index("forward")
    assert text_encoder not in mm.loaded_models() and text_encoder.loaded_size() == 0
    assert {e for e in mm.events if e[0] == "forward"} == {("forward", 0)}

    mm.unload_all_models()  # "Free model and node cache" / "Unload models"
    assert patcher not in mm.loaded_models() and patcher.loaded_size() == 0
    assert patcher.current_loaded_device() == patcher.offload_device
    assert mm.get_free_memory() == mm.total_vram


def test_partial_load_streams_blocks_and_makes_the_same_video(tiny, comfy_dirs, monkeypatch, watch_forward):
    torch.manual_seed(5)
    dit = build_model(dict(tiny["dit"].config, num_layers=6))
    # Guidance passes one by one in both runs (a fully loaded model would batch them: equal within float
    # tolerance only); what is compared here is where the weights were.
    dit.supports_batched_passes = False
    big = model_management_double.install(monkeypatch, total_vram=100 * GB)
    full = _sample(tiny, _patcher(tiny, big, dit=dit), comfy_dirs[1] / "full", monkeypatch)

    probe = _patcher(tiny, big, dit=dit)
    core, block = probe.placement.core_size, probe.placement.block_sizes[0]
    activations = probe.memory_required(LATENT) - probe.placement.swap_working_bytes
    # Room for the core, two resident blocks, two streamed ones in flight and the activations (lowvram).
    total = core + 4 * block + activations + block // 2
    mm = model_management_double.install(monkeypatch, total_vram=total)
    watch_forward(mm, dit)
    patcher = _patcher(tiny, mm, dit=dit)
    partial = _sample(tiny, patcher, comfy_dirs[1] / "partial", monkeypatch)

    assert patcher.loaded_size() == core + 2 * block < patcher.model_size()
    assert {e for e in mm.events if e[0] == "forward"} == {("forward", 4)}  # four of six blocks streamed
    assert torch.equal(partial, full)


def test_host_taking_room_between_windows_is_made_up_before_the_next(tiny, comfy_dirs, monkeypatch):
    mm = model_management_double.install(monkeypatch, total_vram=100 * GB)
    reference = _sample(tiny, _patcher(tiny, mm), comfy_dirs[1] / "ref", monkeypatch)
    mm.unload_all_models()

    patcher = _patcher(tiny, mm)
    vae = HostVAE(tiny["vae"].first_stage_model)
    decode = vae.decode

    def decode_after_host_made_room(samples, *a, **kw):  # ComfyUI's VAE loads itself, evicting what it must
        mm.free_memory(mm.get_free_memory() + patcher.loaded_size() // 2, mm.device)
        return decode(samples, *a, **kw)

    vae.decode = decode_after_host_made_room
    frames = _sample(tiny, patcher, comfy_dirs[1] / "evicted", monkeypatch, vae=vae)
    assert torch.equal(frames, reference)
    assert patcher.load_calls == 2  # reloaded for the second window


@pytest.mark.parametrize("vram_gb,offloaded", [(16, True), (24, True), (48, False)])
def test_auto_offload_after_sampling_on_cards_under_32_gb(tiny, comfy_dirs, monkeypatch, vram_gb, offloaded):
    mm = model_management_double.install(monkeypatch, total_vram=vram_gb * GB)
    mm.device = torch.device("cuda")  # the card's size decides; no tensor goes there (nothing is moved on a CPU run)
    patcher = InfiniteTalkModelPatcher(tiny["dit"], "cpu", "cpu", "auto")
    patcher.load_device = torch.device("cuda")
    assert patcher.should_offload_after(host.total_vram(patcher.load_device)) is offloaded
    assert InfiniteTalkModelPatcher(tiny["dit"], "cpu", "cpu", "yes").should_offload_after(None)
    assert not InfiniteTalkModelPatcher(tiny["dit"], "cpu", "cpu", "no").should_offload_after(8 * GB)


def test_offload_after_sampling_gives_the_card_back(tiny, comfy_dirs, monkeypatch):
    mm = model_management_double.install(monkeypatch, total_vram=100 * GB)
    patcher = _patcher(tiny, mm, offload_after="yes")
    _sample(tiny, patcher, comfy_dirs[1] / "a", monkeypatch)
    assert patcher not in mm.loaded_models() and patcher.loaded_size() == 0
    assert mm.empty_cache_calls >= 1


def test_users_block_swap_stays_the_minimum_and_is_not_counted_as_host_memory(tiny, monkeypatch):
    dit = tiny_models(seed=0).dit
    dit.enable_block_swap(2, offload_device="cpu")
    mm = model_management_double.install(monkeypatch, total_vram=100 * GB)
    patcher = InfiniteTalkModelPatcher(dit, mm.get_torch_device(), mm.unet_offload_device())
    blocks = patcher.placement.block_sizes
    assert patcher.model_size() == tensor_bytes(dit) - sum(blocks[:2])
    host.load_model_for_sampling(patcher, memory_required=0)
    assert patcher.loaded_size() == patcher.model_size()
    assert dit.block_swap is not None and dit.block_swap.indices == [0, 1]
    patcher.detach(True)
    assert patcher.loaded_size() == 0
