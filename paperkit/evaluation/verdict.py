"""The verdict: does B+MODL+KNNS beat B, by how much, and is that the paper's gain?

One number per layout: the gain in mean AUC of B+MODL+KNNS over B, averaged over training seeds,
with a 95 % CI from a two-level bootstrap that resamples both sources of uncertainty at once:
training seeds (with replacement) and test patients (with replacement, the same patients for
every seed of a resample, since every seed is scored on the same test set). A CI from the patient
bootstrap alone would ignore that another seed gives another gain; one from the seeds alone would
ignore that the test set is a sample.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from paperkit.evaluation import paper_numbers
from paperkit.evaluation.metrics import macro_mean, per_class_auc
from paperkit.evaluation.report.format import ReportTable, images_note
from paperkit.evaluation.stats import bootstrap_aucs, patient_resample_counts, percentile_ci

#: Layout -> the paper's table holding its B and B+MODL+KNNS rows.
PAPER_TABLES = {"nih": "Table 1", "chexpert": "Table 2"}


@dataclass(frozen=True)
class ScoredImages:
    """The test images a verdict scores and their truth.

    ``labels``: ``[n, E]`` (0/1/NaN) on the evaluated findings ``eval_classes``, which are columns
    ``eval_columns`` of a model's ``[n, C]`` probabilities; ``patient_ids``: ``[n]``, the bootstrap's
    unit; ``name``: which images they are, for a caption.
    """

    layout: str
    name: str
    labels: np.ndarray
    patient_ids: np.ndarray
    eval_classes: tuple[str, ...]
    eval_columns: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95 % CI from the seeds x patients bootstrap."""

    value: float
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


@dataclass(frozen=True)
class SeedMeanGain:
    """Mean-AUC gain of ``model`` over ``reference`` averaged over seeds, in AUC points (%).

    With a clean-label ceiling (:mod:`paperkit.pipeline.ceiling`): ``noise_cost`` = ceiling − reference and
    ``recovered`` = gain / noise_cost (a fraction), each from the same bootstrap resamples as the gain.
    """

    gain: float
    ci_low: float
    ci_high: float
    per_seed: dict[int, float]
    reference_auc: float  # mean over seeds of the reference's mean AUC (%)
    model_auc: float
    n_boot: int
    ceiling_auc: float | None = None
    noise_cost: Estimate | None = None
    recovered: Estimate | None = None
    images: str = ""  # which test images were scored (a caption's words)

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def mean_auc(y: np.ndarray, scores: np.ndarray, classes: Sequence[str]) -> float:
    """Mean over classes of the per-class AUC (%), classes with one label value left out."""
    return 100 * macro_mean(per_class_auc(y, scores, classes, warn=False)["auc"])[0]


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
    ceiling: str | None = None,
) -> SeedMeanGain:
    """Gain of ``model`` over ``reference`` averaged over training seeds, with a seeds x patients bootstrap CI.

    Parameters
    ----------
    y_true
        ``[n, C]`` test labels in {0, 1, NaN}.
    scores
        ``{training seed: {model name: [n, C] scores}}``, each holding ``model`` and ``reference``
        (and ``ceiling`` when given).
    patient_ids
        ``[n]`` patient of each test image.
    classes
        The ``C`` class names; classes with one label value are left out of every mean.
    ceiling
        The clean-label ceiling's name in ``scores``: adds the noise cost and the recovered share.
        The share is a ratio of seed means, (mean gain) / (mean cost), in every resample.

    Returns
    -------
    SeedMeanGain
        Point estimates: means over seeds of each seed's value on the full test set.
    """
    seeds = list(scores)
    models = [model, reference] + ([ceiling] if ceiling else [])
    y = np.asarray(y_true, dtype=float)
    flat = {(s, m): np.asarray(scores[s][m], dtype=float) for s in seeds for m in models}
    first = per_class_auc(y, flat[seeds[0], model], classes, warn=False)
    usable = ~first["auc"].isna().to_numpy()
    point = {key: mean_auc(y, v, classes) for key, v in flat.items()}
    seed_mean = {m: float(np.mean([point[s, m] for s in seeds])) for m in models}
    per_seed = {s: point[s, model] - point[s, reference] for s in seeds}

    counts, codes = patient_resample_counts(patient_ids, n_boot, seed)
    boot = bootstrap_aucs(y, {f"{s}|{m}": v for (s, m), v in flat.items()}, counts, codes)
    drawn = np.random.default_rng(seed + 1).integers(0, len(seeds), size=(n_boot, len(seeds)))
    with np.errstate(invalid="ignore"):
        resampled = {}  # model -> [n_boot] seed-mean AUC (%), seeds and patients drawn
        for m in models:
            per_seed_boot = np.stack([100 * np.nanmean(boot[f"{s}|{m}"][:, usable], axis=1) for s in seeds], axis=1)
            resampled[m] = np.take_along_axis(per_seed_boot, drawn, axis=1).mean(axis=1)

    def estimate(value: float, draws: np.ndarray) -> Estimate:
        lo, hi = percentile_ci(draws[:, None], level)
        return Estimate(value, float(lo[0]), float(hi[0]))

    gain = estimate(float(np.mean(list(per_seed.values()))), resampled[model] - resampled[reference])
    cost = recovered = None
    if ceiling:
        cost_value = seed_mean[ceiling] - seed_mean[reference]
        cost = estimate(cost_value, resampled[ceiling] - resampled[reference])
        with np.errstate(divide="ignore", invalid="ignore"):
            shares = (resampled[model] - resampled[reference]) / (resampled[ceiling] - resampled[reference])
        recovered = estimate(gain.value / cost_value if cost_value else float("nan"), shares)
    return SeedMeanGain(gain=gain.value, ci_low=gain.ci_low, ci_high=gain.ci_high, per_seed=per_seed,
                        reference_auc=seed_mean[reference], model_auc=seed_mean[model], n_boot=n_boot,
                        ceiling_auc=seed_mean[ceiling] if ceiling else None, noise_cost=cost, recovered=recovered)


