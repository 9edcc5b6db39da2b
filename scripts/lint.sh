#!/usr/bin/env bash
# The static checks `make lint` and `make test` run: the layer contract, types, and lint (no formatting).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
"$BIN/lint-imports" || status=1
"$BIN/mypy" || status=1
"$BIN/ruff" check . || status=1
exit "$status"
