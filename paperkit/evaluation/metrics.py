"""One evaluation path for every table: per-class ROC AUC, patient-level paired bootstrap, DeLong + Holm.

Arrays in, tidy DataFrames out. ``y_true [n, C]`` holds ``1``, ``0`` or ``NaN`` (unknown: the
image is left out of that class only); ``scores`` maps a model name to ``[n, C]`` probabilities or
logits (AUC only needs the order); ``patient_ids [n]`` groups the images of one patient, because
images of one patient are not independent: the bootstrap resamples patients and keeps all their
images, and every model is scored on the *same* resampled patient sets, so differences are paired.

A class with no positive or no negative is reported as ``NaN`` (shown as n/a) with one
:class:`NotEvaluableWarning` per call naming every such class; the macro mean covers the evaluable
classes and says how many.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from paperkit.evaluation.stats import (
    bootstrap_aucs,
    bootstrap_p,
    delong_test,
    holm,
    patient_resample_counts,
    percentile_ci,
)

#: Row label of the macro mean in every tidy table.
MEAN = "Mean"


class NotEvaluableWarning(UserWarning):
    """A class has no positive or no negative test label, so its AUC is undefined."""


# ------------------------------------------------------------------------------------------------
# Point estimates
# ------------------------------------------------------------------------------------------------
def _as_labels(y_true: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    y = np.asarray(y_true, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != len(classes):
        raise ValueError(f"y_true has shape {y.shape}; expected [n, {len(classes)}] for classes {list(classes)}")
    known = y[np.isfinite(y)]
    if not np.isin(known, (0.0, 1.0)).all():
        raise ValueError(
            f"y_true holds values other than 0, 1 and NaN ({np.unique(known)[:5]}); "
            "map uncertain (-1) labels with a policy before evaluating"
        )
    return y


def _as_scores(scores: np.ndarray, shape: tuple[int, int], name: str) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if s.ndim == 1:
        s = s[:, None]
    if s.shape != shape:
        raise ValueError(f"scores of {name!r} have shape {s.shape}; expected {shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"scores of {name!r} contain NaN or inf")
    return s


def class_aucs(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of every column (scikit-learn): the kit's one per-class AUC, for tables, validation and ablations.

    Parameters
    ----------
    y_true
        ``[n, C]`` labels in {0, 1, NaN}; NaN rows are left out of that column.
    scores
        ``[n, C]`` model outputs.

    Returns
    -------
    numpy.ndarray
        ``[C]`` float64, ``NaN`` where a column's known labels are not both 0 and 1.
    """
    y, s = np.asarray(y_true, dtype=np.float64), np.asarray(scores)
    aucs = np.full(y.shape[1], np.nan)
    for c in range(y.shape[1]):
        known = np.isfinite(y[:, c])
        if (y[known, c] == 1).any() and (y[known, c] == 0).any():
            aucs[c] = roc_auc_score(y[known, c], s[known, c])
    return aucs


def per_class_auc(
    y_true: np.ndarray, scores: np.ndarray, classes: Sequence[str], *, warn: bool = True
) -> pd.DataFrame:
    """ROC AUC of every class (scikit-learn), ``NaN`` where a class is not evaluable.

    Parameters
    ----------
    y_true
        ``[n, C]`` labels in {0, 1, NaN}; NaN rows are left out of that class.
    scores
        ``[n, C]`` model outputs.
    classes
        ``C`` class names.
    warn
        Emit a :class:`NotEvaluableWarning` naming each class without both label values.

    Returns
    -------
    pandas.DataFrame
        Columns ``class, auc, n_pos, n_neg`` in class order.
    """
    y = _as_labels(y_true, classes)
    s = _as_scores(scores, y.shape, "scores")
    aucs = class_aucs(y, s)
    rows = []
    for c, name in enumerate(classes):
        known = np.isfinite(y[:, c])
        n_pos = int((y[known, c] == 1).sum())
        rows.append({"class": name, "auc": float(aucs[c]), "n_pos": n_pos, "n_neg": int(known.sum()) - n_pos})
    table = pd.DataFrame(rows)
    if warn:
        _warn_not_evaluable(table, stacklevel=3)
    return table


