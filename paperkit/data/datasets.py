"""One dataset interface for NIH ChestX-ray14, CheXpert and MIMIC-CXR-JPG, and the split machinery.

Every loader returns an :class:`XrayDataset` (the contract in ``docs/ARCHITECTURE.md``). Splits are
always patient-wise: validation patients are drawn from training patients, and a patient found in two
splits is an error naming the patient, never a silent leak.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
MISSING_POLICIES: tuple[str, ...] = ("error", "skip", "keep")


class DataError(ValueError):
    """Bad dataset input; the message names the file, row, column and value."""


@dataclass
class XrayDataset:
    """Images, patients, labels and splits of one source, rows in one fixed order.

    ``labels`` are raw: 1, 0, -1 (uncertain), NaN (blank / not mentioned). ``clean_labels`` hold clean
    truth where known and NaN elsewhere (``None`` when the source has none). ``missing`` lists image ids
    listed in the metadata but absent on disk: dropped under ``missing="skip"``, kept (with their
    expected paths) under ``missing="keep"``.
    """

    name: str
    root: Path
    classes: tuple[str, ...]
    image_ids: np.ndarray
    paths: np.ndarray
    patient_ids: np.ndarray
    study_ids: np.ndarray
    views: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    clean_labels: np.ndarray | None = None
    missing: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.image_ids)
        for f in ("paths", "patient_ids", "study_ids", "views", "split"):
            if len(getattr(self, f)) != n:
                raise ValueError(f"XrayDataset.{f} has {len(getattr(self, f))} rows, image_ids has {n}")
        for f in ("labels", "clean_labels"):
            arr = getattr(self, f)
            if arr is not None and arr.shape != (n, len(self.classes)):
                raise ValueError(f"XrayDataset.{f} has shape {arr.shape}, expected {(n, len(self.classes))}")
        bad = sorted(set(np.unique(self.split)) - set(SPLITS))
        if bad:
            raise ValueError(f"XrayDataset.split has values {bad}; allowed: {', '.join(SPLITS)}")

    def __len__(self) -> int:
        return len(self.image_ids)

    def indices(self, split: str) -> np.ndarray:
        """Row indices (int64) of one split, in row order."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        return np.flatnonzero(self.split == split)

    def subset(self, rows: np.ndarray | Sequence[int]) -> "XrayDataset":
        """A new dataset of the selected rows (boolean mask or integer indices)."""
        rows = np.asarray(rows)
        per_row = {"image_ids", "paths", "patient_ids", "study_ids", "views", "labels", "split", "clean_labels"}
        changes = {
            f.name: getattr(self, f.name)[rows]
            for f in fields(self)
            if f.name in per_row and getattr(self, f.name) is not None
        }
        return replace(self, **changes)


# --- splits ------------------------------------------------------------------------------------------


def patient_split(
    patient_ids: np.ndarray, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), seed: int = 0
) -> np.ndarray:
    """CheXNet-style patient-wise train/val/test assignment drawn from ``seed``.

    Patients (not images) are shuffled and cut at the cumulative ``fractions``, so every image of a
    patient lands in the same split. Returns str [N] of ``train | val | test``.
    """
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    patients = np.unique(patient_ids)
    order = np.random.default_rng(seed).permutation(len(patients))
    cuts = np.round(np.cumsum(fractions)[:2] * len(patients)).astype(int)
    assigned = np.empty(len(patients), dtype=object)
    assigned[order[: cuts[0]]] = "train"
    assigned[order[cuts[0] : cuts[1]]] = "val"
    assigned[order[cuts[1] :]] = "test"
    lookup = dict(zip(patients, assigned))
    return np.array([lookup[p] for p in patient_ids], dtype=object)


def draw_validation(split: np.ndarray, patient_ids: np.ndarray, val_fraction: float, seed: int = 0) -> np.ndarray:
    """Move ``val_fraction`` of the training *patients* (seeded) to ``val``; other rows are unchanged."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    split = np.asarray(split, dtype=object).copy()
    train_patients = np.unique(patient_ids[split == "train"])
    n_val = int(round(val_fraction * len(train_patients)))
    chosen = np.random.default_rng(seed).choice(train_patients, size=n_val, replace=False)
    split[(split == "train") & np.isin(patient_ids, chosen)] = "val"
    return split


def check_patient_disjoint(split: np.ndarray, patient_ids: np.ndarray, image_ids: np.ndarray, source: str) -> None:
    """Raise :class:`DataError` naming the first patient whose images fall in two splits."""
    frame = pd.DataFrame({"patient": patient_ids, "split": split, "image": image_ids})
    n_splits = frame.groupby("patient")["split"].nunique()
    leaked = n_splits[n_splits > 1]
    if len(leaked):
        patient = leaked.index[0]
        rows = frame[frame["patient"] == patient].drop_duplicates("split")
        where = ", ".join(f"{r.image} in {r.split}" for r in rows.itertuples())
        raise DataError(
            f"{source}: patient {patient} is in two splits ({where}); "
            f"{len(leaked)} patient(s) leak in total — splits must be patient-wise"
        )


def read_name_list(path: Path) -> list[str]:
    """File names listed one a line (official NIH ``train_val_list.txt`` / ``test_list.txt``)."""
    if not path.is_file():
        raise DataError(f"split list {path} not found")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_labelled_list(path: Path, n_classes: int) -> pd.DataFrame:
    """A ``train_list.txt``-style file: a file name then ``n_classes`` 0/1 integers per line.

    Returns a frame with column ``name`` (the base name) and int8 label columns ``0 .. C-1``.
    """
    if not path.is_file():
        raise DataError(f"split list {path} not found")
    names, rows = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != n_classes + 1 or any(t not in ("0", "1") for t in tokens[1:]):
            raise DataError(
                f"{path}, line {lineno}: expected a file name and {n_classes} 0/1 integers, got {line.strip()!r}"
            )
        names.append(os.path.basename(tokens[0]))
        rows.append([int(t) for t in tokens[1:]])
    frame = pd.DataFrame(np.array(rows, dtype=np.int8).reshape(-1, n_classes))
    frame.insert(0, "name", names)
    return frame


def check_missing_policy(missing: str) -> None:
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")


def apply_missing_policy(
    present: np.ndarray, image_ids: np.ndarray, missing: str, source: str | Path
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Rows to keep and the ids missing on disk, under policy ``error | skip | keep``.

    ``error`` raises naming the first missing images; ``skip`` drops them and logs the count;
    ``keep`` keeps every row (metadata-only use such as ``summarize``).
    """
    absent = tuple(str(i) for i in image_ids[~present])
    if absent and missing == "error":
        shown = ", ".join(absent[:3])
        raise DataError(
            f"{len(absent)} image(s) listed in {source} are missing on disk (first: {shown}); "
            f"pass missing='skip' to drop them (run_all.sh / python -m paperkit run: -p missing=skip)"
        )
    if absent and missing == "skip":
        log.warning("%s: skipped %d image(s) missing on disk (first: %s)", source, len(absent), absent[0])
        return present, absent
    return np.ones(len(image_ids), dtype=bool), absent
