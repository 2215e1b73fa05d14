"""MIMIC-CXR-JPG 2.0 loader on fixtures in its exact csv.gz formats."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from PIL import Image

from paperkit.data.datasets import DataError
from paperkit.data.labels import CHEXPERT_CLASSES
from paperkit.data.mimic import load_mimic

META_HEADER = (
    "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,"
    "StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning"
)
#: MIMIC's label files list the observations alphabetically, not in CheXpert's CSV order
LABEL_COLUMNS = sorted(CHEXPERT_CLASSES)
#: (dicom_id, subject, study, view, split)
IMAGES = [
    ("d1", "10000032", "50414267", "PA", "train"),
    ("d2", "10000032", "50414267", "LATERAL", "train"),
    ("d3", "10000764", "57375967", "AP", "train"),
    ("d4", "11000011", "51234567", "PA", "validate"),
    ("d5", "19999987", "58971208", "AP", "test"),
]


def _gz(path, lines):
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def write_mimic(root, images=True):
    root.mkdir(parents=True, exist_ok=True)
    _gz(
        root / "mimic-cxr-2.0.0-metadata.csv.gz",
        [META_HEADER]
        + [
            f"{d},{s},{t},CHEST (PA AND LAT),{v},3056,2544,21800506,213014.531,CHEST,postero-anterior,Erect"
            for d, s, t, v, _ in IMAGES
        ],
    )
    _gz(
        root / "mimic-cxr-2.0.0-split.csv.gz",
        ["dicom_id,study_id,subject_id,split"] + [f"{d},{t},{s},{sp}" for d, s, t, _, sp in IMAGES],
    )
    studies = sorted({(s, t) for _, s, t, _, _ in IMAGES})
    for labeler, value in (("chexpert", "-1.0"), ("negbio", "1.0")):
        rows = [f"{s},{t}," + ",".join(value if c == "Edema" else "" for c in LABEL_COLUMNS) for s, t in studies]
        _gz(root / f"mimic-cxr-2.0.0-{labeler}.csv.gz", ["subject_id,study_id," + ",".join(LABEL_COLUMNS)] + rows)
    if images:
        for d, s, t, _, _ in IMAGES:
            path = root / "files" / f"p{s[:2]}" / f"p{s}" / f"s{t}" / f"{d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((12, 10), np.uint8)).save(path)
    return root


@pytest.mark.parametrize("labeler, edema", [("chexpert", -1.0), ("negbio", 1.0)])
def test_load(tmp_path, labeler, edema):
    ds = load_mimic(write_mimic(tmp_path / "mimic"), labeler=labeler)
    assert ds.name == "mimic" and ds.classes == CHEXPERT_CLASSES
    assert list(ds.image_ids) == ["d1", "d3", "d4", "d5"]  # the lateral view is dropped
    assert list(ds.split) == ["train", "train", "val", "test"]
    assert (ds.labels[:, CHEXPERT_CLASSES.index("Edema")] == edema).all()
    assert np.isnan(ds.labels[:, CHEXPERT_CLASSES.index("Fracture")]).all()
    assert ds.paths[0].endswith("files/p10/p10000032/s50414267/d1.jpg")
    assert len(load_mimic(tmp_path / "mimic", labeler=labeler, frontal_only=False)) == 5


def test_bad_input(tmp_path):
    root = write_mimic(tmp_path / "mimic", images=False)
    with pytest.raises(DataError, match="5 image"):
        load_mimic(root, frontal_only=False)
    assert len(load_mimic(root, missing="keep").missing) == 4
    _gz(root / "mimic-cxr-2.0.0-split.csv.gz", ["dicom_id,study_id,subject_id,split", "d1,50414267,10000032,holdout"])
    with pytest.raises(DataError, match=r"split.csv.gz, line 2, column 'split': value 'holdout'"):
        load_mimic(root, missing="keep")
    (root / "mimic-cxr-2.0.0-negbio.csv.gz").unlink()
    with pytest.raises(DataError, match="no mimic-cxr-2.0.0-negbio.csv.gz"):
        load_mimic(root, labeler="negbio", missing="keep")


def test_patient_in_two_splits(tmp_path):
    root = tmp_path / "mimic"
    IMAGES_LEAK = [*IMAGES[:2], (IMAGES[2][0], IMAGES[2][1], IMAGES[2][2], "AP", "test")]
    write_mimic(root, images=False)
    _gz(
        root / "mimic-cxr-2.0.0-split.csv.gz",
        ["dicom_id,study_id,subject_id,split"]
        + [f"{d},{t},{s},{sp}" for d, s, t, _, sp in IMAGES_LEAK + IMAGES[3:]]
        + ["d3x,0,0,train"],
    )
    _gz(
        root / "mimic-cxr-2.0.0-metadata.csv.gz",
        [META_HEADER]
        + [
            f"{d},{s},{t},X,{v},1,1,1,1,X,X,X" for d, s, t, v, _ in IMAGES + [("d3x", "10000764", "57375967", "AP", "")]
        ],
    )
    with pytest.raises(DataError, match="patient 10000764 is in two splits"):
        load_mimic(root, missing="keep")