def _warn_not_evaluable(table: pd.DataFrame, stacklevel: int) -> None:
    """One :class:`NotEvaluableWarning` naming every n/a class of ``per_class_auc``'s ``table``.

    One message per call, the same for the same labels, so a notebook that scores many models
    on one test split can show it once (:mod:`paperkit.notebook` counts the repeats).
    """
    na = table[table["auc"].isna()]
    if na.empty:
        return
    named = ", ".join(
        f"{c!r} ({p} positive, {n} negative)" for c, p, n in na[["class", "n_pos", "n_neg"]].itertuples(index=False)
    )
    warnings.warn(
        f"AUC is n/a for {len(na)} of {len(table)} classes, whose scored images all carry the same label: "
        f"{named}; means cover the other {len(table) - len(na)} of {len(table)} classes",
        NotEvaluableWarning,
        stacklevel=stacklevel,
    )


def macro_mean(aucs: Sequence[float] | np.ndarray) -> tuple[float, int]:
    """Mean over the evaluable (finite) AUCs and how many classes it covers."""
    a = np.asarray(aucs, dtype=float)
    finite = np.isfinite(a)
    n = int(finite.sum())
    return (float(a[finite].mean()) if n else np.nan), n


# ------------------------------------------------------------------------------------------------
# The one entry point every table uses
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComparisonResult:
    """Every number a results table needs, for several models scored on the same test set.

    Attributes
    ----------
    auc
        One row per model and class plus a ``class == "Mean"`` row per model. Columns ``model,
        class, auc, ci_low, ci_high, n_pos, n_neg, n_classes`` (``n_classes``: classes the mean
        covers, on mean rows only). AUCs are fractions in [0, 1].
    diff
        ``model - reference`` for every other model, per class and mean. Columns ``model,
        reference, class, diff, ci_low, ci_high, p_boot, p_delong, p_holm``; DeLong and Holm (across
        the classes of one model) are per class only, the mean row carries the bootstrap p-value.
    classes, models, reference
        What was compared.
    na_classes
        Classes reported n/a (no positive or no negative) and left out of every mean.
    n_images, n_patients, n_boot, seed, level
        Test-set size and bootstrap settings (same resamples for every model).
    """

    auc: pd.DataFrame
    diff: pd.DataFrame
    classes: tuple[str, ...]
    models: tuple[str, ...]
    reference: str | None
    na_classes: tuple[str, ...]
    n_images: int
    n_patients: int
    n_boot: int
    seed: int
    level: float

    def wide(self, column: str = "auc") -> pd.DataFrame:
        """``model x class`` (plus ``Mean``) view of one column of :attr:`auc`, in input order."""
        table = self.auc.pivot(index="model", columns="class", values=column)
        return table.loc[list(self.models), [*self.classes, MEAN]]

    def mean_auc(self, model: str) -> float:
        """Macro-mean AUC of ``model``."""
        row = self.auc[(self.auc["model"] == model) & (self.auc["class"] == MEAN)]
        return float(row["auc"].iloc[0])


