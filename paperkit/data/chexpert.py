"""CheXpert v1.0 / v1.0-small from a user's local copy (or the embedded benchmark in its layout).

``train.csv`` gives the training rows (validation patients drawn from them, seeded); ``valid.csv``
(234 images, 200 studies, 3-radiologist labels) is the test set and its labels are clean. Raw
values 1/0/-1/blank are kept (blank -> NaN); the uncertainty policies live in the losses.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from paperkit.data.datasets import (
    DataError,
    XrayDataset,
    apply_missing_policy,
    check_missing_policy,
    check_patient_disjoint,
    draw_validation,
)
from paperkit.data.labels import CHEXPERT_CLASSES
from paperkit.data.nih import check_root

log = logging.getLogger(__name__)

CHEXPERT_HEADER = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_CLASSES)
PREFIXES = ("CheXpert-v1.0-small", "CheXpert-v1.0")
TRAIN_CLEAN_NAME = "train_clean.csv"
RAW_VALUES = {"1.0": 1.0, "1": 1.0, "0.0": 0.0, "0": 0.0, "-1.0": -1.0, "-1": -1.0, "": np.nan}
_PATH = re.compile(r"^(?P<prefix>[^/]+)/(?:train|valid|test)/(?P<patient>patient\d+)/(?P<study>study\d+)/[^/]+$")


def find_chexpert_dir(root: Path) -> Path:
    """The folder holding ``train.csv``: ``root`` itself or its ``CheXpert-v1.0[-small]`` child."""
    for folder in (root, *(root / p for p in PREFIXES)):
        if (folder / "train.csv").is_file():
            return folder
    raise DataError(f"{root}: no train.csv here nor in {' or '.join(PREFIXES)}/")


def label_values(frame: pd.DataFrame, columns: tuple[str, ...], source: Path, allowed: dict[str, float]) -> np.ndarray:
    """float32 [N, C] from string cells; a value outside ``allowed`` is an error naming line and column."""
    out = np.empty((len(frame), len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        cells = frame[column].str.strip()
        bad = np.flatnonzero(~cells.isin(list(allowed)).to_numpy())
        if len(bad):
            raise DataError(
                f"{source}, line {bad[0] + 2}, column {column!r}: value {cells.iloc[bad[0]]!r} is not one of "
                f"{', '.join(repr(v) for v in allowed)}"
            )
        out[:, j] = cells.map(allowed).to_numpy(np.float32)
    return out


def read_chexpert_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """A ``train.csv``/``valid.csv`` table (strings) with patient/study columns, and its raw labels."""
    if not path.is_file():
        raise DataError(f"{path} not found")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if tuple(frame.columns) != CHEXPERT_HEADER:
        raise DataError(f"{path}: header {','.join(frame.columns)!r} is not CheXpert's {','.join(CHEXPERT_HEADER)!r}")
    parts = frame["Path"].str.extract(_PATH)
    bad = np.flatnonzero((parts["prefix"].isna() | ~parts["prefix"].isin(PREFIXES)).to_numpy())
    if len(bad):
        raise DataError(
            f"{path}, line {bad[0] + 2}, column 'Path': {frame['Path'][bad[0]]!r} is not "
            f"<{'|'.join(PREFIXES)}>/<split>/patientNNNNN/studyN/<image>"
        )
    views = frame["Frontal/Lateral"]
    bad = np.flatnonzero(~views.isin(["Frontal", "Lateral"]).to_numpy())
    if len(bad):
        raise DataError(
            f"{path}, line {bad[0] + 2}, column 'Frontal/Lateral': value {views[bad[0]]!r} is not Frontal or Lateral"
        )
    frame["patient"] = parts["patient"]
    frame["study"] = parts["patient"] + "/" + parts["study"]
    return frame, label_values(frame, CHEXPERT_CLASSES, path, RAW_VALUES)


def _train_clean(path: Path, train_paths: pd.Series) -> np.ndarray:
    """Clean labels of training rows from the benchmark's ``train_clean.csv`` (Path + 14 classes)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    lacking = [c for c in ("Path", *CHEXPERT_CLASSES) if c not in frame.columns]
    if lacking:
        raise DataError(f"{path}: column(s) {lacking} missing; expected Path and the 14 CheXpert observations")
    values = label_values(frame, CHEXPERT_CLASSES, path, {"1.0": 1.0, "1": 1.0, "0.0": 0.0, "0": 0.0, "": np.nan})
    table = pd.DataFrame(values, index=frame["Path"]).reindex(train_paths)
    unknown = int(table.isna().all(axis=1).sum())
    if unknown:
        log.warning("%s: no clean labels for %d training image(s); left NaN", path, unknown)
    return table.to_numpy(np.float32)


