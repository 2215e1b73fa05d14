"""The statistics under every table: DeLong's test, Holm's correction, the patient-level paired bootstrap.

Images of one patient are not independent, so the bootstrap resamples patients (all their images
with them), and every model is scored on the *same* resamples, which makes differences paired.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats


# ------------------------------------------------------------------------------------------------
# Paired DeLong test and Holm correction
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeLongResult:
    """Paired DeLong comparison of two correlated ROC AUCs on the same images."""

    auc_a: float
    auc_b: float
    diff: float  #: auc_a - auc_b
    se: float  #: standard error of the difference
    z: float
    p: float  #: two-sided


def _structural_components(pos: np.ndarray, neg: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's placement values from midranks (Sun & Xu 2014), O((m+n) log(m+n))."""
    m, n = len(pos), len(neg)
    ranks_all = stats.rankdata(np.concatenate([pos, neg]))  # midranks handle ties as 1/2
    ranks_pos = stats.rankdata(pos)
    ranks_neg = stats.rankdata(neg)
    v10 = (ranks_all[:m] - ranks_pos) / n  # per positive: share of negatives it outranks
    v01 = 1.0 - (ranks_all[m:] - ranks_neg) / m  # per negative: share of positives that outrank it
    return float(v10.mean()), v10, v01


def delong_test(y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> DeLongResult:
    """Paired DeLong test of ``AUC(a) = AUC(b)`` for one binary task.

    Hand-written because neither scikit-learn nor SciPy provides it; uses the fast midrank algorithm
    of Sun & Xu (2014, IEEE SPL 21:1389). Images are treated as independent (DeLong's assumption);
    the patient-level bootstrap of :func:`compare_models` is the clustered alternative.

    Parameters
    ----------
    y_true
        ``[n]`` labels in {0, 1, NaN}; NaN rows are dropped.
    score_a, score_b
        ``[n]`` outputs of the two models on the same images.
    """
    y = np.asarray(y_true, dtype=float)
    known = np.isfinite(y)
    y = y[known]
    a = np.asarray(score_a, dtype=float)[known]
    b = np.asarray(score_b, dtype=float)[known]
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least two positives and two negatives (got {m} and {n})")
    auc_a, v10_a, v01_a = _structural_components(a[pos], a[neg])
    auc_b, v10_b, v01_b = _structural_components(b[pos], b[neg])
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    cov = s10 / m + s01 / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = auc_a - auc_b
    if var <= 1e-300:  # identical rankings: no evidence of a difference
        return DeLongResult(auc_a, auc_b, diff, 0.0, 0.0 if diff == 0 else np.inf, 1.0 if diff == 0 else 0.0)
    se = float(np.sqrt(var))
    z = diff / se
    return DeLongResult(auc_a, auc_b, diff, se, z, float(2 * stats.norm.sf(abs(z))))


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and do not count towards m.

    Hand-written (six lines) so that statsmodels is not a dependency for one function.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


# ------------------------------------------------------------------------------------------------
# Patient-level paired bootstrap
# ------------------------------------------------------------------------------------------------
def patient_resample_counts(
    patient_ids: Sequence[str] | np.ndarray, n_boot: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """How often each patient is drawn in each bootstrap resample.

    Drawing ``P`` patients with replacement is the same as one multinomial draw of counts, which
    turns a resample into integer image weights (every image of a patient gets its count).

    Returns
    -------
    counts : numpy.ndarray
        ``[n_boot, P]`` int counts, each row summing to ``P``.
    codes : numpy.ndarray
        ``[n]`` patient index of each image (column of ``counts``).
    """
    codes, uniques = pd.factorize(np.asarray(patient_ids))
    n_patients = len(uniques)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_patients, np.full(n_patients, 1.0 / n_patients), size=n_boot)
    return counts.astype(np.int32), codes


def _weighted_auc_sorted(pos_sorted: np.ndarray, group_starts: np.ndarray, w: np.ndarray) -> np.ndarray:
    """AUC for each row of integer weights ``w [b, n]`` (images in ascending score order).

    With integer weights this is exactly the AUC of the resample with duplicated images (ties count
    1/2). The score order is the same in every resample, so sorting once replaces the b calls to
    ``roc_auc_score`` (each re-sorting) that made 1,000 resamples of NIH test sets take minutes.
    """
    wp = np.where(pos_sorted, w, 0)
    wn = w - wp
    gp = np.add.reduceat(wp, group_starts, axis=1).astype(float)
    gn = np.add.reduceat(wn, group_starts, axis=1).astype(float)
    below = np.cumsum(gn, axis=1) - gn
    numerator = (gp * (below + 0.5 * gn)).sum(axis=1)
    denominator = gp.sum(axis=1) * gn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def bootstrap_aucs(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    counts: np.ndarray,
    codes: np.ndarray,
    chunk: int = 100,
) -> dict[str, np.ndarray]:
    """``{model: [n_boot, C]}`` AUCs on the same patient resamples for every model."""
    n_boot, n_classes = counts.shape[0], y.shape[1]
    out = {name: np.full((n_boot, n_classes), np.nan) for name in scores}
    prepared = []  # per class: rows with a label, and per model the score order and tie groups
    for c in range(n_classes):
        rows = np.flatnonzero(np.isfinite(y[:, c]))
        per_model = {}
        for name, s in scores.items():
            order = np.argsort(s[rows, c], kind="stable")
            sorted_scores = s[rows, c][order]
            starts = np.flatnonzero(np.r_[True, np.diff(sorted_scores) != 0])
            per_model[name] = (order, starts, y[rows, c][order] == 1)
        prepared.append((rows, per_model))
    for lo in range(0, n_boot, chunk):
        weights = counts[lo : lo + chunk][:, codes]  # [b, n] image weights
        for c, (rows, per_model) in enumerate(prepared):
            w_class = weights[:, rows]
            for name, (order, starts, pos_sorted) in per_model.items():
                out[name][lo : lo + chunk, c] = _weighted_auc_sorted(pos_sorted, starts, w_class[:, order])
    return out


def percentile_ci(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (not evaluable) stay NaN
        return np.nanquantile(samples, alpha, axis=0), np.nanquantile(samples, 1.0 - alpha, axis=0)


def bootstrap_p(diffs: np.ndarray) -> np.ndarray:
    """Two-sided percentile-bootstrap p-value of ``diff = 0`` (per column)."""
    finite = np.isfinite(diffs)
    n = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        below = np.where(finite, diffs <= 0, False).sum(axis=0) / n
        above = np.where(finite, diffs >= 0, False).sum(axis=0) / n
        return np.minimum(1.0, 2.0 * np.minimum(below, above))
