"""MIMIC-CXR-JPG 2.0 from a user's local copy: metadata, official split and per-study labels.

Labels are per study (``subject_id, study_id``) from the CheXpert or NegBio labeler and are copied
to every image of the study; images live at ``files/p10/p10000032/s50414267/<dicom_id>.jpg``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from paperkit.data.chexpert import RAW_VALUES, label_values
from paperkit.data.datasets import (
    DataError,
    XrayDataset,
    apply_missing_policy,
    check_missing_policy,
    check_patient_disjoint,
)
from paperkit.data.labels import CHEXPERT_CLASSES
from paperkit.data.nih import check_root, find_file

log = logging.getLogger(__name__)

PREFIX = "mimic-cxr-2.0.0"
LABELERS = ("chexpert", "negbio")
FRONTAL_VIEWS = ("PA", "AP")
_SPLIT_NAMES = {"train": "train", "validate": "val", "test": "test"}


def _read(root: Path, suffix: str, columns: tuple[str, ...]) -> tuple[pd.DataFrame, Path]:
    """``mimic-cxr-2.0.0-<suffix>.csv[.gz]`` as strings, required ``columns`` checked."""
    path = find_file(root, (f"{PREFIX}-{suffix}.csv",))
    if path is None:
        raise DataError(f"{root}: no {PREFIX}-{suffix}.csv.gz (or .csv) found")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    lacking = [c for c in columns if c not in frame.columns]
    if lacking:
        raise DataError(f"{path}: column(s) {lacking} missing from header {','.join(frame.columns)!r}")
    return frame, path


def load_mimic(
    root: str | os.PathLike,
    labeler: str = "chexpert",
    frontal_only: bool = True,
    missing: str = "error",
) -> XrayDataset:
    """Load MIMIC-CXR-JPG 2.0 as an :class:`XrayDataset` with its official (patient-wise) split.

    Parameters
    ----------
    root
        Folder with the ``mimic-cxr-2.0.0-*.csv.gz`` files and ``files/``.
    labeler
        ``chexpert`` or ``negbio`` label file.
    frontal_only
        Keep PA and AP views only.
    missing
        Listed images absent on disk: ``error``, ``skip`` (dropped, counted, logged) or ``keep``.
    """
    if labeler not in LABELERS:
        raise ValueError(f"labeler must be one of {', '.join(LABELERS)}, got {labeler!r}")
    check_missing_policy(missing)
    root = check_root(root)
    meta, meta_path = _read(root, "metadata", ("dicom_id", "subject_id", "study_id", "ViewPosition"))
    splits, split_path = _read(root, "split", ("dicom_id", "split"))
    studies, label_path = _read(root, labeler, ("subject_id", "study_id", *CHEXPERT_CLASSES))
    bad = np.flatnonzero(~splits["split"].isin(list(_SPLIT_NAMES)).to_numpy())
    if len(bad):
        raise DataError(
            f"{split_path}, line {bad[0] + 2}, column 'split': value {splits['split'][bad[0]]!r} "
            "is not train, validate or test"
        )
    split_of = splits.set_index("dicom_id")["split"]
    if split_of.index.duplicated().any():
        raise DataError(f"{split_path}: dicom_id {split_of.index[split_of.index.duplicated()][0]!r} is listed twice")
    assigned = meta["dicom_id"].map(split_of)
    if assigned.isna().any():
        row = int(np.flatnonzero(assigned.isna().to_numpy())[0])
        raise DataError(
            f"{meta_path}, line {row + 2}: dicom_id {meta['dicom_id'][row]!r} has no row in {split_path.name}"
        )
    check_patient_disjoint(
        assigned.to_numpy(object),
        meta["subject_id"].to_numpy(object),
        meta["dicom_id"].to_numpy(object),
        str(split_path),
    )
    values = label_values(studies, CHEXPERT_CLASSES, label_path, RAW_VALUES)
    table = pd.DataFrame(values, index=pd.MultiIndex.from_frame(studies[["subject_id", "study_id"]]))
    labels = table.reindex(pd.MultiIndex.from_frame(meta[["subject_id", "study_id"]])).to_numpy(np.float32)
    unlabelled = ~meta.set_index(["subject_id", "study_id"]).index.isin(table.index)
    if unlabelled.any():
        log.warning(
            "%s: %d image(s) belong to studies without labels; their labels are NaN", label_path, int(unlabelled.sum())
        )
    subject, study, dicom = meta["subject_id"], meta["study_id"], meta["dicom_id"]
    paths = ("files/p" + subject.str[:2] + "/p" + subject + "/s" + study + "/" + dicom + ".jpg").to_numpy(object)
    paths = np.array([str(root / p) for p in paths], dtype=object)
    keep = meta["ViewPosition"].isin(FRONTAL_VIEWS).to_numpy() if frontal_only else np.ones(len(meta), dtype=bool)
    present = np.array([os.path.exists(p) for p in paths[keep]], dtype=bool)
    rows, absent = apply_missing_policy(present, dicom.to_numpy(object)[keep], missing, meta_path)
    dataset = XrayDataset(
        name="mimic",
        root=root,
        classes=CHEXPERT_CLASSES,
        image_ids=dicom.to_numpy(object),
        paths=paths,
        patient_ids=subject.to_numpy(object),
        study_ids=study.to_numpy(object),
        views=meta["ViewPosition"].to_numpy(object),
        labels=labels,
        split=assigned.map(_SPLIT_NAMES).to_numpy(object),
        clean_labels=None,
        missing=absent,
    ).subset(np.flatnonzero(keep)[rows])
    return dataset
