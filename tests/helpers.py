"""Helpers shared by several test files: tiny datasets written in each source's exact format, the real
metadata torchxrayvision bundles, and the trainer's tiny learnable problem.

Test files import them with ``from helpers import ...``: tests/ has no ``__init__.py``, so pytest's default
(``prepend``) import mode puts tests/ on ``sys.path`` when it imports conftest.py and the test files, as it did
when test files imported each other. A helper that only one file uses stays in that file.
"""
from __future__ import annotations

import dataclasses
import gzip
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from paperkit.data.chexpert import CHEXPERT_HEADER
from paperkit.data.labels import CHEXPERT_CLASSES

if TYPE_CHECKING:
    from paperkit.training.loop import TrainConfig

# --- torchxrayvision's real metadata ------------------------------------------------------------------


def xrv_data() -> Path:
    """torchxrayvision's bundled metadata folder, found without importing the package."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torchxrayvision (dev dependency) is not installed: its real NIH/CheXpert metadata is needed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


# --- NIH ChestX-ray14 -----------------------------------------------------------------------------------

NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
NIH_FINDINGS = ["No Finding", "Cardiomegaly", "Effusion|Infiltration", "Hernia", "Mass|Nodule|Pneumothorax"]
#: 10 patients x 2 images; patients 8-10 form the official test list
ROWS = [(f"{p:08d}_{f:03d}.png", NIH_FINDINGS[(p + f) % len(NIH_FINDINGS)], p) for p in range(1, 11) for f in range(2)]

#: Images per finding in NIH's real Data_Entry_2017_v2020.csv (112,120 images).
REAL_COUNTS = {
    "Infiltration": 19894,
    "Effusion": 13317,
    "Atelectasis": 11559,
    "Nodule": 6331,
    "Mass": 5782,
    "Pneumothorax": 5302,
    "Consolidation": 4667,
    "Pleural_Thickening": 3385,
    "Cardiomegaly": 2776,
    "Emphysema": 2516,
    "Edema": 2303,
    "Fibrosis": 1686,
    "Pneumonia": 1431,
    "Hernia": 227,
}


def write_png(path: Path, mode: str = "L", size: int = 24, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, len(mode)), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if mode == "L" else pixels, mode).save(path)


def write_nih(root: Path, layout: str = "flat", rows=ROWS, lists: bool = True) -> Path:
    """A tiny NIH root: Data_Entry (NIH header), PNGs (a few RGB/RGBA), official split lists."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [NIH_HEADER] + [
        f"{n},{f},{n[9:12].lstrip('0') or 0},{p},50,M,PA,2500,2048,0.143,0.143" for n, f, p in rows
    ]
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    for i, (name, _, _) in enumerate(rows):
        folder = root / "images" if layout == "flat" else root / f"images_{1 + i // 8:03d}" / "images"
        write_png(folder / name, mode=("L", "RGB", "RGBA")[i % 3], seed=i)
    if lists:
        (root / "train_val_list.txt").write_text("".join(f"{n}\n" for n, _, p in rows if p <= 7))
        (root / "test_list.txt").write_text("".join(f"{n}\n" for n, _, p in rows if p > 7))
    return root


# --- CheXpert -------------------------------------------------------------------------------------------

#: 14 observations: a mix of 1.0, 0.0, -1.0 and blank, as in the real file
CHEXPERT_TRAIN_VALUES = ["1.0", "", "-1.0", "1.0", "", "-1.0", "0.0", "", "", "0.0", "1.0", "", "", "1.0"]


def write_chexpert(parent, prefix: str = "CheXpert-v1.0-small", images: bool = True):
    """``parent/<prefix>/{train,valid}.csv`` and JPEGs: 6 train patients (frontal + lateral), 2 valid."""
    root = parent / prefix
    header = ",".join(CHEXPERT_HEADER)
    train, valid = [header], [header]
    for p in range(1, 7):
        for view, kind in (("view1_frontal", "Frontal,AP"), ("view2_lateral", "Lateral,")):
            train.append(
                f"{prefix}/train/patient{p:05d}/study1/{view}.jpg,Female,60,{kind}," + ",".join(CHEXPERT_TRAIN_VALUES)
            )
    for p in (64541, 64542):
        values = ",".join("1.0" if j % 3 == 0 else "0.0" for j in range(14))
        valid.append(f"{prefix}/valid/patient{p}/study1/view1_frontal.jpg,Male,70,Frontal,PA,{values}")
        valid.append(f"{prefix}/valid/patient{p}/study1/view2_frontal.jpg,Male,70,Frontal,AP,{values}")
    root.mkdir(parents=True)
    (root / "train.csv").write_text("\n".join(train) + "\n")
    (root / "valid.csv").write_text("\n".join(valid) + "\n")
    if images:
        for line in train[1:] + valid[1:]:
            path = parent / line.split(",")[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((20, 16), 128, np.uint8)).save(path)
    return root


