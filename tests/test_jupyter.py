"""The notebooks as a reader gets them: JupyterLab opens a ``.py`` as a notebook with the last run's
outputs, double-click included, and every executed notebook shows its figures, names its kernel
and keeps its output clean.

A real JupyterLab server (this environment's, as ``.venv/bin/jupyter lab`` starts it) runs on a
free local port; the tests ask its contents and settings APIs what the browser would ask. The
browser itself is not driven here (see scripts/screenshot_notebook.sh, not part of CI).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
#: What ensure_env.sh installs into the environment's JupyterLab settings overrides.
LAB_SETTINGS = REPO / "scripts" / "jupyterlab"
#: A cell that draws: it must leave an image in the executed notebook.
DRAWS = re.compile(r"show_figure\(|plt\.show\(|display\(\s*(ShowImage|Image)\(")


class Lab:
    """A running JupyterLab server and a token-authenticated JSON client for it."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def get(self, path: str) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    def notebook(self, path: str) -> dict[str, Any]:
        """What JupyterLab's notebook viewer loads for ``path`` (jupytext's contents manager)."""
        try:
            return self.get(f"/api/contents/{path}?type=notebook&content=1")
        except urllib.error.HTTPError as err:  # jupytext explains a refused pair in the body
            raise AssertionError(f"{path}: HTTP {err.code}: {err.read().decode()[:2000]}") from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, notebooks_copy) -> Iterator[Lab]:
    """``jupyter lab`` from this environment, rooted at a copy of the repository's notebooks (where the
    smoke run pairs its outputs), on a free local port."""
    home = tmp_path_factory.mktemp("jupyter-home")
    token, port = secrets.token_hex(16), _free_port()
    # a private config/runtime dir: the user's own ~/.jupyter settings must not decide the result
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "user-settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws")}
    log = home / "server.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={notebooks_copy.parent}", f"--LabApp.app_settings_dir={LAB_SETTINGS}"]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Lab(f"http://127.0.0.1:{port}", token)
    try:
        while True:  # until it answers or exits; no deadline (a hang is pytest-timeout's to report)
            assert proc.poll() is None, f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            try:
                server.get("/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _outputs(cell: dict[str, Any]) -> list[dict[str, Any]]:
    return cell.get("outputs", []) if cell["cell_type"] == "code" else []


def _text(output: dict[str, Any]) -> str:
    if output.get("output_type") == "stream":
        return "".join(output.get("text", ""))
    data = output.get("data", {})
    return "".join("".join(v) if isinstance(v, list) else str(v) for k, v in data.items() if k.startswith("text/"))


# --- JupyterLab opens the sources as notebooks ---------------------------------------------------

def test_double_click_opens_python_files_with_jupytext(lab):
    """JupyterLab's default viewer for the ``python`` file type is jupytext's notebook, as the
    server hands it to the browser (settings overrides of this environment)."""
    plugin = lab.get("/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
    viewers = plugin["schema"]["properties"]["defaultViewers"]["default"]
    assert viewers.get("python") == "Jupytext Notebook", viewers


def test_environment_has_the_default_viewer_setting():
    """scripts/ensure_env.sh copied the setting into this environment (not the user's home)."""
    installed = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.d" / "paperkit.json"
    if not installed.is_file():
        pytest.skip(f"{installed} is absent: this environment predates it; bash scripts/ensure_env.sh installs it")
    assert json.loads(installed.read_text()) == json.loads((LAB_SETTINGS / "overrides.d" / "paperkit.json").read_text())


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_opens_as_a_notebook(lab, source):
    """The ``.py`` comes back as a notebook: markdown with LaTeX equations where the paper has them,
    a parameters cell introduced by a note, and the ``paperkit`` kernel (no "Select Kernel")."""
    model = lab.notebook(f"notebooks/{source.name}")
    assert model["type"] == "notebook"
    cells = model["content"]["cells"]
    assert cells[0]["cell_type"] == "markdown"
    kinds = [c["cell_type"] for c in cells]
    params = next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))
    assert kinds[params - 1] == "markdown" and "papermill replaces it" in cells[params - 1]["source"]
    markdown = "\n".join(c["source"] for c in cells if c["cell_type"] == "markdown")
    prose = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`", "", markdown, flags=re.S)
    assert prose != markdown, "no LaTeX in the markdown"
    assert not re.findall(r".{0,30}[λγσ‖²÷].{0,30}", prose), "Unicode maths outside $...$"
    assert model["content"]["metadata"]["kernelspec"]["name"] == "paperkit"


@pytest.mark.slow
def test_outputs_of_the_last_run_open_with_the_source(lab, smoke_run, notebooks_copy):
    """After a run, opening ``notebooks/NN_*.py`` shows that run's outputs (its paired ``.ipynb``,
    newer than the ``.py``: jupytext accepts it because the inputs are identical)."""
    for source in NOTEBOOKS:
        paired = notebooks_copy / source.with_suffix(".ipynb").name
        assert paired.is_file() and paired.stat().st_mtime >= (notebooks_copy / source.name).stat().st_mtime, paired
        cells = lab.notebook(f"notebooks/{source.name}")["content"]["cells"]
        outputs = [o for c in cells for o in _outputs(c)]
        assert outputs, f"{source.name}: opened without outputs"
        assert not any(o["output_type"] == "error" for o in outputs), source.name
        if any(DRAWS.search(c["source"]) for c in cells if c["cell_type"] == "code"):
            assert any("image/png" in o.get("data", {}) for o in outputs), f"{source.name}: no figure"


# --- the executed notebooks -----------------------------------------------------------------------

def _executed(smoke_run: Path) -> dict[str, nbformat.NotebookNode]:
    return {p.stem: nbformat.read(p, as_version=4) for p in sorted((smoke_run / "executed").glob("*.ipynb"))}


@pytest.mark.slow
def test_every_drawing_cell_shows_its_figure(smoke_run):
    """Each cell that draws (``show_figure``, ``plt.show()`` or a displayed image file) has an image
    output; each executed notebook names the ``paperkit`` kernel."""
    executed = _executed(smoke_run)
    assert sorted(executed) == [p.stem for p in NOTEBOOKS]
    missing = []
    for name, nb in executed.items():
        assert nb.metadata.kernelspec == {"name": "paperkit", "display_name": "Python (paperkit)", "language": "python"}
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and DRAWS.search(cell.source):
                if not any("image/png" in o.get("data", {}) for o in cell.outputs):
                    missing.append(f"{name} cell {i}: {cell.source.splitlines()[0][:60]}")
    assert not missing, "cells that draw without an image output:\n" + "\n".join(missing)


@pytest.mark.slow
def test_outputs_are_clean(smoke_run):
    """No tqdm widget warning, each distinct warning shown at most once per notebook, and no
    absolute path of this machine's results folder in any output."""
    results_root = str(smoke_run.parent)
    for name, nb in _executed(smoke_run).items():
        texts = [_text(o) for c in nb.cells for o in _outputs(c)]
        joined = "\n".join(texts)
        assert "IProgress not found" not in joined, name
        assert results_root not in joined, f"{name} prints an absolute results path"
        warnings = re.findall(r"^(\w*Warning: .*)$", joined, flags=re.M)
        repeated = {w for w in warnings if warnings.count(w) > 1}
        assert not repeated, f"{name} repeats warnings: {sorted(repeated)[:3]}"
