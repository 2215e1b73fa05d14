"""Which labels Table 1 scores: NIH's mined labels on real NIH, the complete clean truth on the benchmark;
Google's radiologist relabels only in their own table. Fixtures are built from NIH's real metadata."""
from __future__ import annotations

import gzip
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import write_png, xrv_data
from sklearn.metrics import roc_auc_score

from paperkit.config import resolve
from paperkit.data.datasets import XrayDataset
from paperkit.data.labels import NIH_CLASSES
from paperkit.data.nih import load_nih
from paperkit.evaluation import report
from paperkit.evaluation.metrics import NotEvaluableWarning
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment as ex
from paperkit.pipeline import relabel

GOOGLE = "google2019_nih-chest-xray-labels.csv"
ENTRY = "Data_Entry_2017_v2020.csv"
NIH_SAMPLE = "data/nih-sample-256"


def mined(findings: pd.Series) -> np.ndarray:
    """The 14 mined 0/1 labels straight from ``Finding Labels`` strings (independent of the loader)."""
    return np.array([[float(c in f.split("|")) for c in NIH_CLASSES] for f in findings], dtype=np.float32)


def prepared(ds: XrayDataset) -> ex.Prepared:
    """A :class:`~paperkit.pipeline.experiment.Prepared` without an image cache: labels need no pixels."""
    columns = np.arange(len(NIH_CLASSES))
    return ex.Prepared("nih", "nih", ds, None, np.nan_to_num(ds.labels), ~np.isnan(ds.labels), NIH_CLASSES, columns,
                       "u_ones")


def random_probs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: rng.random((n, len(NIH_CLASSES))).astype(np.float32) for m in ("B", "B+MODL+KNNS")}


# --- a real-layout NIH root from NIH's Data_Entry rows and Google's relabel file -------------------------


