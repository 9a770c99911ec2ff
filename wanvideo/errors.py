"""Errors the engine raises on purpose: their message names the problem and the fix."""


class WanVideoError(Exception):
    """Base class: a failure we understood and explained."""


class InputError(WanVideoError, ValueError):
    """An input is wrong (empty, wrong size, wrong file, ...); the message says how to fix it."""


class ModelFileError(InputError):
    """A model file is not what the loader expected (wrong model, truncated, unknown layout)."""


class VideoWriteError(WanVideoError, RuntimeError):
    """Writing a video failed; the message names every file that was kept."""


class OutputError(WanVideoError):
    """A file could not be written for a reason outside the pack (disk full, read-only folder, permission)."""


class NonFiniteError(WanVideoError, RuntimeError):
    """NaN or infinite numbers where real ones must be (weights, embeddings, latents, frames); says the likely cause."""


class RunInProgressError(WanVideoError, RuntimeError):
    """Another run is already working in the same work folder."""


class Interrupted(WanVideoError):
    """A run or an encode was stopped on request (Cancel, a stop callback); what was finished is kept and the
    message says where. `GenerationInterrupted` (the window loop) and `EncodingInterrupted` (the video writers)."""


class GenerationInterrupted(Interrupted):
    """The run was stopped on request; every finished window is kept in `store` and a rerun resumes."""

    def __init__(self, message: str, store=None):
        super().__init__(message)
        self.store = store
