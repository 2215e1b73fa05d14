"""What the first code cell of every notebook calls: resolve and validate the parameters, seed, show them."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from paperkit.config import Profile, resolve
from paperkit.deviations import deviations, markdown_list
from paperkit.paths import RunPaths


def setup(profile: str, data_root: str = "", overrides: Mapping[str, Any] | None = None,
          seed: int = 0, notebook: str = "") -> tuple[Profile, RunPaths]:
    """Resolve the notebook's parameters cell into a validated profile and its paths.

    Unknown keys or wrong types raise :class:`paperkit.config.ConfigError` here, before any
    work, because papermill only warns about parameters a notebook does not declare.
    ``notebook`` (e.g. ``"05"``) limits the printed departures from the paper to those that
    concern it; empty prints all of them.
    """
    changes = dict(overrides or {})
    if data_root:
        changes["data_root"] = str(Path(data_root).expanduser().resolve())
    cfg = resolve(profile, changes)
    paths = RunPaths.for_profile(cfg)
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
    show_deviations(cfg, notebook)
    return cfg, paths


def show_deviations(cfg: Profile, notebook: str = "") -> None:
    """Print ``cfg``'s departures from the paper for ``notebook``: Markdown in a kernel, text otherwise."""
    scope = f"notebook {notebook}" if notebook else "this run"
    heading = f"**Departures from the paper ({scope}, profile `{cfg.name}`):**"
    text = f"{heading}\n\n{markdown_list(deviations(cfg, notebook))}"
    if _in_kernel():
        from IPython.display import Markdown, display

        display(Markdown(text))
    else:
        print(text)


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (papermill included), where Markdown renders."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None
