#!/usr/bin/env bash
# The native CPU kernels under AddressSanitizer, eager and through torch.compile.
#   bash scripts/asan.sh                  the compile matrix on the native backend, then the native op tests and the fuzz
#   bash scripts/asan.sh tests/test_x.py  pytest arguments replace the default selection
# Builds (once, cached beside the normal build) the extension with -fsanitize=address (ACDA_SANITIZE=address) and
# runs pytest with the sanitizer runtime preloaded; any out-of-bounds access in the kernels aborts the run with
# ASan's report. Needs gcc's libasan (Debian: libgcc-12-dev). Exit status: pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CXX=${CXX:-c++}

asan=$($CXX -print-file-name=libasan.so)
stdcxx=$($CXX -print-file-name=libstdc++.so)
if [ ! -e "$asan" ] || [ "${asan#/}" = "$asan" ]; then
  echo "scripts/asan.sh: $CXX has no AddressSanitizer runtime (libasan.so not found)" >&2
  exit 2
fi

export ACDA_SANITIZE=address
# leaks: CPython and torch keep allocations for the life of the process; the kernels are checked for bad accesses
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1}
# libstdc++ preloaded too: ASan must find the real __cxa_throw when triton's and torch's libraries load
export LD_PRELOAD="$asan $stdcxx${LD_PRELOAD:+ $LD_PRELOAD}"
pytest() { $PY -m pytest -q -p no:cacheprovider "$@"; }
if [ "$#" -gt 0 ]; then
  pytest "$@"
else
  pytest tests/test_compile_matrix.py -k "native and agrees"
  pytest tests/test_alpha_path.py tests/test_fused_op.py tests/test_ops_native.py tests/test_fuzz.py
fi
