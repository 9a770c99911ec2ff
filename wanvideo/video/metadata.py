"""Workflow/prompt metadata embedded in the video, where ComfyUI's front end looks for it.

The front end restores a graph from a dropped video by reading:
- MP4: `moov/udta/meta` with QuickTime `keys` + `ilst` items named `prompt` / `workflow`
  (case-insensitive), each a JSON text. ffmpeg writes exactly that layout with
  `-movflags use_metadata_tags`; `+faststart` puts `moov` at the front, inside the
  first bytes the front end reads.
- WebM: Matroska SimpleTags named `PROMPT` / `WORKFLOW` (ffmpeg upper-cases tag names).
Values are `json.dumps` of the objects, as ComfyUI's own SaveVideo writes them.
"""
from __future__ import annotations

import json
import logging

from ..errors import InputError

log = logging.getLogger(__name__)


def metadata_strings(metadata: dict | None) -> dict[str, str]:
    """{key: text}: JSON for objects, strings kept as they are, None entries dropped."""
    out: dict[str, str] = {}
    if metadata is not None and not isinstance(metadata, dict):
        raise InputError(f"metadata must be a dict of {{name: text or JSON value}}, got a {type(metadata).__name__}")
    for key, value in (metadata or {}).items():
        if value is None:
            continue
        key = str(key)
        if not key or any(c in key for c in "=;#\\\n\r"):
            log.warning("metadata entry %r not stored: a key must be non-empty without = ; # \\ or newlines", key)
            continue
        try:
            out[key] = value if isinstance(value, str) else json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"metadata {key!r} cannot be stored: {exc}; give text or a JSON value (numbers, "
                             "strings, lists, dicts)") from None
    return out


def _escape(text: str) -> str:
    # ffmetadata escapes '=', ';', '#', '\\' and newlines with a backslash.
    out = []
    for ch in text:
        if ch in "=;#\\\n":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def ffmetadata(strings: dict[str, str]) -> bytes:
    """The metadata as an ffmetadata file (fed to ffmpeg as an input, so no size limit of a command line)."""
    lines = [";FFMETADATA1"]
    for key, value in strings.items():
        lines.append(f"{_escape(key)}={_escape(value)}")
    return ("\n".join(lines) + "\n").encode("utf-8")
