"""Soft labels (eq. 2's l_i): averaging, out-of-fold folds and stitching, save/load."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from paperkit.method.soft_labels import (
    average_predictions,
    combine_out_of_fold,
    load_soft_labels,
    out_of_fold_folds,
    save_soft_labels,
    soft_label_sources,
)


@pytest.mark.parametrize("n_models", [1, 3, 6])
def test_average_is_mean_over_references(n_models: int) -> None:
    rng = np.random.default_rng(n_models)
    probs = [rng.uniform(size=(10, 14)).astype(np.float32) for _ in range(n_models)]
    soft = average_predictions(probs)
    assert soft.dtype == np.float32 and soft.shape == (10, 14)
    np.testing.assert_allclose(soft, np.mean(np.stack(probs).astype(np.float64), axis=0), rtol=1e-6)
    if n_models == 1:  # self-distillation: the soft label is the model's own prediction
        np.testing.assert_array_equal(soft, probs[0])


def test_average_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        average_predictions([])
    with pytest.raises(ValueError, match="one shape"):
        average_predictions([np.zeros((2, 3)), np.zeros((3, 3))])
    with pytest.raises(ValueError, match="probabilities"):
        average_predictions([np.full((2, 3), 2.0)])


@pytest.mark.parametrize("n_folds", [2, 5])
def test_folds_group_patients(n_folds: int) -> None:
    rng = np.random.default_rng(0)
    patients = rng.choice([f"p{i}" for i in range(37)], size=200)
    folds = out_of_fold_folds(patients, n_folds, seed=1)
    assert folds.dtype == np.int64 and set(folds) == set(range(n_folds))
    for p in np.unique(patients):  # one patient, one fold
        assert len(set(folds[patients == p])) == 1
    per_fold = [len(set(patients[folds == f])) for f in range(n_folds)]
    assert max(per_fold) - min(per_fold) <= 1
    np.testing.assert_array_equal(folds, out_of_fold_folds(patients, n_folds, seed=1))
    with pytest.raises(ValueError, match="n_folds"):
        out_of_fold_folds(patients, 1)


def test_combine_out_of_fold_takes_the_model_that_did_not_train_on_the_row() -> None:
    folds = np.array([0, 1, 1, 0, 2])
    fold_probs = [np.full((5, 2), f / 10, dtype=np.float32) for f in range(3)]
    np.testing.assert_array_equal(combine_out_of_fold(fold_probs, folds)[:, 0], (folds / 10).astype(np.float32))
    with pytest.raises(ValueError, match="fold models"):
        combine_out_of_fold(fold_probs[:2], folds)


def test_save_load_roundtrip(tmp_path: Path) -> None:
    soft = np.random.default_rng(0).uniform(size=(6, 3)).astype(np.float32)
    ids = np.array(["a.png", "b.png", "c.png", "d.png", "e.png", "f.png"])
    save_soft_labels(tmp_path / "soft", soft, ids, sources=["ref-resnet10t", "ref-efficientnet_b0"])
    got, got_ids = load_soft_labels(tmp_path / "soft")
    np.testing.assert_array_equal(got, soft)
    np.testing.assert_array_equal(got_ids, ids)
    assert soft_label_sources(tmp_path / "soft") == ["ref-resnet10t", "ref-efficientnet_b0"]
    with pytest.raises(ValueError, match="do not match"):
        save_soft_labels(tmp_path / "bad", soft, ids[:2], sources=[])