def paper_gain(layout: str, model: str = "B+MODL+KNNS", reference: str = "B") -> float:
    """The paper's mean-AUC gain (%) of ``model`` over ``reference`` on ``layout``'s table."""
    table = paper_numbers.TABLE1_NIH if layout == "nih" else paper_numbers.TABLE2_CHEXPERT
    return round(float(table.loc[model, paper_numbers.MEAN] - table.loc[reference, paper_numbers.MEAN]), 2)


def in_words(gain: SeedMeanGain, paper: float, target_half_width: float = 0.5) -> str:
    """Plain sentences: does the CI exclude 0, does it exclude the paper's gain, how wide is it, and (with a
    ceiling) what the noise costs B and what share of it the method wins back."""
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
    text = f"{sign}; {versus}; {width}."
    if gain.noise_cost is not None and gain.recovered is not None:
        c, r = gain.noise_cost, gain.recovered
        text += (
            f" The label noise costs B {c.value:.2f} [{c.ci_low:.2f}, {c.ci_high:.2f}] AUC points "
            "against the clean-label ceiling"
        )
        if c.ci_low > 0:
            text += (
                f"; the method recovers {100 * r.value:.0f} % [{100 * r.ci_low:.0f}, {100 * r.ci_high:.0f}] "
                "of that cost."
            )
        else:
            text += "; its CI includes 0, so no recovered share can be given."
    return text


def _estimate_text(e: Estimate | None, scale: float = 1.0, fmt: str = "{:+.2f}") -> str:
    if e is None:
        return ""
    return f"{fmt.format(scale * e.value)} [{fmt.format(scale * e.ci_low)}, {fmt.format(scale * e.ci_high)}]"


