"""What crosses to the workers: objects pickled here and read back there under the top-level name `wanvideo`.

Inside ComfyUI the engine is imported as part of the pack (`<pack folder>.wanvideo...`), a name a fresh worker
process cannot import. Workers import only the engine, as `wanvideo` (its folder's parent put on sys.path), and
read the jobs with every `*.wanvideo.*` class name mapped to `wanvideo.*`.
"""
from __future__ import annotations

import importlib
import io
import os
import pickle
import sys

ENGINE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def dumps(obj) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


class _EngineUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        parts = module.split(".")
        if "wanvideo" in parts and parts[0] != "wanvideo":
            module = ".".join(parts[parts.index("wanvideo"):])
        return super().find_class(module, name)


def loads(payload: bytes):
    return _EngineUnpickler(io.BytesIO(payload)).load()


def engine_module(name: str):
    """`wanvideo.<name>` imported under the top-level name (what a spawned worker can import too)."""
    if ENGINE_ROOT not in sys.path:
        sys.path.append(ENGINE_ROOT)
    return importlib.import_module(f"wanvideo.{name}")
