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
from dataclasses import dataclass, field

from .errors import InputError

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_NODE_TYPES = {int: "INT", float: "FLOAT", str: "STRING", bool: "BOOLEAN"}
_META_KEY = "wanvideo_option"


class _Unset:
    """'Not given', where None is a value (an option whose command-line default is None)."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()


@dataclass(frozen=True)
class OptionSpec:
    """What the user sees of one option (its name and default come from the dataclass field)."""

    help: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple | None = None
    reference: object = None  # the reference implementation's value when ours differs (README tables)
    cli_default: object = _UNSET  # the command line's default where it differs from the node's


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: object
    spec: OptionSpec

    @property
    def help(self) -> str:
        return self.spec.help

    @property
    def choices(self) -> tuple | None:
        return self.spec.choices

    @property
    def cli_default(self):
        """The command line's default: the option's, unless it declares one of its own."""
        return self.default if self.spec.cli_default is _UNSET else self.spec.cli_default

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def option(default, *, help: str, min=None, max=None, step=None, choices=None, reference=None,
           cli_default=_UNSET):
    """A dataclass field that is a user-facing option (see the module docstring).

    `choices` of a text option make a combo on the node; of a number option (e.g. refert frames 1 or 5) they are
    the values the command line accepts, while the node keeps a number widget bounded by min/max/step.
    `cli_default`: the command line's default where it must differ from the node's (say why in a comment).
    """
    spec = OptionSpec(help=help, min=min, max=max, step=step, choices=tuple(choices) if choices else None,
                      reference=reference, cli_default=cli_default)
    return field(default=default, metadata={_META_KEY: spec})


def options_of(settings_cls) -> dict[str, Option]:
    """{name: Option} of every option field of a settings dataclass, in declaration order."""
    out = {}
    for f in dataclasses.fields(settings_cls):
        spec = f.metadata.get(_META_KEY)
        if spec is None:
            continue
        kind = f.type if isinstance(f.type, type) else _TYPES[str(f.type).split("|")[0].strip()]
        out[f.name] = Option(f.name, kind, f.default, spec)
    return out


def get_option(settings_cls, name: str) -> Option:
    try:
        return options_of(settings_cls)[name]
    except KeyError:
        raise KeyError(f"{settings_cls.__name__} has no option {name!r}") from None


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
    from .validation import check_settings  # the registry's own checks (imports this module)

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
