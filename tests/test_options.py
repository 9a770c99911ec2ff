"""One source for every option: the node inputs and the command line agree with the engine's settings, and the
engine's defaults are the reference's (MeiGen-AI/InfiniteTalk generate_infinitetalk.py / wan/multitalk.py; WanAnimate:
Wan2.2 generate.py). A node widget or CLI argument that declares a default, range or choice of its own, outside the
registry (wanvideo/options.py), fails here unless it is listed below as the host's or the command line's own."""
import argparse

import pytest
from wanvideo_infinitetalk_pack.nodes import NODE_CLASS_MAPPINGS
from wanvideo_infinitetalk_pack.nodes.animate_nodes import InfiniteTalkAnimateSampler
from wanvideo_infinitetalk_pack.nodes.animate_preprocess_nodes import InfiniteTalkAnimatePreprocess
from wanvideo_infinitetalk_pack.nodes.audio_nodes import InfiniteTalkAudioEmbeds, InfiniteTalkWav2VecLoader
from wanvideo_infinitetalk_pack.nodes.longcat_nodes import (
    LongCatAvatarAudioEmbeds,
    LongCatAvatarModelLoader,
    LongCatAvatarSampler,
)
from wanvideo_infinitetalk_pack.nodes.model_nodes import InfiniteTalkLoraSelect, InfiniteTalkModelLoader
from wanvideo_infinitetalk_pack.nodes.multi_gpu_nodes import VRAM_NOTE, InfiniteTalkMultiGPU
from wanvideo_infinitetalk_pack.nodes.sampler_nodes import InfiniteTalkSampler
from wanvideo_infinitetalk_pack.nodes.speed_nodes import (
    InfiniteTalkGuidanceOptions,
    InfiniteTalkModelSpeed,
    InfiniteTalkStepCache,
)
from wanvideo_infinitetalk_pack.nodes.video_combine import InfiniteTalkVideoCombine

from wanvideo.animate_preprocess.settings import PreprocessSettings
from wanvideo.app.cli import build_parser
from wanvideo.app.pipeline import GenerateRequest, sampler_settings
from wanvideo.audio.settings import AudioSettings
from wanvideo.errors import InputError
from wanvideo.model.parallel.settings import MultiGPUSettings
from wanvideo.model.settings import LoaderSettings, LoraSettings, ParallelSettings, SpeedSettings
from wanvideo.options import LongCatSettings, get_option, node_input, options_of
from wanvideo.sampling import SamplerSettings
from wanvideo.sampling.animate_settings import AnimateSettings
from wanvideo.sampling.cache import CacheOptions
from wanvideo.sampling.guidance_settings import GuidanceOptions
from wanvideo.video.run_lock import RunLockSettings
from wanvideo.video.settings import VideoSettings

# node class, its settings class (as the pack imports it), {node input: option name} where they differ
NODES = [
    (InfiniteTalkSampler, "SamplerSettings", {}),
    (InfiniteTalkModelLoader, "LoaderSettings", {}),
    (InfiniteTalkAudioEmbeds, "AudioSettings", {}),
    (InfiniteTalkWav2VecLoader, "AudioSettings", {"precision": "wav2vec_precision"}),
    (InfiniteTalkStepCache, "CacheOptions", {}),
    (InfiniteTalkGuidanceOptions, "GuidanceOptions", {}),
    (InfiniteTalkModelSpeed, "SpeedSettings", {}),
    (InfiniteTalkAnimateSampler, "AnimateSettings", {}),
    (InfiniteTalkLoraSelect, "LoraSettings", {}),
    (InfiniteTalkVideoCombine, "VideoSettings", {}),
    (LongCatAvatarModelLoader, ("LoaderSettings", "LoraSettings"), {"lora_strength": "strength"}),
    (LongCatAvatarAudioEmbeds, ("LongCatSettings", "AudioSettings"), {}),
    (LongCatAvatarSampler, "LongCatSettings", {}),
    (InfiniteTalkAnimatePreprocess, "PreprocessSettings", {}),
    (InfiniteTalkMultiGPU, "MultiGPUSettings", {}),
]
ENGINE = {"SamplerSettings": SamplerSettings, "LoaderSettings": LoaderSettings, "AudioSettings": AudioSettings,
          "CacheOptions": CacheOptions, "GuidanceOptions": GuidanceOptions, "SpeedSettings": SpeedSettings,
          "AnimateSettings": AnimateSettings, "LoraSettings": LoraSettings, "VideoSettings": VideoSettings,
          "LongCatSettings": LongCatSettings, "PreprocessSettings": PreprocessSettings,
          "MultiGPUSettings": MultiGPUSettings}
