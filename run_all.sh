#!/usr/bin/env bash
# Set up the environment if needed, then execute every notebook of a profile with papermill.
#   ./run_all.sh                                   # embedded benchmark, cpu profile (~22 min on 2 cores)
#   ./run_all.sh --profile smoke                   # plumbing check, ~2 min
#   ./run_all.sh --profile nih --data-root /data/ChestX-ray14      # the paper, on a GPU
#   ./run_all.sh --profile chexpert --data-root /data -p seeds=0,1,2 --from 05
# Options: --profile, --data-root, -p KEY=VALUE, --only NB, --from NB, --force (see README).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$ROOT/scripts/ensure_env.sh"
VENV=${PAPERKIT_VENV:-$ROOT/.venv}
export PATH="$VENV/bin:$PATH"
exec "$VENV/bin/python" -m paperkit run "$@"
