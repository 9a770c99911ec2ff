"""The one place that talks to the ComfyUI host.

Every host service the nodes use (model/output/temp folders, progress bar,
interrupt) goes through here, with a standalone fallback so the nodes also run
in plain Python and under pytest without ComfyUI installed.
"""
from __future__ import annotations

import os
import sys
import tempfile

from ..wanvideo.app.model_files import HF_FOLDER_MARKERS, LISTED_EXTENSIONS


def _folder_paths():
    try:
        import folder_paths  # ComfyUI's module; absent outside the host
    except ImportError:
        return None
    return folder_paths


def in_host() -> bool:
    return _folder_paths() is not None


def output_directory() -> str:
    fp = _folder_paths()
    if fp is not None:
        return fp.get_output_directory()
    path = os.environ.get("WANVIDEO_OUTPUT_DIR") or os.path.join(os.getcwd(), "output")
    os.makedirs(path, exist_ok=True)
    return path


def temp_directory() -> str:
    fp = _folder_paths()
    if fp is not None:
        return fp.get_temp_directory()
    path = os.environ.get("WANVIDEO_TEMP_DIR") or os.path.join(tempfile.gettempdir(), "wanvideo_temp")
    os.makedirs(path, exist_ok=True)
    return path


def register_model_folder(name: str, extensions=LISTED_EXTENSIONS + (".json",)) -> None:
    """Make sure `models/<name>` is a known model folder of the host (no-op standalone)."""
    fp = _folder_paths()
    if fp is None:
        return
    if name in fp.folder_names_and_paths:
        return
    path = os.path.join(fp.models_dir, name)
    fp.folder_names_and_paths[name] = ([path], set(extensions))


def model_files(*folders: str) -> list[str]:
    """File names the host lists in any of `folders` (sorted, de-duplicated)."""
    fp = _folder_paths()
    if fp is None:
        return []
    names = set()
    for folder in folders:
        try:
            names.update(fp.get_filename_list(folder))
        except KeyError:
            continue
    return sorted(names)


def files_with_extensions(*folders: str, extensions=()) -> list[str]:
    """Files ending in `extensions` in the host's `folders` (sorted, '/'-separated, relative), listed or not.

    For types the host does not list there: ComfyUI lists no .gguf in diffusion_models unless the GGUF
    loader pack is installed, and then under its own folder name.
    """
    names = set()
    for base in model_folder_paths(*folders) if extensions else []:
        for root, _, files in os.walk(base, followlinks=True):
            names.update(os.path.relpath(os.path.join(root, f), base).replace(os.sep, "/")
                         for f in files if f.lower().endswith(tuple(extensions)))
    return sorted(names)


def model_path(name: str, *folders: str) -> str:
    """Full path of `name` in the first of `folders` holding it; a plain existing path is accepted too."""
    fp = _folder_paths()
    if fp is not None:
        for folder in folders:
            try:
                path = fp.get_full_path(folder, name)
            except KeyError:
                continue
            if path:
                return path
    if os.path.exists(name):
        return name
    raise FileNotFoundError(
        f"model file {name!r} not found in ComfyUI's models folders {', '.join(folders)}: "
        f"put it into models/{folders[0]}/ and press R in the UI to refresh the list"
    )


def model_folder_paths(*folders: str) -> list[str]:
    fp = _folder_paths()
    if fp is None:
        return []
    paths = []
    for folder in folders:
        try:
            paths.extend(fp.get_folder_paths(folder))
        except KeyError:
            continue
    return paths


def model_subfolders(*folders: str, markers=HF_FOLDER_MARKERS, max_depth: int = 3) -> list[str]:
    """Sub-folders ('/'-separated, relative) of the host's `folders` that look like a Hugging Face model folder."""
    names = set()
    for base in model_folder_paths(*folders):
        if not os.path.isdir(base):
            continue
        base_depth = base.rstrip(os.sep).count(os.sep)
        for root, dirs, files in os.walk(base, followlinks=True):
            if root.rstrip(os.sep).count(os.sep) - base_depth >= max_depth:
                dirs[:] = []
            if os.path.normpath(root) != os.path.normpath(base) and any(m in files for m in markers):
                names.add(os.path.relpath(root, base).replace(os.sep, "/"))
    return sorted(names)