def compare_models(
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    patient_ids: Sequence[str] | np.ndarray,
    classes: Sequence[str],
    reference: str | None = "B",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> ComparisonResult:
    """Per-class and mean AUC of every model with paired patient-level bootstrap CIs and tests.

    Parameters
    ----------
    y_true
        ``[n, C]`` test labels in {0, 1, NaN}.
    scores
        ``{model: [n, C]}``; insertion order is the row order of every table.
    patient_ids
        ``[n]`` patient of each image; the bootstrap resamples patients and takes all their images.
    classes
        ``C`` class names (columns of ``y_true``).
    reference
        Model every other model is compared with (``diff``); ``None`` skips the comparison.
    n_boot, seed, level
        Bootstrap resamples, their seed (same resamples for every model), CI level.

    Returns
    -------
    ComparisonResult
    """
    classes = tuple(classes)
    y = _as_labels(y_true, classes)
    s = {name: _as_scores(v, y.shape, name) for name, v in scores.items()}
    if not s:
        raise ValueError("no models to evaluate")
    if reference is not None and reference not in s:
        raise ValueError(f"reference model {reference!r} is not among {list(s)}; pass reference=None to skip")
    patient_ids = np.asarray(patient_ids)
    if patient_ids.shape != (y.shape[0],):
        raise ValueError(f"patient_ids has shape {patient_ids.shape}; expected ({y.shape[0]},)")

    points = {name: per_class_auc(y, v, classes, warn=False) for name, v in s.items()}
    na_mask = _not_evaluable(points[next(iter(s))])  # depends on the labels only
    counts, codes = patient_resample_counts(patient_ids, n_boot, seed)
    boot = bootstrap_aucs(y, s, counts, codes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample without positives is NaN
        boot_mean = {name: np.nanmean(b[:, ~na_mask], axis=1) for name, b in boot.items()}
    auc = _auc_rows(points, boot, boot_mean, na_mask, level)
    diff_rows = [
        _diff_rows(y, s, points, boot, boot_mean, na_mask, classes, name, reference, level)
        for name in s
        if reference is not None and name != reference
    ]
    diff = pd.concat(diff_rows, ignore_index=True) if diff_rows else pd.DataFrame(columns=DIFF_COLUMNS)
    return ComparisonResult(
        auc=auc,
        diff=diff[DIFF_COLUMNS],
        classes=classes,
        models=tuple(s),
        reference=reference,
        na_classes=tuple(c for c, na in zip(classes, na_mask) if na),
        n_images=int(y.shape[0]),
        n_patients=int(counts.shape[1]),
        n_boot=int(n_boot),
        seed=int(seed),
        level=float(level),
    )


DIFF_COLUMNS = ["model", "reference", "class", "diff", "ci_low", "ci_high", "p_boot", "p_delong", "p_holm"]


def _not_evaluable(points: pd.DataFrame) -> np.ndarray:
    """Bool mask of the classes with one label value (AUC n/a), all named in one warning."""
    _warn_not_evaluable(points, stacklevel=4)
    return points["auc"].isna().to_numpy()


def _auc_rows(
    points: Mapping[str, pd.DataFrame],
    boot: Mapping[str, np.ndarray],
    boot_mean: Mapping[str, np.ndarray],
    na_mask: np.ndarray,
    level: float,
) -> pd.DataFrame:
    """Per-class and mean AUC of every model with percentile CIs (:attr:`ComparisonResult.auc`)."""
    rows = []
    for name, table in points.items():
        lo, hi = percentile_ci(boot[name], level)
        mlo, mhi = percentile_ci(boot_mean[name][:, None], level)
        table = table.assign(model=name, ci_low=lo, ci_high=hi)
        table.loc[na_mask, ["ci_low", "ci_high"]] = np.nan
        mean, _ = macro_mean(table["auc"])
        rows += [
            table,
            pd.DataFrame(
                [
                    {
                        "model": name,
                        "class": MEAN,
                        "auc": mean,
                        "ci_low": mlo[0],
                        "ci_high": mhi[0],
                        "n_classes": int((~na_mask).sum()),
                    }
                ]
            ),
        ]
    auc = pd.concat(rows, ignore_index=True)[
        ["model", "class", "auc", "ci_low", "ci_high", "n_pos", "n_neg", "n_classes"]
    ]
    return auc.astype({"n_pos": "Int64", "n_neg": "Int64", "n_classes": "Int64"})


def _diff_rows(
    y: np.ndarray,
    s: Mapping[str, np.ndarray],
    points: Mapping[str, pd.DataFrame],
    boot: Mapping[str, np.ndarray],
    boot_mean: Mapping[str, np.ndarray],
    na_mask: np.ndarray,
    classes: Sequence[str],
    name: str,
    reference: str,
    level: float,
) -> pd.DataFrame:
    """``name - reference`` per class (bootstrap CI and p, DeLong, Holm) and for the mean (bootstrap)."""
    d_boot = boot[name] - boot[reference]
    lo, hi = percentile_ci(d_boot, level)
    p_delong = np.full(len(classes), np.nan)
    for c in np.flatnonzero(~na_mask):
        known = np.isfinite(y[:, c])
        if min((y[known, c] == 1).sum(), (y[known, c] == 0).sum()) >= 2:
            p_delong[c] = delong_test(y[:, c], s[name][:, c], s[reference][:, c]).p
    ref_auc = points[reference]["auc"].to_numpy()
    per_class = pd.DataFrame(
        {
            "model": name,
            "reference": reference,
            "class": classes,
            "diff": points[name]["auc"].to_numpy() - ref_auc,
            "ci_low": np.where(na_mask, np.nan, lo),
            "ci_high": np.where(na_mask, np.nan, hi),
            "p_boot": np.where(na_mask, np.nan, bootstrap_p(d_boot)),
            "p_delong": p_delong,
            "p_holm": holm(p_delong),
        }
    )
    d_mean = boot_mean[name] - boot_mean[reference]
    mlo, mhi = percentile_ci(d_mean[:, None], level)
    mean = pd.DataFrame(
        [
            {
                "model": name,
                "reference": reference,
                "class": MEAN,
                "diff": macro_mean(points[name]["auc"])[0] - macro_mean(ref_auc)[0],
                "ci_low": mlo[0],
                "ci_high": mhi[0],
                "p_boot": bootstrap_p(d_mean[:, None])[0],
                "p_delong": np.nan,
                "p_holm": np.nan,
            }
        ]
    )
    return pd.concat([per_class, mean], ignore_index=True)


def seed_summary(results: Sequence[ComparisonResult]) -> pd.DataFrame:
    """Mean and sample sd across training seeds of every AUC and every difference.

    Parameters
    ----------
    results
        One :class:`ComparisonResult` per training seed (same models, classes and test set).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, class, auc_mean, auc_sd, diff_mean, diff_sd, n_seeds``; ``*_sd`` is NaN
        with one seed and ``diff_*`` is NaN for the reference model.
    """
    if not results:
        raise ValueError("no results to summarise")
    auc = pd.concat([r.auc.assign(seed_index=i) for i, r in enumerate(results)])
    out = (
        auc.groupby(["model", "class"], sort=False)["auc"]
        .agg(auc_mean="mean", auc_sd="std", n_seeds="count")
        .reset_index()
    )
    diff = pd.concat([r.diff for r in results])
    if len(diff):
        d = diff.groupby(["model", "class"], sort=False)["diff"].agg(diff_mean="mean", diff_sd="std").reset_index()
        out = out.merge(d, on=["model", "class"], how="left")
    else:
        out = out.assign(diff_mean=np.nan, diff_sd=np.nan)
    return out[["model", "class", "auc_mean", "auc_sd", "diff_mean", "diff_sd", "n_seeds"]]


def clean_vs_noisy(
    y_clean: np.ndarray,
    y_noisy: np.ndarray,
    scores: Mapping[str, np.ndarray],
    patient_ids: Sequence[str] | np.ndarray,
    classes: Sequence[str],
    *,
    same_images: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """AUC against clean and against noisy test labels, side by side.

    Test-label noise caps the AUC one can measure; ``noise_gap = auc_noisy - auc_clean`` shows by
    how much. Both evaluations use the same seed, hence the same patient resamples.

    Parameters
    ----------
    y_clean, y_noisy
        ``[n, C]`` labels in {0, 1, NaN}; clean labels are NaN where unknown.
    same_images
        Score the noisy labels only where a clean label exists, so that the gap is due to the
        labels and not to a different set of images.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, class, auc_clean, ci_low_clean, ci_high_clean, auc_noisy, ci_low_noisy,
        ci_high_noisy, noise_gap`` (class rows and ``Mean`` rows).
    """
    clean = _as_labels(y_clean, classes)
    noisy = _as_labels(y_noisy, classes).copy()
    if same_images:
        noisy[~np.isfinite(clean)] = np.nan
    kw = dict(reference=None, n_boot=n_boot, seed=seed, level=level)
    cols = ["model", "class", "auc", "ci_low", "ci_high"]
    a = compare_models(clean, scores, patient_ids, classes, **kw).auc[cols]
    b = compare_models(noisy, scores, patient_ids, classes, **kw).auc[cols]
    out = a.merge(b, on=["model", "class"], suffixes=("_clean", "_noisy"))
    return out.assign(noise_gap=out["auc_noisy"] - out["auc_clean"])


# ------------------------------------------------------------------------------------------------
# Curves for the figures
# ------------------------------------------------------------------------------------------------
def roc_points(y_true: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """ROC curve of one class (scikit-learn), NaN labels dropped: columns ``fpr, tpr, threshold``."""
    y = np.asarray(y_true, dtype=float)
    known = np.isfinite(y)
    fpr, tpr, thr = roc_curve(y[known], np.asarray(score, dtype=float)[known])
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr})
