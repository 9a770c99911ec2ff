"""The registry's checks of one settings object: each option's declared type, range, step and choices
(`check_value`, `check_options`) and the rules that tie options together (`sampler_rules`, `animate_rules`),
run by `check_settings`. Messages name the option with the caller's `label` (`validation` adds the command
line's flags and its whole-command checks on top)."""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable

from .errors import InputError
from .option_fields import Option, options_of

Label = Callable[[str], str]


def node_label(name: str) -> str:
    """How a node (and the Python API) names an option: its field name."""
    return name


# Option values a settings class accepts under other spellings (normalised by the class's validated()).
def _scheduler_alias(value):
    from .sampling.schedules import normalize_scheduler

    try:
        return normalize_scheduler(value)
    except InputError:
        return value


_ALIASES = {"scheduler": _scheduler_alias}


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else f"{value}"


def _number(value, is_int: bool, label: str):
    """`value` as an int/float, or an InputError naming the option."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, str):
            try:
                value = int(value) if is_int else float(value)
            except ValueError:
                raise InputError(f"{label} {value!r}: give a {'whole ' if is_int else ''}number") from None
        else:
            raise InputError(f"{label} {_shown(value)}: give a {'whole ' if is_int else ''}number")
    if isinstance(value, numbers.Integral):
        return int(value)
    if not math.isfinite(float(value)):
        raise InputError(f"{label} {value}: give a real number (not NaN or infinity)")
    if is_int:
        if float(value) != int(value):
            raise InputError(f"{label} {value}: give a whole number")
        return int(value)
    return float(value)


def _range_text(opt: Option) -> str:
    low, high = opt.spec.min, opt.spec.max
    fmt = (lambda v: f"{int(v):,}".replace(",", "")) if opt.type is int else (lambda v: f"{v:g}")
    if low is not None and high is not None:
        return f"from {fmt(low)} to {fmt(high)}"
    return f"at least {fmt(low)}" if low is not None else f"at most {fmt(high)}"


def _hint(opt: Option) -> str:
    first = opt.help.split(". ")[0].rstrip(".")
    return f" ({first})" if first else ""


def check_value(opt: Option, value, label: str | None = None) -> None:
    """Refuse a value the registry does not allow for `opt`: wrong type, NaN/infinity, out of range, off its
    step (integers: a multiple of 16, of the form 4n+1) or not one of its choices."""
    label = label or opt.name
    if value is None:
        return  # 'decided at run time' (e.g. the command line's automatic steps, no sequence parallelism)
    if opt.type is bool:
        if not isinstance(value, (bool, numbers.Integral)) or int(value) not in (0, 1):
            raise InputError(f"{label} {_shown(value)}: give true or false")
        return
    if opt.type is str:
        if not isinstance(value, str):
            raise InputError(f"{label} {_shown(value)}: give one of {', '.join(map(str, opt.choices or ()))}")
        normal = _ALIASES.get(opt.name, lambda v: v)(value)
        if opt.choices is not None and normal not in opt.choices:
            raise InputError(f"{label} {value!r}: must be one of {', '.join(map(str, opt.choices))}")
        return
    number = _number(value, opt.type is int, label)
    low, high = opt.spec.min, opt.spec.max
    if (low is not None and number < low) or (high is not None and number > high):
        raise InputError(f"{label} {_shown(number)}: out of range, give a number {_range_text(opt)}{_hint(opt)}")
    if opt.choices is not None and number not in opt.choices:
        raise InputError(f"{label} {_shown(number)}: must be one of {', '.join(map(str, opt.choices))}{_hint(opt)}")
    step = opt.spec.step
    if opt.type is int and step and step > 1 and low is not None and (number - int(low)) % int(step):
        step, base = int(step), int(low) % int(step)
        lower = max(int(low), number - (number - base) % step)
        form = f"a multiple of {step}" if base == 0 else f"of the form {step}n+{base}"
        raise InputError(f"{label} {number} is not {form}: use {lower} or {lower + step}{_hint(opt)}")


def _values(settings) -> dict:
    if isinstance(settings, dict):
        return dict(settings)
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


def check_options(settings_cls, values, label: Label = node_label, skip=()) -> None:
    """Registry checks of the options of `settings_cls` present in `values` (a dict or a settings object)."""
    given = _values(values)
    for name, opt in options_of(settings_cls).items():
        if name in given and name not in skip:
            check_value(opt, given[name], label(name))


# ----------------------------------------------------------------------------- rules between options


def _both_or_neither(v: dict, label: Label, what: str) -> None:
    width, height = v.get("width"), v.get("height")
    if width is None or height is None:
        return
    if (int(width) == 0) != (int(height) == 0):
        raise InputError(f"{label('width')} and {label('height')} go together: give both, or neither "
                         f"(0 and 0 = {what}); got {width} and {height}")


def sampler_rules(v: dict, label: Label) -> None:
    """InfiniteTalk: motion frames below the window; width and height together."""
    window, motion = v.get("frame_window"), v.get("motion_frames")
    if window is not None and motion is not None and int(motion) >= int(window):
        raise InputError(
            f"{label('motion_frames')} {motion} must be smaller than {label('frame_window')} {window}: each window "
            "re-generates the motion frames of the previous one and needs new frames after them (defaults: "
            "frame_window 81, motion_frames 9)")
    _both_or_neither(v, label, "the size bucket's size closest to the image")


def animate_rules(v: dict, label: Label) -> None:
    """WanAnimate: refert frames below the clip length; width and height together."""
    clip, refert = v.get("clip_len"), v.get("refert_frames")
    if clip is not None and refert is not None and int(refert) >= int(clip):
        raise InputError(f"{label('refert_frames')} {refert} must be fewer than {label('clip_len')} {clip}")
    _both_or_neither(v, label, "the pose video's size")


# The rules between options of each settings class, registered by the module that defines the class (these checks
# sit below the settings modules, which call them from their `validated()`).
_RULES: dict[type, Callable[[dict, Label], None]] = {}


def register_rules(settings_cls, rules: Callable[[dict, Label], None]) -> None:
    """Run `rules` (e.g. `sampler_rules`) in `check_settings` for `settings_cls` and its subclasses."""
    _RULES[settings_cls] = rules


def _rules_for(settings_cls):
    return next((_RULES[cls] for cls in settings_cls.__mro__ if cls in _RULES), None)


def check_settings(settings, label: Label = node_label, skip=()) -> None:
    """Every registry check and every rule between options of one settings object (or class + dict)."""
    settings_cls = type(settings)
    check_options(settings_cls, settings, label, skip)
    rules = _rules_for(settings_cls)
    if rules is not None:
        values = {k: v for k, v in _values(settings).items() if k not in skip}
        rules(values, label)