def verdict_table(gains: Mapping[str, SeedMeanGain], model: str = "B+MODL+KNNS", labels: str = "clean",
                  stem: str = "verdict", scored: str = "") -> ReportTable:
    """The table REPORT.md opens with: per layout, the seed-mean gain with its CI, the paper's, in words;
    with the clean-label ceiling, its AUC, the noise cost and the recovered share with their CIs.

    ``labels`` names the test labels scored (``"clean"`` on the benchmark, ``"mined"`` on real data);
    ``stem`` and ``scored`` (appended to the caption, e.g. ", each run scored at its last epoch") name
    another reading of the same runs."""
    rows = []
    for layout, g in gains.items():
        paper = paper_gain(layout, model)
        row = {
            "layout": layout,
            "paper table": PAPER_TABLES.get(layout, ""),
            "seeds": len(g.per_seed),
            "B": g.reference_auc,
            model: g.model_auc,
            "gain": g.gain,
            "ci_low": g.ci_low,
            "ci_high": g.ci_high,
            "paper_gain": paper,
            "per_seed": " ".join(f"{v:+.2f}" for v in g.per_seed.values()),
            "verdict": in_words(g, paper),
            "images": g.images,
        }
        if g.noise_cost is not None and g.recovered is not None:
            row.update(
                {
                    "ceiling": g.ceiling_auc,
                    "noise_cost": g.noise_cost.value,
                    "noise_cost_ci_low": g.noise_cost.ci_low,
                    "noise_cost_ci_high": g.noise_cost.ci_high,
                    "recovered": g.recovered.value,
                    "recovered_ci_low": g.recovered.ci_low,
                    "recovered_ci_high": g.recovered.ci_high,
                }
            )
        rows.append(row)
    tidy = pd.DataFrame(rows)
    display = pd.DataFrame(
        {
            "layout": tidy["layout"],
            "seeds": tidy["seeds"].astype(str),
            "B (mean AUC)": tidy["B"].map("{:.2f}".format),
            model: tidy[model].map("{:.2f}".format),
            "gain [95% CI]": [f"{r.gain:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]" for r in tidy.itertuples()],
        }
    )
    if "ceiling" in tidy:
        display["ceiling: B (clean labels)"] = tidy["ceiling"].map("{:.2f}".format)
        display["noise cost [95% CI]"] = [_estimate_text(gains[layout].noise_cost) for layout in tidy["layout"]]
        display["recovered [95% CI]"] = [
            _estimate_text(gains[layout].recovered, 100, "{:.0f} %") for layout in tidy["layout"]
        ]
    display["paper's gain"] = [f"{p:+.2f} ({t})" for p, t in zip(tidy["paper_gain"], tidy["paper table"])]
    display["per seed"] = tidy["per_seed"]
    display["in words"] = tidy["verdict"]
    display = display.set_index("layout")
    n_boot = next(iter(gains.values())).n_boot
    notes = (
        f"Mean AUC (%) on the {labels} test labels, averaged over training seeds; the CI resamples seeds and test "
        f"patients together ({n_boot} two-level bootstrap resamples, paperkit.evaluation.verdict).",
    )
    notes += images_note({layout: g.images for layout, g in gains.items()})
    if "ceiling" in tidy:
        notes += (
            "Ceiling: the target trained by BCE on the benchmark's clean training labels (same images, seeds, "
            "schedule and batch order; paperkit.pipeline.ceiling). Noise cost = ceiling − B; recovered = "
            "(B+MODL+KNNS − B) / (ceiling − B), a ratio of seed means in every resample.",
        )
    return ReportTable(stem, f"{model} against B, every training seed, on each layout{scored}.", tidy, display, notes)


def headline_gain(
    test: ScoredImages,
    probs: Mapping[int, Mapping[str, np.ndarray]],
    n_boot: int,
    model: str = "B+MODL+KNNS",
    ceiling: str | None = None,
) -> SeedMeanGain:
    """:func:`seed_mean_gain` on ``test``: ``probs`` is ``{seed: {model: [n, C_all]}}`` over ``test``'s images
    (all of the dataset's findings); the evaluated findings are used. ``ceiling``: the clean-label
    ceiling's name, used when every seed has it."""
    scores = {s: {m: p[:, test.eval_columns] for m, p in by_model.items()} for s, by_model in probs.items()}
    ceiling = ceiling if ceiling and all(ceiling in by_model for by_model in scores.values()) else None
    gain = seed_mean_gain(test.labels, scores, test.patient_ids, test.eval_classes, model=model, n_boot=n_boot,
                          ceiling=ceiling)
    return dataclasses.replace(gain, images=test.name)


