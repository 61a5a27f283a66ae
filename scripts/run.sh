#!/usr/bin/env bash
# One entry point for a fresh machine (Python 3.11 + pip only) and for CI.
#   bash scripts/run.sh repro   set up, then run the main job: python -m reproduce.table6
#   bash scripts/run.sh test    set up, then lint (ruff, incl. complexity), verify the committed results
#                               (python -m reproduce verify) and run the test suite (pytest, in
#                               PYTEST_WORKERS=2 worker processes; 0 runs it in this process)
#   bash scripts/run.sh setup   set up only
# Setup installs this package with the suite's extras (pip install -e ".[repro,test,lint]") at the
# exact versions of constraints.txt (torch==2.14.1, torchvision==0.29.1, ...) into the current Python;
# it is skipped when neither pyproject.toml nor constraints.txt changed since the last run.
# (The library alone, with compatible versions: pip install . — it needs only torch and scipy.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

setup() {
  local stamp=.setup-stamp want
  want="$($PY -c 'import sys; print(sys.executable)') $(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
     && $PY -c 'import acda, reproduce, torch, torchvision, fvcore, pandas, pytest, pytest_benchmark, xdist' 2>/dev/null; then
    return 0
  fi
  echo "== installing acda-repro[repro,test,lint] at the versions of constraints.txt (first run only) =="
  $PY -m pip install --disable-pip-version-check -q -e ".[repro,test,lint]" -c constraints.txt
  echo "$want" > "$stamp"
}

cmd=${1:-test}; shift || true
case "$cmd" in
  setup) setup ;;
  repro) setup; exec $PY -m reproduce.table6 "$@" ;;
  test)
    setup
    $PY -m ruff check acda reproduce tests benchmarks
    $PY -m reproduce verify
    set +e
    $PY -m pytest -n "${PYTEST_WORKERS:-2}" "$@"
    rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then echo "pytest collected no tests (exit 5): a run in which no test executed fails" >&2; fi
    exit "$rc" ;;
  *) echo "usage: bash scripts/run.sh [setup|repro|test] [args...]" >&2; exit 2 ;;
esac
