#!/usr/bin/env bash
# Screenshot a notebook as JupyterLab renders it after a double-click (its default viewer), with a
# headless Chromium: a check by eye of what tests/test_jupyter.py checks through the server's API.
# Not part of CI (it needs a browser: apt-get install chromium).
#   bash scripts/screenshot_notebook.sh [notebooks/05_target_training.py] [out.png]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PAPERKIT_VENV:-$ROOT/.venv}
NOTEBOOK=${1:-notebooks/05_target_training.py}
OUT=${2:-$ROOT/results/notebook_screenshot.png}
mkdir -p "$(dirname "$OUT")"
BROWSER=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$BROWSER" ]; then
  echo "error: no Chromium found (apt-get install chromium)" >&2
  exit 2
fi
SETTINGS=()
if [ ! -f "$VENV/share/jupyter/lab/settings/overrides.d/paperkit.json" ]; then
  # an environment set up before the setting existed: use the repository's copy of it
  echo "note: $VENV lacks the default-viewer setting (bash scripts/ensure_env.sh adds it); using scripts/jupyterlab" >&2
  SETTINGS=(--LabApp.app_settings_dir="$ROOT/scripts/jupyterlab")
fi
TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TMP=$(mktemp -d)
# a private JupyterLab home: the user's own settings must not decide what a double-click opens
export JUPYTER_CONFIG_DIR=$TMP/config JUPYTER_RUNTIME_DIR=$TMP/runtime JUPYTERLAB_SETTINGS_DIR=$TMP/settings \
  JUPYTERLAB_WORKSPACES_DIR=$TMP/workspaces
"$VENV/bin/jupyter" lab --no-browser --allow-root --ip=127.0.0.1 --port="$PORT" --ServerApp.port_retries=0 \
  --IdentityProvider.token="$TOKEN" --ServerApp.root_dir="$ROOT" "${SETTINGS[@]}" >"$TMP/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 1 120); do
  curl -sf -H "Authorization: token $TOKEN" "http://127.0.0.1:$PORT/api/status" >/dev/null && break
  sleep 0.5
done
# /lab/tree/<path> opens the file with its default viewer, as a double-click in the file browser does
"$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1800 \
  --virtual-time-budget=30000 --screenshot="$OUT" \
  "http://127.0.0.1:$PORT/lab/tree/$NOTEBOOK?token=$TOKEN&reset" 2>"$TMP/browser.log" || {
  cat "$TMP/browser.log" >&2
  exit 1
}
echo "screenshot: $OUT"
