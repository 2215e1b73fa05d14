"""The verdict: does B+MODL+KNNS beat B, by how much, and is that the paper's gain?

One number per layout: the gain in mean AUC of B+MODL+KNNS over B, averaged over training seeds,
with a 95 % CI from a two-level bootstrap that resamples both sources of uncertainty at once:
training seeds (with replacement) and test patients (with replacement, the same patients for
every seed of a resample, since every seed is scored on the same test set). A CI from the patient
bootstrap alone would ignore that another seed gives another gain; one from the seeds alone would
ignore that the test set is a sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from paperkit import paper_numbers
from paperkit.evaluate import macro_mean, per_class_auc
from paperkit.stats import bootstrap_aucs, patient_resample_counts, percentile_ci
from paperkit.report import ReportTable

if TYPE_CHECKING:
    from paperkit.experiment import Prepared

#: Layout -> the paper's table holding its B and B+MODL+KNNS rows.
PAPER_TABLES = {"nih": "Table 1", "chexpert": "Table 2"}


@dataclass(frozen=True)
class SeedMeanGain:
    """Mean-AUC gain of ``model`` over ``reference`` averaged over seeds, in AUC points (%)."""

    gain: float
    ci_low: float
    ci_high: float
    per_seed: dict[int, float]
    reference_auc: float  # mean over seeds of the reference's mean AUC (%)
    model_auc: float
    n_boot: int

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def seed_mean_gain(
    y_true: np.ndarray,
    scores: Mapping[int, Mapping[str, np.ndarray]],
    patient_ids: Sequence[str] | np.ndarray,
    classes: Sequence[str],
    model: str = "B+MODL+KNNS",
    reference: str = "B",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> SeedMeanGain:
    """Gain of ``model`` over ``reference`` averaged over training seeds, with a seeds x patients bootstrap CI.

    Parameters
    ----------
    y_true
        ``[n, C]`` test labels in {0, 1, NaN}.
    scores
        ``{training seed: {model name: [n, C] scores}}``, each holding ``model`` and ``reference``.
    patient_ids
        ``[n]`` patient of each test image.
    classes
        The ``C`` class names; classes with one label value are left out of every mean.

    Returns
    -------
    SeedMeanGain
        Point estimate: the mean over seeds of each seed's gain on the full test set.
    """
    seeds = list(scores)
    y = np.asarray(y_true, dtype=float)
    flat = {(s, m): np.asarray(scores[s][m], dtype=float) for s in seeds for m in (model, reference)}
    first = per_class_auc(y, flat[seeds[0], model], classes, warn=False)
    usable = ~first["auc"].isna().to_numpy()
    point = {key: 100 * macro_mean(per_class_auc(y, v, classes, warn=False)["auc"])[0] for key, v in flat.items()}
    per_seed = {s: point[s, model] - point[s, reference] for s in seeds}

    counts, codes = patient_resample_counts(patient_ids, n_boot, seed)
    boot = bootstrap_aucs(y, {f"{s}|{m}": v for (s, m), v in flat.items()}, counts, codes)
    with np.errstate(invalid="ignore"):
        gains = np.stack([100 * (np.nanmean(boot[f"{s}|{model}"][:, usable], axis=1)
                                 - np.nanmean(boot[f"{s}|{reference}"][:, usable], axis=1)) for s in seeds], axis=1)
    drawn = np.random.default_rng(seed + 1).integers(0, len(seeds), size=(n_boot, len(seeds)))
    resampled = np.take_along_axis(gains, drawn, axis=1).mean(axis=1)  # [n_boot]: seeds and patients drawn
    lo, hi = percentile_ci(resampled[:, None], level)
    return SeedMeanGain(gain=float(np.mean(list(per_seed.values()))), ci_low=float(lo[0]), ci_high=float(hi[0]),
                        per_seed=per_seed, reference_auc=float(np.mean([point[s, reference] for s in seeds])),
                        model_auc=float(np.mean([point[s, model] for s in seeds])), n_boot=n_boot)


def paper_gain(layout: str, model: str = "B+MODL+KNNS", reference: str = "B") -> float:
    """The paper's mean-AUC gain (%) of ``model`` over ``reference`` on ``layout``'s table."""
    table = paper_numbers.TABLE1_NIH if layout == "nih" else paper_numbers.TABLE2_CHEXPERT
    return round(float(table.loc[model, paper_numbers.MEAN] - table.loc[reference, paper_numbers.MEAN]), 2)


def in_words(gain: SeedMeanGain, paper: float, target_half_width: float = 0.5) -> str:
    """One plain sentence: does the CI exclude 0, does it exclude the paper's gain, how wide is it."""
    if gain.ci_low > 0:
        sign = "B+MODL+KNNS beats B (the CI excludes 0)"
    elif gain.ci_high < 0:
        sign = "B+MODL+KNNS is worse than B (the CI excludes 0)"
    else:
        sign = "no difference from B can be claimed (the CI includes 0)"
    if gain.ci_low <= paper <= gain.ci_high:
        versus = f"the paper's {paper:+.2f} is inside the CI"
    else:
        side = "below" if gain.ci_high < paper else "above"
        versus = f"the gain is {side} the paper's {paper:+.2f} (the CI excludes it)"
    width = (f"CI half-width {gain.half_width:.2f}" +
             ("" if gain.half_width <= target_half_width else f", wider than the {target_half_width} aimed for"))
    return f"{sign}; {versus}; {width}."