def model_choices(*folders: str, keep=lambda name: True, markers=HF_FOLDER_MARKERS, rank=None, also=()) -> list[str]:
    """A loader's list: model sub-folders of `folders` first, then the files `keep` accepts (`also`: extensions
    found even where the host does not list them, see files_with_extensions).

    A file inside a listed sub-folder (a shard, its config) is reached through the folder, so it is left out.
    `rank(name)` (lower first, stable otherwise) puts the entries a slot wants before the others: the front end
    preselects the first entry on a new node.
    """
    subfolders = model_subfolders(*folders, markers=markers)
    listed = model_files(*folders)
    if also:
        listed = sorted(set(listed) | set(files_with_extensions(*folders, extensions=also)))
    files = [f for f in listed if keep(f)]
    files = [f for f in files if not any(f.replace("\\", "/").startswith(d + "/") for d in subfolders)]
    choices = subfolders + files
    return sorted(choices, key=rank) if rank is not None else choices


def model_subfolder_path(name: str, *folders: str) -> str | None:
    """Full path of sub-folder `name` in the first of `folders` holding it (a plain existing folder is accepted too)."""
    if ".." in name.replace("\\", "/").split("/"):
        return None
    for base in model_folder_paths(*folders):
        path = os.path.join(base, name)
        if os.path.isdir(path):
            return path
    if os.path.isdir(name):
        return name
    return None


class _NullProgress:
    def __init__(self, total: int):
        self.total = total
        self.current = 0

    def update(self, value: int = 1):
        self.current += value

    def update_absolute(self, value: int, total: int | None = None, preview=None):
        self.current = value
        if total is not None:
            self.total = total


def progress_bar(total: int):
    """The host's progress bar for the running node: its current progress API where it has one (value, max and a
    preview image, `comfy_api.latest`), ComfyUI's ProgressBar on older hosts, a counter standalone."""
    try:
        import comfy.model_management as mm
        from comfy_api.latest import ComfyAPISync

        execution = ComfyAPISync().execution
        if hasattr(execution, "set_progress"):
            return _ApiProgress(execution, total, mm)
    except (ImportError, AttributeError, TypeError):
        pass  # standalone, or a host before the progress API
    try:
        import comfy.model_management as mm
        from comfy.utils import ProgressBar
    except ImportError:
        return _NullProgress(total)
    return _HostProgress(ProgressBar(total), mm)


class _ApiProgress:
    """`ComfyAPISync().execution.set_progress`: the bar of the running node, with the preview image. A Cancel
    stops the node at its next update, as the host's ProgressBar hook does, but the Cancel flag stays set, so the
    code that unwinds (the window loop's log) sees a Cancel; ComfyUI clears it when the next prompt starts."""

    def __init__(self, execution, total, mm):
        self._execution, self._mm, self.total, self.current = execution, mm, total, 0

    def update_absolute(self, value, total=None, preview=None):
        if self._mm.processing_interrupted():
            raise self._mm.InterruptProcessingException()
        self.current, self.total = value, total or self.total
        self._execution.set_progress(float(value), float(self.total), preview_image=preview)

    def update(self, value):
        self.update_absolute(self.current + value)


class _HostProgress:
    """ComfyUI's ProgressBar (hosts before the progress API). Its hook raises the host's interrupt on Cancel and
    clears the Cancel flag as it does; the flag is set again, so the code that unwinds (the window loop's log)
    sees a Cancel, not a failure. ComfyUI clears it when the next prompt starts."""

    def __init__(self, bar, mm):
        self._bar, self._mm = bar, mm

    def update_absolute(self, value, total=None, preview=None):
        if preview is not None and hasattr(preview, "numpy"):
            preview = _preview_tuple(preview)
        self._call(self._bar.update_absolute, value, total, preview)

    def update(self, value):
        self._call(self._bar.update, value)

    def _call(self, method, *args):
        try:
            method(*args)
        except self._mm.InterruptProcessingException:
            self._mm.interrupt_current_processing(True)
            raise


def _preview_tuple(frame):
    """A [H, W, 3] 0..1 tensor as the ("JPEG", PIL image, max size) preview ComfyUI's ProgressBar sends."""
    from PIL import Image

    image = Image.fromarray((frame.clamp(0, 1) * 255).byte().cpu().numpy())
    try:
        from comfy.cli_args import args

        size = getattr(args, "preview_size", 512)
    except ImportError:
        size = 512
    return ("JPEG", image, size)


def interrupt_requested() -> bool:
    """True once the user pressed Cancel in the host; engines poll this between units of work.

    Also True while the host's own interrupt exception is being handled: ComfyUI clears its Cancel flag as it
    raises that exception (from its progress hook, its VAE, ...), and code that unwinds asks this to tell a
    Cancel from a failure."""
    try:
        import comfy.model_management as mm
    except ImportError:
        return False
    interrupt = getattr(mm, "InterruptProcessingException", ())
    return bool(mm.processing_interrupted()) or isinstance(sys.exc_info()[1], interrupt)


