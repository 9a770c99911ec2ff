"""A prompt per window: prompt k conditions window k, the last prompt every window after it.

A long video changes scene or expression over time ("smiles", "turns to the camera"); as the most used wrapper
does, the positive prompt may hold several prompts separated by `|` (the command line), or the sampler gets one
text embedding per window (the node's `positive_per_window`). The negative prompt stays one for all windows.

Resuming: one prompt keeps today's run key. Several prompts leave the run key and are keyed per window instead
(`window_keys`), kept in the frame store's manifest, so a rerun after changing prompt k keeps windows 1..k-1 and
makes windows k.. again (each window continues from the one before, so everything after a change is redone).
"""
from __future__ import annotations

import hashlib

import torch

from ..errors import InputError
from .conditioning import prepare_context, same_context
from .fingerprint import Digest

SEPARATOR = "|"
# what the run key holds instead of the prompts when they are keyed per window
PER_WINDOW_MARKER = "per-window prompts (keyed per window in the manifest)"


def split_prompts(text: str | None) -> list[str] | None:
    """"a | b | c" -> ["a", "b", "c"] (spaces around each prompt removed); None or "" -> None (the default).
    An empty prompt between separators is an error naming its place (a stray `|` would shift every window)."""
    if text is None or not str(text).strip():
        return None
    parts = [p.strip() for p in str(text).split(SEPARATOR)]
    empty = [i + 1 for i, p in enumerate(parts) if not p]
    if empty:
        raise InputError(f"prompt {empty[0]} of {len(parts)} (separated by '{SEPARATOR}') is empty: write a prompt "
                         f"there or remove the extra '{SEPARATOR}'")
    return parts


class WindowPrompts:
    """The checked positive text embeddings, one per prompt, and which one each window uses."""

    def __init__(self, contexts: list[torch.Tensor]):
        self.contexts = contexts

    @classmethod
    def prepare(cls, context, text_dim: int, text_len: int) -> "WindowPrompts":
        """`context`: None (empty prompt), one [1, L, text_dim] tensor, or a list/tuple of them (one per window)."""
        if isinstance(context, (list, tuple)):
            if not context:
                raise InputError("the per-window prompts are an empty list: give at least one prompt")
            return cls([prepare_context(c, text_dim, text_len, f"positive prompt {i + 1}")
                        for i, c in enumerate(context)])
        return cls([prepare_context(context, text_dim, text_len, "positive")])

    @property
    def per_window(self) -> bool:
        return len(self.contexts) > 1

    @property
    def first(self) -> torch.Tensor:
        return self.contexts[0]

    def index_for(self, window_index: int) -> int:
        return min(int(window_index), len(self.contexts) - 1)

    def for_window(self, window_index: int) -> torch.Tensor:
        return self.contexts[self.index_for(window_index)]

    def all_same_as(self, other: torch.Tensor) -> bool:
        """Whether every prompt equals `other` (the negative prompt): then the drop-text pass is skipped."""
        return all(same_context(c, other) for c in self.contexts)

    def run_key_context(self):
        """What the run key holds for the positive prompt: the embedding itself (one prompt: today's key), or a
        marker when the prompts are keyed per window."""
        return PER_WINDOW_MARKER if self.per_window else self.first

    def window_keys(self, num_windows: int) -> list[str] | None:
        """Per window, a digest of the prompt it uses (None with one prompt: nothing is keyed per window)."""
        if not self.per_window:
            return None
        digests = [Digest().add("context", c).hexdigest()[:16] for c in self.contexts]
        return [digests[self.index_for(i)] for i in range(num_windows)]


def reuse_matching_windows(store, keys: list[str] | None) -> int | None:
    """Keep the windows on disk up to the first whose prompt changed; make that one and every later one again.
    Returns the first window made again because of a changed prompt (None: nothing changed)."""
    if keys is None:
        return None
    return store.adopt_window_keys(keys)


def stand_in_context(text: str, like: torch.Tensor) -> torch.Tensor:
    """The embedded tiny model set's stand-in for a text encoder: embeddings shaped like `like`, drawn from the
    prompt's text (the same text gives the same embeddings), so each window's prompt reaches the model."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(like.shape), generator=generator, dtype=torch.float32)
