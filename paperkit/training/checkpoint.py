"""Checkpoints that resume bit for bit: atomic files and every random-number state.

A resumed run must continue exactly where the killed one stopped, so a checkpoint holds, besides
the model, optimiser and scheduler, the state of *every* generator that influences training:
torch's global CPU (and CUDA) generators, NumPy's and Python's global ones, and the trainer's own
``torch.Generator`` objects (batch order, augmentation, neighbour sampling).
"""
from __future__ import annotations

import os
import random
from typing import Any, Mapping

import numpy as np
import torch

from paperkit.artifacts import atomic_path


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> None:
    """``torch.save`` to a temporary sibling, then rename: a kill leaves the previous file intact."""
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU.

    ``weights_only=True``: only tensors and plain Python values are unpickled, so a checkpoint from
    a shared results folder cannot run code on the reader's machine (every RNG state is kept as
    tensors and numbers for that reason).

    Raises
    ------
    pickle.UnpicklingError
        If the file holds anything else (e.g. a pickled object of some class).
    RuntimeError
        If the file is not a readable checkpoint (truncated, overwritten), naming it.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError) as err:  # torch names neither the file nor what to do
        raise RuntimeError(f"{path} is not a readable checkpoint ({err.__class__.__name__}: {str(err)[:120]}); "
                           "rerun the notebook that trains this run: its manifest check retrains it") from err


def global_rng_state() -> dict[str, Any]:
    """States of torch's CPU and CUDA generators, NumPy's and Python's global generators, as tensors
    and plain numbers (loadable with ``weights_only=True``)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, mt, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "gauss": float(gauss)},
        "python": {"version": version, "state": torch.tensor(mt, dtype=torch.int64), "gauss": python_gauss},
    }


def set_global_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`global_rng_state` captured (CUDA only when present on both sides)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"].tolist()), p["gauss"]))
