"""One evaluation path for every table: per-class ROC AUC, patient-level paired bootstrap, DeLong + Holm.

Arrays in, tidy DataFrames out. ``y_true [n, C]`` holds ``1``, ``0`` or ``NaN`` (unknown: the
image is left out of that class only); ``scores`` maps a model name to ``[n, C]`` probabilities or
logits (AUC only needs the order); ``patient_ids [n]`` groups the images of one patient, because
images of one patient are not independent: the bootstrap resamples patients and keeps all their
images, and every model is scored on the *same* resampled patient sets, so differences are paired.

A class with no positive or no negative is reported as ``NaN`` (shown as n/a) with a
:class:`NotEvaluableWarning` naming it; the macro mean covers the evaluable classes and says how many.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score, roc_curve

if TYPE_CHECKING:  # torch is only needed for the cost measurements of Table 3
    import torch

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
    rows = []
    for c, name in enumerate(classes):
        known = np.isfinite(y[:, c])
        n_pos = int((y[known, c] == 1).sum())
        n_neg = int(known.sum()) - n_pos
        if n_pos == 0 or n_neg == 0:
            if warn:
                warnings.warn(
                    f"class {name!r} has {n_pos} positive and {n_neg} negative test labels: AUC is n/a "
                    "and the mean leaves it out",
                    NotEvaluableWarning,
                    stacklevel=2,
                )
            auc = np.nan
        else:
            auc = float(roc_auc_score(y[known, c], s[known, c]))
        rows.append({"class": name, "auc": auc, "n_pos": n_pos, "n_neg": n_neg})
    return pd.DataFrame(rows)


def macro_mean(aucs: Sequence[float] | np.ndarray) -> tuple[float, int]:
    """Mean over the evaluable (finite) AUCs and how many classes it covers."""
    a = np.asarray(aucs, dtype=float)
    finite = np.isfinite(a)
    n = int(finite.sum())
    return (float(a[finite].mean()) if n else np.nan), n


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
def patient_resample_counts(patient_ids: Sequence[str] | np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
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


def _bootstrap_aucs(
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


def _percentile_ci(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (not evaluable) stay NaN
        return np.nanquantile(samples, alpha, axis=0), np.nanquantile(samples, 1.0 - alpha, axis=0)


def _bootstrap_p(diffs: np.ndarray) -> np.ndarray:
    """Two-sided percentile-bootstrap p-value of ``diff = 0`` (per column)."""
    finite = np.isfinite(diffs)
    n = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        below = np.where(finite, diffs <= 0, False).sum(axis=0) / n
        above = np.where(finite, diffs >= 0, False).sum(axis=0) / n
        return np.minimum(1.0, 2.0 * np.minimum(below, above))


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
    first = points[next(iter(s))]  # evaluability depends on the labels only, not on the model
    na_mask = first["auc"].isna().to_numpy()
    na_classes = tuple(c for c, na in zip(classes, na_mask) if na)
    for name, n_pos, n_neg in first.loc[na_mask, ["class", "n_pos", "n_neg"]].itertuples(index=False):
        warnings.warn(
            f"class {name!r} has {n_pos} positive and {n_neg} negative test labels: AUC is n/a "
            f"and the mean covers {int((~na_mask).sum())} of {len(classes)} classes",
            NotEvaluableWarning,
            stacklevel=2,
        )

    counts, codes = patient_resample_counts(patient_ids, n_boot, seed)
    boot = _bootstrap_aucs(y, s, counts, codes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample without positives is NaN
        boot_mean = {name: np.nanmean(b[:, ~na_mask], axis=1) for name, b in boot.items()}
    n_covered = int((~na_mask).sum())

    auc_rows = []
    for name in s:
        lo, hi = _percentile_ci(boot[name], level)
        mlo, mhi = _percentile_ci(boot_mean[name][:, None], level)
        table = points[name].assign(model=name, ci_low=lo, ci_high=hi)
        table.loc[na_mask, ["ci_low", "ci_high"]] = np.nan
        mean, _ = macro_mean(table["auc"])
        auc_rows.append(table)
        auc_rows.append(
            pd.DataFrame(
                [{"model": name, "class": MEAN, "auc": mean, "ci_low": mlo[0], "ci_high": mhi[0], "n_classes": n_covered}]
            )
        )
    auc = pd.concat(auc_rows, ignore_index=True)
    auc = auc[["model", "class", "auc", "ci_low", "ci_high", "n_pos", "n_neg", "n_classes"]]
    auc = auc.astype({"n_pos": "Int64", "n_neg": "Int64", "n_classes": "Int64"})

    diff_rows = []
    if reference is not None:
        ref_auc = points[reference]["auc"].to_numpy()
        for name in s:
            if name == reference:
                continue
            d_boot = boot[name] - boot[reference]
            lo, hi = _percentile_ci(d_boot, level)
            p_delong = np.full(len(classes), np.nan)
            for c in np.flatnonzero(~na_mask):
                known = np.isfinite(y[:, c])
                if min((y[known, c] == 1).sum(), (y[known, c] == 0).sum()) >= 2:
                    p_delong[c] = delong_test(y[:, c], s[name][:, c], s[reference][:, c]).p
            d_point = points[name]["auc"].to_numpy() - ref_auc
            diff_rows.append(
                pd.DataFrame(
                    {
                        "model": name,
                        "reference": reference,
                        "class": classes,
                        "diff": d_point,
                        "ci_low": np.where(na_mask, np.nan, lo),
                        "ci_high": np.where(na_mask, np.nan, hi),
                        "p_boot": np.where(na_mask, np.nan, _bootstrap_p(d_boot)),
                        "p_delong": p_delong,
                        "p_holm": holm(p_delong),
                    }
                )
            )
            d_mean = boot_mean[name] - boot_mean[reference]
            mlo, mhi = _percentile_ci(d_mean[:, None], level)
            diff_rows.append(
                pd.DataFrame(
                    [
                        {
                            "model": name,
                            "reference": reference,
                            "class": MEAN,
                            "diff": macro_mean(points[name]["auc"])[0] - macro_mean(ref_auc)[0],
                            "ci_low": mlo[0],
                            "ci_high": mhi[0],
                            "p_boot": _bootstrap_p(d_mean[:, None])[0],
                            "p_delong": np.nan,
                            "p_holm": np.nan,
                        }
                    ]
                )
            )
    diff_columns = ["model", "reference", "class", "diff", "ci_low", "ci_high", "p_boot", "p_delong", "p_holm"]
    diff = pd.concat(diff_rows, ignore_index=True) if diff_rows else pd.DataFrame(columns=diff_columns)

    return ComparisonResult(
        auc=auc,
        diff=diff[diff_columns],
        classes=classes,
        models=tuple(s),
        reference=reference,
        na_classes=na_classes,
        n_images=int(y.shape[0]),
        n_patients=int(counts.shape[1]),
        n_boot=int(n_boot),
        seed=int(seed),
        level=float(level),
    )


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


def inference_throughput(
    models: "torch.nn.Module | Sequence[torch.nn.Module]",
    input_shape: tuple[int, int, int],
    *,
    batch_size: int = 32,
    n_batches: int = 5,
    device: str = "cpu",
    amp: bool = False,
) -> float:
    """Measured images per second of a model, or of an ensemble run member after member.

    Two warm-up passes are run first and excluded (allocation, oneDNN/cuDNN kernel selection).
    Each later pass is timed on its own and the median is reported, so one pass disturbed by
    another process does not set the figure. A figure measured while another multi-threaded torch
    process shares the CPU cores is not meaningful (thread oversubscription slows both many-fold).

    Parameters
    ----------
    input_shape
        ``(channels, height, width)`` of one image.
    n_batches
        Timed passes (the median is taken).
    device
        Where to measure; the models are moved there (and stay).
    amp
        On CUDA, run as the kit predicts (:func:`paperkit.inference.predict`): bf16 autocast and
        channels_last. Ignored on the CPU.
    """
    import contextlib

    import torch  # local: the rest of this module is arrays-only and should import fast

    cuda = device.startswith("cuda")
    fast = amp and cuda
    layout = torch.channels_last if fast else torch.contiguous_format
    members = [models] if not isinstance(models, Sequence) else list(models)
    x = torch.randn(batch_size, *input_shape, device=device).contiguous(memory_format=layout)
    for m in members:
        m.eval().to(device, memory_format=layout)

    def run_once() -> float:
        start = time.perf_counter()
        for m in members:
            m(x)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if fast else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for _ in range(2):
            run_once()
        seconds = [run_once() for _ in range(n_batches)]
    return batch_size / float(np.median(seconds))
