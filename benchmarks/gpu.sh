#!/usr/bin/env bash
# The one GPU command (whole-layer GPU targets): on a CUDA machine with only the repository, python3 and pip,
#   bash benchmarks/gpu.sh [--out DIR] [--allow-dirty] [--check] [--help]
# 1. setup: `bash scripts/run.sh setup` (pip install -e ".[repro,test,lint]" -c constraints.txt: torch==2.14.1,
#    torchvision==0.29.1, ...) into $PYTHON, or into a virtual environment .venv made here when PYTHON is unset;
#    ACDA_GPU_SKIP_SETUP=1 uses the interpreter as it is (python3, or $PYTHON)
# 2. preflight (CPU): versions, the output folder, a clean tree (or --allow-dirty), then the CUDA check:
#    without a CUDA device it stops here, before the first CUDA step ("no CUDA device: stopping before the
#    first CUDA step", exit 3)
# 3. CUDA correctness tests on the GPU (TRITON_INTERPRET unset): tests/test_ops_triton*.py, tests/test_*cuda*.py
# 4. benchmarks on CUDA with a short budget: bench_triton.py (Table 6 and ResNet-stage shapes at N=32, TF32/bf16),
#    then bench_acda.py with ACDA_BENCH_DEVICE=cuda
# 5. python -m benchmarks.report → DIR/benchmarks-cuda.md and .csv (default DIR: results), with the whole-layer
#    GPU target verdicts
# 6. python -m reproduce.table7 --device cuda and python -m reproduce.sec32 --device cuda → DIR/cuda/ (the CPU
#    results in DIR are not touched)
# Steps 3-6 are budgeted to 8 minutes on an H200 (a `timeout` each); a failed step is logged and the others still
# run; the exit status is 1 if any step failed. JSONs and the log go to $ACDA_GPU_WORK (default .benchmarks/gpu).
# --check (or ACDA_GPU_SCRIPT_CHECK=1): steps 1-2 and the plan of steps 3-6, then exit 0 without CUDA work.
# Exit status: 0 all steps passed (or --check), 1 a step failed, 2 bad arguments or a dirty tree, 3 no CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

OUT=results
ALLOW_DIRTY=
CHECK=${ACDA_GPU_SCRIPT_CHECK:-0}
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --out) [ $# -ge 2 ] || { echo "gpu.sh: --out needs a folder" >&2; exit 2; }; OUT=$2; shift ;;
    --allow-dirty) ALLOW_DIRTY=--allow-dirty ;;
    --check) CHECK=1 ;;
    *) echo "gpu.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

WORK=${ACDA_GPU_WORK:-.benchmarks/gpu}
mkdir -p "$WORK"
LOG="$WORK/gpu.log"
: > "$LOG"
START=$SECONDS
log() { echo "[gpu.sh $(date +%H:%M:%S) +$((SECONDS - START))s] $*" | tee -a "$LOG"; }
FAILED=()
DRY=0  # set after the preflight in --check mode: the CUDA steps are listed, not run

# step NAME TIMEOUT_S CMD...: run CMD under `timeout`, log its output and duration; a failure is recorded, not fatal
step() {
  local name=$1 limit=$2 t0=$SECONDS rc=0
  shift 2
  log "== $name (timeout ${limit}s): $*"
  [ "$DRY" = 0 ] || return 0
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG" || rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ]; then
    log "-- $name: done in $((SECONDS - t0))s"
  else
    log "!! $name: FAILED (exit $rc$([ "$rc" -eq 124 ] && echo ', timed out')) after $((SECONDS - t0))s"
    FAILED+=("$name")
  fi
}

# 1. setup (scripts/run.sh holds the install logic; it skips the install when nothing changed)
if [ "${ACDA_GPU_SKIP_SETUP:-0}" = 1 ]; then
  PY=${PYTHON:-python3}
  log "== setup: skipped (ACDA_GPU_SKIP_SETUP=1), using $PY"