def metadata_disabled() -> bool:
    """True when ComfyUI runs with --disable-metadata (then no workflow is embedded in saved files)."""
    try:
        from comfy.cli_args import args
    except ImportError:
        return False
    return bool(getattr(args, "disable_metadata", False))


def raise_if_interrupted() -> None:
    """Raise the host's own interrupt exception (so the UI shows 'interrupted', not an error)."""
    try:
        import comfy.model_management as mm
    except ImportError:
        return
    mm.throw_exception_if_processing_interrupted()


def raise_interrupted() -> None:
    """The engine stopped on a Cancel: leave with the host's own interrupt exception (the UI shows "interrupted",
    the executor logs no error) even if the host already cleared its flag. Standalone: returns."""
    try:
        import comfy.model_management as mm
    except ImportError:
        return
    raise mm.InterruptProcessingException()


def send_progress_text(text: str, node_id=None) -> None:
    """Show a line of text on the running node (ComfyUI >= 0.3.4x); silently ignored elsewhere."""
    try:
        from comfy_execution.utils import get_executing_context
        from server import PromptServer
    except ImportError:
        return
    try:
        if node_id is None:
            ctx = get_executing_context()
            node_id = ctx.node_id if ctx is not None else None
        if node_id is not None:
            PromptServer.instance.send_progress_text(text, node_id)
    except Exception:  # noqa: BLE001 - a progress message must never fail a run
        return


def torch_device(which: str = "main"):
    """'main' -> the host's compute device; 'offload' -> its offload device (cpu standalone)."""
    import torch

    try:
        import comfy.model_management as mm
    except ImportError:
        if which == "main" and torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    return mm.get_torch_device() if which == "main" else mm.unet_offload_device()


def resolve_model(name: str, *folders: str) -> str:
    """Path of a model the user picked: a listed sub-folder (Hugging Face / diffusers layout) or a file.

    A missing one raises the engine's InputError, so the UI shows what to do, not a traceback.
    """
    from ..wanvideo.errors import InputError

    folder = model_subfolder_path(name, *folders)
    if folder is not None:
        return folder
    try:
        return model_path(name, *folders)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from exc


def _model_management():
    try:
        import comfy.model_management as mm  # ComfyUI's; absent outside the host
    except ImportError:
        return None
    return mm


def load_model_for_sampling(patcher, memory_required: int = 0, minimum_memory_required: int | None = None) -> None:
    """Ask the host to put `patcher`'s model on its device, making room (evicting other models) first.

    Standalone (no host) the model is loaded completely.
    """
    mm = _model_management()
    if mm is None:
        patcher.partially_load(patcher.load_device, float("inf"))
        return
    mm.load_models_gpu([patcher], memory_required=memory_required, minimum_memory_required=minimum_memory_required)


def unload_model(patcher) -> None:
    """Offload one model the host holds (the host forgets it as loaded); standalone: detach it."""
    mm = _model_management()
    if mm is None:
        patcher.detach(True)
        return
    for i, loaded in enumerate(list(mm.current_loaded_models)):
        if loaded.model is patcher:
            if loaded.model_unload():
                mm.current_loaded_models.pop(i)
            break
    else:
        patcher.detach(True)
    mm.soft_empty_cache()


def total_vram(device) -> int | None:
    """Total memory of `device` in bytes as the host counts it (None on the CPU)."""
    import torch

    device = torch.device(device)
    if device.type == "cpu":
        return None
    mm = _model_management()
    if mm is not None:
        return int(mm.get_total_memory(device))
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(device).total_memory)
    return None


def on_unload_all_models(release) -> bool:
    """Also call `release()` whenever the host unloads all its models (its "Free model and node cache", /free):
    what the pack holds outside the host's model management (the multi-GPU workers) goes with them. Installed
    once; False outside the host."""
    mm = _model_management()
    if mm is None or not hasattr(mm, "unload_all_models"):
        return False
    current = mm.unload_all_models
    if getattr(current, "wanvideo_release", None) is release:
        return True

    def unload_all_models(*args, **kwargs):
        try:
            release()
        finally:
            return current(*args, **kwargs)  # noqa: B012 - the host's unload runs whatever happened to ours

    unload_all_models.wanvideo_release = release
    mm.unload_all_models = unload_all_models
    return True