# A node widget whose default differs from the engine's on purpose: {(node id, input): {meta key: value}}.
NODE_OVERRIDES = {("InfiniteTalkStepCache", "cache_method"): {"default": "teacache"},  # adding the node = a cache
                  ("InfiniteTalkAnimatePreprocess", "driving_fps"): {"forceInput": True},  # from Load Video
                  # the node says what ComfyUI cannot see on the other GPUs
                  ("InfiniteTalkMultiGPU", "parallel"): {"tooltip": f"{get_option(MultiGPUSettings, 'parallel').help} "
                                                                    f"{VRAM_NOTE}"}}
# Widgets that are the host's, not engine options (files in ComfyUI's folders, where frames are kept, how a store is
# sliced, where Video Combine saves and what it embeds): {(node id, input): why}. Everything else with a default is an option.
HOST_WIDGETS = {
    ("InfiniteTalkModelLoader", "infinitetalk"): "a file of ComfyUI's model folders ('none' = no adapter file)",
    ("InfiniteTalkWav2VecLoader", "device"): "ComfyUI's main / offload device",
    ("InfiniteTalkSampler", "frames_folder"): "ComfyUI's temp or output folder",
    ("InfiniteTalkAnimateSampler", "frames_folder"): "ComfyUI's temp or output folder",
    ("InfiniteTalkLongCatSampler", "frames_folder"): "ComfyUI's temp or output folder",
    ("InfiniteTalkLongCatModelLoader", "distill_lora"): "a file of ComfyUI's loras folder ('none' = the base model)",
    ("InfiniteTalkFramesToImages", "start"): "a slice of a finished store",
    ("InfiniteTalkFramesToImages", "count"): "a slice of a finished store",
    ("InfiniteTalkVideoCombine", "filename_prefix"): "Video Combine: ComfyUI's output file name",
    ("InfiniteTalkVideoCombine", "save_output"): "Video Combine: ComfyUI's output or temp folder",
    ("InfiniteTalkVideoCombine", "save_metadata"): "Video Combine: ComfyUI's workflow metadata",
    ("InfiniteTalkAnimatePreprocess", "sam2_model"): "a folder of ComfyUI's models/sam2 (or none)",
}
# CLI flag -> (settings class, option name)
CLI_FLAGS = {"--size": (SamplerSettings, "size_bucket"), "--dtype": (LoaderSettings, "precision")}
# Decided at run time when not given (None): the embedded tiny set and step-distillation LoRAs need other values.
CLI_AUTO = {"generate": {"steps", "cfg", "audio_cfg"}, "animate": {"steps"}, "longcat": set(), "animate-preprocess": set()}
# The settings each command builds its arguments from.
CLI_SETTINGS = {"generate": (SamplerSettings, GuidanceOptions, CacheOptions, LoaderSettings, SpeedSettings, AudioSettings,
                             ParallelSettings, MultiGPUSettings, RunLockSettings),
                "animate": (AnimateSettings, GuidanceOptions, CacheOptions, LoaderSettings, SpeedSettings, RunLockSettings,
                            PreprocessSettings),
                "longcat": (LongCatSettings, AudioSettings),
                "animate-preprocess": (PreprocessSettings,)}
# The command line's own arguments (files, the device, output handling): no engine option.
CLI_OWN = {"device", "lora", "keep_parts", "quiet"}
REFERENCE_ARGS = ["generate", "--image", "face.png", "--audio", "speech.wav", "--output", "talk.mp4"]


def _engine_classes(names) -> tuple:
    """The settings classes a node's widgets come from (one name, or a tuple of names)."""
    return tuple(ENGINE[n] for n in ((names,) if isinstance(names, str) else names))


