"""NIH ChestX-ray14 from a user's local copy (or the embedded benchmark written in the same layout).

Reads ``Data_Entry_2017_v2020.csv`` (or the older ``Data_Entry_2017.csv``, either optionally
gzipped), finds the PNGs flat in ``images/`` or in ``images_001/images/ … images_012/images/``,
and assigns the official, a seeded CheXNet-style 70/10/20, or user-listed split. Clean labels come
from ``clean_labels.csv`` (embedded benchmark) or Google's 2019 radiologist relabels when present.
"""
from __future__ import annotations

import logging
import os
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
    patient_split,
    read_labelled_list,
    read_name_list,
)
from paperkit.data.labels import NIH_CLASSES, NO_FINDING

log = logging.getLogger(__name__)

DATA_ENTRY_NAMES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
#: The header as pandas tokenises it (the bracketed names contain commas).
DATA_ENTRY_HEADER = (
    "Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age", "Patient Gender",
    "View Position", "OriginalImage[Width", "Height]", "OriginalImagePixelSpacing[x", "y]",
)
BBOX_NAMES = ("BBox_List_2017.csv",)
BBOX_HEADER = ("Image Index", "Finding Label", "Bbox [x", "y", "w", "h]")
GOOGLE_NAMES = ("google2019_nih-chest-xray-labels.csv",)
CLEAN_LABELS_NAME = "clean_labels.csv"
NIH_SPLITS = ("official", "patient70_10_20", "lists")


def find_file(root: Path, names: tuple[str, ...]) -> Path | None:
    """First of ``names`` (or its ``.gz``) present in ``root``."""
    for name in names:
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def check_root(root: str | os.PathLike) -> Path:
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"dataset root {root} does not exist or is not a folder")
    return root


def read_header(path: Path) -> list[str]:
    """The first line's fields, trailing empty fields dropped (the older files end with a comma)."""
    first = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0].tolist()
    while first and first[-1] == "":
        first.pop()
    return first


