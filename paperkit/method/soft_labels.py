"""The soft label distribution of MODL: the references' averaged probabilities (eq. 2's l_i).

Each of the N trained reference networks predicts a probability per finding for every training
image; their mean ``l_i`` is the target's soft label (and the space in which KNNS pools are
searched). Prediction itself belongs to :mod:`paperkit.training.inference` (``predict``); the functions here
take probability arrays.

Two teaching options go beyond the paper:

- N = 1 (self-distillation): average a single model's predictions.
- Out-of-fold references: the paper's references score the very images they were trained on,
  where they are over-confident and repeat the label noise. :func:`out_of_fold_folds` splits the
  training *patients* into folds; a reference trained without fold f scores fold f, and
  :func:`combine_out_of_fold` stitches those scores into one array per architecture.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from paperkit.artifacts import atomic_path

SOFT_LABELS_FILE = "soft_labels.npz"


def average_predictions(probs: Sequence[np.ndarray]) -> np.ndarray:
    """``l_i = (1/N) Σ_n f_n(x_i)``: mean of N reference models' probabilities.

    Parameters
    ----------
    probs
        N arrays ``[M, C]`` of probabilities in [0, 1], rows in the same image order.

    Returns
    -------
    float32 ``[M, C]`` (averaged in float64).
    """
    if len(probs) == 0:
        raise ValueError("need the predictions of at least one reference model")
    arrays = [np.asarray(p, dtype=np.float64) for p in probs]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or len(arrays[0].shape) != 2:
        raise ValueError(f"predictions must all be [M, C] of one shape, got {sorted(shapes)}")
    stacked = np.stack(arrays)
    if not np.all((stacked >= 0) & (stacked <= 1)):
        raise ValueError("predictions must be probabilities in [0, 1] (apply the sigmoid first)")
    return stacked.mean(0).astype(np.float32)


def out_of_fold_folds(patient_ids: Sequence[str] | np.ndarray, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold id (0..n_folds−1) of each row, by patient, so one patient's images share a fold.

    Patients are shuffled with ``seed`` and dealt round-robin, so folds hold equal numbers of
    patients (±1). A reference trained on the rows of the other folds never sees a fold's patients.

    Returns
    -------
    int64 ``[N]``.
    """
    patients, row_patient = np.unique(np.asarray(patient_ids).astype(str), return_inverse=True)
    if not 2 <= n_folds <= len(patients):
        raise ValueError(f"n_folds must be in 2..{len(patients)} (the number of patients), got {n_folds}")
    patient_fold = np.empty(len(patients), dtype=np.int64)
    patient_fold[np.random.default_rng(seed).permutation(len(patients))] = np.arange(len(patients)) % n_folds
    return patient_fold[row_patient]


def combine_out_of_fold(fold_probs: Sequence[np.ndarray], folds: np.ndarray) -> np.ndarray:
    """One out-of-fold prediction per row: row i takes the model that did not train on fold ``folds[i]``.

    Parameters
    ----------
    fold_probs
        ``fold_probs[f]`` ``[M, C]``: probabilities from the reference trained *without* fold f
        (rows outside fold f are ignored, so predicting every row or only fold f's rows scattered
        into a full array both work).
    folds
        ``[M]`` fold ids from :func:`out_of_fold_folds`.
    """
    folds = np.asarray(folds)
    if len(fold_probs) != folds.max() + 1:
        raise ValueError(f"{len(fold_probs)} fold models for {folds.max() + 1} folds")
    stacked = np.stack([np.asarray(p, dtype=np.float32) for p in fold_probs])  # [F, M, C]
    return stacked[folds, np.arange(len(folds))]


def save_soft_labels(
    out_dir: str | os.PathLike, soft: np.ndarray, image_ids: Sequence[str] | np.ndarray, sources: Sequence[str]
) -> Path:
    """Write ``soft_labels.npz`` into ``out_dir`` atomically.

    Parameters
    ----------
    soft
        ``[M, C]`` soft labels.
    image_ids
        ``[M]`` ids naming each row (the dataset's ``image_ids``).
    sources
        What was averaged (e.g. the reference run names), kept for provenance.
    """
    soft, image_ids = np.asarray(soft, dtype=np.float32), np.asarray(image_ids).astype(str)
    if soft.ndim != 2 or soft.shape[0] != len(image_ids):
        raise ValueError(f"soft labels {soft.shape} and {len(image_ids)} image ids do not match")
    path = Path(out_dir) / SOFT_LABELS_FILE
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, soft=soft, image_ids=image_ids, sources=np.asarray(list(sources), dtype=str))
    return path


def load_soft_labels(out_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(soft [M, C] float32, image_ids [M] str)`` written by :func:`save_soft_labels`."""
    with np.load(Path(out_dir) / SOFT_LABELS_FILE, allow_pickle=False) as data:
        return data["soft"], data["image_ids"]


def soft_label_sources(out_dir: str | os.PathLike) -> list[str]:
    """The ``sources`` recorded by :func:`save_soft_labels`."""
    with np.load(Path(out_dir) / SOFT_LABELS_FILE, allow_pickle=False) as data:
        return data["sources"].tolist()
