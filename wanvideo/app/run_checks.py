"""Checks the command line's run makes before any work starts: paths, numbers, model file headers.

Everything a user can get wrong is found here, in seconds, with the option's name and the limit —
not after the models loaded or the whole video was generated.
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import outputs
from ..errors import InputError, ModelFileError
from ..validation import check_request

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".webm")


def check_output(output: str) -> str:
    """The absolute output path, after checking it names a file in a folder we can write into."""
    path = os.path.abspath(output)
    if os.path.isdir(path):
        raise InputError(f"--output {output}: that is a folder; give a file name such as {os.path.join(output, 'talk.mp4')}")
    if not path.lower().endswith(VIDEO_EXTENSIONS):
        raise InputError(f"--output {output}: give a video file name ending in .mp4")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise InputError(f"--output {output}: the folder {folder} does not exist")
    probe = outputs.temp_path(path)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except OSError as exc:
        raise InputError(f"--output {output}: cannot write into {folder}: {exc.strerror or exc} "
                         "(choose a writable folder)") from None
    outputs.discard(probe)
    return path


def check_work_dir(work: str, option: str) -> None:
    if os.path.exists(work) and not os.path.isdir(work):
        raise InputError(f"{option} {work}: that is a file, not a folder; give a folder for the finished windows")
    parent = work if os.path.isdir(work) else os.path.dirname(os.path.abspath(work))
    if os.path.isdir(parent) and not os.access(parent, os.W_OK):
        raise InputError(f"{option} {work}: cannot write into {parent} (permission denied); choose a writable folder")


def check_numbers(req) -> None:
    """Every option of the request, by the option registry's ranges and the rules between options
    (`wanvideo.validation`: the nodes refuse exactly the same values)."""
    check_request(req)


def _check_weights_file(path: Path, option: str) -> None:
    from ..model.weight_files import read_safetensors_header

    try:
        if path.suffix.lower() in (".safetensors", ".sft"):
            read_safetensors_header(path)
        elif path.stat().st_size == 0:
            raise ModelFileError(f"{path.name} is empty: re-download it")
    except ModelFileError as exc:
        raise ModelFileError(f"{option} {path}: {exc}") from None
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot read it ({exc.strerror or exc})") from None


def check_model_headers(files: dict, loras=()) -> None:
    """Open every model file's header (no weights read): a damaged download is named before anything loads."""
    for kind, given in files.items():
        if not given:
            continue
        option = "--" + kind.replace("_", "-")
        path = Path(given)
        if path.is_dir():
            weights = [p for p in sorted(path.iterdir()) if p.suffix.lower() in (".safetensors", ".bin", ".pt", ".pth")]
            if not weights:
                raise ModelFileError(f"{option} {path}: the folder holds no weights file (.safetensors or .bin)")
            for file in weights:
                _check_weights_file(file, option)
        else:
            _check_weights_file(path, option)
    for lora, _strength in loras:
        _check_weights_file(Path(lora), "--lora")


def checked_work_folder(req) -> str:
    """The request's work folder (default `<output>.parts`), after the checks that need no file read: the output
    path, the work folder, every option. Nothing is created when one fails."""
    output = check_output(req.output)
    work = req.work_dir or (output + ".parts")
    check_work_dir(work, "--work-dir" if req.work_dir else "the work folder (--work-dir)")
    check_numbers(req)
    return work