def read_data_entry(path: Path) -> pd.DataFrame:
    """The Data_Entry table as strings, header and ids checked."""
    header = read_header(path)
    if tuple(header) != DATA_ENTRY_HEADER:
        raise DataError(
            f"{path}: header {','.join(header)!r} is not NIH's Data_Entry header {','.join(DATA_ENTRY_HEADER)!r}"
        )
    frame = pd.read_csv(path, usecols=range(7), dtype=str, keep_default_na=False)
    for column in ("Image Index", "Patient ID"):
        empty = np.flatnonzero(frame[column].str.strip() == "")
        if len(empty):
            raise DataError(f"{path}, line {empty[0] + 2}, column {column!r}: empty value")
    dup = frame["Image Index"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise DataError(f"{path}, line {row + 2}: image {frame['Image Index'][row]!r} is listed twice")
    return frame


def nih_label_matrix(findings: pd.Series, source: Path) -> np.ndarray:
    """float32 [N, 14] in :data:`NIH_CLASSES` order from ``|``-separated ``Finding Labels``."""
    dummies = findings.str.get_dummies("|")
    unknown = sorted(set(dummies.columns) - set(NIH_CLASSES) - {NO_FINDING})
    if unknown:
        row = int(np.flatnonzero(dummies[unknown[0]].to_numpy())[0])
        raise DataError(
            f"{source}, line {row + 2}, column 'Finding Labels': unknown label {unknown[0]!r} in "
            f"{findings.iloc[row]!r}; known: {', '.join(NIH_CLASSES)}, {NO_FINDING}"
        )
    empty = np.flatnonzero(dummies.sum(axis=1).to_numpy() == 0)
    if len(empty):
        raise DataError(f"{source}, line {empty[0] + 2}, column 'Finding Labels': empty value")
    if NO_FINDING in dummies:
        both = np.flatnonzero((dummies[NO_FINDING] == 1).to_numpy() & (dummies.sum(axis=1) > 1).to_numpy())
        if len(both):
            raise DataError(
                f"{source}, line {both[0] + 2}: {NO_FINDING!r} combined with findings in {findings.iloc[both[0]]!r}"
            )
    return dummies.reindex(columns=list(NIH_CLASSES), fill_value=0).to_numpy(np.float32)


def find_nih_images(root: Path) -> dict[str, Path]:
    """Image name -> path over both layouts: flat ``images/`` and ``images_0NN/images/``."""
    folders = [root / "images", *sorted(root.glob("images_*/images"))]
    found: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            with os.scandir(folder) as entries:
                for entry in entries:
                    found.setdefault(entry.name, Path(entry.path))
    return found


def _official_split(root: Path, names: np.ndarray) -> np.ndarray:
    known = set(names)
    membership: dict[str, str] = {}
    for list_name, value in (("train_val_list.txt", "train"), ("test_list.txt", "test")):
        path = root / list_name
        for lineno, name in enumerate(read_name_list(path), start=1):
            if name not in known:
                raise DataError(f"{path}, line {lineno}: image {name!r} is not in the Data_Entry file")
            if membership.setdefault(name, value) != value:
                raise DataError(
                    f"{path}, line {lineno}: image {name!r} is in both train_val_list.txt and test_list.txt"
                )
    unlisted = [n for n in names if n not in membership]
    if unlisted:
        raise DataError(
            f"{len(unlisted)} image(s) are in neither train_val_list.txt nor test_list.txt in {root} "
            f"(first: {unlisted[0]})"
        )
    return np.array([membership[n] for n in names], dtype=object)


def _list_split(root: Path, names: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split, labels and kept rows from user lists; the lists' labels are authoritative."""
    row_of = {n: i for i, n in enumerate(names)}
    split = np.full(len(names), "", dtype=object)
    listed = labels.copy()
    for value in ("train", "val", "test"):
        path = root / f"{value}_list.txt"
        frame = read_labelled_list(path, len(NIH_CLASSES))
        for lineno, name in enumerate(frame["name"], start=1):
            if name not in row_of:
                raise DataError(f"{path}, entry {lineno}: image {name!r} is not in the Data_Entry file")
            if split[row_of[name]]:
                raise DataError(f"{path}, entry {lineno}: image {name!r} is also in {split[row_of[name]]}_list.txt")
            split[row_of[name]] = value
        rows = frame["name"].map(row_of).to_numpy()
        listed[rows] = frame.drop(columns="name").to_numpy(np.float32)
    keep = split != ""
    differ = int((listed[keep] != labels[keep]).any(axis=1).sum())
    if differ:
        log.warning(
            "%s: %d listed image(s) carry labels that differ from Data_Entry; using the lists' labels", root, differ
        )
    if (~keep).any():
        log.info("%s: %d Data_Entry image(s) are in no list and are left out", root, int((~keep).sum()))
    return split, listed, keep


def _clean_labels(root: Path, names: np.ndarray) -> np.ndarray | None:
    """Clean truth: ``clean_labels.csv`` (every row) if present, else Google's relabels, else ``None``."""
    path = root / CLEAN_LABELS_NAME
    if path.is_file():
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if tuple(frame.columns) != ("Image Index", *NIH_CLASSES):
            raise DataError(
                f"{path}: header {','.join(frame.columns)!r} should be 'Image Index' then the 14 NIH classes"
            )
        for column in NIH_CLASSES:
            bad = np.flatnonzero(~frame[column].isin(["0", "1"]).to_numpy())
            if len(bad):
                raise DataError(
                    f"{path}, line {bad[0] + 2}, column {column!r}: value {frame[column][bad[0]]!r} is not 0 or 1"
                )
        table = frame.set_index("Image Index")[list(NIH_CLASSES)].astype(np.float32)
        absent = [n for n in names if n not in table.index]
        if absent:
            raise DataError(f"{path}: no clean labels for {len(absent)} image(s) (first: {absent[0]})")
        return table.loc[list(names)].to_numpy(np.float32)
    path = find_file(root, GOOGLE_NAMES)
    return None if path is None else google_clean_labels(path, names)


def google_clean_labels(path: Path, names: np.ndarray) -> np.ndarray:
    """NaN-filled float32 [N, 14] holding what Google's 2019 relabels decide.

    Google graded four findings; only two map onto NIH classes without guessing: ``Pneumothorax``
    (YES/NO) and ``Nodule or mass`` = NO, which makes both Nodule and Mass negative (YES cannot say
    which). Fracture and Airspace opacity have no NIH class and are not used.
    """
    columns = ("Image Index", "Pneumothorax", "Nodule or mass")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    lacking = [c for c in columns if c not in frame.columns]
    if lacking:
        raise DataError(f"{path}: column(s) {lacking} missing; is this google2019_nih-chest-xray-labels.csv?")
    for column in columns[1:]:
        bad = np.flatnonzero(~frame[column].isin(["YES", "NO"]).to_numpy())
        if len(bad):
            raise DataError(
                f"{path}, line {bad[0] + 2}, column {column!r}: value {frame[column][bad[0]]!r} is not YES or NO"
            )
    clean = np.full((len(names), len(NIH_CLASSES)), np.nan, dtype=np.float32)
    row_of = {n: i for i, n in enumerate(names)}
    rows = frame["Image Index"].map(row_of)
    hit = rows.notna().to_numpy()
    rows = rows[hit].astype(int).to_numpy()
    clean[rows, NIH_CLASSES.index("Pneumothorax")] = (frame["Pneumothorax"][hit] == "YES").to_numpy()
    no_nodule_mass = (frame["Nodule or mass"][hit] == "NO").to_numpy()
    for name in ("Nodule", "Mass"):
        clean[rows[no_nodule_mass], NIH_CLASSES.index(name)] = 0.0
    log.info("%s: clean labels for %d of %d images", path, int(hit.sum()), len(names))
    return clean


def load_nih(
    root: str | os.PathLike,
    split: str = "official",
    seed: int = 0,
    val_fraction: float = 0.1,
    missing: str = "error",
) -> XrayDataset:
    """Load NIH ChestX-ray14 (or the benchmark in its layout) as an :class:`XrayDataset`.

    Parameters
    ----------
    root
        Folder holding the Data_Entry file and ``images/`` or ``images_0NN/images/``.
    split
        ``official`` (``train_val_list.txt``/``test_list.txt``; validation = ``val_fraction`` of the
        train_val patients), ``patient70_10_20`` (seeded, patient-wise, CheXNet style) or ``lists``
        (``train_list.txt``/``val_list.txt``/``test_list.txt`` with 14 0/1 labels a line, used as the
        labels; unlisted images are left out).
    seed
        Seed of the patient draws.
    missing
        Listed images absent on disk: ``error``, ``skip`` (dropped, counted, logged) or ``keep``.
    """
    if split not in NIH_SPLITS:
        raise ValueError(f"split must be one of {', '.join(NIH_SPLITS)}, got {split!r}")
    check_missing_policy(missing)
    root = check_root(root)
    entry = find_file(root, DATA_ENTRY_NAMES)
    if entry is None:
        raise DataError(f"{root}: no {' or '.join(DATA_ENTRY_NAMES)} (optionally .gz) found")
    frame = read_data_entry(entry)
    labels = nih_label_matrix(frame["Finding Labels"], entry)
    names = frame["Image Index"].to_numpy(object)
    patients = frame["Patient ID"].str.strip().to_numpy(object)
    keep = np.ones(len(names), dtype=bool)
    if split == "official":
        assigned = draw_validation(_official_split(root, names), patients, val_fraction, seed)
    elif split == "patient70_10_20":
        assigned = patient_split(patients, (0.7, 0.1, 0.2), seed)
    else:
        assigned, labels, keep = _list_split(root, names, labels)
    check_patient_disjoint(assigned[keep], patients[keep], names[keep], str(entry))
    clean = _clean_labels(root, names)
    # unlisted images (split="lists") leave before the missing-image policy so they are never reported
    sel = np.flatnonzero(keep)
    frame, names, patients, labels, assigned = frame.iloc[sel], names[sel], patients[sel], labels[sel], assigned[sel]
    on_disk = find_nih_images(root)
    present = np.array([n in on_disk for n in names], dtype=bool)
    rows, absent = apply_missing_policy(present, names, missing, entry)
    dataset = XrayDataset(
        name="nih",
        root=root,
        classes=NIH_CLASSES,
        image_ids=names,
        paths=np.array([str(on_disk.get(n, root / "images" / n)) for n in names], dtype=object),
        patient_ids=patients,
        study_ids=np.array([n.rsplit(".", 1)[0] for n in names], dtype=object),
        views=frame["View Position"].to_numpy(object),
        labels=labels,
        split=assigned,
        clean_labels=None if clean is None else clean[sel],
        missing=absent,
    ).subset(rows)
    return dataset


def load_nih_boxes(root: str | os.PathLike) -> pd.DataFrame:
    """``BBox_List_2017.csv`` as ``Image Index, Finding Label, x, y, w, h`` (1024-px coordinates).

    NIH spells Infiltration ``Infiltrate`` in this file; it is renamed to the Data_Entry spelling.
    """
    root = check_root(root)
    path = find_file(root, BBOX_NAMES)
    if path is None:
        raise DataError(f"{root}: no {BBOX_NAMES[0]} (optionally .gz) found")
    header = read_header(path)
    if tuple(header) != BBOX_HEADER:
        raise DataError(f"{path}: header {','.join(header)!r} is not NIH's {','.join(BBOX_HEADER)!r}")
    boxes = pd.read_csv(
        path, header=None, skiprows=1, usecols=range(6), names=["Image Index", "Finding Label", "x", "y", "w", "h"]
    )
    boxes["Finding Label"] = boxes["Finding Label"].replace({"Infiltrate": "Infiltration"})
    bad = np.flatnonzero(~boxes["Finding Label"].isin(NIH_CLASSES).to_numpy())
    if len(bad):
        raise DataError(
            f"{path}, line {bad[0] + 2}, column 'Finding Label': unknown label {boxes['Finding Label'][bad[0]]!r}"
        )
    coords = boxes[["x", "y", "w", "h"]].apply(pd.to_numeric, errors="coerce")
    bad = np.flatnonzero(coords.isna().any(axis=1).to_numpy())
    if len(bad):
        raise DataError(f"{path}, line {bad[0] + 2}: box coordinates {boxes.iloc[bad[0], 2:].tolist()} are not numbers")
    boxes[["x", "y", "w", "h"]] = coords.astype(np.float32)
    return boxes
