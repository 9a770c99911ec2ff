"""Output file names: a user's `filename_prefix` turned into a numbered path that never overwrites.

`video/InfiniteTalk` -> `<base>/video/InfiniteTalk_00001.mp4`, then `_00002`, ... (the ComfyUI
counter style). A prefix may name sub-folders of the base folder but never leave it.
"""
from __future__ import annotations

import os
import re

from ..errors import InputError

_COUNTER_DIGITS = 5


def split_prefix(prefix: str) -> tuple[list[str], str]:
    """(sub-folder parts, file name stem) of a prefix, or an InputError saying what is wrong with it."""
    if not isinstance(prefix, str) or not prefix.strip():
        raise InputError("filename_prefix is empty: give a name such as 'InfiniteTalk' or 'video/InfiniteTalk'")
    text = prefix.strip()
    if "\x00" in text or any(ord(c) < 32 for c in text):
        raise InputError(f"filename_prefix {prefix!r} contains control characters: use letters, digits, '-', '_' and '/'")
    if text.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", text) or os.path.isabs(text):
        raise InputError(
            f"filename_prefix {prefix!r} is an absolute path: files are saved only inside ComfyUI's output "
            "(or temp) folder; use a relative name such as 'video/InfiniteTalk'"
        )
    parts = [p for p in re.split(r"[\\/]+", text) if p not in ("", ".")]
    if ".." in parts:
        raise InputError(
            f"filename_prefix {prefix!r} contains '..': it would save outside ComfyUI's output folder; "
            "use a name inside it, such as 'video/InfiniteTalk'"
        )
    for part in parts:
        if part.startswith("-"):
            raise InputError(
                f"filename_prefix {prefix!r}: the name {part!r} starts with '-', which command-line tools "
                "read as an option; start it with a letter or digit"
            )
        if ":" in part:
            raise InputError(f"filename_prefix {prefix!r} contains ':', which is not allowed in file names here")
        if part.strip(" .") == "":
            raise InputError(f"filename_prefix {prefix!r} has a folder or file name made only of dots or spaces")
    if not parts:
        raise InputError(f"filename_prefix {prefix!r} names no file: give a name such as 'InfiniteTalk'")
    return parts[:-1], parts[-1]


def output_folder(base_dir: str, prefix: str) -> tuple[str, str, str]:
    """(folder, stem, subfolder relative to base with '/') for `prefix` under `base_dir`, created if needed."""
    subparts, stem = split_prefix(prefix)
    base = os.path.realpath(base_dir)
    folder = os.path.join(base, *subparts)
    real = os.path.realpath(folder)
    if os.path.commonpath([base, real]) != base:
        raise InputError(
            f"filename_prefix {prefix!r} leads outside the output folder {base} (through a link): use another name"
        )
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder {folder}: {exc.strerror or exc}; "
                         "check the filename_prefix and the folder's permissions") from exc
    return folder, stem, "/".join(subparts)


def _next_counter(folder: str, stem: str) -> int:
    pattern = re.compile(re.escape(stem) + r"_(\d{" + str(_COUNTER_DIGITS) + r",})(?:\.[^.]+)+$")
    highest = 0
    try:
        names = os.listdir(folder)
    except OSError:
        names = []
    for name in names:
        match = pattern.match(name)
        if match:
            highest = max(highest, int(match.group(1)))
    return highest + 1


def reserve_path(folder: str, stem: str, extension: str) -> str:
    """Create (empty) and return `<folder>/<stem>_NNNNN.<ext>` with the next free counter.

    Created with O_EXCL, so two runs saving at the same time never get the same name.
    """
    counter = _next_counter(folder, stem)
    while True:
        path = os.path.join(folder, f"{stem}_{counter:0{_COUNTER_DIGITS}d}.{extension}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            counter += 1
            continue
        except OSError as exc:
            raise InputError(
                f"cannot write to the folder {folder}: {exc.strerror or exc}; "
                "pick a writable output folder or fix its permissions"
            ) from exc
        os.close(fd)
        return path


def sibling_path(path: str, extension: str) -> str:
    """A free path beside `path` with the same stem and another extension (e.g. the WAV of a failed mux)."""
    stem = os.path.splitext(path)[0]
    candidate = f"{stem}.{extension}"
    n = 1
    while os.path.exists(candidate):
        n += 1
        candidate = f"{stem}_{n}.{extension}"
    return candidate
