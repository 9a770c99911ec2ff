"""The option registry's core: how one user-facing option is declared (`option(...)` on a settings dataclass
field) and read back (`options_of`). Kept apart from `options` (the node inputs and command-line arguments made
from it) so the checks in `option_checks` can use it while `options` uses those checks."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
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