def verdict_table(gains: Mapping[str, SeedMeanGain], model: str = "B+MODL+KNNS", labels: str = "clean") -> ReportTable:
    """The table REPORT.md opens with: per layout, the seed-mean gain with its CI, the paper's, in words.

    ``labels`` names the test labels scored (``"clean"`` on the benchmark, ``"mined"`` on real data)."""
    rows = []
    for layout, g in gains.items():
        paper = paper_gain(layout, model)
        rows.append({"layout": layout, "paper table": PAPER_TABLES.get(layout, ""), "seeds": len(g.per_seed),
                     "B": g.reference_auc, model: g.model_auc, "gain": g.gain, "ci_low": g.ci_low,
                     "ci_high": g.ci_high, "paper_gain": paper, "per_seed": " ".join(f"{v:+.2f}" for v in g.per_seed.values()),
                     "verdict": in_words(g, paper)})
    tidy = pd.DataFrame(rows)
    display = pd.DataFrame({
        "layout": tidy["layout"],
        "seeds": tidy["seeds"].astype(str),
        "B (mean AUC)": tidy["B"].map("{:.2f}".format),
        model: tidy[model].map("{:.2f}".format),
        "gain [95% CI]": [f"{r.gain:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]" for r in tidy.itertuples()],
        "paper's gain": [f"{p:+.2f} ({t})" for p, t in zip(tidy["paper_gain"], tidy["paper table"])],
        "per seed": tidy["per_seed"],
        "in words": tidy["verdict"],
    }).set_index("layout")
    n_boot = next(iter(gains.values())).n_boot
    notes = (f"Mean AUC (%) on the {labels} test labels, averaged over training seeds; the CI resamples seeds and test "
             f"patients together ({n_boot} two-level bootstrap resamples, paperkit.verdict).",)
    return ReportTable("verdict", f"{model} against B, every training seed, on each layout.", tidy, display, notes)


def headline_gain(prep: "Prepared", probs: Mapping[int, Mapping[str, np.ndarray]], n_boot: int,
                  model: str = "B+MODL+KNNS") -> SeedMeanGain:
    """:func:`seed_mean_gain` on one prepared dataset's test split: ``probs`` is ``{seed: {model: [n, C_all]}}``
    (all of the dataset's findings); the evaluated findings and the test labels of Tables 1-2 are used."""
    rows = prep.rows("test")
    scores = {s: {m: p[:, prep.eval_columns] for m, p in by_model.items()} for s, by_model in probs.items()}
    return seed_mean_gain(prep.labels("test"), scores, prep.dataset.patient_ids[rows], prep.eval_classes,
                          model=model, n_boot=n_boot)