def seeds_for_half_width(per_seed_sd: float, half_width: float = 0.5, z: float = 1.96) -> int:
    """Training seeds a seed-mean gain needs for a CI of ``half_width`` from the seeds' spread alone,
    ``ceil((z * sd / half_width)^2)``; the test patients' share of the CI comes on top."""
    return int(np.ceil((z * per_seed_sd / half_width) ** 2)) if per_seed_sd > 0 else 1


def seed_spread(
    test: ScoredImages,
    probs: Mapping[int, Mapping[str, np.ndarray]],
    best_epochs: Mapping[int, Mapping[str, int]] | None = None,
    model: str = "B+MODL+KNNS",
    reference: str = "B",
    ceiling: str | None = None,
    stem: str = "",
    scored: str = "",
) -> ReportTable:
    """Why the seed-mean gain's CI is wide: per seed, each model's mean test AUC (and, given
    ``best_epochs``, the epoch validation chose: the probabilities are that epoch's).

    The sd row shows whose AUC moves from seed to seed; ``corr`` is the correlation over seeds of
    ``reference``'s and ``model``'s AUC (paired runs share initialisation and batch order: a high
    correlation would cancel in the gain). ``probs`` and ``best_epochs`` are ``{seed: {model: ...}}``;
    ``stem`` (default ``seed_spread_<layout>``) and ``scored`` (appended to the caption) name a reading.
    """
    rows = []
    names = [reference, model] + ([ceiling] if ceiling and all(ceiling in p for p in probs.values()) else [])
    for s, by_model in probs.items():
        row = {"seed": str(s)}
        for m in names:
            row[m] = mean_auc(test.labels, by_model[m][:, test.eval_columns], test.eval_classes)
            if best_epochs is not None:
                row[f"epoch {m}"] = best_epochs[s][m]
        row["gain"] = row[model] - row[reference]
        rows.append(row)
    tidy = pd.DataFrame(rows)
    numeric = [*names, "gain"]
    sd = tidy[numeric].std(ddof=1)
    corr = float(np.corrcoef(tidy[reference], tidy[model])[0, 1]) if len(tidy) > 2 else float("nan")
    needed = seeds_for_half_width(float(sd["gain"])) if len(tidy) > 1 else None
    display = pd.concat([tidy, pd.DataFrame([{"seed": "sd over seeds", **sd.to_dict()}])], ignore_index=True)
    display = display.set_index("seed")
    for column in display:
        fmt = "{:.0f}" if column.startswith("epoch") else "{:+.2f}" if column == "gain" else "{:.2f}"
        display[column] = [
            ("" if pd.isna(v) else ("{:.2f}" if seed == "sd over seeds" else fmt).format(v))
            for seed, v in display[column].items()
        ]
    epochs = ("; 'epoch' is the epoch validation chose (mined labels; the ceiling's: clean labels)"
              if best_epochs is not None else "")
    notes = (
        f"Mean AUC (%) on the test labels of {test.name}{epochs}. "
        f"Correlation over seeds of {reference} and {model}: {corr:+.2f}.",
    )
    if needed:
        notes += (
            f"From the seeds' spread alone (sd of the gain {sd['gain']:.2f}), a CI half-width of 0.5 needs about "
            f"{needed} seeds ((1.96 sd / 0.5)^2); the test patients' share comes on top.",
        )
    what = "Per-seed AUC and chosen epoch" if best_epochs is not None else "Per-seed AUC"
    return ReportTable(stem or f"seed_spread_{test.layout}", f"{what}, {test.layout} layout{scored}.", tidy, display,
                       notes)
