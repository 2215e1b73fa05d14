"""The clean-label ceiling: what the label noise costs the baseline, and how much of it a method wins back.

The embedded benchmark knows the clean label of every training image, which no real dataset does.
"B (clean labels)" is the target architecture trained by BCE on those clean labels, with the same
images, patients, splits, seeds, schedule and batch order as B (its run differs from B's only in its
training targets, so the same seed draws the same crops and batches). Against it:

- **noise cost** = ceiling − B: the mean test AUC the mined labels' noise takes from B;
- **recovered** = (B+MODL+KNNS − B) / (ceiling − B): the share of that cost the method wins back.

The ceiling lives in a clean world: its epoch is chosen on the clean validation labels, as a user
with clean labels would choose it (B and the methods choose on the mined validation labels).
:mod:`paperkit.evaluation.verdict` estimates both quantities with the verdict's seeds x patients bootstrap.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from paperkit.config import Profile
from paperkit.pipeline.experiment import Prepared, RunRequest
from paperkit.pipeline.specs import CLEAN_LABELS

#: The ceiling's name in tables, probabilities and the verdict.
CEILING = "B (clean labels)"


def has_clean_training_labels(prep: Prepared) -> bool:
    """Whether every training and validation image has clean truth on every finding (the benchmark only)."""
    clean = prep.dataset.clean_labels
    if clean is None:
        return False
    rows = np.concatenate([prep.rows("train"), prep.rows("val")])
    return bool(len(rows)) and not np.isnan(clean[rows]).any()


def clean_label_twin(prep: Prepared) -> Prepared:
    """``prep`` with the clean truth in place of the mined labels: the ceiling's training data.

    Images, patients, splits and the dataset key are ``prep``'s; the training targets are the clean
    labels (no uncertain entries, so no policy applies and every target counts), and so are the
    validation labels that choose the epoch. ``training_labels`` is ``"clean"``, which names the run.

    Raises
    ------
    ValueError
        If the dataset lacks clean truth on a training or validation image (real data).
    """
    if not has_clean_training_labels(prep):
        raise ValueError(f"dataset {prep.key!r} has no complete clean labels on its training and validation images: "
                         "the clean-label ceiling needs the embedded benchmark")
    clean = np.nan_to_num(prep.dataset.clean_labels, nan=0.0).astype(np.float32)  # NaN only outside train/val
    dataset = dataclasses.replace(prep.dataset, labels=clean.copy())
    return dataclasses.replace(prep, dataset=dataset, targets=clean.copy(), mask=np.ones(clean.shape, dtype=bool),
                               training_labels=CLEAN_LABELS)


def ceiling_requests(cfg: Profile, prep: Prepared) -> list[RunRequest]:
    """The ceiling's runs, one per training seed of ``cfg``; none on data without clean training labels."""
    if not has_clean_training_labels(prep):
        return []
    twin = clean_label_twin(prep)
    return [RunRequest(twin, cfg.target_arch, seed) for seed in cfg.seeds]
