"""The pipeline steps of paperkit.experiment on a tiny benchmark: out-of-fold teachers."""
from __future__ import annotations

import numpy as np
import pytest

from paperkit import experiment as ex
from paperkit.config import resolve
from paperkit.paths import RunPaths
from paperkit.soft_labels import out_of_fold_folds


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
    soft = ex.out_of_fold_soft_labels(cfg, paths, prep, n_folds=2)
    train = prep.rows("train")
    folds = out_of_fold_folds(prep.dataset.patient_ids[train], 2, seed=ex.DATA_SEED)
    runs = [paths.run_dir(f"{prep.key}/ref-efficientnet_tiny-s0-oof{f}of2") for f in range(2)]
    every = np.arange(len(prep.dataset))
    fold_probs = [ex.probabilities(r, prep, every, cfg) for r in runs]
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
    stamp = (paths.soft_labels / prep.key / "oof2" / "soft_labels.npz").stat().st_mtime_ns
    again = ex.out_of_fold_soft_labels(cfg, paths, prep, n_folds=2)
    np.testing.assert_array_equal(first, again)
    assert (paths.soft_labels / prep.key / "oof2" / "soft_labels.npz").stat().st_mtime_ns == stamp
