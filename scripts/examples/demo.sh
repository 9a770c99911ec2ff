#!/usr/bin/env bash
# One command on a fresh machine: sets itself up, then makes a talking video with sound.
#
#   bash scripts/examples/demo.sh                                   # the pack's own sample portrait and speech
#   bash scripts/examples/demo.sh [options]                         # the same, with `python -m wanvideo generate` options
#   bash scripts/examples/demo.sh PORTRAIT SPEECH OUT.mp4 [options] # your own portrait and speech
#
# The sample (assets/demo_portrait.png, a drawn face; assets/demo_speech.wav, a synthesised voice, made by
# scripts/examples/make_demo_assets.py) goes to output/infinitetalk_demo.mp4 unless --output says otherwise.
#
# Without model options it runs the embedded tiny random-weight model set on the CPU: the picture is
# noise, the sound and the timing are real (a few minutes for a few seconds of speech). Add
# `--models-dir /path/to/ComfyUI/models` (and a GPU) for the real video.
#
# Python: $WANVIDEO_PYTHON if set (e.g. ComfyUI's own python, which already has torch and the pack's
# requirements), else the pack's .venv, created on first use with the pinned CPU build of torch
# (requirements-test.txt, the same environment as scripts/run_tests.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  # No inputs named: the shipped sample; any arguments are generate options (a later --output wins).
  mkdir -p output
  image="$PWD/assets/demo_portrait.png"; audio="$PWD/assets/demo_speech.wav"; output="$PWD/output/infinitetalk_demo.mp4"
elif [ "$#" -lt 3 ]; then
  echo "usage: bash scripts/examples/demo.sh [PORTRAIT SPEECH OUT.mp4] [options of: python -m wanvideo generate --help]" >&2
  exit 2
else
  image="$1"; audio="$2"; output="$3"; shift 3
  # Paths given relative to where the user stands, not to the repository.
  abspath() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$OLDPWD" "$1" ;; esac; }
  image="$(abspath "$image")"; audio="$(abspath "$audio")"; output="$(abspath "$output")"
fi

if [ -n "${WANVIDEO_PYTHON:-}" ]; then
  py="$WANVIDEO_PYTHON"
else
  if [ ! -x .venv/bin/python ]; then
    echo "setting up .venv (first run only)..." >&2
    "${PYTHON:-python3}" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
  py=.venv/bin/python
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc 2>/dev/null || echo 2)}"
exec "$py" -m wanvideo generate --image "$image" --audio "$audio" --output "$output" "$@"
