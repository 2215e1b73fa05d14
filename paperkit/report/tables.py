"""The paper's tables, reproduced beside its published numbers, and the ablation tables.

Every table is built from a :class:`paperkit.evaluate.ComparisonResult` (ours) and
:mod:`paperkit.paper_numbers` (the paper's), so no number is typed in by hand. A table has two
views: ``tidy`` (one row per model and class, numeric, written as CSV for scripts) and ``display``
(what a reader compares: for each model the paper's AUC, ours with its bootstrap CI, the
difference, and the gain over B with its p-value), written as Markdown and LaTeX.
File stems say what a file holds: ``table1_nih_auc``, ``table2_chexpert_auc``,
``table3_ensembles``, ``ablation_<name>``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from paperkit import paper_numbers
from paperkit.data.labels import CHEXPERT_TASKS, NIH_CLASSES, NIH_SHORT
from paperkit.evaluate import MEAN, ComparisonResult
from paperkit.report.format import ReportTable, _ci, _number, _p, _pct

#: Our run names -> the paper's row they are compared with (its own methods share our names).
#: The paper's U-Ones/U-Zeros rows are 30-checkpoint ensembles and its LSR rows add conditional
#: training, so those comparisons are approximate; the ``paper_row`` column says which row was used.
PAPER_ROW_ALIASES: dict[str, str] = {
    "DenseNet-121 (B)": "B",
    "U-Ones": "Irvin et al. 2019 U-Ones*",
    "U-Zeros": "Irvin et al. 2019 U-Zeros*",
    "LSR-Ones": "Pham et al. 2019 U-Ones+CT+LSR",
    "U-Ones+LSR": "Pham et al. 2019 U-Ones+CT+LSR",
    "LSR-Zeros": "Pham et al. 2019 U-Zeros+CT+LSR",
    "U-Zeros+LSR": "Pham et al. 2019 U-Zeros+CT+LSR",
    "Ensemble1": "Ensemble 1",
    "Ensemble2": "Ensemble 2",
}

_STAT_PAPER = "paper"
_STAT_OURS = "ours [95% CI]"
_STAT_SEEDS = "ours, mean ± sd over seeds"
_STAT_DELTA = "ours - paper"
_STAT_GAIN = "gain over {ref} [95% CI]"
_STAT_P = "p (classes: DeLong, Holm; mean: bootstrap)"


def _paper_row(model: str, paper: pd.DataFrame, aliases: Mapping[str, str]) -> str | None:
    row = aliases.get(model, model)
    return row if row in paper.index else None


def _check_classes(result: ComparisonResult, expected: Sequence[str], table: str) -> None:
    if set(result.classes) != set(expected):
        raise ValueError(
            f"{table} compares means over {list(expected)}, but the result was computed over "
            f"{list(result.classes)}; call compare_models on exactly those columns"
        )


# ------------------------------------------------------------------------------------------------
# Tables 1 and 2: per-class AUC
# ------------------------------------------------------------------------------------------------
def _auc_table(
    result: ComparisonResult,
    paper: pd.DataFrame,
    classes: Sequence[str],
    column_names: Sequence[str],
    stem: str,
    caption: str,
    seed_stats: pd.DataFrame | None,
    aliases: Mapping[str, str],
) -> ReportTable:
    columns = [*classes, MEAN]
    auc = result.auc.set_index(["model", "class"])
    diff = result.diff.set_index(["model", "class"]) if len(result.diff) else None
    seeds = seed_stats.set_index(["model", "class"]) if seed_stats is not None else None
    ref = result.reference

    tidy_rows, display_rows = [], {}
    for model in result.models:
        paper_row = _paper_row(model, paper, aliases)
        cells: dict[str, list[str]] = {}
        for cls in columns:
            ours = auc.loc[(model, cls)]
            p_val = paper.loc[paper_row, cls] if paper_row is not None else np.nan
            row = {
                "model": model,
                "paper_row": paper_row,
                "class": cls,
                "paper": p_val,
                "ours": 100 * ours["auc"],
                "ci_low": 100 * ours["ci_low"],
                "ci_high": 100 * ours["ci_high"],
                "ours_minus_paper": 100 * ours["auc"] - p_val,
                "n_pos": ours["n_pos"],
                "n_neg": ours["n_neg"],
            }
            has_diff = diff is not None and (model, cls) in diff.index
            d = diff.loc[(model, cls)] if has_diff else None
            row.update(
                gain_over_ref=100 * d["diff"] if has_diff else np.nan,
                gain_ci_low=100 * d["ci_low"] if has_diff else np.nan,
                gain_ci_high=100 * d["ci_high"] if has_diff else np.nan,
                p_value=(d["p_boot"] if cls == MEAN else d["p_holm"]) if has_diff else np.nan,
            )
            if seeds is not None:
                s = seeds.loc[(model, cls)]
                row.update(seed_mean=100 * s["auc_mean"], seed_sd=100 * s["auc_sd"], n_seeds=s["n_seeds"])
            tidy_rows.append(row)

            cells.setdefault(_STAT_PAPER, []).append(_number(p_val))
            cells.setdefault(_STAT_OURS, []).append(_pct(ours["auc"]) + _ci(ours["ci_low"], ours["ci_high"]))
            if seeds is not None:
                cells.setdefault(_STAT_SEEDS, []).append(
                    f"{_pct(row['seed_mean'] / 100)} ± {_pct(row['seed_sd'] / 100)} (n={int(row['n_seeds'])})"
                )
            cells.setdefault(_STAT_DELTA, []).append(
                "-" if pd.isna(row["ours_minus_paper"]) else f"{row['ours_minus_paper']:+.2f}"
            )
            if has_diff:
                cells.setdefault(_STAT_GAIN.format(ref=ref), []).append(
                    _pct(d["diff"], signed=True) + _ci(d["ci_low"], d["ci_high"], signed=True)
                )
                cells.setdefault(_STAT_P, []).append(_p(row["p_value"]))
        for stat, values in cells.items():
            display_rows[(model, stat)] = values

    display = pd.DataFrame.from_dict(display_rows, orient="index", columns=[*column_names, MEAN])
    display.index = pd.MultiIndex.from_tuples(display.index, names=["method", "value"])
    notes = [
        f"AUC in %; 95% CIs from {result.n_boot} patient-level paired bootstrap resamples "
        f"(seed {result.seed}; {result.n_images} images, {result.n_patients} patients).",
        f"Mean over {len(classes) - len(result.na_classes)} of {len(classes)} classes.",
    ]
    if result.na_classes:
        notes.append(f"n/a (no positive or no negative test label): {', '.join(result.na_classes)}.")
    named = {r["model"]: r["paper_row"] for r in tidy_rows if r["paper_row"] not in (None, r["model"])}
    if named:
        notes.append("Compared with paper rows: " + "; ".join(f"{m} vs {p}" for m, p in named.items()) + ".")
    if seeds is not None:
        notes.append("CIs are those of the first seed's evaluation; 'mean ± sd' is across training seeds.")
    return ReportTable(stem, caption, pd.DataFrame(tidy_rows), display, tuple(notes))


def table1_nih(
    result: ComparisonResult,
    *,
    seed_stats: pd.DataFrame | None = None,
    aliases: Mapping[str, str] = PAPER_ROW_ALIASES,
) -> ReportTable:
    """Table 1: per-finding AUC on NIH-style data (14 findings) beside the paper's values.

    Parameters
    ----------
    result
        :func:`~paperkit.evaluate.compare_models` over exactly ``labels.NIH_CLASSES``.
    seed_stats
        Optional :func:`~paperkit.evaluate.seed_summary` over training seeds (adds a mean ± sd row).
    aliases
        Our model name -> the paper's row label, for models whose names differ.
    """
    _check_classes(result, NIH_CLASSES, "Table 1")
    return _auc_table(
        result,
        paper_numbers.TABLE1_NIH,
        NIH_CLASSES,
        NIH_SHORT,
        "table1_nih_auc",
        "Identification AUC (%) on NIH ChestX-ray14-style data, paper (Table 1) vs ours.",
        seed_stats,
        aliases,
    )


#: Google's 2019 relabel findings scored by :func:`paperkit.relabel.relabel_evaluation` (its
#: ``GOOGLE_FINDINGS``); Fracture and Airspace opacity have no NIH class.
GOOGLE_RELABEL_FINDINGS: tuple[str, ...] = ("Pneumothorax", "Nodule or mass")


def table_google_relabel(result: ComparisonResult, *, seed_stats: pd.DataFrame | None = None) -> ReportTable:
    """Per-finding AUC against Google's radiologist relabels of NIH test images (not in the paper).

    Parameters
    ----------
    result
        :func:`paperkit.relabel.relabel_evaluation`: Google's findings on the test images it relabelled.
    seed_stats
        Optional :func:`~paperkit.evaluate.seed_summary` over training seeds (adds a mean ± sd row).
    """
    _check_classes(result, GOOGLE_RELABEL_FINDINGS, "The Google relabel table")
    classes = list(result.classes)
    no_paper = pd.DataFrame(columns=[*classes, MEAN], dtype=float)  # the paper has no such table
    table = _auc_table(result, no_paper, classes, classes, "table_google_relabel_auc", "", seed_stats, {})
    display = table.display.drop(index=[_STAT_PAPER, _STAT_DELTA], level="value")
    tidy = table.tidy.drop(columns=["paper_row", "paper", "ours_minus_paper"])
    caption = (f"Identification AUC (%) against Google's radiologist labels for {result.n_images} NIH test images "
               f"({result.n_patients} patients) of the findings {', '.join(classes)}; not in the paper, whose "
               "Table 1 scores all 14 findings against NIH's mined labels.")
    notes = (
        "Labels: Google's 2019 adjudicated radiologist relabels (google2019_nih-chest-xray-labels.csv), only on "
        "the test images Google relabelled; Table 1 is unaffected by them.",
        "Google grades 'Nodule or mass' as one finding: a model's score is the larger of its Nodule and Mass "
        "probabilities. Google's Fracture and Airspace opacity have no NIH class and are not scored.",
        *table.notes,
    )
    return ReportTable(table.stem, caption, tidy, display, notes)


def table2_chexpert(
    result: ComparisonResult,
    *,
    seed_stats: pd.DataFrame | None = None,
    aliases: Mapping[str, str] = PAPER_ROW_ALIASES,
) -> ReportTable:
    """Table 2: per-task AUC on CheXpert-style data (5 tasks) beside the paper's values.

    ``result`` must be computed over exactly ``labels.CHEXPERT_TASKS`` (the mean is over those five).
    Other parameters as :func:`table1_nih`.
    """
    _check_classes(result, CHEXPERT_TASKS, "Table 2")
    table = _auc_table(
        result,
        paper_numbers.TABLE2_CHEXPERT,
        CHEXPERT_TASKS,
        CHEXPERT_TASKS,
        "table2_chexpert_auc",
        "Identification AUC (%) on CheXpert-style data, paper (Table 2) vs ours.",
        seed_stats,
        aliases,
    )
    used = set(table.tidy["paper_row"].dropna())
    extra = tuple(f"Paper row '{r}': {n}." for r, n in paper_numbers.TABLE2_NOTES.items() if r in used)
    return ReportTable(table.stem, table.caption, table.tidy, table.display, table.notes + extra)


# ------------------------------------------------------------------------------------------------
# Table 3: single model vs ensembles, with their cost
# ------------------------------------------------------------------------------------------------
def table3_ensembles(
    result: ComparisonResult,
    *,
    params: Mapping[str, int],
    throughput: Mapping[str, float] | None = None,
    aliases: Mapping[str, str] = PAPER_ROW_ALIASES,
) -> ReportTable:
    """Table 3: mean AUC and parameters of B, B+MODL+KNNS and the ensembles, plus measured img/s.

    Parameters
    ----------
    result
        :func:`~paperkit.evaluate.compare_models` over ``labels.CHEXPERT_TASKS`` whose models include
        the ensembles (e.g. ``"Ensemble 1"``: DenseNet-121/169/201; ``"Ensemble 2"``: all six references).
    params
        Parameter count per model (an ensemble: summed over its members), e.g. from
        :func:`paperkit.models.count_parameters`.
    throughput
        Measured inference images/s per model (:func:`paperkit.evaluate.inference_throughput`).
    """
    _check_classes(result, CHEXPERT_TASKS, "Table 3")
    paper = paper_numbers.TABLE3_ENSEMBLES
    auc = result.auc[result.auc["class"] == MEAN].set_index("model")
    diff = result.diff[result.diff["class"] == MEAN].set_index("model") if len(result.diff) else pd.DataFrame()
    tidy_rows, display_rows = [], []
    for model in result.models:
        paper_row = _paper_row(model, paper, aliases)
        ours = auc.loc[model]
        p_auc = paper.loc[paper_row, "mean_auc"] if paper_row else np.nan
        p_params = paper.loc[paper_row, "params_millions"] if paper_row else np.nan
        n_params = params.get(model)
        d = diff.loc[model] if model in diff.index else None
        row = {
            "model": model,
            "paper_row": paper_row,
            "members": paper_numbers.TABLE3_MEMBERS.get(paper_row, ""),
            "paper_mean_auc": p_auc,
            "ours_mean_auc": 100 * ours["auc"],
            "ci_low": 100 * ours["ci_low"],
            "ci_high": 100 * ours["ci_high"],
            "ours_minus_paper": 100 * ours["auc"] - p_auc,
            "gain_over_ref": 100 * d["diff"] if d is not None else np.nan,
            "gain_ci_low": 100 * d["ci_low"] if d is not None else np.nan,
            "gain_ci_high": 100 * d["ci_high"] if d is not None else np.nan,
            "p_boot": d["p_boot"] if d is not None else np.nan,
            "paper_params_millions": p_params,
            "ours_params_millions": n_params / 1e6 if n_params is not None else np.nan,
            "images_per_s": (throughput or {}).get(model, np.nan),
        }
        tidy_rows.append(row)
        display_rows.append(
            {
                "method": model,
                "mean AUC, paper": _number(p_auc),
                "mean AUC, ours [95% CI]": _pct(ours["auc"]) + _ci(ours["ci_low"], ours["ci_high"]),
                "ours - paper": "-" if pd.isna(row["ours_minus_paper"]) else f"{row['ours_minus_paper']:+.2f}",
                f"gain over {result.reference} [95% CI]": (
                    _pct(d["diff"], True) + _ci(d["ci_low"], d["ci_high"], True) if d is not None else "-"
                ),
                "params (M), paper": _number(p_params),
                "params (M), ours": "-" if pd.isna(row["ours_params_millions"]) else f"{row['ours_params_millions']:.2f}",
                "img/s, ours": "-" if pd.isna(row["images_per_s"]) else f"{row['images_per_s']:.1f}",
            }
        )
    notes = (
        f"Mean AUC (%) over {', '.join(CHEXPERT_TASKS)}; CIs from {result.n_boot} patient-level bootstrap resamples.",
        f"The paper's B here ({paper_numbers.TABLE3_ENSEMBLES.loc['B', 'mean_auc']:.2f}) differs from its own Table 2 B "
        f"mean ({paper_numbers.TABLE2_CHEXPERT.loc['B', MEAN]:.2f}); both are printed as published.",
        "img/s: measured inference throughput on this run's hardware (an ensemble runs member after member).",
    )
    display = pd.DataFrame(display_rows).set_index("method")
    return ReportTable(
        "table3_ensembles",
        "Single target model vs model ensembles on CheXpert-style data, paper (Table 3) vs ours.",
        pd.DataFrame(tidy_rows),
        display,
        notes,
    )


# ------------------------------------------------------------------------------------------------
# Ablations (K sweep, lambda sweep, noise sweep, teaching ablations)
# ------------------------------------------------------------------------------------------------
def ablation_table(
    result: ComparisonResult,
    name: str,
    caption: str,
    *,
    setting: Mapping[str, object] | None = None,
    paper_gain: Mapping[str, float] | None = None,
    columns: Mapping[str, Mapping[str, float]] | None = None,
) -> ReportTable:
    """Mean AUC and mean gain over the reference for each variant of one ablation.

    Parameters
    ----------
    result
        :func:`~paperkit.evaluate.compare_models` of the reference and every variant.
    name
        File stem suffix: the table is written as ``ablation_<name>.*``.
    caption
        What was varied.
    setting
        Optional model -> value of the varied setting (e.g. K), shown as its own column.
    paper_gain
        Optional model -> the paper's mean gain (%) for the same variant.
    columns
        Optional extra numeric columns, column name -> model -> value (e.g. validation AUC or
        training seconds); a model without a value shows "-".
    """
    auc = result.auc[result.auc["class"] == MEAN].set_index("model")
    diff = result.diff[result.diff["class"] == MEAN].set_index("model") if len(result.diff) else pd.DataFrame()
    tidy_rows = []
    for model in result.models:
        d = diff.loc[model] if model in diff.index else None
        tidy_rows.append(
            {
                "model": model,
                "setting": (setting or {}).get(model),
                "ours_mean_auc": 100 * auc.loc[model, "auc"],
                "ci_low": 100 * auc.loc[model, "ci_low"],
                "ci_high": 100 * auc.loc[model, "ci_high"],
                "gain_over_ref": 100 * d["diff"] if d is not None else np.nan,
                "gain_ci_low": 100 * d["ci_low"] if d is not None else np.nan,
                "gain_ci_high": 100 * d["ci_high"] if d is not None else np.nan,
                "p_boot": d["p_boot"] if d is not None else np.nan,
                "paper_gain": (paper_gain or {}).get(model, np.nan),
            }
        )
    tidy = pd.DataFrame(tidy_rows)
    display = pd.DataFrame(
        {
            "method": tidy["model"],
            "setting": tidy["setting"].map(lambda v: "-" if pd.isna(v) else str(v)),
            "mean AUC [95% CI]": [_pct(a / 100) + _ci(lo / 100, hi / 100) for a, lo, hi in tidy[["ours_mean_auc", "ci_low", "ci_high"]].to_numpy()],
            f"gain over {result.reference} [95% CI]": [
                "-" if pd.isna(g) else _pct(g / 100, True) + _ci(lo / 100, hi / 100, True)
                for g, lo, hi in tidy[["gain_over_ref", "gain_ci_low", "gain_ci_high"]].to_numpy()
            ],
            "p (bootstrap)": tidy["p_boot"].map(_p),
            "paper gain": tidy["paper_gain"].map(_number),
        }
    ).set_index("method")
    if setting is None:
        display = display.drop(columns="setting")
    if paper_gain is None:
        display = display.drop(columns="paper gain")
    for column, values in (columns or {}).items():
        tidy[column] = tidy["model"].map(values).astype(float)
        display[column] = [_number(v) for v in tidy[column]]
    notes = (f"Mean AUC (%) over {len(result.classes) - len(result.na_classes)} classes; {result.n_boot} patient-level bootstrap resamples.",)
    return ReportTable(f"ablation_{name}", caption, tidy, display, notes)


def gain_table(
    results: Mapping[object, ComparisonResult],
    model: str,
    name: str,
    caption: str,
    *,
    row_label: str = "seed",
    summary_row: bool = False,
) -> ReportTable:
    """Mean AUC of the reference and of ``model``, and the paired gain with its CI, one row per result.

    Parameters
    ----------
    results
        Row key (a seed, a noise level) -> a comparison holding ``model`` and its reference.
    summary_row
        Add a "mean ± sd" row across the rows (rows are training seeds of the same setting).
    """
    tidy_rows = []
    for key, result in results.items():
        auc = result.auc[result.auc["class"] == MEAN].set_index("model")["auc"]
        d = result.diff[(result.diff["class"] == MEAN) & (result.diff["model"] == model)].iloc[0]
        tidy_rows.append({row_label: key, "reference": result.reference, "model": model,
                          "reference_mean_auc": 100 * auc[result.reference], "model_mean_auc": 100 * auc[model],
                          "gain": 100 * d["diff"], "gain_ci_low": 100 * d["ci_low"],
                          "gain_ci_high": 100 * d["ci_high"], "p_boot": d["p_boot"]})
    tidy = pd.DataFrame(tidy_rows)
    reference = tidy["reference"].iloc[0]
    display = pd.DataFrame({
        row_label: tidy[row_label].astype(str),
        reference: tidy["reference_mean_auc"].map(_number),
        model: tidy["model_mean_auc"].map(_number),
        "gain [95% CI]": [f"{g:+.2f} [{lo:+.2f}, {hi:+.2f}]" for g, lo, hi in
                          tidy[["gain", "gain_ci_low", "gain_ci_high"]].to_numpy()],
        "p (bootstrap)": tidy["p_boot"].map(_p),
    })
    if summary_row and len(tidy) > 1:
        def mean_sd(column: str, signed: bool = False) -> str:
            return f"{tidy[column].mean():{'+' if signed else ''}.2f} ± {tidy[column].std(ddof=1):.2f}"

        display.loc[len(display)] = [f"mean ± sd ({len(tidy)})", mean_sd("reference_mean_auc"),
                                     mean_sd("model_mean_auc"), mean_sd("gain", True), ""]
    n_boot = next(iter(results.values())).n_boot
    notes = (f"Mean AUC (%); gain = {model} − {reference}, paired on the same test images, "
             f"{n_boot} patient-level bootstrap resamples.",)
    return ReportTable(name, caption, tidy, display.set_index(row_label), notes)


def k_sweep_table(result: ComparisonResult, k_models: Mapping[int, str]) -> ReportTable:
    """The K sweep of Figure 4 as a table, with the paper's gains where it states them.

    Parameters
    ----------
    k_models
        K -> model name in ``result`` (each a B+KNNS run with that K).
    """
    paper = paper_numbers.FIG4_K_GAINS["gain"]
    return ablation_table(
        result,
        "k_sweep",
        "Mean-AUC gain of B+KNNS over B against the number of neighbours K (paper: Figure 4).",
        setting={m: f"K={k}" for k, m in k_models.items()},
        paper_gain={m: paper.get(k, np.nan) for k, m in k_models.items()},
    )


def localisation_table(
    scores_a: pd.DataFrame,
    scores_b: pd.DataFrame,
    *,
    names: tuple[str, str] = ("B", "B+MODL+KNNS"),
    truth: str = "masks",
) -> ReportTable:
    """Does the target localise better than B? Per finding, paired, for every score present.

    Parameters
    ----------
    scores_a, scores_b
        Per-case scores of the two models on the same cases (:func:`paperkit.heatmaps.score_masks`:
        ``pointing_hit``, ``iou``; :func:`paperkit.heatmaps.score_boxes`: ``iobb``).
    names
        Display names of the two models.
    truth
        What the scores were measured against (``masks`` or ``boxes``); part of the file stem.
    """
    from paperkit.heatmaps import compare_localisation  # torch-backed; only needed for this table

    metrics = [m for m in ("pointing_hit", "iou", "iobb") if m in scores_a.columns]
    parts = [compare_localisation(scores_a, scores_b, m).assign(metric=m) for m in metrics]
    tidy = pd.concat(parts, ignore_index=True).rename(columns={"a": names[0], "b": names[1]})
    display = tidy.assign(
        **{
            names[0]: tidy[names[0]].map("{:.3f}".format),
            names[1]: tidy[names[1]].map("{:.3f}".format),
            "diff": tidy["diff"].map("{:+.3f}".format),
            "p": tidy["p"].map(_p),
        }
    ).set_index(["metric", "finding"])
    notes = (
        "pointing_hit: share of cases whose heatmap maximum lies in the lesion (exact McNemar test); "
        "iou / iobb: mean score (Wilcoxon signed-rank test); paired over the same positive cases.",
    )
    return ReportTable(
        f"localisation_{truth}",
        f"Localisation of {names[1]} vs {names[0]} against {truth} (the paper shows this only qualitatively).",
        tidy,
        display,
        notes,
    )
