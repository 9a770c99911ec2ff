"""The real ComfyUI hosts (scripts/comfyui/host_env.py), for tests that run the pack inside them.

`real_host(version)` prepares the host once per test session (unpacks it, builds or reuses its Python) and
returns {root, python, pythonpath}; with no host archives beside the repository (a plain clone) it skips the
test and says why.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import subprocess

import pytest

from . import REPO_ROOT

HOST_VERSIONS = ("0.33.0", "0.3.64")  # the newest host we test, and the oldest we support
HOST_ENV_SCRIPT = REPO_ROOT / "scripts" / "comfyui" / "host_env.py"


def _host_env():
    spec = importlib.util.spec_from_file_location("host_env", HOST_ENV_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=None)
def _prepared() -> dict | str:
    env = _host_env()
    cache = os.environ.get("WANVIDEO_HOSTS_CACHE") or env.DEFAULT_CACHE
    try:
        return env.prepare(env.Path(cache).expanduser(), env.HOSTS_DIR, None, "python3")
    except FileNotFoundError as exc:
        return f"real ComfyUI hosts unavailable: {exc}; put ComfyUI-<version>.tar.gz into {env.HOSTS_DIR}"


def real_host(version: str) -> dict:
    hosts = _prepared()
    if isinstance(hosts, str):
        pytest.skip(hosts)
    if version not in hosts:
        pytest.skip(f"ComfyUI {version} not among the host archives ({', '.join(hosts)})")
    return hosts[version]


def run_in_host(host: dict, args: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """Run `args` (a script and its arguments) with the host's Python and environment."""
    env = _host_env().host_environment(host)
    env.setdefault("OMP_NUM_THREADS", "2")
    return subprocess.run([host["python"], *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT, **kwargs)
