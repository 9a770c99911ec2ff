"""Real ComfyUI hosts for the tests: unpack the host sources outside the repository and build (or reuse) their Python.

    python3 scripts/comfyui/host_env.py                  # prepare every host found, print a summary
    python3 scripts/comfyui/host_env.py --json           # ... and print what a test needs, as JSON
    python3 scripts/comfyui/host_env.py --host 0.33.0    # one host only

The host sources are the archives in `../shared/hosts/` (`ComfyUI-<version>.tar.gz`, see its README); a plain
clone of the pack has no such folder, and then nothing is prepared (exit status 3, the reason on stderr) so the
real-host tests skip and say why. Everything goes into a cache folder, `~/.cache/wanvideo-hosts/` by default
(`--cache` or `WANVIDEO_HOSTS_CACHE`):

- `ComfyUI-<version>/`: each host's source tree, unpacked once and never modified;
- `venv-torch<version>/`: ONE virtualenv for every host, with a matching torch / torchvision / torchaudio trio
  from PyPI (CPU and GPU wheels alike), the newest host's requirements and this pack's `requirements.txt`;
- `overlay-<version>/`: for each other host, the packages it pins differently (its front end, templates,
  embedded docs), installed without dependencies; the host runs with this folder first on `PYTHONPATH`, so it
  imports (and `importlib.metadata` reports) its own pins while torch and the rest are shared.

Why one venv and overlays: torch with its CUDA libraries is ~7 GB; the hosts differ only in the front-end
packages they pin (`comfyui-frontend-package==1.49.6` for 0.33.0, `==1.27.10` for 0.3.64), which are pure
data. Each step is skipped when its result is there already (a stamp file records what was installed), so a
second call takes a second; a step that failed half-way is redone.

Standard library only: it runs with any Python 3.10+ before the host's Python exists.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOSTS_DIR = REPO.parent / "shared" / "hosts"
DEFAULT_CACHE = Path.home() / ".cache" / "wanvideo-hosts"
TORCH_TRIO = ("torch==2.9.1", "torchvision==0.24.1", "torchaudio==2.9.1")
# Packages that differ between hosts and are pure data (no compiled code, no shared dependency).
OVERLAY_PACKAGES = ("comfyui-frontend-package", "comfyui-workflow-templates", "comfyui-embedded-docs")
EXIT_NO_HOSTS = 3


def log(msg: str) -> None:
    print(f"[host-env] {msg}", file=sys.stderr, flush=True)


def version_key(version: str) -> tuple:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def host_archives(hosts_dir: Path) -> dict[str, Path]:
    """{version: archive} of the ComfyUI source archives in `hosts_dir`, newest first."""
    found = {}
    for path in sorted(hosts_dir.glob("ComfyUI-*.tar.gz")):
        found[path.name[len("ComfyUI-"):-len(".tar.gz")]] = path
    return dict(sorted(found.items(), key=lambda kv: version_key(kv[0]), reverse=True))


def unpack(archive: Path, cache: Path, version: str) -> Path:
    root = cache / f"ComfyUI-{version}"
    stamp = cache / f".unpacked-{version}"
    digest = f"{archive.stat().st_size}:{int(archive.stat().st_mtime)}"
    if root.joinpath("main.py").is_file() and stamp.is_file() and stamp.read_text() == digest:
        return root
    log(f"unpacking {archive.name} into {cache}")
    if root.exists():
        subprocess.run(["rm", "-rf", str(root)], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(cache)
    if not root.joinpath("main.py").is_file():
        raise SystemExit(f"{archive} did not unpack to {root}/main.py")
    stamp.write_text(digest)
    return root


def requirement_lines(path: Path) -> list[str]:
    lines = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def requirement_name(line: str) -> str:
    return re.split(r"[<>=~!\[; ]", line, maxsplit=1)[0].strip().lower().replace("_", "-")


def pip(python: Path, *args: str) -> None:
    cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    t0 = time.time()
    log("pip install " + " ".join(args))
    subprocess.run(cmd, check=True)
    log(f"  done in {time.time() - t0:.0f} s")


def stamped(stamp: Path, content: str, step) -> None:
    """Run `step` unless `stamp` records `content` (what was installed) already."""
    if stamp.is_file() and stamp.read_text() == content:
        return
    step()
    stamp.write_text(content)


def build_venv(cache: Path, newest_root: Path, base_python: str) -> Path:
    torch_version = TORCH_TRIO[0].split("==")[1]
    venv = cache / f"venv-torch{torch_version}"
    python = venv / "bin" / "python"
    if not python.exists():
        log(f"creating {venv}")
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    # The trio first and alone: the host's requirements name torch unpinned and must not move it.
    stamped(venv / ".stamp-torch", " ".join(TORCH_TRIO), lambda: pip(python, *TORCH_TRIO))
    host_reqs = newest_root / "requirements.txt"
    pack_reqs = REPO / "requirements.txt"
    content = hashlib.sha256(host_reqs.read_bytes() + pack_reqs.read_bytes()).hexdigest()
    stamped(venv / ".stamp-requirements", content,
            lambda: pip(python, "-r", str(host_reqs), "-r", str(pack_reqs), *TORCH_TRIO))
    return python


def build_overlay(cache: Path, python: Path, root: Path, version: str, shared_pins: dict[str, str]) -> Path | None:
    """The packages `root` pins differently from the shared venv, in a folder put first on PYTHONPATH."""
    pins = [line for line in requirement_lines(root / "requirements.txt")
            if requirement_name(line) in OVERLAY_PACKAGES and shared_pins.get(requirement_name(line)) != line]
    if not pins:
        return None
    overlay = cache / f"overlay-{version}"
    stamp = cache / f".stamp-overlay-{version}"

    def install():
        if overlay.exists():
            subprocess.run(["rm", "-rf", str(overlay)], check=True)
        pip(python, "--no-deps", "--target", str(overlay), *pins)

    stamped(stamp, " ".join(pins), install)
    return overlay


def prepare(cache: Path, hosts_dir: Path, only: list[str] | None, base_python: str) -> dict:
    archives = host_archives(hosts_dir)
    if not archives:
        raise FileNotFoundError(f"no ComfyUI host archives in {hosts_dir} (a plain clone has none)")
    cache.mkdir(parents=True, exist_ok=True)
    roots = {version: unpack(archive, cache, version) for version, archive in archives.items()
             if not only or version in only}
    if only and set(only) - set(roots):
        raise FileNotFoundError(f"no archive for host {sorted(set(only) - set(roots))} in {hosts_dir}")
    newest = next(iter(archives))
    newest_root = roots.get(newest) or unpack(archives[newest], cache, newest)
    python = build_venv(cache, newest_root, base_python)
    shared_pins = {requirement_name(line): line for line in requirement_lines(newest_root / "requirements.txt")}
    hosts = {}
    for version, root in roots.items():
        overlay = build_overlay(cache, python, root, version, shared_pins)
        hosts[version] = {"root": str(root), "python": str(python),
                          "pythonpath": str(overlay) if overlay else ""}
    return hosts


def host_environment(host: dict) -> dict:
    """os.environ for running `host` (its overlay first on PYTHONPATH)."""
    env = dict(os.environ)
    if host.get("pythonpath"):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (host["pythonpath"], env.get("PYTHONPATH")) if p)
    return env


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("WANVIDEO_HOSTS_CACHE") or DEFAULT_CACHE))
    ap.add_argument("--hosts-dir", type=Path, default=HOSTS_DIR, help="folder of ComfyUI-<version>.tar.gz")
    ap.add_argument("--host", action="append", help="only this version (repeatable)")
    ap.add_argument("--base-python", default=sys.executable, help="Python that creates the venv")
    ap.add_argument("--json", action="store_true", help="print {version: {root, python, pythonpath}} as JSON")
    args = ap.parse_args(argv)
    try:
        hosts = prepare(args.cache.expanduser(), args.hosts_dir, args.host, args.base_python)
    except FileNotFoundError as exc:
        log(f"skipped: {exc}")
        return EXIT_NO_HOSTS
    if args.json:
        print(json.dumps(hosts, indent=1))
    else:
        for version, host in hosts.items():
            overlay = f" (overlay {host['pythonpath']})" if host["pythonpath"] else ""
            print(f"ComfyUI {version}: {host['root']} with {host['python']}{overlay}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
