"""The speed nodes as ComfyUI calls them: inputs from the engine's one option table, the Step Cache and Guidance
Options nodes driving the sampler (skipped calls logged), the Model Speed node's clear errors; and the CLI's flags."""
import logging

import pytest
import torch
from testlib.comfy_doubles import HostVAE, TinyClipVision
from wanvideo_infinitetalk_pack.nodes import NODE_CLASS_MAPPINGS
from wanvideo_infinitetalk_pack.nodes.sampler_nodes import InfiniteTalkSampler
from wanvideo_infinitetalk_pack.nodes.speed_nodes import (
    InfiniteTalkGuidanceOptions,
    InfiniteTalkModelSpeed,
    InfiniteTalkStepCache,
)
from wanvideo_infinitetalk_pack.wanvideo.audio import AudioEmbeddings
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError
from wanvideo_infinitetalk_pack.wanvideo.model import build_model, tiny_config
from wanvideo_infinitetalk_pack.wanvideo.tiny import tiny_models

from wanvideo.app.cli import build_parser
from wanvideo.app.pipeline import GenerateRequest
from wanvideo.model.settings import SpeedSettings
from wanvideo.options import options_of
from wanvideo.sampling.cache import CacheOptions
from wanvideo.sampling.guidance_settings import GuidanceOptions


@pytest.fixture(scope="module")
def tiny():
    models = tiny_models(seed=0)
    return models, AudioEmbeddings(speakers=[torch.randn(17, 2, 32, generator=torch.Generator().manual_seed(2))],
                                   fps=25.0, waveform=torch.zeros(17 * 640), sample_rate=16000)


def _run(tiny, **kw):
    models, embeds = tiny
    image = torch.rand(1, 40, 60, 3, generator=torch.Generator().manual_seed(3))
    clip = TinyClipVision("clip_vision_h", models.dit.config["clip_dim"]).encode_image(image, crop=False)
    return InfiniteTalkSampler().sample(models.dit, HostVAE(models.vae.vae), image, clip, width=48, height=32,
                                        frame_window=17, motion_frames=9, steps=3, audio_embeds=embeds, **kw)


def test_inputs_come_from_the_engine_table():
    for node, settings_cls in ((InfiniteTalkStepCache, CacheOptions), (InfiniteTalkGuidanceOptions, GuidanceOptions),
                               (InfiniteTalkModelSpeed, SpeedSettings)):
        assert node.__name__ in NODE_CLASS_MAPPINGS
        engine = options_of(settings_cls)
        inputs = {k: v for k, v in node.INPUT_TYPES()["required"].items() if k != "model"}
        assert list(inputs) == list(engine)  # every option, in declaration order (saved workflows' widget order)
        for name, (kind, meta) in inputs.items():
            option = engine[name]
            assert meta["tooltip"] == option.help
            assert kind == list(option.choices) if option.choices else kind in ("INT", "FLOAT", "BOOLEAN")
            if name != "cache_method":  # the cache node preselects TeaCache: adding it means a cache is wanted
                assert meta["default"] == option.default


def test_cache_and_guidance_nodes_drive_the_sampler(tiny, comfy_dirs, caplog):
    cache = InfiniteTalkStepCache().make(cache_method="magcache", cache_threshold=0.5, cache_start_step=1,
                                         cache_end_step=-1, cache_magcache_k=2)[0]
    guidance = InfiniteTalkGuidanceOptions().make(guidance_batching="sequential", apg=True, apg_momentum=-0.75,
                                                  apg_norm_threshold=55.0)[0]
    with caplog.at_level(logging.INFO):
        store, count, _ = _run(tiny, cache=cache, guidance=guidance)
    # no prompts: two passes (cond, uncond); steps 1 and 2 of 3 skipped in each
    assert count == 17 and "magcache skipped 4 of 6 model calls (cond 2, uncond 2)" in caplog.text
    assert store.info["settings"]["apg"] is True and store.info["settings"]["guidance_batching"] == "sequential"
    with pytest.raises(InputError, match="InfiniteTalk Step Cache"):
        _run(tiny, cache="teacache")


def test_model_speed_node_says_what_cannot_run():
    model = build_model(tiny_config())
    with pytest.raises(InputError, match="needs fp8 weights"):
        InfiniteTalkModelSpeed().apply(model, compile=False, compile_backend="inductor", compile_mode="default",
                                       fp8_matmul="on")
    with pytest.raises(InputError, match="unknown compile mode"):
        InfiniteTalkModelSpeed().apply(model, compile=True, compile_backend="eager", compile_mode="turbo",
                                       fp8_matmul="off")
    out = InfiniteTalkModelSpeed().apply(model, compile=True, compile_backend="eager", compile_mode="default",
                                         fp8_matmul="auto")[0]
    assert out is model and model.compiled == ("eager", "default")


def test_cli_flags_reach_the_request():
    args = build_parser().parse_args(["generate", "--image", "a.png", "--audio", "a.wav", "--output", "o.mp4",
                                      "--cache-method", "teacache", "--cache-threshold", "0.3", "--apg",
                                      "--guidance-batching", "sequential", "--fp8-matmul", "auto", "--compile"])
    req = GenerateRequest.from_args(args)
    speed = {**vars(req.sampler), **vars(req.model_speed)}
    assert speed["cache_method"] == "teacache" and speed["cache_threshold"] == 0.3 and speed["apg"] is True
    assert speed["guidance_batching"] == "sequential" and speed["fp8_matmul"] == "auto" and speed["compile"] is True
    plain = GenerateRequest.from_args(build_parser().parse_args(
        ["generate", "--image", "a.png", "--audio", "a.wav", "--output", "o.mp4"]))
    defaults = {**vars(plain.sampler), **vars(plain.model_speed)}
    registry = {**options_of(GuidanceOptions), **options_of(CacheOptions), **options_of(SpeedSettings)}
    assert {name: defaults[name] for name in registry} == {name: option.default for name, option in registry.items()}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--image", "a.png", "--audio", "a.wav", "--output", "o.mp4",
                                   "--cache-method", "fastcache"])
    explicit = build_parser().parse_args(["generate", "--image", "a.png", "--audio", "a.wav", "--output", "o.mp4",
                                          "--apg", "false", "--compile", "true"])
    assert explicit.apg is False and explicit.compile is True  # a switch, or an explicit true/false
