#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for scripts/gpu/gpu_checks.sh, on a machine WITH access to PyPI, before a GPU machine
# without network runs the checks. The device tool sends the working tree plus the ignored paths named in `carry`
# (64 MiB in all): this folder is about 55 MiB.
#   .gpu/wheels/                   packages the GPU image lacks (Python 3.12 x86-64 wheels, no dependencies):
#                                  av (our frame store), diffusers (the random Wan VAE of window_speed), gguf,
#                                  sageattention 1.x (Triton kernels, pure Python)
#   .gpu/ComfyUI/, .gpu/ComfyUI-WanVideoWrapper/
#                                  the checkouts the side-by-side imports, Python sources only (tokenizers, example
#                                  media and model data left out: no forward reads them), with their commit recorded
# Usage: bash scripts/gpu/gpu_checks_prepare.sh WRAPPER_CHECKOUT COMFYUI_CHECKOUT
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -ne 2 ]; then
  echo "usage: $0 WRAPPER_CHECKOUT COMFYUI_CHECKOUT (a kijai/ComfyUI-WanVideoWrapper and a ComfyUI v0.3.64 checkout)" >&2
  exit 2
fi
PY="${PYTHON:-.venv/bin/python}"
rm -rf .gpu
mkdir -p .gpu/wheels

copy_sources() {  # copy_sources SRC DEST: the .py files (and the commit) of a checkout
  local src=$1 dest=$2
  if [ ! -d "$src" ]; then echo "error: no checkout at $src" >&2; exit 2; fi
  mkdir -p "$dest"
  (cd "$src" && find . -name '*.py' -not -path './.git/*' -not -path './tests*' -print0) | tar -C "$src" --null -T - -cf - | tar -C "$dest" -xf -
  if [ -f "$src/.exported_commit" ]; then
    cp "$src/.exported_commit" "$dest/"
  else
    git -C "$src" rev-parse HEAD > "$dest/.exported_commit"
  fi
}
copy_sources "$1" .gpu/ComfyUI-WanVideoWrapper
copy_sources "$2" .gpu/ComfyUI

# Versions as in requirements-test.txt where pinned there.
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .gpu/wheels \
  av==18.1.0 diffusers==0.42.1 gguf==0.19.0 sageattention==1.0.6
du -sh .gpu .gpu/* | sed 's/^/prepared: /'
echo "next, with the device tool: run(command=\"bash scripts/gpu/gpu_checks.sh\", carry=[\".gpu\"], timeout_s=600)"
