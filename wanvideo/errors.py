"""Errors the engine raises on purpose: their message names the problem and the fix."""


class WanVideoError(Exception):
    """Base class: a failure we understood and explained."""


class InputError(WanVideoError, ValueError):
    """An input is wrong (empty, wrong size, wrong file, ...); the message says how to fix it."""


class ModelFileError(InputError):
    """A model file is not what the loader expected (wrong model, truncated, unknown layout)."""


class EncoderError(WanVideoError, RuntimeError):
    """Writing a video failed; the message names every file that was kept."""
