"""The pipeline steps of paperkit.pipeline.experiment on a tiny benchmark: out-of-fold teachers."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import write_mimic

from paperkit.config import resolve
from paperkit.method.soft_labels import out_of_fold_folds
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment as ex
from paperkit.pipeline.localisation import finding_mask


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PAPERKIT_RESULTS", str(tmp_path_factory.mktemp("experiment")))
    cfg = resolve("smoke", {"n_images": 120, "epochs": 1, "reference_archs": "efficientnet_tiny", "layouts": "nih"})
    paths = RunPaths.for_profile(cfg.name)
    yield cfg, paths, ex.prepare(cfg, paths, "nih")
    mp.undo()


def test_out_of_fold_teachers_score_only_patients_they_never_saw(tiny):
    cfg, paths, prep = tiny
    soft = ex.out_of_fold_soft_labels(cfg, paths, prep, n_folds=2).values
    train = prep.rows("train")
    folds = out_of_fold_folds(prep.dataset.patient_ids[train], 2, seed=ex.DATA_SEED)
    runs = [next((paths.checkpoints / prep.key).glob(f"B-efficientnet_tiny-s0-oof{f}of2-*")) for f in range(2)]
    every = np.arange(len(prep.dataset))
    fold_probs = [ex.probabilities(cfg, r, prep, every) for r in runs]
    for f in range(2):
        held_out = train[folds == f]
        assert len(held_out) > 0
        np.testing.assert_allclose(soft[held_out], fold_probs[f][held_out], atol=1e-6)
        # the fold-f model trained on the other fold's patients only
        trained_on = set(prep.dataset.patient_ids[train[folds != f]])
        assert trained_on.isdisjoint(prep.dataset.patient_ids[held_out])
    outside = np.setdiff1d(every, train)
    np.testing.assert_allclose(soft[outside], (fold_probs[0][outside] + fold_probs[1][outside]) / 2, atol=1e-6)


def test_out_of_fold_soft_labels_are_cached(tiny):
    cfg, paths, prep = tiny
    first = ex.out_of_fold_soft_labels(cfg, paths, prep, n_folds=2)
    stored = paths.soft_labels / first.folder / "soft_labels.npz"
    stamp = stored.stat().st_mtime_ns
    again = ex.out_of_fold_soft_labels(cfg, paths, prep, n_folds=2)
    assert again.folder == first.folder and first.folder.startswith(f"{prep.key}/oof2-")
    np.testing.assert_array_equal(first.values, again.values)
    assert stored.stat().st_mtime_ns == stamp


def test_chexpert_only_profile_finds_benchmark_masks(tmp_path, monkeypatch):
    """Notebook 08 looks masks up by image path: the CheXpert layout keeps them elsewhere than NIH's."""
    monkeypatch.setenv("PAPERKIT_RESULTS", str(tmp_path))
    cfg = resolve("smoke", {"n_images": 120, "layouts": "chexpert"})
    paths = RunPaths.for_profile(cfg)
    prep = ex.prepare(cfg, paths, "chexpert")
    test, truth = prep.rows("test"), prep.labels("test")
    found = {finding: [finding_mask(cfg, prep, r, finding) for r in test[truth[:, c] == 1]]
             for c, finding in enumerate(prep.eval_classes)}
    masks = [m for per in found.values() for m in per if m is not None]
    assert masks and all(m.shape == (cfg.crop, cfg.crop) and m.dtype == bool for m in masks)
    assert found["Pleural Effusion"] and any(m is not None for m in found["Pleural Effusion"])  # NIH "Effusion"


def test_mimic_profile_reads_mimic(tmp_path, monkeypatch):
    """dataset=mimic goes through load_mimic (not the CheXpert loader), end to end through prepare."""
    monkeypatch.setenv("PAPERKIT_RESULTS", str(tmp_path / "results"))
    root = tmp_path / "mimic"
    write_mimic(root)
    cfg = resolve("smoke", {"dataset": "mimic", "data_root": str(root), "frontal_only": False})
    assert ex.layouts(cfg) == ["mimic"]
    prep = ex.prepare(cfg, RunPaths.for_profile(cfg), "mimic")
    assert sorted(prep.dataset.image_ids) == ["d1", "d2", "d3", "d4", "d5"]
    assert prep.eval_classes == ex.CHEXPERT_TASKS and len(prep.images) == len(prep.dataset)
