#!/usr/bin/env bash
# Create the virtual environment with everything paperkit needs, if it is missing or stale.
# Idempotent: when .venv matches pyproject.toml and this script, it returns in about a second.
# Override the location with PAPERKIT_VENV and the interpreter with PYTHON.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PAPERKIT_VENV:-$ROOT/.venv}
STAMP=$VENV/.paperkit-env
LAB_SETTINGS=scripts/jupyterlab/overrides.d/paperkit.json
want=$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/ensure_env.sh" "$ROOT/$LAB_SETTINGS" | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "error: paperkit needs Python >= 3.10; '$PY' is $("$PY" --version 2>&1 || echo missing). Set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
echo "paperkit: setting up $VENV (first time: a few minutes, about 6 GB) ..."
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# torch and torchvision must be a matching pair; these are the pairs known to install here.
case "$(uname -m)" in
  x86_64) "${pip[@]}" torch==2.14.1 torchvision==0.29.1 ;;
  aarch64|arm64) "${pip[@]}" torch==2.9.1 torchvision==0.24.1 ;;
  *) "${pip[@]}" torch torchvision ;;
esac
"${pip[@]}" -e "$ROOT[dev]"
# A named kernel pointing at this interpreter, for papermill and for JupyterLab's launcher.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name paperkit --display-name "Python (paperkit)" >/dev/null
# A double-click on notebooks/NN_*.py opens it as a notebook (jupytext's viewer), with the last run's
# outputs from its paired .ipynb. The setting goes into this environment's JupyterLab settings
# overrides, not the user's home; JupyterLab's default viewer is per file type, so every .py file
# opens as a notebook in this JupyterLab (right-click -> Open With -> Editor for the text).
mkdir -p "$VENV/share/jupyter/lab/settings/overrides.d"
cp "$ROOT/$LAB_SETTINGS" "$VENV/share/jupyter/lab/settings/overrides.d/paperkit.json"
echo "$want" > "$STAMP"
echo "paperkit: environment ready ($VENV)"
