"""AUC, patient-level paired bootstrap, DeLong and Holm against independent computations."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.metrics import roc_auc_score

from paperkit.evaluation.metrics import (
    MEAN,
    NotEvaluableWarning,
    clean_vs_noisy,
    compare_models,
    per_class_auc,
    seed_summary,
)
from paperkit.evaluation.stats import bootstrap_aucs, delong_test, holm, patient_resample_counts
from paperkit.training.inference import inference_throughput

CLASSES = ("a", "b", "c")


def _data(n: int, seed: int = 0, n_classes: int = 3, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_classes)) < 0.3).astype(float)
    patients = rng.integers(0, max(2, n // 3), n).astype(str)
    scores = {}
    for i, name in enumerate(("B", "B+MODL", "B+KNNS")):
        s = y * (0.6 + 0.3 * i) + rng.normal(size=y.shape)
        scores[name] = np.round(s, 1) if ties else s
    return y, scores, patients


def _slow_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) with the O(mn) Mann-Whitney kernel, written independently of the fast code."""

    def components(s):
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)

    auc_a, v10a, v01a = components(a)
    auc_b, v10b, v01b = components(b)
    m, n = len(v10a), len(v01a)
    var = (
        (np.var(v10a, ddof=1) + np.var(v10b, ddof=1) - 2 * np.cov(v10a, v10b)[0, 1]) / m
        + (np.var(v01a, ddof=1) + np.var(v01b, ddof=1) - 2 * np.cov(v01a, v01b)[0, 1]) / n
    )
    z = (auc_a - auc_b) / np.sqrt(var)
    return z, 2 * stats.norm.sf(abs(z))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_auc_equals_sklearn(seed, ties):
    y, scores, _ = _data(150, seed, ties=ties)
    y[:10, 1] = np.nan  # unknown labels are left out of that class only
    table = per_class_auc(y, scores["B"], CLASSES)
    for c in range(3):
        known = ~np.isnan(y[:, c])
        assert table["auc"][c] == pytest.approx(roc_auc_score(y[known, c], scores["B"][known, c]), abs=1e-12)
    assert table["n_pos"][1] + table["n_neg"][1] == 140


def test_bootstrap_weighted_auc_equals_sklearn_with_sample_weights():
    y, scores, patients = _data(120, 3, ties=True)
    counts, codes = patient_resample_counts(patients, n_boot=4, seed=7)
    boot = bootstrap_aucs(y, {"B": scores["B"]}, counts, codes, chunk=3)["B"]
    for r in range(4):
        w = counts[r][codes]
        for c in range(3):
            assert boot[r, c] == pytest.approx(roc_auc_score(y[:, c], scores["B"][:, c], sample_weight=w), abs=1e-12)


def test_resamples_whole_patients():
    counts, codes = patient_resample_counts(np.array(["p1", "p1", "p2", "p3", "p3", "p3"]), n_boot=50, seed=0)
    assert counts.shape == (50, 3) and (counts.sum(axis=1) == 3).all()
    weights = counts[:, codes]
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 3] == weights[:, 5]).all()


def test_bootstrap_cis_cover_point_and_shrink_with_n():
    widths = []
    for n in (150, 1500):
        y, scores, patients = _data(n, 0)
        res = compare_models(y, scores, patients, CLASSES, n_boot=300, seed=0)
        auc = res.auc
        assert ((auc["ci_low"] <= auc["auc"]) & (auc["auc"] <= auc["ci_high"])).all()
        d = res.diff
        assert ((d["ci_low"] <= d["diff"]) & (d["diff"] <= d["ci_high"])).all()
        widths.append((auc["ci_high"] - auc["ci_low"]).mean())
    assert widths[1] < 0.6 * widths[0]  # ~ 1/sqrt(10) in theory


def test_same_resamples_for_every_model_make_differences_paired():
    y, scores, patients = _data(200, 2)
    scores = {"B": scores["B"], "copy of B": scores["B"].copy(), "other": scores["B+KNNS"]}
    res = compare_models(y, scores, patients, CLASSES, n_boot=100, seed=5)
    same = res.diff[res.diff["model"] == "copy of B"]
    assert (same[["diff", "ci_low", "ci_high"]].to_numpy() == 0).all()
    assert (same["p_boot"] == 1).all()
    # the seed fixes the resamples: a rerun gives identical CIs
    again = compare_models(y, scores, patients, CLASSES, n_boot=100, seed=5)
    pd.testing.assert_frame_equal(res.auc, again.auc)


