"""MIMIC-CXR-JPG 2.0 loader on fixtures in its exact csv.gz formats."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import MIMIC_IMAGES, MIMIC_META_HEADER, write_gz, write_mimic

from paperkit.data.datasets import DataError
from paperkit.data.labels import CHEXPERT_CLASSES
from paperkit.data.mimic import load_mimic


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
    write_gz(root / "mimic-cxr-2.0.0-split.csv.gz",
             ["dicom_id,study_id,subject_id,split", "d1,50414267,10000032,holdout"])
    with pytest.raises(DataError, match=r"split.csv.gz, line 2, column 'split': value 'holdout'"):
        load_mimic(root, missing="keep")
    (root / "mimic-cxr-2.0.0-negbio.csv.gz").unlink()
    with pytest.raises(DataError, match="no mimic-cxr-2.0.0-negbio.csv.gz"):
        load_mimic(root, labeler="negbio", missing="keep")


def test_patient_in_two_splits(tmp_path):
    root = tmp_path / "mimic"
    leak = [*MIMIC_IMAGES[:2], (MIMIC_IMAGES[2][0], MIMIC_IMAGES[2][1], MIMIC_IMAGES[2][2], "AP", "test")]
    write_mimic(root, images=False)
    write_gz(
        root / "mimic-cxr-2.0.0-split.csv.gz",
        ["dicom_id,study_id,subject_id,split"]
        + [f"{d},{t},{s},{sp}" for d, s, t, _, sp in leak + MIMIC_IMAGES[3:]]
        + ["d3x,0,0,train"],
    )
    write_gz(
        root / "mimic-cxr-2.0.0-metadata.csv.gz",
        [MIMIC_META_HEADER]
        + [
            f"{d},{s},{t},X,{v},1,1,1,1,X,X,X"
            for d, s, t, v, _ in MIMIC_IMAGES + [("d3x", "10000764", "57375967", "AP", "")]
        ],
    )
    with pytest.raises(DataError, match="patient 10000764 is in two splits"):
        load_mimic(root, missing="keep")