def pick_real_rows(entry: pd.DataFrame, google: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """(Google images for the test split, Google images for train_val, images Google did not relabel).

    One image per patient (so the official lists are patient-disjoint), chosen so that Google and the
    mined labels disagree both ways on Pneumothorax and on Nodule/Mass, and both findings have positives.
    """
    g = google.merge(entry[["Image Index", "Finding Labels"]], on="Image Index", suffixes=("_google", ""))
    g = g.drop_duplicates("Patient ID").sort_values("Image Index")
    ptx, nm = g["Finding Labels"].str.contains("Pneumothorax"), g["Finding Labels"].str.contains("Nodule|Mass")
    kinds = [ptx & (g["Pneumothorax"] == "NO"), ~ptx & (g["Pneumothorax"] == "YES"),
             nm & (g["Nodule or mass"] == "NO"), ~nm & ~ptx & (g["Nodule or mass"] == "YES"),
             ~nm & ~ptx & (g["Pneumothorax"] == "NO") & (g["Nodule or mass"] == "NO")]
    test: list[str] = []
    train_val: list[str] = []
    for i, kind in enumerate(kinds):
        picked = [n for n in g.loc[kind, "Image Index"] if n not in test + train_val][:4]
        # one of each disagreement in train_val: the relabel evaluation must leave it out
        train_val += picked[:1] if i < 4 else []
        test += picked[1:] if i < 4 else picked
    others = entry[~entry["Patient ID"].isin(google["Patient ID"])].drop_duplicates("Patient ID")
    return test, train_val, others["Image Index"].head(24).tolist()


@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    """NIH root: the real Data_Entry rows of 44 images (tiny fake PNGs), Google's real relabel file,
    official lists putting 16 relabelled images in test and 4 in train_val."""
    data = xrv_data()
    root = tmp_path_factory.mktemp("nih-google")
    with gzip.open(data / f"{ENTRY}.gz", "rt") as f:
        lines = f.read().splitlines()
    entry = pd.read_csv(data / f"{ENTRY}.gz", dtype=str, keep_default_na=False)
    google = pd.read_csv(data / f"{GOOGLE}.gz", dtype=str, keep_default_na=False)
    google_test, google_train, others = pick_real_rows(entry, google)
    names = google_test + google_train + others
    line_of = {line.split(",", 1)[0]: line for line in lines[1:]}
    (root / ENTRY).write_text("\n".join([lines[0], *(line_of[n] for n in names)]) + "\n")
    (root / f"{GOOGLE}.gz").symlink_to(data / f"{GOOGLE}.gz")
    test = google_test + others[:12]
    (root / "test_list.txt").write_text("".join(f"{n}\n" for n in test))
    (root / "train_val_list.txt").write_text("".join(f"{n}\n" for n in names if n not in test))
    for i, name in enumerate(names):
        write_png(root / "images" / name, size=16, seed=i)
    rows = entry.set_index("Image Index")
    return root, google.set_index("Image Index"), rows.loc[names], google_test, google_train


@pytest.fixture(scope="module")
def real_prep(real_root):
    mp = pytest.MonkeyPatch()
    mp.setenv("PAPERKIT_RESULTS", str(real_root[0].parent / "results"))
    cfg = resolve("smoke", {"dataset": "nih", "data_root": str(real_root[0]), "split": "official",
                            "val_fraction": 0.25, "bootstrap": 20})
    yield cfg, ex.prepare(cfg, RunPaths.for_profile(cfg.name), "nih")
    mp.undo()


def test_table1_scores_the_mined_labels_on_real_nih(real_root, real_prep):
    _, _, entry, google_test, _ = real_root
    cfg, prep = real_prep
    test_names = prep.dataset.image_ids[prep.rows("test")]
    truth = mined(entry.loc[test_names, "Finding Labels"])
    # Google's labels are in the dataset and disagree with the mined ones: a leak would show
    clean = prep.dataset.clean_labels[prep.rows("test")]
    known = ~np.isnan(clean)
    assert known.any(axis=1).sum() == len(google_test)
    for findings in (["Pneumothorax"], ["Nodule", "Mass"]):
        c = [NIH_CLASSES.index(f) for f in findings]
        assert (known[:, c] & (clean[:, c] != truth[:, c])).any(), f"no disagreement on {findings}"
    assert prep.clean_coverage("test") == "partial" and prep.label_source("test") == "mined"
    np.testing.assert_array_equal(prep.labels("test"), truth)
    np.testing.assert_array_equal(prep.labels("test", clean=False), truth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEvaluableWarning)  # 28 images: rare findings have no positive
        result = ex.evaluate(cfg, prep, random_probs(len(test_names)))
    counts = result.auc[result.auc["model"] == "B"].set_index("class")
    assert [int(counts.loc[c, "n_pos"]) for c in NIH_CLASSES] == truth.sum(axis=0).astype(int).tolist()


def test_relabel_evaluation_covers_google_findings_and_relabelled_test_images(real_root, real_prep):
    _, google, _, google_test, google_train = real_root
    cfg, prep = real_prep
    test_names = prep.dataset.image_ids[prep.rows("test")]
    positions, labels = relabel.google_relabels(prep)
    assert sorted(test_names[positions]) == sorted(google_test)
    assert not set(google_train) & set(test_names[positions])
    expected = (google.loc[test_names[positions], list(relabel.GOOGLE_FINDINGS)] == "YES").to_numpy(np.float32)
    np.testing.assert_array_equal(labels, expected)
    probs = random_probs(len(test_names), seed=1)
    result = relabel.relabel_evaluation(cfg, prep, probs)
    assert result.classes == tuple(relabel.GOOGLE_FINDINGS) == report.GOOGLE_RELABEL_FINDINGS
    assert result.n_images == len(google_test) and result.na_classes == ()
    auc = result.auc.set_index(["model", "class"])["auc"]
    p = probs["B+MODL+KNNS"][positions]
    nodule_or_mass = p[:, [NIH_CLASSES.index("Nodule"), NIH_CLASSES.index("Mass")]].max(axis=1)
    assert auc["B+MODL+KNNS", "Pneumothorax"] == pytest.approx(
        roc_auc_score(expected[:, 0], p[:, NIH_CLASSES.index("Pneumothorax")]))
    assert auc["B+MODL+KNNS", "Nodule or mass"] == pytest.approx(roc_auc_score(expected[:, 1], nodule_or_mass))

    table = report.table_google_relabel(result)
    assert f"Google's radiologist labels for {len(google_test)} NIH test images" in table.caption
    assert "not in the paper" in table.caption and "Pneumothorax, Nodule or mass" in table.caption
    assert set(table.display.index.get_level_values("value")).isdisjoint({"paper", "ours - paper"})
    assert table.stem == "table_google_relabel_auc" and "| Nodule or mass |" in table.to_markdown()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEvaluableWarning)
        table1 = ex.evaluate(cfg, prep, probs)
    with pytest.raises(ValueError, match="Google relabel table"):
        report.table_google_relabel(table1)


def test_relabel_evaluation_absent_without_the_file(real_root, tmp_path):
    root = tmp_path / "nih"
    shutil.copytree(real_root[0], root, ignore=shutil.ignore_patterns(f"{GOOGLE}*"))
    prep = prepared(load_nih(root))
    assert prep.clean_coverage("test") == "none" and relabel.google_relabels(prep) is None
    assert relabel.relabel_evaluation(resolve("smoke"), prep, random_probs(len(prep.rows("test")))) is None


def test_bad_relabel_file_names_line_column_value(tmp_path):
    path = tmp_path / GOOGLE
    path.write_text("Image Index,Pneumothorax,Nodule or mass\na.png,YES,NO\nb.png,NO,maybe\n")
    with pytest.raises(ValueError, match=rf"{GOOGLE}, line 3, column 'Nodule or mass': value 'maybe'"):
        relabel.read_google_relabels(path)
    path.write_text("Image Index,Pneumothorax,Nodule or mass\na.png,YES,NO\na.png,NO,NO\n")
    with pytest.raises(ValueError, match=r"line 3, column 'Image Index': image 'a.png' is listed twice"):
        relabel.read_google_relabels(path)


# --- one label source per split, whatever the clean truth holds ---------------------------------------


