"""Shared fixtures: every test writes results under a temporary root, never into the repo; one
end-to-end smoke run serves every test file that reads its outputs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


#: Fixtures that execute the project's notebooks: a test using one (directly or through another fixture) is slow.
NOTEBOOK_FIXTURES = ("smoke_run",)


@pytest.hookimpl(tryfirst=True)  # before ``-m "not slow"`` deselects anything: every collected test is checked
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Guard: a test that needs a notebook run carries ``@pytest.mark.slow`` (a module's ``pytestmark`` counts),
    so that ``-m "not slow"`` never starts one. An unmarked one stops the session before any test runs."""
    unmarked = [
        item.nodeid
        for item in items
        if set(getattr(item, "fixturenames", ())) & set(NOTEBOOK_FIXTURES) and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            f"these tests use {' or '.join(NOTEBOOK_FIXTURES)} (every notebook executed) without @pytest.mark.slow: "
            + ", ".join(unmarked)
        )


@pytest.fixture(autouse=True)
def _isolated_results(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PAPERKIT_RESULTS", str(tmp_path_factory.mktemp("results")))
    monkeypatch.delenv("PAPERKIT_FORCE_SINCE", raising=False)


@pytest.fixture(scope="session")
def notebooks_copy(tmp_path_factory) -> Path:
    """A temporary copy of ``notebooks/`` (the sources and ``jupytext.toml``): a test run writes its paired
    outputs there, never over the ``notebooks/NN_*.ipynb`` a user's last run left in the repository."""
    copy = tmp_path_factory.mktemp("checkout") / "notebooks"
    copy.mkdir()
    for path in (REPO / "notebooks").iterdir():
        if path.suffix == ".py" or path.name == "jupytext.toml":
            shutil.copy2(path, copy / path.name)
    return copy


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, notebooks_copy) -> Path:
    """``python -m paperkit run --profile smoke`` (what ``run_all.sh --profile smoke`` execs), once per
    session: its results folder. It runs the notebooks of :func:`notebooks_copy` and writes the outputs
    paired with them there (``NN_*.ipynb``), as a user's run does beside the sources."""
    results = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "PAPERKIT_RESULTS": str(results), "PAPERKIT_NOTEBOOKS": str(notebooks_copy)}
    env.pop("PAPERKIT_FORCE_SINCE", None)
    proc = subprocess.run([sys.executable, "-m", "paperkit", "run", "--profile", "smoke"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "results index:" in proc.stdout and "total" in proc.stdout
    return results / "smoke"


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the checkout; skip with the reason when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (the shared data folder lies beside the checkout in CI and sessions)")
    return SHARED
