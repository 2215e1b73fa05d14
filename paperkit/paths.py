"""Every path the kit writes, defined once.

``results/<profile>/`` holds one profile's artifacts; nothing else in the kit joins path strings.
The root can be moved with the environment variable ``PAPERKIT_RESULTS`` (and the notebooks run with
``PAPERKIT_NOTEBOOKS``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paperkit.config import Profile

REPO_ROOT = Path(__file__).resolve().parent.parent


def notebooks_dir() -> Path:
    """The notebooks the runner executes and pairs its outputs with: ``notebooks/``, or ``PAPERKIT_NOTEBOOKS``
    (the tests run a copy there, so a run never overwrites the outputs a user saved beside the sources)."""
    return Path(os.environ.get("PAPERKIT_NOTEBOOKS", REPO_ROOT / "notebooks")).resolve()


def results_root() -> Path:
    """Root of all results (``$PAPERKIT_RESULTS`` or ``<repo>/results``)."""
    return Path(os.environ.get("PAPERKIT_RESULTS", REPO_ROOT / "results")).resolve()


@dataclass(frozen=True)
class RunPaths:
    """The artifact layout of one profile's run."""

    root: Path

    @classmethod
    def for_profile(cls, profile: "Profile | str") -> "RunPaths":
        """``results/<name>/``: a profile's ``results_name`` when set (profiles that add runs to
        another's folder), else its name."""
        name = profile if isinstance(profile, str) else (profile.results_name or profile.name)
        return cls(results_root() / name)

    # --- data ---------------------------------------------------------------------------------
    @property
    def benchmark(self) -> Path:
        """Embedded benchmark, one sub-folder per draw, named by :func:`paperkit.pipeline.specs.dataset_key`."""
        return self.root / "benchmark"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def image_cache(self, dataset_key: str) -> Path:
        return self.cache / dataset_key

    # --- models and their outputs ---------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def run_dir(self, run_name: str) -> Path:
        """One training run (a reference, the baseline or a target variant)."""
        return self.checkpoints / run_name

    @property
    def soft_labels(self) -> Path:
        return self.root / "soft_labels"

    @property
    def pools(self) -> Path:
        return self.root / "pools"

    @property
    def evaluations(self) -> Path:
        """Stored bootstrap evaluations, one file per set of inputs (:mod:`paperkit.evaluation.comparison_cache`)."""
        return self.root / "evaluations"

    # --- reports -----------------------------------------------------------------------------
    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def executed(self) -> Path:
        return self.root / "executed"

    @property
    def report(self) -> Path:
        return self.root / "REPORT.md"

    @property
    def progress(self) -> Path:
        """The active notebook's status, written by its kernel, read by the runner (while it runs)."""
        return self.root / "progress.json"

    @property
    def run_log(self) -> Path:
        """Per-notebook wall times written by the runner."""
        return self.root / "run_log.json"
