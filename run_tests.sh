#!/usr/bin/env bash
# Set up the environment if needed, then run the whole test suite (no GPU, no network needed).
# Extra arguments go to pytest, e.g. ./run_tests.sh -k losses
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$ROOT/scripts/ensure_env.sh"
VENV=${PAPERKIT_VENV:-$ROOT/.venv}
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
# Lint first (line length, import order, unused names: pyproject.toml [tool.ruff]): a violation fails the command.
"$VENV/bin/python" -m ruff check .
set +e
"$VENV/bin/python" -m pytest -ra "$@"
status=$?
set -e
# pytest exits 5 when it collected no test: that is a failure here, not a pass.
if [ "$status" -eq 5 ]; then echo "error: no tests were collected" >&2; exit 1; fi
exit "$status"
