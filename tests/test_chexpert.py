"""CheXpert loader on fixtures in CheXpert's exact CSV format (both prefixes) and on the real train.csv."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import write_chexpert, xrv_data

from paperkit.data.chexpert import load_chexpert, per_study, read_chexpert_csv
from paperkit.data.datasets import DataError
from paperkit.data.labels import CHEXPERT_CLASSES


@pytest.mark.parametrize("prefix", ["CheXpert-v1.0-small", "CheXpert-v1.0"])
@pytest.mark.parametrize("given", ["folder", "parent"])
def test_load_both_prefixes(tmp_path, prefix, given):
    root = write_chexpert(tmp_path, prefix)
    ds = load_chexpert(root if given == "folder" else tmp_path, val_fraction=0.34, seed=1)
    assert ds.classes == CHEXPERT_CLASSES and len(ds) == 6 + 4
    assert [int((ds.split == s).sum()) for s in ("train", "val", "test")] == [4, 2, 4]
    train_row = ds.labels[0]
    assert train_row[0] == 1 and train_row[2] == -1 and train_row[6] == 0 and np.isnan(train_row[1])
    assert np.isnan(ds.clean_labels[ds.split != "test"]).all()
    assert (ds.clean_labels[ds.split == "test"] == ds.labels[ds.split == "test"]).all()
    assert ds.patient_ids[0] == "patient00001" and ds.study_ids[0] == "patient00001/study1"
    assert all(v in ("AP", "PA") for v in ds.views)
    assert len(load_chexpert(root, frontal_only=False)) == 12 + 4


def test_train_clean_and_per_study(tmp_path):
    root = write_chexpert(tmp_path)
    lines = ["Path," + ",".join(CHEXPERT_CLASSES)]
    lines += [
        f"CheXpert-v1.0-small/train/patient{p:05d}/study1/view1_frontal.jpg," + ",".join(["0"] * 14)
        for p in range(1, 7)
    ]
    (root / "train_clean.csv").write_text("\n".join(lines) + "\n")
    ds = load_chexpert(root)
    assert (ds.clean_labels == np.where(ds.split[:, None] == "test", ds.labels, 0)).all()
    test = ds.subset(ds.split == "test")
    scores = np.arange(4 * 14, dtype=np.float32).reshape(4, 14)
    studies, study_scores = per_study(scores, test.study_ids)
    assert list(studies) == ["patient64541/study1", "patient64542/study1"]
    assert (study_scores == scores[[1, 3]]).all()  # max over a study's two images


def _edit(path, old, new):
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda r: (r / "valid.csv").unlink(), "valid.csv not found"),
        (lambda r: (r / "train.csv").unlink(), "no train.csv"),
        (lambda r: _edit(r / "train.csv", "Pleural Effusion", "Effusion"), "header"),
        (
            lambda r: _edit(r / "train.csv", "AP,1.0,", "AP,2.0,"),
            r"train.csv, line 2, column 'No Finding': value '2.0'",
        ),
        (
            lambda r: _edit(r / "train.csv", "small/train/patient00003", "small/train/p3"),
            r"train.csv, line 6, column 'Path'",
        ),
        (lambda r: _edit(r / "valid.csv", "patient64541", "patient00001"), "patient patient00001 is in two splits"),
        (
            lambda r: (r / "train/patient00002/study1/view1_frontal.jpg").unlink(),
            "patient00002/study1/view1_frontal.jpg",
        ),
    ],
    ids=["no-valid", "no-train", "header", "bad-value", "bad-path", "patient-in-two-splits", "missing-image"],
)
def test_bad_input_names_file_row_value(tmp_path, breakage, message):
    root = write_chexpert(tmp_path)
    breakage(root)
    with pytest.raises(DataError, match=message):
        load_chexpert(root)


def test_real_train_csv():
    frame, labels = read_chexpert_csv(xrv_data() / "chexpert_train.csv.gz")
    assert len(frame) == 223_414 and frame["patient"].nunique() == 64_540
    assert set(np.unique(labels[~np.isnan(labels)])) == {-1.0, 0.0, 1.0}