def test_result_layout():
    y, scores, patients = _data(150, 0)
    res = compare_models(y, scores, patients, CLASSES, n_boot=50)
    assert res.models == ("B", "B+MODL", "B+KNNS") and res.reference == "B"
    assert len(res.auc) == 3 * (3 + 1) and set(res.auc["class"]) == {*CLASSES, MEAN}
    assert len(res.diff) == 2 * (3 + 1)
    assert res.wide().shape == (3, 4)
    assert res.mean_auc("B") == pytest.approx(res.auc.loc[res.auc["class"] != MEAN].query("model == 'B'")["auc"].mean())
    d = res.diff[(res.diff["model"] == "B+KNNS") & (res.diff["class"] == "a")].iloc[0]
    assert d["p_delong"] == pytest.approx(delong_test(y[:, 0], scores["B+KNNS"][:, 0], scores["B"][:, 0]).p)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n", [30, 200])
def test_delong_matches_slow_structural_components(n, ties):
    y, scores, _ = _data(n, n, ties=ties)
    yc, a, b = y[:, 0], scores["B+KNNS"][:, 0], scores["B"][:, 0]
    res = delong_test(yc, a, b)
    z, p = _slow_delong(yc, a, b)
    assert res.z == pytest.approx(z, abs=1e-6)
    assert res.p == pytest.approx(p, abs=1e-6)
    assert res.auc_a == pytest.approx(roc_auc_score(yc, a), abs=1e-12)


def test_delong_identical_models_gives_p_one():
    y, scores, _ = _data(60, 0)
    assert delong_test(y[:, 0], scores["B"][:, 0], scores["B"][:, 0]).p == 1.0


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
        ([0.01, np.nan, 0.02], [0.02, np.nan, 0.02]),
        ([0.5, 0.9], [1.0, 1.0]),
    ],
)
def test_holm_against_hand_values(p, expected):
    np.testing.assert_allclose(holm(p), expected, equal_nan=True)


def test_class_without_positives_is_na_and_named():
    y, scores, patients = _data(120, 0)
    y[:, 2] = 0
    with pytest.warns(NotEvaluableWarning, match="'c'.*2 of 3"):
        res = compare_models(y, scores, patients, CLASSES, n_boot=50)
    assert res.na_classes == ("c",)
    row = res.auc[(res.auc["model"] == "B") & (res.auc["class"] == "c")].iloc[0]
    assert np.isnan(row["auc"]) and np.isnan(row["ci_low"])
    mean = res.auc[(res.auc["model"] == "B") & (res.auc["class"] == MEAN)].iloc[0]
    assert mean["n_classes"] == 2
    assert mean["auc"] == pytest.approx(res.auc.query("model == 'B' and `class` in ['a', 'b']")["auc"].mean())
    assert res.diff.query("`class` == 'c'")[["diff", "p_delong", "p_holm"]].isna().all().all()


def test_uncertain_labels_must_be_mapped_first():
    y, scores, patients = _data(30, 0)
    y[0, 0] = -1
    with pytest.raises(ValueError, match="uncertain"):
        compare_models(y, scores, patients, CLASSES, n_boot=10)


def test_seed_summary_mean_and_sd():
    results = []
    for seed in (0, 1, 2):
        y, scores, patients = _data(90, 0)
        rng = np.random.default_rng(seed)
        scores = {k: v + rng.normal(scale=0.5, size=v.shape) for k, v in scores.items()}
        results.append(compare_models(y, scores, patients, CLASSES, n_boot=20))
    summary = seed_summary(results).set_index(["model", "class"])
    values = [r.auc.set_index(["model", "class"]).loc[("B+MODL", "a"), "auc"] for r in results]
    assert summary.loc[("B+MODL", "a"), "auc_mean"] == pytest.approx(np.mean(values))
    assert summary.loc[("B+MODL", "a"), "auc_sd"] == pytest.approx(np.std(values, ddof=1))
    assert summary.loc[("B+MODL", "a"), "n_seeds"] == 3
    assert np.isnan(summary.loc[("B", MEAN), "diff_mean"])


def test_clean_vs_noisy_shows_the_cap():
    rng = np.random.default_rng(0)
    clean = (rng.random((300, 3)) < 0.3).astype(float)
    noisy = np.where(rng.random(clean.shape) < 0.15, 1 - clean, clean)
    clean[:20, 0] = np.nan  # clean truth unknown there
    scores = {"B": np.nan_to_num(clean) + rng.normal(scale=0.3, size=clean.shape)}
    table = clean_vs_noisy(clean, noisy, scores, np.arange(300).astype(str), CLASSES, n_boot=50)
    assert set(table.columns) >= {"auc_clean", "auc_noisy", "noise_gap", "ci_low_noisy"}
    assert (table["noise_gap"] < 0).all()


def test_inference_throughput_positive():
    models = [torch.nn.Conv2d(1, 2, 3), torch.nn.Conv2d(1, 2, 3)]
    assert inference_throughput(models, (1, 8, 8), batch_size=2, n_batches=2) > 0
