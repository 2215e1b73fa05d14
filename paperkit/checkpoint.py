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

    ``weights_only=False`` because the file also holds NumPy/Python RNG states and the training
    history; only load checkpoints this kit wrote.
    """
    return torch.load(path, map_location="cpu", weights_only=False)


def global_rng_state() -> dict[str, Any]:
    """States of torch's CPU and CUDA generators, NumPy's and Python's global generators."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_global_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`global_rng_state` captured (CUDA only when present on both sides)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