def load_chexpert(
    root: str | os.PathLike,
    frontal_only: bool = True,
    seed: int = 0,
    val_fraction: float = 0.1,
    missing: str = "error",
) -> XrayDataset:
    """Load CheXpert as an :class:`XrayDataset`: train/val from ``train.csv``, test = ``valid.csv``.

    Parameters
    ----------
    root
        The ``CheXpert-v1.0[-small]`` folder (holding ``train.csv``) or its parent.
    frontal_only
        Keep frontal views only (the paper's setting); ``False`` keeps laterals too.
    seed, val_fraction
        The seeded draw of validation patients from the training patients.
    missing
        Listed images absent on disk: ``error``, ``skip`` (dropped, counted, logged) or ``keep``.
    """
    check_missing_policy(missing)
    folder = find_chexpert_dir(check_root(root))
    train, train_labels = read_chexpert_csv(folder / "train.csv")
    test, test_labels = read_chexpert_csv(folder / "valid.csv")
    clean_path = folder / TRAIN_CLEAN_NAME
    train_clean = (
        _train_clean(clean_path, train["Path"])
        if clean_path.is_file()
        else np.full(train_labels.shape, np.nan, dtype=np.float32)
    )
    frame = pd.concat([train, test], ignore_index=True)
    labels = np.concatenate([train_labels, test_labels])
    # valid.csv holds the radiologists' consensus: it is the clean truth of the test rows
    clean = np.concatenate([train_clean, test_labels])
    split = np.array(["train"] * len(train) + ["test"] * len(test), dtype=object)
    patients = frame["patient"].to_numpy(object)
    split = draw_validation(split, patients, val_fraction, seed)
    check_patient_disjoint(split, patients, frame["Path"].to_numpy(object), f"{folder}/{{train,valid}}.csv")
    keep = (frame["Frontal/Lateral"] == "Frontal").to_numpy() if frontal_only else np.ones(len(frame), dtype=bool)
    # a CSV path starts with the dataset folder's name; resolve it inside the folder found, whatever its name
    paths = np.array([str(folder / p.split("/", 1)[1]) for p in frame["Path"]], dtype=object)
    present = np.array([os.path.exists(p) for p in paths[keep]], dtype=bool)
    image_ids = frame["Path"].to_numpy(object)
    rows, absent = apply_missing_policy(present, image_ids[keep], missing, f"{folder}/{{train,valid}}.csv")
    views = frame["AP/PA"].where(frame["AP/PA"] != "", frame["Frontal/Lateral"])
    dataset = XrayDataset(
        name="chexpert",
        root=folder,
        classes=CHEXPERT_CLASSES,
        image_ids=image_ids,
        paths=paths,
        patient_ids=patients,
        study_ids=frame["study"].to_numpy(object),
        views=views.to_numpy(object),
        labels=labels,
        split=split,
        clean_labels=clean,
        missing=absent,
    ).subset(np.flatnonzero(keep)[rows])
    return dataset


def per_study(values: np.ndarray, study_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Study-level rows: the max over each study's images (NaN ignored), studies in first-seen order.

    Use it on scores and on labels alike to evaluate per study (CheXpert's official protocol) rather
    than per image; returns ``(study_ids [S], values [S, C])``.
    """
    grouped = pd.DataFrame(np.asarray(values)).groupby(np.asarray(study_ids), sort=False).max()
    return grouped.index.to_numpy(object), grouped.to_numpy(np.asarray(values).dtype)