else
  if [ -z "${PYTHON:-}" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv \
      || { log "python3 -m venv failed: install python3-venv, or set PYTHON=/path/to/python"; exit 1; }
    PYTHON=.venv/bin/python
  fi
  PY=$PYTHON
  step setup 900 env PYTHON="$PY" bash scripts/run.sh setup
  [ ${#FAILED[@]} -eq 0 ] || { log "setup failed: nothing else can run"; exit 1; }
fi

# 2. preflight on the CPU: versions, output folder, clean tree; then the one CUDA question
mkdir -p "$OUT/cuda"
set +e
"$PY" - "$ALLOW_DIRTY" <<'EOF' 2>&1 | tee -a "$LOG"
import sys

import torch

from reproduce.engine.provenance import git_commit

try:
    import triton
    triton_version = triton.__version__
except ImportError:
    triton_version = "not installed"
commit = git_commit()
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA build {torch.version.cuda}), "
      f"triton {triton_version}, commit {commit}")
if commit.endswith("-dirty") and not sys.argv[1]:
    print("gpu.sh: the tree has uncommitted changes: results/ must come from a clean commit. Commit first, or pass "
          "--allow-dirty to write them marked '-dirty'.", file=sys.stderr)
    sys.exit(2)
if not torch.cuda.is_available():
    print("no CUDA device: stopping before the first CUDA step")
    sys.exit(3)
print(f"CUDA device: {torch.cuda.get_device_name()} ({torch.cuda.device_count()} visible)")
EOF
rc=${PIPESTATUS[0]}
set -e
shopt -s nullglob
TESTS=(tests/test_ops_triton*.py tests/test_*cuda*.py)
shopt -u nullglob
BENCH=(-q -p no:cacheprovider --benchmark-enable --benchmark-only --benchmark-max-time=0.05
       --benchmark-min-rounds=3 --benchmark-warmup=off)
if [ "$CHECK" = 1 ] && { [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ]; }; then
  log "check mode: preflight passed; the CUDA steps, not run:"
  DRY=1
elif [ "$rc" -ne 0 ]; then
  log "preflight stopped (exit $rc) after $((SECONDS - START))s"
  exit "$rc"
fi

# 3.-6. the CUDA steps (8 minutes together at most)
if [ ${#TESTS[@]} -gt 0 ]; then
  step cuda-tests 90 env -u TRITON_INTERPRET "$PY" -m pytest -q -p no:cacheprovider "${TESTS[@]}"
else
  log "!! cuda-tests: no tests/test_ops_triton*.py found"; FAILED+=(cuda-tests)
fi
[ "$DRY" = 1 ] || rm -f "$WORK/triton.json" "$WORK/acda.json"
step bench-triton 170 env ACDA_BENCH_SECONDS=0.2 "$PY" -m pytest benchmarks/bench_triton.py "${BENCH[@]}" \
  --benchmark-json="$WORK/triton.json"
step bench-acda 90 env ACDA_BENCH_DEVICE=cuda ACDA_BENCH_SECONDS=0.2 "$PY" -m pytest benchmarks/bench_acda.py \
  "${BENCH[@]}" --benchmark-json="$WORK/acda.json"
JSONS=()
for f in "$WORK/triton.json" "$WORK/acda.json"; do
  if [ "$DRY" = 1 ] || [ -s "$f" ]; then JSONS+=("$f"); fi
done
if [ ${#JSONS[@]} -gt 0 ]; then
  step report 20 "$PY" -m benchmarks.report --json "${JSONS[@]}" --out "$OUT" --device-tag cuda $ALLOW_DIRTY
else
  log "!! report: no benchmark JSON was written"; FAILED+=(report)
fi
step table7 70 "$PY" -m reproduce.table7 --device cuda --out "$OUT/cuda"
step sec32 40 "$PY" -m reproduce.sec32 --device cuda --out "$OUT/cuda"

if [ "$DRY" = 1 ]; then
  log "check mode: stopped before the first CUDA step"
  exit 0
fi
log "total $((SECONDS - START))s; log: $LOG"
if [ ${#FAILED[@]} -gt 0 ]; then
  log "FAILED steps: ${FAILED[*]}"
  exit 1
fi
log "all steps passed: $OUT/benchmarks-cuda.md, $OUT/cuda/table7.md, $OUT/cuda/sec32.md"
