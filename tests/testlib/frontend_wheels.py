"""The real ComfyUI front end, from the `comfyui-frontend-package` wheel on PyPI, for the browser tests.

Three versions are tested: the ones ComfyUI 0.3.64 and 0.33.0 pin and the newest we checked. Two versions of one
package cannot live in one virtual environment, so each wheel is downloaded with pip (no dependencies,
nothing installed) into the git-ignored `.cache/comfyui-frontend/` and its `static/` folder unpacked
there once. `scripts/run_tests.sh` calls this before pytest so a network problem shows up first.

    python tests/testlib/frontend_wheels.py          # fetch and unpack both (idempotent)
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".cache" / "comfyui-frontend"

PINNED_BY_COMFYUI = "1.27.10"  # ComfyUI 0.3.64's requirements.txt
PINNED_BY_COMFYUI_033 = "1.49.6"  # ComfyUI 0.33.0's requirements.txt
NEWEST_CHECKED = "1.58.1"  # newest on PyPI when the browser test was written
VERSIONS = (PINNED_BY_COMFYUI, PINNED_BY_COMFYUI_033, NEWEST_CHECKED)

STATIC_PREFIX = "comfyui_frontend_package/static/"


class FrontendUnavailable(RuntimeError):
    pass


def static_dir(version: str) -> Path:
    """The unpacked `static/` folder (index.html, assets, scripts) of front-end `version`; fetched if missing."""
    target = CACHE / version / "static"
    if (target / "index.html").is_file():
        return target
    wheels = CACHE / version / "wheel"
    wheel = next(iter(sorted(wheels.glob("comfyui_frontend_package-*.whl"))), None)
    if wheel is None:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
               f"comfyui-frontend-package=={version}", "-d", str(wheels)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheel = next(iter(sorted(wheels.glob("comfyui_frontend_package-*.whl"))), None)
        if done.returncode != 0 or wheel is None:
            raise FrontendUnavailable(f"could not download comfyui-frontend-package=={version} with pip "
                                      f"(exit {done.returncode}): {done.stderr.strip()[-800:]}")
    partial = target.with_name("static.partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by an interrupted unpack
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            # Source maps are half of the wheel and never loaded by the page.
            if not info.filename.startswith(STATIC_PREFIX) or info.filename.endswith(".map") or info.is_dir():
                continue
            out = partial / info.filename[len(STATIC_PREFIX):]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(zf.read(info))
    partial.rename(target)  # complete or absent, never half-unpacked
    return target


if __name__ == "__main__":
    for v in VERSIONS:
        print(f"comfyui-frontend-package {v}: {static_dir(v)}")
