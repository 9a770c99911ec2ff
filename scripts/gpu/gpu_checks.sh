#!/usr/bin/env bash
# Every GPU figure of the speed options, in ONE run on a lent GPU machine (one H200; no network; 10 minutes a command).
#
#   1. here, with PyPI:  bash scripts/gpu/gpu_checks_prepare.sh /path/to/ComfyUI-WanVideoWrapper /path/to/ComfyUI
#   2. device tool:      run(command="bash scripts/gpu/gpu_checks.sh", carry=[".gpu"], timeout_s=600)
#      (a subset:        GPU_CHECKS_ONLY="compile gguf_forward" bash scripts/gpu/gpu_checks.sh)
#   All checks take more than one command's 10 minutes: those the budget skipped say so (RESULT check_X_skipped=1);
#   run them in a second call AT ONCE, while the machine is still warm (it goes back 30 s after a call).
#
# Checks, most wanted first, each with its own time limit inside an overall budget (GPU_CHECKS_BUDGET seconds,
# default 540) so that the whole run ends inside one command; a failing or timed-out check does not stop the next:
#   env           nvidia-smi, torch and CUDA versions, GPU count
#   side_by_side  scripts/compare_wrapper/wrapper_side_by_side.py --config 14b: the wrapper vs ours, same weights and inputs
#                 (forward_ratio, step_ratio; needs .gpu/ComfyUI and .gpu/ComfyUI-WanVideoWrapper)
#   window_speed  benchmarks/window_speed.py --device cuda at GPU_CHECKS_STEPS steps (default 2, to fit the lease: it
#                 runs three windows): seconds_per_window there; at 40 steps it is that + 38 x ours_step_seconds
#   fp8           torch._scaled_mm on fp8 weights vs dequantise-per-layer (same output, ratio)
#   attention     SageAttention / FlashAttention available, same output, forward ratio vs sdpa
#   compile       torch.compile (inductor) of the blocks: compile time, same output, ratio, recompiles
#   gguf_forward  benchmarks/gguf_forward.py GPU part (Q8_0 / Q4_0 vs bf16)
#   multi_gpu     benchmarks/multi_gpu.py, only with more than one GPU
# Every check prints RESULT name=value lines, plus RESULT check_<name>_rc= and check_<name>_seconds=.
# The whole log and the RESULT lines are also written to $OUT (a remote runner can collect them from there).
set -u
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
LOGDIR="${OUT:-/tmp/gpu_checks}"
mkdir -p "$LOGDIR"
LOG="$LOGDIR/gpu_checks.log"
: > "$LOG"
export PYTHONUNBUFFERED=1
BUDGET="${GPU_CHECKS_BUDGET:-540}"
DEADLINE=$(( $(date +%s) + BUDGET ))
STEPS="${GPU_CHECKS_STEPS:-2}"

if ls .gpu/wheels/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu_checks_site \
    .gpu/wheels/*.whl >>"$LOG" 2>&1 && export PYTHONPATH="/tmp/gpu_checks_site${PYTHONPATH:+:$PYTHONPATH}"
else
  echo "note: no .gpu/wheels (run scripts/gpu/gpu_checks_prepare.sh first): checks needing av/diffusers/gguf may fail" | tee -a "$LOG"
fi

check() {  # check NAME LIMIT_SECONDS COMMAND...
  local name=$1 limit=$2 start rc left
  shift 2
  if [ -n "${GPU_CHECKS_ONLY:-}" ] && [[ " $GPU_CHECKS_ONLY " != *" $name "* ]]; then
    return
  fi
  left=$(( DEADLINE - $(date +%s) - 5 ))
  if [ "$left" -lt 20 ]; then
    echo "RESULT check_${name}_skipped=1" | tee -a "$LOG"
    echo "  (budget spent: rerun with GPU_CHECKS_ONLY=\"$name\")" | tee -a "$LOG"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit} s): $*" | tee -a "$LOG"
  start=$(date +%s)
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  echo "RESULT check_${name}_rc=$rc" | tee -a "$LOG"
  echo "RESULT check_${name}_seconds=$(( $(date +%s) - start ))" | tee -a "$LOG"
}

check env 60 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY -c 'import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"gpus\", torch.cuda.device_count())'"
check side_by_side 200 "$PY" scripts/compare_wrapper/wrapper_side_by_side.py --wrapper .gpu/ComfyUI-WanVideoWrapper \
  --comfyui .gpu/ComfyUI --device cuda --config 14b --repeat 2 --time-anyway
check window_speed 240 "$PY" benchmarks/window_speed.py --device cuda --steps "$STEPS"
check fp8 60 "$PY" scripts/gpu/gpu_option_checks.py fp8
check attention 90 "$PY" scripts/gpu/gpu_option_checks.py attention
check compile 150 "$PY" scripts/gpu/gpu_option_checks.py compile
check gguf_forward 150 "$PY" benchmarks/gguf_forward.py --skip-cpu --repeats 2
GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)
if [ "${GPUS:-0}" -gt 1 ]; then
  check multi_gpu 240 "$PY" benchmarks/multi_gpu.py --repeats 2
else
  echo "RESULT check_multi_gpu_skipped=1" | tee -a "$LOG"
  echo "  (multi_gpu needs more than one GPU; ${GPUS:-0} here)" | tee -a "$LOG"
fi
grep '^RESULT ' "$LOG" > "$LOGDIR/results.txt"
echo "=== done: $(wc -l < "$LOGDIR/results.txt") RESULT lines in $LOGDIR/results.txt"
