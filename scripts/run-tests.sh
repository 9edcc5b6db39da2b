#!/usr/bin/env bash
# Runs the static checks (scripts/lint.sh), then the whole suite. PostgreSQL tests use the server at
# 127.0.0.1:5432 when it answers.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
if [ -z "${ECERT_TEST_POSTGRES_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
   && pg_isready -q -h 127.0.0.1 -p 5432; then
  export ECERT_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/test"
fi
echo "PostgreSQL for tests: ${ECERT_TEST_POSTGRES_URL:-none (PostgreSQL tests will be skipped)}"
scripts/lint.sh || exit 1
"$BIN/pytest" "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests"
  exit 0
fi
exit "$status"
