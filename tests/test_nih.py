"""NIH ChestX-ray14 loader on fixtures written in NIH's exact formats, and on NIH's real metadata."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import REAL_COUNTS, ROWS, write_nih, xrv_data

from paperkit.data.datasets import DataError, patient_split
from paperkit.data.labels import NIH_CLASSES
from paperkit.data.nih import load_nih, load_nih_boxes


def assert_patient_disjoint(ds) -> None:
    owners = {}
    for patient, split in zip(ds.patient_ids, ds.split):
        assert owners.setdefault(patient, split) == split, f"patient {patient} in two splits"


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_official_split_both_layouts(tmp_path, layout):
    ds = load_nih(write_nih(tmp_path / "nih", layout), split="official", val_fraction=0.3)
    assert len(ds) == 20 and ds.classes == NIH_CLASSES and ds.name == "nih"
    assert all(Path(p).is_file() for p in ds.paths)
    assert (Path(ds.paths[9]).parent.parent.name == "images_002") == (layout == "nested")
    row = list(ds.image_ids).index("00000002_001.png")  # (2 + 1) % 5 -> Hernia
    assert ds.labels[row].tolist() == [float(c == "Hernia") for c in NIH_CLASSES]
    assert set(ds.patient_ids[ds.split == "test"]) == {"8", "9", "10"}
    assert len(set(ds.patient_ids[ds.split == "val"])) == 2  # 30% of the 7 train_val patients
    assert ds.clean_labels is None
    assert_patient_disjoint(ds)


def test_patient_split_is_seeded_and_patient_wise(tmp_path):
    root = write_nih(tmp_path / "nih", lists=False)
    a, b = load_nih(root, split="patient70_10_20", seed=3), load_nih(root, split="patient70_10_20", seed=3)
    assert (a.split == b.split).all()
    assert [len(set(a.patient_ids[a.split == s])) for s in ("train", "val", "test")] == [7, 1, 2]
    assert_patient_disjoint(a)
    many = np.repeat(np.arange(1000).astype(str), 3)
    counts = {s: (patient_split(many, seed=1) == s).sum() / 3 for s in ("train", "val", "test")}
    assert counts == {"train": 700, "val": 100, "test": 200}


def test_user_lists_give_split_and_labels(tmp_path):
    root = write_nih(tmp_path / "nih", lists=False)
    ones = " ".join(["1"] * 14)
    zeros = " ".join(["0"] * 14)
    (root / "train_list.txt").write_text("".join(f"{n} {ones}\n" for n, _, p in ROWS if p <= 6))
    (root / "val_list.txt").write_text("".join(f"images/{n} {zeros}\n" for n, _, p in ROWS if p == 7))
    (root / "test_list.txt").write_text(f"{ROWS[-1][0]} {zeros}\n")
    ds = load_nih(root, split="lists")
    assert len(ds) == 15 and (ds.labels[ds.split == "train"] == 1).all()
    assert (ds.labels[ds.split == "val"] == 0).all() and list(ds.image_ids[ds.split == "test"]) == [ROWS[-1][0]]


def test_missing_image_error_or_counted_skip(tmp_path, caplog):
    root = write_nih(tmp_path / "nih")
    (root / "images" / "00000004_001.png").unlink()
    with pytest.raises(DataError, match="00000004_001.png"):
        load_nih(root)
    with caplog.at_level(logging.WARNING):
        ds = load_nih(root, missing="skip")
    assert len(ds) == 19 and ds.missing == ("00000004_001.png",)
    assert "skipped 1 image" in caplog.text
    assert len(load_nih(root, missing="keep")) == 20


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda r: shutil.rmtree(r), "does not exist"),
        (lambda r: (r / "Data_Entry_2017_v2020.csv").unlink(), "no Data_Entry_2017_v2020.csv"),
        (lambda r: _edit(r / "Data_Entry_2017_v2020.csv", "Finding Labels", "Findings"), "header"),
        (
            lambda r: _edit(r / "Data_Entry_2017_v2020.csv", "Hernia", "Hernai"),
            r"line \d+, column 'Finding Labels': unknown label 'Hernai'",
        ),
        (
            lambda r: _edit(r / "Data_Entry_2017_v2020.csv", ",No Finding,", ",No Finding|Mass,"),
            "'No Finding' combined",
        ),
        (lambda r: (r / "test_list.txt").write_text("00000001_000.png\n"), r"train_val_list.txt and test_list.txt"),
        (lambda r: (r / "train_val_list.txt").unlink(), "train_val_list.txt not found"),
    ],
    ids=["no-root", "no-csv", "header", "unknown-label", "no-finding-mixed", "image-in-two-lists", "no-list"],
)
def test_bad_input_names_file_row_value(tmp_path, breakage, message):
    root = write_nih(tmp_path / "nih")
    breakage(root)
    with pytest.raises(DataError, match=message):
        load_nih(root)


def test_patient_in_two_splits_is_named(tmp_path):
    root = write_nih(tmp_path / "nih")
    train_val = (root / "train_val_list.txt").read_text().replace("00000007_001.png\n", "")
    (root / "train_val_list.txt").write_text(train_val)
    (root / "test_list.txt").write_text((root / "test_list.txt").read_text() + "00000007_001.png\n")
    with pytest.raises(
        DataError, match=r"patient 7 is in two splits \(00000007_000.png in (train|val), 00000007_001.png in test"
    ):
        load_nih(root)


def test_clean_labels_csv_and_google_relabels(tmp_path):
    root = write_nih(tmp_path / "nih")
    google = [
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"
        "Fracture,Pneumothorax,Airspace opacity,Nodule or mass,Set Id",
        "00000001_000.png,No Finding,0,1,50,M,PA,2500,2048,0.143,0.143,NO,YES,NO,NO,test",
    ]
    (root / "google2019_nih-chest-xray-labels.csv").write_text("\n".join(google) + "\n")
    clean = load_nih(root).clean_labels
    row = clean[0]
    assert row[NIH_CLASSES.index("Pneumothorax")] == 1 and row[NIH_CLASSES.index("Mass")] == 0
    assert np.isnan(row[NIH_CLASSES.index("Hernia")]) and np.isnan(clean[1:]).all()
    lines = ["Image Index," + ",".join(NIH_CLASSES)] + [f"{n}," + ",".join(["0"] * 13 + ["1"]) for n, _, _ in ROWS]
    (root / "clean_labels.csv").write_text("\n".join(lines) + "\n")
    assert (load_nih(root).clean_labels[:, -1] == 1).all()
    (root / "clean_labels.csv").write_text("\n".join(lines[:-1]).replace(",1\n", ",2\n", 1) + "\n")
    with pytest.raises(DataError, match=r"clean_labels.csv, line 2, column 'Hernia': value '2'"):
        load_nih(root)


def test_boxes_rename_infiltrate(tmp_path):
    root = write_nih(tmp_path / "nih")
    (root / "BBox_List_2017.csv").write_text(
        "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
        "00000001_000.png,Infiltrate,1.5,2,30,40\n"
        "00000001_000.png,Mass,5,6,7,8\n"
    )
    boxes = load_nih_boxes(root)
    assert list(boxes.columns) == ["Image Index", "Finding Label", "x", "y", "w", "h"]
    assert boxes["Finding Label"].tolist() == ["Infiltration", "Mass"] and boxes["x"][0] == 1.5
    _edit(root / "BBox_List_2017.csv", "Mass", "Blob")
    with pytest.raises(DataError, match=r"line 3, column 'Finding Label': unknown label 'Blob'"):
        load_nih_boxes(root)


# --- NIH's real metadata (bundled in torchxrayvision) ----------------------------------------------------


@pytest.fixture(scope="module")
def real_nih(tmp_path_factory):
    data = xrv_data()
    root = tmp_path_factory.mktemp("nih-real")
    for name in ("Data_Entry_2017_v2020.csv.gz", "BBox_List_2017.csv.gz", "google2019_nih-chest-xray-labels.csv.gz"):
        (root / name).symlink_to(data / name)
    return root


def test_real_metadata_counts(real_nih):
    ds = load_nih(real_nih, split="patient70_10_20", missing="keep")
    assert len(ds) == 112_120 and len(np.unique(ds.patient_ids)) == 30_805
    assert {c: int(n) for c, n in zip(ds.classes, ds.labels.sum(axis=0))} == REAL_COUNTS
    assert len(ds.missing) == 112_120  # metadata only: no image is on disk
    assert_patient_disjoint(ds)
    assert int((~np.isnan(ds.clean_labels)).any(axis=1).sum()) == 4376


def test_real_boxes(real_nih):
    boxes = load_nih_boxes(real_nih)
    assert len(boxes) == 984 and boxes["Image Index"].nunique() == 880
    assert boxes["Finding Label"].nunique() == 8 and "Infiltration" in set(boxes["Finding Label"])