@pytest.mark.parametrize(
    "clean_of, coverage, source",
    [
        (lambda clean: None, "none", "mined"),
        (lambda clean: np.full_like(clean, np.nan), "none", "mined"),
        (lambda clean: np.where(np.arange(14) == NIH_CLASSES.index("Pneumothorax"), clean, np.nan), "partial", "mined"),
        (lambda clean: np.where(np.arange(len(clean))[:, None] % 2 == 0, clean, np.nan), "partial", "mined"),
        (lambda clean: clean, "complete", "clean"),
    ],
    ids=["no-clean", "all-nan", "one-finding", "half-the-images", "complete"],
)
def test_labels_use_one_source(clean_of, coverage, source):
    rng = np.random.default_rng(0)
    n = 12
    labels = (rng.random((n, 14)) < 0.5).astype(np.float32)
    clean = 1 - labels  # every clean value disagrees with its mined one
    ds = XrayDataset("nih", None, NIH_CLASSES, np.arange(n).astype(str), np.arange(n).astype(str),
                     np.arange(n).astype(str), np.arange(n).astype(str), np.full(n, "PA"), labels,
                     np.array(["test"] * n, dtype=object), clean_labels=clean_of(clean))
    prep = prepared(ds)
    assert prep.clean_coverage("test") == coverage and prep.label_source("test") == source
    np.testing.assert_array_equal(prep.labels("test"), clean if source == "clean" else labels)
    np.testing.assert_array_equal(prep.labels("test", clean=False), labels)


# --- the embedded benchmark: complete clean truth, no separate relabel table -----------------------------


def test_benchmark_scores_its_complete_clean_labels(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERKIT_RESULTS", str(tmp_path / "results"))
    cfg = resolve("smoke", {"n_images": 80, "render_size": 40, "layouts": "nih", "bootstrap": 20})
    prep = ex.prepare(cfg, RunPaths.for_profile(cfg.name), "nih")
    test = prep.rows("test")
    clean, noisy = prep.dataset.clean_labels[test], prep.labels("test", clean=False)
    assert (clean != noisy).any(), "the benchmark's mined test labels should be noisy"
    assert prep.clean_coverage("test") == "complete" and prep.label_source("test") == "clean"
    np.testing.assert_array_equal(prep.labels("test"), clean)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEvaluableWarning)
        result = ex.evaluate(cfg, prep, random_probs(len(test)))
    counts = result.auc[result.auc["model"] == "B"].set_index("class")
    assert [int(counts.loc[c, "n_pos"]) for c in NIH_CLASSES] == clean.sum(axis=0).astype(int).tolist()
    # the benchmark writes Google's format too (from its clean truth); it is no separate evaluation
    assert (prep.dataset.root / GOOGLE).is_file()
    assert relabel.relabel_evaluation(cfg, prep, random_probs(len(test))) is None


# --- 621 real NIH radiographs from ../shared ------------------------------------------------------------


def test_real_radiographs_score_mined_labels_and_google_apart(shared_dir, tmp_path):
    sample = shared_dir / NIH_SAMPLE
    if not (sample / ENTRY).is_file():
        pytest.skip(f"{sample} is absent (621 real NIH images with their Data_Entry rows; see its README)")
    google_file = xrv_data() / f"{GOOGLE}.gz"
    root = tmp_path / "nih"
    root.mkdir()
    (root / "images").symlink_to(sample / "images")
    shutil.copy(sample / ENTRY, root / ENTRY)
    (root / f"{GOOGLE}.gz").symlink_to(google_file)
    entry = pd.read_csv(sample / ENTRY, dtype=str, keep_default_na=False).set_index("Image Index")
    google = pd.read_csv(google_file, dtype=str, keep_default_na=False).set_index("Image Index")
    relabelled = sorted(set(entry.index) & set(google.index))
    test = relabelled + [n for n in entry.index if n not in relabelled][:60]  # one image per patient
    (root / "test_list.txt").write_text("".join(f"{n}\n" for n in test))
    (root / "train_val_list.txt").write_text("".join(f"{n}\n" for n in entry.index if n not in test))
    prep = prepared(load_nih(root))

    names = prep.dataset.image_ids[prep.rows("test")]
    truth = mined(entry.loc[names, "Finding Labels"])
    np.testing.assert_array_equal(prep.labels("test"), truth)
    # e.g. 00013519_000.png: mined Nodule and Pneumothorax, Google says neither
    ptx = NIH_CLASSES.index("Pneumothorax")
    clean = prep.dataset.clean_labels[prep.rows("test")]
    assert ((clean[:, ptx] == 0) & (truth[:, ptx] == 1)).any()

    with pytest.warns(NotEvaluableWarning, match="Pneumothorax"):  # Google found none among these
        result = relabel.relabel_evaluation(resolve("smoke", {"bootstrap": 20}), prep, random_probs(len(names)))
    assert result.n_images == len(relabelled) == 11 and result.classes == tuple(relabel.GOOGLE_FINDINGS)
    n_pos = result.auc[result.auc["model"] == "B"].set_index("class")["n_pos"]
    assert int(n_pos["Nodule or mass"]) == int((google.loc[relabelled, "Nodule or mass"] == "YES").sum())
