#!/usr/bin/env bash
# Sets up a private virtual environment (.venv, CPU torch pinned) and runs the test suite.
# Usage: bash scripts/run_tests.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
# Lint first: CI fails on it (configuration in pyproject.toml).
.venv/bin/ruff check --quiet .
# The engine's type check: the contracts (wanvideo/contracts.py) and annotated code (configuration in pyproject.toml).
.venv/bin/python -m mypy
# The real ComfyUI front ends the browser tests serve (wheels from PyPI, cached in the ignored .cache/).
.venv/bin/python tests/testlib/frontend_wheels.py >/dev/null
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "${@:-tests}"
rc=$?
set -e
# pytest exits 5 when nothing was collected: that is a failure for us, not a pass.
exit $rc