def _inputs(node) -> dict:
    spec = node.INPUT_TYPES()
    return {**spec.get("required", {}), **spec.get("optional", {})}


def _subparser(command: str) -> argparse.ArgumentParser:
    return next(a for a in build_parser()._actions if a.dest == "command").choices[command]


def test_defaults_are_the_references():
    s = SamplerSettings()
    # generate_infinitetalk.py: --color_correction_strength 1.0, --base_seed 42, --frame_num 81, --motion_frame 9,
    # 40 steps, text/audio guidance 5/4; _validate_args: shift 7 for infinitetalk-480, 11 for infinitetalk-720
    assert (s.color_correction, s.seed, s.frame_window, s.motion_frames, s.steps, s.cfg, s.audio_cfg) == \
        (1.0, 42, 81, 9, 40, 5.0, 4.0)
    assert s.scheduler == "euler"
    assert SamplerSettings(size_bucket="480p").validated().shift == 7.0
    assert SamplerSettings(size_bucket="720p").validated().shift == 11.0
    assert SamplerSettings(size_bucket="720p", shift=5.0).validated().shift == 5.0  # set: kept
    assert s.vae_precision == "fp32"  # the reference's WanVAE runs in float32
    assert LoaderSettings().precision == "bf16"  # the reference's param_dtype
    assert AudioSettings().normalize_loudness and AudioSettings().fps == 25.0


def test_node_function_defaults_do_not_override_the_engine():
    """A widget a workflow leaves out (e.g. an older saved workflow) gets the engine default, not another one."""
    import inspect

    for node, settings_name, renamed in NODES:
        engine = {k: v for cls in _engine_classes(settings_name) for k, v in options_of(cls).items()}
        fn = getattr(node, node.FUNCTION)
        for param in inspect.signature(fn).parameters.values():
            name = renamed.get(param.name, param.name)
            if name in engine and param.default is not inspect.Parameter.empty:
                assert param.default == engine[name].default, f"{node.__name__}.{param.name}"


@pytest.mark.parametrize("command", sorted(CLI_SETTINGS))
def test_cli_arguments_equal_the_engine_options(command):
    by_dest = {a.dest: a for a in _subparser(command)._actions}
    seen = 0
    for settings_cls in CLI_SETTINGS[command]:
        for name, opt in options_of(settings_cls).items():
            action = by_dest.get(name)
            if action is None:
                continue
            flags = [f for f, (cls, n) in CLI_FLAGS.items() if cls is settings_cls and n == name]
            assert action.option_strings == (flags or [opt.flag])
            if name in CLI_AUTO[command]:
                assert action.default is None
            else:
                assert action.default == opt.cli_default, f"--{name}: {action.default} != {opt.cli_default}"
            if opt.choices is not None:
                assert tuple(action.choices) == opt.choices
            assert action.type is not None
            seen += 1
    assert seen >= {"generate": 15, "animate-preprocess": 9}.get(command, 12)


@pytest.mark.parametrize("command", sorted(CLI_SETTINGS))
def test_cli_declares_no_option_of_its_own(command):
    """An argument with a default (other than 'not given'), choices or a range of its own is an engine option:
    it must come from the registry (add_argument), not be written in the command line."""
    registry = {n for cls in CLI_SETTINGS[command] for n in options_of(cls)}
    stray = [a.option_strings[0] for a in _subparser(command)._actions
             if a.option_strings and a.dest not in registry | CLI_OWN | {"help"}
             and (a.default not in (None, False) or a.choices is not None)]
    assert stray == []


