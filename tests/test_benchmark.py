"""Benchmark layouts: bytes, splits, boxes, CheXpert values, the CLI and the packaged NIH statistics."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import xrv_data

from paperkit.data import benchmark as B
from paperkit.data.labels import CHEXPERT_CLASSES, NIH_CLASSES
from paperkit.data.nih_stats import STATS_PATH, derive_stats
from paperkit.orchestration.cli import main as cli


def _digest(root: Path, skip=("manifest.json",)) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }


@pytest.fixture(scope="module", params=B.LAYOUTS)
def built(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param) / "bench"
    summary = B.generate_benchmark(root, request.param, 150, 48, seed=5, noise=1.0, workers=2, progress=False)
    return request.param, root, summary


def test_same_seed_same_bytes(built, tmp_path):
    layout, root, _ = built
    again = tmp_path / "again"
    B.generate_benchmark(again, layout, 150, 48, seed=5, noise=1.0, workers=1, progress=False)
    assert _digest(root) == _digest(again)


def test_rerun_is_a_noop(built):
    layout, root, summary = built
    before = (root / "manifest.json").stat().st_mtime_ns
    assert B.generate_benchmark(root, layout, 150, 48, seed=5, noise=1.0, progress=False) == summary
    assert (root / "manifest.json").stat().st_mtime_ns == before


def test_nih_layout(built):
    layout, root, summary = built
    if layout != "nih":
        pytest.skip("NIH files only")
    entry = pd.read_csv(root / "Data_Entry_2017_v2020.csv")
    assert (root / "Data_Entry_2017_v2020.csv").read_text().splitlines()[0] == B.NIH_HEADER
    assert len(entry) == 150 and all((root / "images" / i).is_file() for i in entry["Image Index"])
    train = (root / "train_val_list.txt").read_text().split()
    test = (root / "test_list.txt").read_text().split()
    assert sorted(train + test) == sorted(entry["Image Index"]) and len(test) == summary["n_test"]
    pid = dict(zip(entry["Image Index"], entry["Patient ID"]))
    assert not {pid[i] for i in train} & {pid[i] for i in test}
    clean = pd.read_csv(root / "clean_labels.csv")
    assert list(clean.columns) == ["Image Index", *NIH_CLASSES]
    google = pd.read_csv(root / "google2019_nih-chest-xray-labels.csv")
    assert set(google["Image Index"]) == set(test) and set(google["Set Id"]) == {"test"}


def test_boxes_are_tight_around_masks(built):
    layout, root, _ = built
    if layout != "nih":
        pytest.skip("boxes are an NIH file")
    assert (root / "BBox_List_2017.csv").read_text().splitlines()[0] == B.BBOX_HEADER
    boxes = pd.read_csv(root / "BBox_List_2017.csv", header=None, skiprows=1)
    assert len(boxes) > 0
    spelling = {v: k for k, v in B.BBOX_NAMES.items()}
    for image, label, x, y, w, h in boxes.itertuples(index=False):
        mask = np.load(root / "masks" / image.replace(".png", ".npz"))[spelling[label]]
        assert 0 <= x and 0 <= y and x + w <= 48 and y + h <= 48
        inside = np.zeros_like(mask, bool)
        inside[y : y + h, x : x + w] = True
        assert mask.any() and not (mask.astype(bool) & ~inside).any()
        assert mask[y, x : x + w].any() and mask[y + h - 1, x : x + w].any()  # tight


def test_chexpert_layout(built):
    layout, root, summary = built
    if layout != "chexpert":
        pytest.skip("CheXpert files only")
    top = root / "CheXpert-v1.0-small"
    train, valid = pd.read_csv(top / "train.csv"), pd.read_csv(top / "valid.csv")
    clean = pd.read_csv(top / "train_clean.csv")
    assert list(train.columns) == ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_CLASSES]
    assert len(train) + len(valid) == 150 and len(clean) == len(train)
    assert train["Path"].str.match(r"CheXpert-v1\.0-small/train/patient\d{5}/study\d+/view1_frontal\.jpg").all()
    assert all((root / p).is_file() for p in valid["Path"])
    values = set(
        np.unique(train[list(CHEXPERT_CLASSES)].to_numpy(float)[~train[list(CHEXPERT_CLASSES)].isna().to_numpy()])
    )
    assert values <= {-1.0, 0.0, 1.0} and train[list(CHEXPERT_CLASSES)].isna().any().any()
    assert set(np.unique(valid[list(CHEXPERT_CLASSES)].to_numpy())) <= {0.0, 1.0}
    patients = lambda df: set(df["Path"].str.extract(r"(patient\d+)")[0])  # noqa: E731
    assert not patients(train) & patients(valid)
    mask = root / "masks" / valid["Path"][0].split("/", 1)[1].replace(".jpg", ".npz")
    assert mask.is_file()


def test_noise_zero_noisy_equals_clean(tmp_path):
    root = tmp_path / "c"
    B.generate_benchmark(root, "chexpert", 60, 32, seed=1, noise=0.0, progress=False)
    top = root / "CheXpert-v1.0-small"
    pd.testing.assert_frame_equal(pd.read_csv(top / "train.csv"), pd.read_csv(top / "train_clean.csv"))
    root = tmp_path / "n"
    B.generate_benchmark(root, "nih", 60, 32, seed=1, noise=0.0, progress=False)
    entry, clean = pd.read_csv(root / "Data_Entry_2017_v2020.csv"), pd.read_csv(root / "clean_labels.csv")
    mined = np.array([[c in s.split("|") for c in NIH_CLASSES] for s in entry["Finding Labels"]])
    assert np.array_equal(mined, clean[list(NIH_CLASSES)].to_numpy(bool))


def test_cli_refuses_nonempty_dir(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert cli(["phantom", "--out", str(tmp_path), "--n-images", "20", "--size", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--overwrite" in err and len(err.splitlines()) == 1
    assert (tmp_path / "keep.txt").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "8"], "image size"),
        (["--n-images", "3"], "n_images"),
        (["--noise", "-1"], "noise"),
    ],
)
def test_cli_bad_arguments(tmp_path, capsys, args, message):
    assert cli(["phantom", "--out", str(tmp_path / "x"), *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_builds_with_overwrite(tmp_path):
    (tmp_path / "old.txt").write_text("old")
    assert cli(["phantom", "--out", str(tmp_path), "--n-images", "20", "--size", "32", "--overwrite"]) == 0
    assert not (tmp_path / "old.txt").exists() and (tmp_path / "manifest.json").is_file()


def test_packaged_stats_match_derivation():
    """nih_stats.json is what derive_stats makes of NIH's Data_Entry, as the running interpreter's torchxrayvision
    (wherever this environment installed it) bundles it."""
    source = xrv_data() / "Data_Entry_2017_v2020.csv.gz"
    assert json.loads(STATS_PATH.read_text()) == json.loads(json.dumps(derive_stats(source)))


def test_sampled_prevalence_follows_nih():
    cases = B.sample_cases(20000, np.random.default_rng(0))
    prevalence = dict(zip(NIH_CLASSES, cases["labels"].mean(0)))
    assert abs(prevalence["Infiltration"] - 0.177) < 0.02 and abs(prevalence["Effusion"] - 0.119) < 0.015
    assert (~cases["labels"].any(1)).mean() == pytest.approx(0.538, abs=0.03)


def test_real_loaders_read_the_layouts(built):
    layout, root, summary = built
    if layout == "nih":
        nih = pytest.importorskip("paperkit.data.nih", reason="NIH loader not available")
        ds = nih.load_nih(root)
        assert len(ds.image_ids) == 150 and int((ds.split == "test").sum()) == summary["n_test"]
        assert ds.clean_labels is not None and not np.isnan(ds.clean_labels).any()
        assert len(nih.load_nih_boxes(root)) == summary["n_boxes"]
    else:
        chexpert = pytest.importorskip("paperkit.data.chexpert", reason="CheXpert loader not available")
        ds = chexpert.load_chexpert(root)
        assert len(ds.image_ids) == 150 and int((ds.split == "test").sum()) == summary["n_test"]
        assert not np.isnan(ds.clean_labels).any()


@pytest.mark.parametrize("shape", [(32, 32), (7, 13)])
def test_png_bytes_round_trip(shape):
    from io import BytesIO

    from PIL import Image

    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    decoded = Image.open(BytesIO(B.png_bytes(image)))
    assert decoded.mode == "L" and np.array_equal(np.asarray(decoded), image)
