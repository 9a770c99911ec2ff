"""One source for every option: the node inputs and the command line agree with the engine's settings, and the
engine's defaults are the reference's (MeiGen-AI/InfiniteTalk generate_infinitetalk.py / wan/multitalk.py)."""
import pytest
from wanvideo_infinitetalk_pack.nodes.audio_nodes import InfiniteTalkAudioEmbeds, InfiniteTalkWav2VecLoader
from wanvideo_infinitetalk_pack.nodes.model_nodes import InfiniteTalkModelLoader
from wanvideo_infinitetalk_pack.nodes.sampler_nodes import InfiniteTalkSampler

from wanvideo.audio.settings import AudioSettings
from wanvideo.cli import build_parser
from wanvideo.model.settings import LoaderSettings
from wanvideo.options import options_of
from wanvideo.pipeline import GenerateRequest, sampler_settings
from wanvideo.sampling import SamplerSettings

# node class, its settings class (as the pack imports it), {node input: option name} where they differ
NODES = [
    (InfiniteTalkSampler, "SamplerSettings", {}),
    (InfiniteTalkModelLoader, "LoaderSettings", {}),
    (InfiniteTalkAudioEmbeds, "AudioSettings", {}),
    (InfiniteTalkWav2VecLoader, "AudioSettings", {"precision": "wav2vec_precision"}),
]
ENGINE = {"SamplerSettings": SamplerSettings, "LoaderSettings": LoaderSettings, "AudioSettings": AudioSettings}
# CLI flag -> (settings class, option name)
CLI_FLAGS = {"--size": (SamplerSettings, "size_bucket"), "--dtype": (LoaderSettings, "precision")}
# Decided at run time when not given (None): the embedded tiny set and step-distillation LoRAs need other values.
CLI_AUTO = {"steps", "cfg", "audio_cfg"}
REFERENCE_ARGS = ["generate", "--image", "face.png", "--audio", "speech.wav", "--output", "talk.mp4"]


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


@pytest.mark.parametrize("node, settings_name, renamed", NODES, ids=lambda v: getattr(v, "__name__", ""))
def test_node_inputs_equal_the_engine_options(node, settings_name, renamed):
    engine = options_of(ENGINE[settings_name])
    spec = node.INPUT_TYPES()
    declared = {**spec.get("required", {}), **spec.get("optional", {})}
    checked = 0
    for key, (kind, meta) in declared.items():
        name = renamed.get(key, key)
        if name not in engine or not isinstance(meta, dict) or "default" not in meta:
            continue
        opt = engine[name]
        assert meta["default"] == opt.default, f"{node.__name__}.{key}: default {meta['default']} != {opt.default}"
        for bound in ("min", "max", "step"):
            assert meta.get(bound) == getattr(opt.spec, bound), f"{node.__name__}.{key}: {bound}"
        if opt.choices is not None:
            assert list(kind) == list(opt.choices), f"{node.__name__}.{key}: choices"
        assert meta["tooltip"] == opt.help
        checked += 1
    assert checked >= 1


def test_node_function_defaults_do_not_override_the_engine():
    """A widget a workflow leaves out (e.g. an older saved workflow) gets the engine default, not another one."""
    import inspect

    for node, settings_name, renamed in NODES:
        engine = options_of(ENGINE[settings_name])
        fn = getattr(node, node.FUNCTION)
        for param in inspect.signature(fn).parameters.values():
            name = renamed.get(param.name, param.name)
            if name in engine and param.default is not inspect.Parameter.empty:
                assert param.default == engine[name].default, f"{node.__name__}.{param.name}"


def test_cli_arguments_equal_the_engine_options():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["generate"]
    by_dest = {a.dest: a for a in sub._actions}
    seen = 0
    for settings_cls in (SamplerSettings, LoaderSettings):
        for name, opt in options_of(settings_cls).items():
            action = by_dest.get(name)
            if action is None:
                continue
            flags = [f for f, (cls, n) in CLI_FLAGS.items() if cls is settings_cls and n == name]
            assert action.option_strings == (flags or [opt.flag])
            if name in CLI_AUTO:
                assert action.default is None
            else:
                assert action.default == opt.default, f"--{name}: {action.default} != {opt.default}"
            if opt.choices is not None:
                assert tuple(action.choices) == opt.choices
            seen += 1
    assert seen >= 15
    assert by_dest["speaker_mode"].default == AudioSettings().speaker_mode


def test_cli_run_time_defaults_with_real_weights_are_the_engines():
    args = build_parser().parse_args(REFERENCE_ARGS + ["--models-dir", "models"])
    request = GenerateRequest.from_args(args)
    resolved = sampler_settings(request, embedded=False, src_h=480, src_w=832).validated()
    assert resolved == SamplerSettings().validated()
    request_720 = GenerateRequest.from_args(build_parser().parse_args(REFERENCE_ARGS + ["--size", "720p"]))
    assert sampler_settings(request_720, False, 480, 832).validated().shift == 11.0
