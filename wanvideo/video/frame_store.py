"""Disk-backed frame store: the sampler's output (pack type INFINITETALK_FRAMES).

Every finished window is written at once as one lossless FFV1 segment
(Matroska, `bgr0`, exact 8-bit RGB round trip, typically 3-8 % of raw size on
real video), so memory does not grow with the video's length and a crash
keeps every finished window. `manifest.json` lists the finished windows; it
is rewritten atomically after each segment, so a reader (or a resumed run)
never sees a half-written window. Beside each window's frames the store keeps
the small state the next window needs (InfiniteTalk: the motion latent;
WanAnimate: the refert frames), every window's, so a rerun with the same inputs
continues exactly where the run stopped, and a damaged segment anywhere (sha256
per segment and per state in the manifest) is regenerated alone from the state
before it: the windows before and after it are reused. Where that state is lost
too, the run goes back to the nearest window whose state survives (the minimal
span). Cost: one state file per window (see docs/failures.md).

Consumers rely only on `len(store)`, `store.fps`, `store.width`,
`store.height` and `store.iter_frames()` (H×W×3 uint8 arrays, in order).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from typing import Iterator

import numpy as np

from .. import outputs
from ..errors import InputError, OutputError, WanVideoError
from .run_lock import LOCK_NAME, RunLock

log = logging.getLogger(__name__)

FORMAT = "infinitetalk-frame-store/v1"
MANIFEST = "manifest.json"
_SEGMENT = "window_{:05d}.mkv"
_STATE = "state_{:05d}.safetensors"
_KEY_RE = re.compile(r"^[0-9a-f]{8,128}$")


class FrameStoreError(WanVideoError):
    """The store on disk is missing or damaged; the message says which file."""


def _atomic_write_bytes(path: str, data: bytes) -> None:
    outputs.write_bytes(path, data)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encode_segment(frames: np.ndarray, path: str, fps: float) -> int:
    """Write [n, H, W, 3] uint8 frames as one lossless FFV1 segment (atomically); returns its size in bytes."""
    from fractions import Fraction

    import av

    tmp = outputs.temp_path(path)
    n, height, width, _ = frames.shape
    try:
        with av.open(tmp, "w", format="matroska") as container:
            stream = container.add_stream("ffv1", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = width, height
            stream.pix_fmt = "bgr0"  # FFV1's lossless packed 8-bit RGB
            for frame in frames:
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                for packet in stream.encode(video_frame.reformat(format="bgr0")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
    except (OSError, av.error.FFmpegError) as exc:
        outputs.discard(tmp)
        if isinstance(exc, OSError) and outputs.is_user_fault(exc):
            raise outputs.output_error(exc, path) from None
        if "No space left" in str(exc):
            raise OutputError(f"cannot write {path}: the disk is full; free some space and run again "
                              "(the finished windows are kept and the run resumes)") from None
        raise
    outputs.commit(tmp, path)
    return os.path.getsize(path)


def decode_segment(path: str, skip: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
    """Frames of one segment as H×W×3 uint8, from frame `skip`, at most `count` of them."""
    import av

    emitted = 0
    try:
        with av.open(path) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index < skip:
                    continue
                if count is not None and emitted >= count:
                    break
                yield frame.to_ndarray(format="rgb24")
                emitted += 1
    except (av.error.FFmpegError, ValueError) as exc:
        raise FrameStoreError(f"frame store segment {path} is damaged ({exc}): run the sampler again with the same "
                              "inputs; it regenerates the damaged window") from None


class FrameStore:
    """Frames on disk, written window by window. Open an existing store with `FrameStore(path)`."""

    _lock: RunLock  # held by a store that open_for_run returned, until release()

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        manifest_path = os.path.join(self.path, MANIFEST)
        try:
            with open(manifest_path, encoding="utf-8") as handle:
                self._manifest = json.load(handle)
        except FileNotFoundError:
            raise FrameStoreError(f"no frame store at {self.path} ({MANIFEST} missing)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FrameStoreError(f"frame store manifest {manifest_path} is damaged: {exc}") from None
        if not isinstance(self._manifest, dict) or self._manifest.get("format") != FORMAT:
            raise FrameStoreError(f"{manifest_path} is not a {FORMAT} manifest")
        legacy = self._manifest.pop("state", None)  # stores written before per-window states: the newest only
        states = self._manifest.setdefault("states", {})
        if isinstance(legacy, dict) and "window" in legacy and "file" in legacy:
            states.setdefault(str(legacy["window"]), {"file": legacy["file"]})

    # -- creation / resume -------------------------------------------------------------------------------

    @classmethod
    def open_for_run(cls, root: str, key: str, *, width: int, height: int, fps: float, total_frames: int,
                     num_windows: int, info: dict | None = None, lock_wait: float = 0.0) -> "FrameStore":
        """The store for a run identified by `key` under `root`: resumed if one exists, else new.

        An existing store keeps its intact windows and states (checked against their sizes and checksums);
        damaged ones and any half-written file are removed (see `windows_to_make`). Another process working
        in the same store: waited for up to `lock_wait` seconds, then a RunInProgressError naming it.
        """
        if not _KEY_RE.match(key):
            raise InputError(f"frame store key must be a hex digest, got {key!r}")
        path = os.path.join(os.path.abspath(root), key)
        if os.path.exists(root) and not os.path.isdir(root):
            raise InputError(f"the work folder {root} is a file: give a folder (or remove the file)")
        try:
            lock = RunLock.acquire(path, wait=lock_wait)
        except OSError as exc:
            raise outputs.output_error(exc, path, "use the work folder") from None
        try:
            expected = dict(width=int(width), height=int(height), fps=float(fps), total_frames=int(total_frames),
                            num_windows=int(num_windows))
            store = cls._open_locked(path, key, expected, info)
        except BaseException:
            lock.release()
            raise
        store._lock = lock
        return store

    @classmethod
    def _open_locked(cls, path: str, key: str, expected: dict, info: dict | None) -> "FrameStore":
        if os.path.exists(os.path.join(path, MANIFEST)):
            try:
                store = cls(path)
            except FrameStoreError as exc:
                log.warning("WanVideo InfiniteTalk: %s; starting this run's frames afresh", exc)
            else:
                if all(store._manifest.get(k) == v for k, v in expected.items()):
                    store._validate_finished()
                    return store
                log.warning("WanVideo InfiniteTalk: frame store %s does not match this run; starting afresh", path)
            _clear(path)
        os.makedirs(path, exist_ok=True)
        manifest = dict(format=FORMAT, key=key, **expected, windows=[], frames=0, complete=False,
                        states={}, info=info or {})
        _atomic_write_bytes(os.path.join(path, MANIFEST), json.dumps(manifest, indent=1).encode())
        return cls(path)

    def _validate_finished(self) -> None:
        """Keep what is intact, and what a rerun needs to make the rest exactly (see `windows_to_make`)."""
        windows = [e for e in self._manifest["windows"] if self._segment_intact(e)]
        states = {k: v for k, v in self._manifest["states"].items() if self._state_intact(int(k), v)}
        to_make = set(range(self.num_windows)) - {e["index"] for e in windows}
        span = _continuable(to_make, {int(k) for k in states})
        again = sorted(span - to_make)
        if again:
            log.warning("WanVideo InfiniteTalk: the state window %d of %s hands to the next is missing or damaged; "
                        "window%s %s on disk will be made again to continue exactly", again[-1] + 1, self.path,
                        "s" if len(again) > 1 else "", ", ".join(str(i + 1) for i in again))
        windows = [e for e in windows if e["index"] not in span]
        if windows != self._manifest["windows"] or states != self._manifest["states"]:
            self._manifest["windows"] = windows
            self._manifest["frames"] = sum(e["frames"] for e in windows)
            self._manifest["complete"] = False
            self._manifest["states"] = states
            self._save_manifest()
        keep = {MANIFEST, LOCK_NAME} | {e["file"] for e in windows} | {v["file"] for v in states.values()}
        for name in os.listdir(self.path):
            if name not in keep:
                _remove(os.path.join(self.path, name))

    def _segment_intact(self, entry: dict) -> bool:
        file = os.path.join(self.path, entry["file"])
        if not os.path.isfile(file) or os.path.getsize(file) != entry["bytes"]:
            log.warning("WanVideo InfiniteTalk: window %d of %s is missing or truncated; it will be made again",
                        entry["index"] + 1, self.path)
            return False
        if entry.get("sha256") and file_sha256(file) != entry["sha256"]:
            log.warning("WanVideo InfiniteTalk: window %d of %s is damaged (its checksum does not match the "
                        "manifest); it will be regenerated, the windows around it are kept", entry["index"] + 1,
                        self.path)
            return False
        return True

    def _state_intact(self, index: int, record: dict) -> bool:
        file = os.path.join(self.path, record["file"])
        if not os.path.isfile(file) or ("bytes" in record and os.path.getsize(file) != record["bytes"]):
            return False
        return not record.get("sha256") or file_sha256(file) == record["sha256"]

    def _save_manifest(self) -> None:
        _atomic_write_bytes(os.path.join(self.path, MANIFEST), json.dumps(self._manifest, indent=1).encode())

    # -- writing ------------------------------------------------------------------------------------------

    def write_window(self, index: int, frames: np.ndarray, state: dict | None = None) -> None:
        """Persist finished window `index` (its kept frames, [n, H, W, 3] uint8) and the state for the next one.

        Windows are made in order: every window before `index` is on disk, `index` is not (it is new, or a
        damaged one being made again while the windows after it stay)."""
        on_disk = {e["index"] for e in self._manifest["windows"]}
        if index in on_disk or not set(range(index)) <= on_disk or not 0 <= index < self.num_windows:
            raise FrameStoreError(f"window {index} written out of order (store has windows {sorted(on_disk)} "
                                  f"of {self.num_windows})")
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (self.height, self.width, 3):
            raise FrameStoreError(
                f"window frames must be uint8 [n, {self.height}, {self.width}, 3], got {frames.dtype} {frames.shape}")
        if not len(frames):
            raise FrameStoreError(f"window {index} has no frames to keep")
        name = _SEGMENT.format(index)
        segment = os.path.join(self.path, name)
        size = encode_segment(frames, segment, self.fps)
        if state:
            from safetensors.torch import save

            state_name = _STATE.format(index)
            data = save({k: v.detach().cpu().contiguous() for k, v in state.items()})
            _atomic_write_bytes(os.path.join(self.path, state_name), data)
            self._manifest["states"][str(index)] = {"file": state_name, "bytes": len(data),
                                                    "sha256": hashlib.sha256(data).hexdigest()}
        self._manifest["windows"].append({"index": index, "file": name, "frames": int(len(frames)), "bytes": size,
                                          "sha256": file_sha256(segment)})
        self._manifest["windows"].sort(key=lambda e: e["index"])
        self._manifest["frames"] += int(len(frames))
        self._save_manifest()

    def adopt_window_keys(self, keys: list[str]) -> int | None:
        """Record a key per window for inputs that may change between runs of the same store (a prompt per
        window): the windows on disk from the first whose recorded key differs are dropped, to be made again
        (each window continues from the one before). Returns that window's index (None: nothing dropped)."""
        old = list(self._manifest.get("window_keys") or [])
        on_disk = sorted(e["index"] for e in self._manifest["windows"])
        last = on_disk[-1] if on_disk else -1  # a window counts even when it is not on disk (damaged): later ones
        changed = next((i for i in range(last + 1) if i >= len(old) or i >= len(keys) or old[i] != keys[i]), None)
        stale = []
        if changed is not None:
            stale = [e["file"] for e in self._manifest["windows"] if e["index"] >= changed]
            stale += [v["file"] for k, v in self._manifest["states"].items() if int(k) >= changed]
            self._manifest["windows"] = [e for e in self._manifest["windows"] if e["index"] < changed]
            self._manifest["frames"] = sum(e["frames"] for e in self._manifest["windows"])
            self._manifest["complete"] = False
            self._manifest["states"] = {k: v for k, v in self._manifest["states"].items() if int(k) < changed}
        self._manifest["window_keys"] = list(keys)
        self._save_manifest()  # first: a crash now leaves stray files, never a manifest naming removed ones
        for name in stale:
            _remove(os.path.join(self.path, name))
        return changed

    def windows_to_make(self) -> list[int]:
        """Indices of the windows not (or no longer) on disk, in order: what a run with this store makes."""
        on_disk = {e["index"] for e in self._manifest["windows"]}
        return [i for i in range(self.num_windows) if i not in on_disk]

    def has_state(self, index: int) -> bool:
        return str(int(index)) in self._manifest["states"]

    def load_state(self, index: int | None = None) -> dict:
        """Tensors saved with window `index` (default: the last window on disk) for the next one; empty when none."""
        if index is None:
            if not self._manifest["windows"]:
                return {}
            index = self._manifest["windows"][-1]["index"]
        record = self._manifest["states"].get(str(int(index)))
        if not record:
            return {}
        from safetensors.torch import load_file

        return load_file(os.path.join(self.path, record["file"]))

    def release(self) -> None:
        """Let another run use this store's folder (the run that wrote it is over)."""
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

    def mark_complete(self) -> None:
        if self.frames_written != self.total_frames or self.windows_to_make():
            raise FrameStoreError(f"store holds {self.frames_written} of {self.total_frames} frames; not complete")
        self._manifest["complete"] = True
        self._save_manifest()

    # -- reading ------------------------------------------------------------------------------------------

    @property
    def key(self) -> str:
        return self._manifest["key"]

    @property
    def fps(self) -> float:
        return float(self._manifest["fps"])

    @property
    def width(self) -> int:
        return int(self._manifest["width"])

    @property
    def height(self) -> int:
        return int(self._manifest["height"])

    @property
    def total_frames(self) -> int:
        """Frames the finished run has (may be more than `len(store)` while running or after a stop)."""
        return int(self._manifest["total_frames"])

    @property
    def num_windows(self) -> int:
        return int(self._manifest["num_windows"])

    @property
    def finished_windows(self) -> int:
        return len(self._manifest["windows"])

    @property
    def frames_written(self) -> int:
        return int(self._manifest["frames"])

    @property
    def complete(self) -> bool:
        return bool(self._manifest["complete"])

    @property
    def info(self) -> dict:
        return dict(self._manifest.get("info") or {})

    def __len__(self) -> int:
        return self.frames_written

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"{self.finished_windows}/{self.num_windows} windows"
        return f"FrameStore({len(self)} frames {self.width}x{self.height} @ {self.fps:g} fps, {state}, {self.path})"

    def window_frames(self, index: int) -> tuple[int, int]:
        """(first frame, frame count) of finished window `index` in the video; (0, 0) if it is not on disk."""
        start = 0
        for entry in self._manifest["windows"]:
            if entry["index"] == index:
                return start, int(entry["frames"])
            start += int(entry["frames"])
        return 0, 0

    def iter_frames(self, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        """H×W×3 uint8 frames in order, from frame `start`, at most `count`; only one segment is open at a time."""
        start = int(start)
        if start < 0:
            raise InputError(f"start must be 0 or more, got {start}")
        remaining = len(self) - start if count is None else min(int(count), len(self) - start)
        offset = 0
        for expected, entry in enumerate(list(self._manifest["windows"])):
            if remaining <= 0:
                break
            if entry["index"] != expected:
                raise FrameStoreError(f"window {expected + 1} of {self.path} is not on disk (it was damaged and is not "
                                      "made again yet): run the sampler again with the same inputs")
            n = entry["frames"]
            if offset + n > start and n:
                skip = max(0, start - offset)
                take = min(n - skip, remaining)
                file = os.path.join(self.path, entry["file"])
                if not os.path.isfile(file):
                    raise FrameStoreError(f"frame store segment {file} is missing (was the temp folder cleared?)")
                got = 0
                for frame in decode_segment(file, skip, take):
                    got += 1
                    yield frame
                if got != take:
                    raise FrameStoreError(f"frame store segment {file} holds fewer frames than its manifest says")
                remaining -= take
            offset += n

    def read_frames(self, start: int = 0, count: int | None = None) -> np.ndarray:
        """[n, H, W, 3] uint8 (loads that slice into memory)."""
        frames = list(self.iter_frames(start, count))
        if not frames:
            return np.zeros((0, self.height, self.width, 3), dtype=np.uint8)
        return np.stack(frames)


def _continuable(to_make: set, states: set) -> set:
    """`to_make` grown by the windows to make again so each window to make gets the state it needs: from the
    window before it (made in this run, or its state on disk); where that state is lost, the window before is
    made again too (the minimal span)."""
    span = set(to_make)
    for index in sorted(to_make, reverse=True):
        while index > 0 and index - 1 not in span and index - 1 not in states:
            index -= 1
            span.add(index)
    return span


def _clear(folder: str) -> None:
    """Remove everything in a store folder but its lock (held by this run)."""
    for name in os.listdir(folder):
        if name != LOCK_NAME:
            _remove(os.path.join(folder, name))


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    except FileNotFoundError:
        pass