# --- MIMIC-CXR-JPG 2.0 ----------------------------------------------------------------------------------

MIMIC_META_HEADER = (
    "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,"
    "StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning"
)
#: MIMIC's label files list the observations alphabetically, not in CheXpert's CSV order
MIMIC_LABEL_COLUMNS = sorted(CHEXPERT_CLASSES)
#: (dicom_id, subject, study, view, split)
MIMIC_IMAGES = [
    ("d1", "10000032", "50414267", "PA", "train"),
    ("d2", "10000032", "50414267", "LATERAL", "train"),
    ("d3", "10000764", "57375967", "AP", "train"),
    ("d4", "11000011", "51234567", "PA", "validate"),
    ("d5", "19999987", "58971208", "AP", "test"),
]


def write_gz(path, lines) -> None:
    """``lines`` as a gzip-compressed text file, one per line."""
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def write_mimic(root, images=True):
    """A tiny MIMIC-CXR-JPG root: metadata, split and both labelers' csv.gz files, and the JPEGs of MIMIC_IMAGES."""
    root.mkdir(parents=True, exist_ok=True)
    write_gz(
        root / "mimic-cxr-2.0.0-metadata.csv.gz",
        [MIMIC_META_HEADER]
        + [
            f"{d},{s},{t},CHEST (PA AND LAT),{v},3056,2544,21800506,213014.531,CHEST,postero-anterior,Erect"
            for d, s, t, v, _ in MIMIC_IMAGES
        ],
    )
    write_gz(
        root / "mimic-cxr-2.0.0-split.csv.gz",
        ["dicom_id,study_id,subject_id,split"] + [f"{d},{t},{s},{sp}" for d, s, t, _, sp in MIMIC_IMAGES],
    )
    studies = sorted({(s, t) for _, s, t, _, _ in MIMIC_IMAGES})
    for labeler, value in (("chexpert", "-1.0"), ("negbio", "1.0")):
        rows = [f"{s},{t}," + ",".join(value if c == "Edema" else "" for c in MIMIC_LABEL_COLUMNS) for s, t in studies]
        write_gz(root / f"mimic-cxr-2.0.0-{labeler}.csv.gz", ["subject_id,study_id," + ",".join(MIMIC_LABEL_COLUMNS)]
                 + rows)
    if images:
        for d, s, t, _, _ in MIMIC_IMAGES:
            path = root / "files" / f"p{s[:2]}" / f"p{s}" / f"s{t}" / f"{d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((12, 10), np.uint8)).save(path)
    return root


# --- the trainer's tiny learnable problem --------------------------------------------------------------

#: images, classes, image side and crop side of :func:`make_data`
N, C, SIZE, CROP = 48, 3, 20, 16


def make_data(seed: int = 0) -> dict:
    """Tiny learnable problem: class j brightens a band of rows; pools over training rows only."""
    from paperkit.method.knn import neighbour_pools  # torch: imported by the tests that train, not the data ones
    from paperkit.training.loop import ArrayImages

    rng = np.random.default_rng(seed)
    targets = (rng.random((N, C)) < 0.4).astype(np.float32)
    images = rng.integers(0, 120, (N, SIZE, SIZE)).astype(np.float32)
    for j in range(C):
        images[:, 6 * j : 6 * j + 6, :] += 100 * targets[:, j, None, None]
    soft = np.clip(0.7 * targets + 0.3 * rng.random((N, C)), 0, 1).astype(np.float32)
    train_index, val_index = np.arange(32), np.arange(32, N)
    pools = neighbour_pools(soft[train_index], 4, sigma=1.0)  # pool of 4, K = 2 sampled per step
    return dict(images=ArrayImages(images.astype(np.uint8)), train_index=train_index, val_index=val_index,
                targets=targets, mask=None, soft_labels=soft, pools=pools)


def config(**changes) -> TrainConfig:
    """A CPU TrainConfig for :func:`make_data` (2 epochs of resnet10t), with ``changes`` applied."""
    from paperkit.training.loop import TrainConfig

    base = TrainConfig(arch="resnet10t", head="pcam", batch_size=8, epochs=2, lr_step_epochs=1, crop=CROP,
                       k=2, device="cpu", num_threads=1)
    return dataclasses.replace(base, **changes)


#: The B+MODL+KNNS weights the trainer tests use.
VARIANT = dict(lambda_modl=0.5, gamma_knns=0.5)
