"""Notebook 02's tables: the references' AUC and size, and their ensemble's headroom."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from torch import nn

from paperkit.evaluation.metrics import compare_models
from paperkit.evaluation.report import ensemble_headroom, reference_auc_table

CLASSES = ["A", "B", "C"]


def _comparison(strength: dict[str, float], target: str, n: int = 200, seed: int = 0):
    """Scores ``strength * label + noise`` per model, so a larger strength gives a larger AUC."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(CLASSES))) < 0.3).astype(float)
    scores = {m: s * y + rng.normal(size=y.shape) for m, s in strength.items()}
    return compare_models(y, scores, np.arange(n).astype(str), CLASSES, reference=target, n_boot=50, seed=seed)


@pytest.mark.parametrize(("strength", "target", "best"), [
    ({"small": 0.5, "large": 2.0, "Ensemble": 3.0}, "small", "large"),
    ({"small": 2.0, "large": 0.5, "Ensemble": 1.0}, "large", "small"),
    ({"a": 0.2, "b": 1.0, "c": 0.6, "Ensemble": 0.6}, "c", "b"),
])
def test_headroom_compares_the_ensemble_with_its_members(strength, target, best):
    result = _comparison(strength, target)
    row = ensemble_headroom({"nih": result}).loc["nih"]
    single = {m: 100 * result.mean_auc(m) for m in strength if m != "Ensemble"}
    assert row["best_single_arch"] == best and row["target_arch"] == target
    assert row["best_single"] == pytest.approx(max(single.values()))
    assert row["mean_single"] == pytest.approx(np.mean(list(single.values())))
    assert row["target_arch_single"] == pytest.approx(single[target])
    assert row["over_best_single"] == pytest.approx(100 * result.mean_auc("Ensemble") - max(single.values()))
    assert row["over_mean_single"] == pytest.approx(row["ensemble"] - row["mean_single"])
    # the paired difference is the difference of the two mean AUCs, its CI around it
    assert row["over_target_arch"] == pytest.approx(row["ensemble"] - row["target_arch_single"])
    assert row["over_target_arch_ci_low"] <= row["over_target_arch"] <= row["over_target_arch_ci_high"]


def test_headroom_has_one_row_per_layout():
    results = {"nih": _comparison({"a": 1.0, "Ensemble": 2.0}, "a"),
               "chexpert": _comparison({"a": 1.0, "Ensemble": 0.5}, "a", seed=1)}
    headroom = ensemble_headroom(results)
    assert list(headroom.index) == ["nih", "chexpert"]
    assert headroom.loc["nih", "over_target_arch"] > 0 > headroom.loc["chexpert", "over_target_arch"]


def test_reference_table_counts_every_reference_for_the_ensemble():
    runs = {"a": SimpleNamespace(model=nn.Linear(3, 2), best_epoch=1),
            "b": SimpleNamespace(model=nn.Linear(4, 2), best_epoch=3)}
    table = reference_auc_table(_comparison({"a": 1.0, "b": 2.0, "Ensemble": 2.5}, "a"), runs)
    assert list(table.columns) == [*CLASSES, "Mean", "params", "best_epoch"]
    assert table["params"].tolist() == [8, 10, 18]
    assert table["best_epoch"].iloc[:2].tolist() == [1, 3] and pd.isna(table.loc["Ensemble", "best_epoch"])
