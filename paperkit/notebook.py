"""What the first code cell of every notebook calls: resolve and validate the parameters, seed, show them."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from paperkit.config import Profile, resolve
from paperkit.paths import RunPaths


def setup(profile: str, data_root: str = "", overrides: Mapping[str, Any] | None = None,
          seed: int = 0) -> tuple[Profile, RunPaths]:
    """Resolve the notebook's parameters cell into a validated profile and its paths.

    Unknown keys or wrong types raise :class:`paperkit.config.ConfigError` here, before any
    work, because papermill only warns about parameters a notebook does not declare.
    """
    changes = dict(overrides or {})
    if data_root:
        changes["data_root"] = str(Path(data_root).expanduser().resolve())
    cfg = resolve(profile, changes)
    paths = RunPaths.for_profile(cfg.name)
    paths.root.mkdir(parents=True, exist_ok=True)
    random.seed(seed)
    np.random.seed(seed)
    import torch

    torch.manual_seed(seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    os.environ.setdefault("MPLBACKEND", "Agg")
    changed = ", ".join(f"{k}={v!r}" for k, v in changes.items()) or "none"
    print(f"profile {cfg.name!r} ({cfg.dataset}); overrides: {changed}; results: {paths.root}")
    if cfg.notes:
        print(f"note: {cfg.notes}")
    return cfg, paths
