"""The option registry: every user-facing option's name, type, range, default and choices, declared once.

Options are the fields of the engine's settings dataclasses, each declared with `option(...)` in the part that
uses it: `wanvideo.sampling.SamplerSettings` (which takes the step cache's options from
`wanvideo.sampling.cache.CacheOptions` and the guidance options from
`wanvideo.sampling.guidance_settings.GuidanceOptions`), `wanvideo.sampling.animate_settings.AnimateSettings`,
`wanvideo.model.settings` (`LoaderSettings`, `LoraSettings`, `SpeedSettings`, `ParallelSettings`),
`wanvideo.audio.AudioSettings`, `wanvideo.video.settings.VideoSettings`:

    steps: int = option(40, min=1, max=200, help="Denoising steps per window (40 in the reference).")

The node's `INPUT_TYPES` entry and the command line's argument are generated from that one declaration:

    node:  {"steps": node_input(SamplerSettings, "steps")}     -> ("INT", {"default": 40, "min": 1, ...})
    CLI:   add_argument(parser, SamplerSettings, "steps")       -> --steps (type int, default 40, same help)

How to add an option (e.g. a cache threshold, a sequence-parallel degree, an animate setting):
1. add a field with `option(...)` to the settings dataclass of the part that uses it (default = the
   reference's value; say in `help` what the reference uses when it is not the default);
2. read it from the settings object in the engine (validate it in the dataclass's `validated()`);
3. list its name in the node's INPUT_TYPES via `node_input(...)` and in the CLI via `add_argument(...)`
   (or `add_arguments(...)` for several); never write a literal default, range or choice list in a node or
   the CLI. A node that hands a group of options on as a dict (the Step Cache node) returns
   `option_values(SettingsClass, widgets)`;
4. nothing else: tests/test_options.py checks every node and CLI option against this registry and fails on a
   widget or argument that declares a default, range or choices of its own (unless listed there as the host's
   or the command line's own, e.g. ComfyUI's frames folder or --device).

A group of options shared by two settings classes (the step cache, the guidance options) is its own small
dataclass that both inherit from, so each option is still declared once.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from .errors import InputError
from .option_checks import check_settings
from .option_fields import Option as Option  # the registry's core, re-exported: settings modules import it here
from .option_fields import OptionSpec as OptionSpec
from .option_fields import get_option, options_of
from .option_fields import option as option

_NODE_TYPES = {int: "INT", float: "FLOAT", str: "STRING", bool: "BOOLEAN"}


def node_input(settings_cls, name: str, **extra) -> tuple:
    """The ComfyUI INPUT_TYPES entry of an option: a combo of its choices, or INT/FLOAT/STRING/BOOLEAN."""
    opt = get_option(settings_cls, name)
    meta = {"default": opt.default}
    for key in ("min", "max", "step"):
        value = getattr(opt.spec, key)
        if value is not None:
            meta[key] = value
    meta["tooltip"] = opt.help
    meta.update(extra)
    if opt.choices is not None and opt.type is str:
        return (list(opt.choices), meta)
    return (_NODE_TYPES[opt.type], meta)


def node_inputs(settings_cls, *names: str) -> dict:
    """INPUT_TYPES entries of the given options (all of the class's options when no name is given)."""
    return {name: node_input(settings_cls, name) for name in (names or options_of(settings_cls))}


def option_values(settings_cls, values: dict) -> dict:
    """{name: value} of every option of a settings class: from `values` (node widgets, argparse vars), the
    default where missing; other keys of `values` are ignored."""
    return {name: values.get(name, opt.default) for name, opt in options_of(settings_cls).items()}


def settings_from_inputs(settings_cls, values: dict, what: str):
    """settings_cls(**values) from a node's widget values: an unknown name is an error naming it, a missing one
    gets its default (an older saved workflow)."""
    unknown = sorted(set(values) - set(options_of(settings_cls)))
    if unknown:
        raise InputError(f"unknown {what} input(s): {', '.join(unknown)}")
    settings = settings_cls(**values)
    check_settings(settings)
    return settings


def _bool_arg(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_argument(parser, settings_cls, name: str, *, default=dataclasses.MISSING, help: str | None = None,
                 flag: str | None = None):
    """Add an option to an argparse parser or group: --name-with-dashes, its type, choices and help.

    `default` overrides the engine default only where the command line resolves the value itself (None =
    'decided at run time', e.g. from the size bucket); `help` replaces the text for such cases. A boolean
    option is a switch: `--apg` alone turns it on, `--apg false` / `--apg true` set it explicitly.
    """
    opt = get_option(settings_cls, name)
    value = opt.cli_default if default is dataclasses.MISSING else default
    text = help if help is not None else opt.help
    if value is not None and value != "" and help is None and opt.type is not bool:
        text = f"{text} (default {value})"
    kwargs = dict(default=value, help=text.replace("%", "%%"), dest=name)
    if opt.choices is not None:
        kwargs["choices"] = opt.choices
    kwargs["type"] = opt.type
    if opt.type is bool:
        kwargs.update(type=_bool_arg, nargs="?", const=True, metavar="true|false")
    return parser.add_argument(flag or opt.flag, **kwargs)


def add_arguments(parser, settings_cls, *names: str) -> None:
    """add_argument for the given options (all of the class's options when no name is given)."""
    for name in names or options_of(settings_cls):
        add_argument(parser, settings_cls, name)


# --- LongCat-Video-Avatar 1.5 -------------------------------------------------------------------------------------
# The LongCat sampler's options, declared here once (node, command line and engine read them from this class).
# Defaults are the official v1.5 demo's (run_demo_avatar_*_audio_to_video.py with --use_distill): distilled, 8 steps,
# text and audio guidance 1 (one model pass per step); without distillation 50 steps and guidance 4 / 4 with the
# continuation's enhance_hf tail. 0 for steps / guidance means "the official value for the chosen mode".

LONGCAT_RESOLUTIONS = ("480p", "720p")


@dataclass
class LongCatSettings:
    """LongCat-Video-Avatar 1.5 sampler options (LongCat sampler node, `python -m wanvideo longcat`)."""

    use_distill: bool = option(True, help=(
        "Distilled sampling (the official v1.5 default; load the distillation LoRA dmd_lora.safetensors): 8 steps, "
        "no guidance. Off: the base model's 50 steps with text/audio guidance 4."))
    steps: int = option(0, min=0, max=200, help="Denoising steps per segment. 0 = official: 8 distilled, 50 base.")
    text_cfg: float = option(0.0, min=0.0, max=30.0, step=0.1, help=(
        "Text guidance scale. 0 = official: 1 distilled (no guidance), 4 base."))
    audio_cfg: float = option(0.0, min=0.0, max=30.0, step=0.1, help=(
        "Audio guidance scale (lip-sync strength). 0 = official: 1 distilled, 4 base."))
    shift: float = option(1.0, min=0.01, max=100.0, step=0.01, help=(
        "Timestep shift of the flow-matching schedule: the checkpoint's scheduler/scheduler_config.json value "
        "(the official scheduler class default is 1)."))
    enhance_hf: bool = option(True, help=(
        "Base model only (ignored when distilled): the official continuation schedule with a uniform tail "
        "500, 450, ..., 50 for sharper detail."))
    seed: int = option(42, min=0, max=0xFFFFFFFFFFFFFFFF, help=(
        "Noise seed (official 42). The first segment uses it directly, later segments seeds derived from it."))
    resolution: str = option("480p", choices=LONGCAT_RESOLUTIONS, help=(
        "Size family: the image is snapped to the nearest official 480p / 720p aspect bucket (480p: e.g. "
        "480x832)."))
    width: int = option(0, min=0, max=4096, step=16, help="Output width (multiple of 16); 0 = the bucket's.")
    height: int = option(0, min=0, max=4096, step=16, help="Output height (multiple of 16); 0 = the bucket's.")
    num_frames: int = option(93, min=9, max=1001, step=4, help="Frames per segment, 4n+1 (official 93).")
    num_cond_frames: int = option(13, min=1, max=997, step=4, help=(
        "Frames of the previous segment re-encoded as its continuation's condition, 4n+1 (official 13)."))
    ref_img_index: int = option(10, min=0, max=1000, help=(
        "RoPE time position of the reference image in continuations (official 10)."))
    mask_frame_range: int = option(3, min=0, max=1000, help=(
        "Noisy frames within this range of ref_img_index do not attend to the reference (official 3; against "
        "repeated motions). 0 = off."))
    fps: float = option(25.0, min=1.0, max=120.0, step=0.01, help="Frame rate (v1.5 is trained at 25).")
    max_frames: int = option(0, min=0, max=10_000_000, help="0 = as long as the speech; else at most this many frames.")
    color_correction: float = option(0.0, min=0.0, max=1.0, step=0.05, help=(
        "Pull each segment's colours toward the image (Lab mean/contrast); 0 = off, as the official code."))

    def validated(self) -> "LongCatSettings":
        s = dataclasses.replace(self)
        for name in ("steps", "seed", "width", "height", "num_frames", "num_cond_frames", "ref_img_index",
                     "mask_frame_range", "max_frames"):
            setattr(s, name, int(getattr(s, name)))
        s.use_distill, s.enhance_hf = bool(s.use_distill), bool(s.enhance_hf) and not s.use_distill
        s.steps = s.steps or (8 if s.use_distill else 50)
        if s.use_distill and s.steps != 8:
            raise InputError(f"distilled LongCat sampling runs exactly 8 steps (got {s.steps}); set steps 0 or 8, "
                             "or turn use_distill off")
        base_cfg = 1.0 if s.use_distill else 4.0
        s.text_cfg = float(s.text_cfg) or base_cfg
        s.audio_cfg = float(s.audio_cfg) or base_cfg
        if s.resolution not in LONGCAT_RESOLUTIONS:
            raise InputError(f"resolution must be one of {LONGCAT_RESOLUTIONS}, got {s.resolution!r}")
        if (s.num_frames - 1) % 4 or (s.num_cond_frames - 1) % 4 or s.num_cond_frames >= s.num_frames:
            raise InputError("num_frames and num_cond_frames must be of the form 4n+1 with fewer condition frames "
                             f"(got {s.num_frames} / {s.num_cond_frames}; official 93 / 13)")
        if s.width % 16 or s.height % 16 or (s.width == 0) != (s.height == 0):
            raise InputError("width and height: both 0 (the official bucket) or both multiples of 16")
        for name in ("shift", "fps"):
            value = float(getattr(s, name))
            if not value > 0 or value == float("inf"):
                raise InputError(f"{name} must be a positive number, got {getattr(s, name)}")
            setattr(s, name, value)
        if not 0.0 <= float(s.color_correction) <= 1.0:
            raise InputError("color_correction must be between 0 and 1")
        return s