def test_node_widgets_come_from_the_registry():
    """Every widget of every node (a declared default) is the registry's entry (same default, range, choices,
    tooltip), or a listed host widget."""
    declared = {cls: (_engine_classes(name), renamed) for cls, name, renamed in NODES}
    checked = set()
    for node_id, node in NODE_CLASS_MAPPINGS.items():
        settings_cls, renamed = declared.get(node, (None, {}))
        for key, entry in _inputs(node).items():
            meta = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            if "default" not in meta or (node_id, key) in HOST_WIDGETS:
                continue
            name = renamed.get(key, key)
            owners = [c for c in settings_cls or () if name in options_of(c)]
            assert owners, f"{node_id}.{key} declares a widget outside the option registry (wanvideo/options.py)"
            expected = node_input(owners[0], name, **NODE_OVERRIDES.get((node_id, key), {}))
            assert tuple(entry) == expected, f"{node_id}.{key}: {entry} != the registry's {expected}"
            checked.add((node_id, key))
    assert {("InfiniteTalkAnimateSampler", "refert_frames"), ("InfiniteTalkStepCache", "cache_threshold"),
            ("InfiniteTalkModelSpeed", "fp8_matmul"), ("InfiniteTalkModelLoader", "offload_after_sampling"),
            ("InfiniteTalkLoraSelect", "strength"), ("InfiniteTalkVideoCombine", "crf"),
            ("InfiniteTalkLongCatSampler", "mask_frame_range"), ("InfiniteTalkLongCatModelLoader", "lora_strength"),
            ("InfiniteTalkLongCatAudioEmbeds", "speaker_mode")} <= checked


def test_option_groups_are_complete_on_their_nodes():
    """The speed nodes show every option of their group, in declaration order (saved workflows' widget order)."""
    for node, settings_cls in ((InfiniteTalkStepCache, CacheOptions), (InfiniteTalkGuidanceOptions, GuidanceOptions)):
        assert list(_inputs(node)) == list(options_of(settings_cls))
    assert [k for k in _inputs(InfiniteTalkModelSpeed) if k != "model"] == list(options_of(SpeedSettings))


def test_animate_cli_and_node_build_the_same_settings():
    args = _subparser("animate").parse_args(["--image", "c.png", "--pose-video", "p.mp4", "--face-video", "f.mp4",
                                             "--output", "o.mp4", "--refert-frames", "5", "--scheduler", "dpm++",
                                             "--dtype", "fp16", "--blocks-to-swap", "3"])
    from wanvideo.app.animate_pipeline import AnimateRequest

    request = AnimateRequest.from_args(args)
    assert request.sampler == AnimateSettings(refert_frames=5, scheduler="dpm++", seed=42)  # the CLI's seed: 42
    assert (request.loader.precision, request.loader.blocks_to_swap, request.steps) == ("fp16", 3, None)
    with pytest.raises(SystemExit):  # 1 or 5 only, as the node's widget (min 1, max 5, step 4)
        _subparser("animate").parse_args(["--image", "c.png", "--pose-video", "p.mp4", "--face-video", "f.mp4",
                                          "--output", "o.mp4", "--refert-frames", "3"])
    with pytest.raises(InputError, match="offload_after_sampling"):
        LoaderSettings(offload_after_sampling="sometimes").load_kwargs()


def test_cli_run_time_defaults_with_real_weights_are_the_engines():
    args = build_parser().parse_args(REFERENCE_ARGS + ["--models-dir", "models"])
    request = GenerateRequest.from_args(args)
    resolved = sampler_settings(request, embedded=False, src_h=480, src_w=832).validated()
    assert resolved == SamplerSettings().validated()
    request_720 = GenerateRequest.from_args(build_parser().parse_args(REFERENCE_ARGS + ["--size", "720p"]))
    assert sampler_settings(request_720, False, 480, 832).validated().shift == 11.0


def test_longcat_defaults_are_the_official_v15():
    """run_demo_avatar_*_audio_to_video.py, v1.5 with --use_distill: 8 steps, guidance forced to 1, 25 fps, 93 / 13
    frames, ref_img_index 10, mask_frame_range 3, seed 42, 480p; without distillation 50 steps, 4 / 4, enhance_hf."""
    s = LongCatSettings().validated()
    assert (s.use_distill, s.steps, s.text_cfg, s.audio_cfg, s.fps, s.num_frames, s.num_cond_frames) == \
        (True, 8, 1.0, 1.0, 25.0, 93, 13)
    assert (s.ref_img_index, s.mask_frame_range, s.seed, s.resolution, s.enhance_hf) == (10, 3, 42, "480p", False)
    base = LongCatSettings(use_distill=False).validated()
    assert (base.steps, base.text_cfg, base.audio_cfg, base.enhance_hf) == (50, 4.0, 4.0, True)
