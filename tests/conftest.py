"""Shared fixtures: every test writes results under a temporary root, never into the repo."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_results(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PAPERKIT_RESULTS", str(tmp_path_factory.mktemp("results")))
    monkeypatch.delenv("PAPERKIT_FORCE_SINCE", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the checkout; skip with the reason when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (the shared data folder lies beside the checkout in CI and sessions)")
    return SHARED
