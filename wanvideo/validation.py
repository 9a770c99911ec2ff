"""One validation pass for every option, built from the option registry (`wanvideo/options.py`).

Each option's declared type, range, step and choices are checked here, plus the rules that tie options together
(motion frames below the window, width and height given together, refert frames below the clip length). The
command line, the sampler nodes and the engine's entry points all run this same pass before any model is loaded
or any speech is embedded, so they refuse exactly the same values, and every message names the option as the
user typed it: `--motion-frames` on the command line, `motion_frames` on a node.

    check_settings(settings)                         # a node or the engine: labels are the option names
    check_settings(settings, label=flags.label)      # the command line: labels are its flags
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from .errors import InputError
from .option_checks import Label, check_options, check_settings
from .option_checks import animate_rules as animate_rules  # re-exported: these checks lived here
from .option_checks import check_value as check_value
from .option_checks import node_label as node_label
from .option_checks import sampler_rules as sampler_rules

# Options whose command-line flag is not their name with dashes (tests check this against the parser).
OTHER_FLAGS = {"size_bucket": "--size", "precision": "--dtype"}


def flag_label(name: str) -> str:
    """The command line's flag for an option: --name-with-dashes, or the flag it was given (OTHER_FLAGS)."""
    return OTHER_FLAGS.get(name, "--" + name.replace("_", "-"))


class CommandLineFlags:
    """{option name: the flag that sets it} read from an argparse parser (e.g. size_bucket -> --size)."""

    def __init__(self, parser):
        self.flags = {}
        for action in getattr(parser, "_actions", ()):
            if action.option_strings:
                self.flags.setdefault(action.dest, action.option_strings[0])

    def label(self, name: str) -> str:
        return self.flags.get(name, flag_label(name))


def check_work_dir(work: str | None, output: str, label: Label = flag_label) -> None:
    """The work folder may not be the output file, nor lie inside it (it would be replaced by the video)."""
    if not work:
        return
    work_path = os.path.realpath(os.path.abspath(work))
    out_path = os.path.realpath(os.path.abspath(output))
    if work_path == out_path or work_path.startswith(out_path + os.sep):
        raise InputError(f"{label('work_dir')} {work} is the output file {output} (or inside it): the finished "
                         "windows would be lost when the video is written; give another folder, e.g. "
                         f"{os.path.abspath(output)}.parts")


# ----------------------------------------------------------------------------- the command line


def _command_settings(command: str) -> tuple[list, Callable | None]:
    """The settings classes whose options a command's arguments set, and its rules between options."""
    from .audio.settings import AudioSettings
    from .model.settings import LoaderSettings, ParallelSettings, SpeedSettings
    from .sampling.animate_settings import AnimateSettings
    from .sampling.cache import CacheOptions
    from .sampling.guidance_settings import GuidanceOptions
    from .sampling.settings import SamplerSettings
    from .video.run_lock import RunLockSettings

    shared = [LoaderSettings, SpeedSettings, GuidanceOptions, CacheOptions, RunLockSettings]
    if command == "animate":
        return [AnimateSettings, *shared], animate_rules
    if command == "generate":
        return [SamplerSettings, AudioSettings, ParallelSettings, *shared], sampler_rules
    return [], None


def check_command_line(args, parser) -> None:
    """Every option of a parsed `generate` / `animate` command line, before any file is read or model loaded:
    the registry's ranges, steps and choices, the rules between options, and the work folder against the output.
    Messages name the flag the user typed (--size, --dtype, ...)."""
    command = getattr(args, "command", None)
    classes, rules = _command_settings(command)
    if not classes:
        return
    sub = _subparser(parser, command)
    label = CommandLineFlags(sub if sub is not None else parser).label
    values = vars(args)
    for settings_cls in classes:
        check_options(settings_cls, values, label)
    rules({k: v for k, v in values.items() if v is not None}, label)
    check_work_dir(values.get("work_dir"), values.get("output") or "", label)


def _subparser(parser, command: str):
    for action in getattr(parser, "_actions", ()):
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict) and command in choices:
            return choices[command]
    return None


def check_request(req) -> None:
    """The same checks for a command-line job built in Python (`GenerateRequest`, `AnimateRequest`): every settings
    object it carries, the steps/cfg it decides at run time when given, the lock wait, the work folder."""
    for name in ("sampler", "loader", "model_speed", "audio_settings"):
        settings = getattr(req, name, None)
        if settings is None:
            continue
        auto = {key: getattr(req, key) for key in ("steps", "cfg", "audio_cfg")
                if name == "sampler" and getattr(req, key, None) is not None and hasattr(settings, key)}
        check_settings(dataclasses.replace(settings, **auto), label=flag_label)
    from .video.run_lock import RunLockSettings

    check_options(RunLockSettings, {"wait_for_lock": getattr(req, "wait_for_lock", 0.0)}, flag_label)
    check_work_dir(getattr(req, "work_dir", None), req.output, flag_label)
