"""Ablation tables: mean AUC and mean gain over the reference for each variant of one ablation (the K
sweep of Figure 4 among them), and the paired gain of one model over its reference across seeds or
noise levels. Stems: ``ablation_<name>`` and the name a gain table is given."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from paperkit.evaluation import paper_numbers
from paperkit.evaluation.metrics import MEAN, ComparisonResult
from paperkit.evaluation.report.compare import mean_gain_columns, mean_rows
from paperkit.evaluation.report.format import ReportTable, _ci, _number, _p, _pct


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
        :func:`~paperkit.evaluation.metrics.compare_models` of the reference and every variant.
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
    auc, diff = mean_rows(result)
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
                **mean_gain_columns(d),
                "paper_gain": (paper_gain or {}).get(model, np.nan),
            }
        )
    tidy = pd.DataFrame(tidy_rows)
    display = pd.DataFrame(
        {
            "method": tidy["model"],
            "setting": tidy["setting"].map(lambda v: "-" if pd.isna(v) else str(v)),
            "mean AUC [95% CI]": [
                _pct(a / 100) + _ci(lo / 100, hi / 100)
                for a, lo, hi in tidy[["ours_mean_auc", "ci_low", "ci_high"]].to_numpy()
            ],
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
    notes = (
        f"Mean AUC (%) over {len(result.classes) - len(result.na_classes)} classes; "
        f"{result.n_boot} patient-level bootstrap resamples.",
    )
    return ReportTable(f"ablation_{name}", caption, tidy, display, notes)


def gain_table(
    results: Mapping[object, ComparisonResult],
    model: str,
    name: str,
    caption: str,
    *,
    row_label: str = "seed",
    summary_row: bool = False,
    difference: str = "gain",
) -> ReportTable:
    """Mean AUC of the reference and of ``model``, and the paired gain with its CI, one row per result.

    Parameters
    ----------
    results
        Row key (a seed, a noise level) -> a comparison holding ``model`` and its reference.
    summary_row
        Add a "mean ± sd" row across the rows (rows are training seeds of the same setting).
    difference
        What ``model`` − reference is called in the display (e.g. "noise cost").
    """
    tidy_rows = []
    for key, result in results.items():
        auc = result.auc[result.auc["class"] == MEAN].set_index("model")["auc"]
        d = result.diff[(result.diff["class"] == MEAN) & (result.diff["model"] == model)].iloc[0]
        tidy_rows.append(
            {
                row_label: key,
                "reference": result.reference,
                "model": model,
                "reference_mean_auc": 100 * auc[result.reference],
                "model_mean_auc": 100 * auc[model],
                "gain": 100 * d["diff"],
                "gain_ci_low": 100 * d["ci_low"],
                "gain_ci_high": 100 * d["ci_high"],
                "p_boot": d["p_boot"],
            }
        )
    tidy = pd.DataFrame(tidy_rows)
    reference = tidy["reference"].iloc[0]
    display = pd.DataFrame(
        {
            row_label: tidy[row_label].astype(str),
            reference: tidy["reference_mean_auc"].map(_number),
            model: tidy["model_mean_auc"].map(_number),
            f"{difference} [95% CI]": [
                f"{g:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                for g, lo, hi in tidy[["gain", "gain_ci_low", "gain_ci_high"]].to_numpy()
            ],
            "p (bootstrap)": tidy["p_boot"].map(_p),
        }
    )
    if summary_row and len(tidy) > 1:

        def mean_sd(column: str, signed: bool = False) -> str:
            return f"{tidy[column].mean():{'+' if signed else ''}.2f} ± {tidy[column].std(ddof=1):.2f}"

        display.loc[len(display)] = [
            f"mean ± sd ({len(tidy)})",
            mean_sd("reference_mean_auc"),
            mean_sd("model_mean_auc"),
            mean_sd("gain", True),
            "",
        ]
    n_boot = next(iter(results.values())).n_boot
    notes = (
        f"Mean AUC (%); {difference} = {model} − {reference}, paired on the same test images, "
        f"{n_boot} patient-level bootstrap resamples.",
    )
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
