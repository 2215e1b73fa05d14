"""Table 3: the single target model against model ensembles, mean AUC beside the paper's, with the cost of
each (parameters, measured inference throughput). Stem: ``table3_ensembles``."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from paperkit.data.labels import CHEXPERT_TASKS
from paperkit.evaluation import paper_numbers
from paperkit.evaluation.metrics import MEAN, ComparisonResult
from paperkit.evaluation.report.compare import (
    PAPER_ROW_ALIASES,
    check_classes,
    mean_gain_columns,
    mean_rows,
    paper_row_for,
)
from paperkit.evaluation.report.format import ReportTable, _ci, _number, _pct


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
        :func:`~paperkit.evaluation.metrics.compare_models` over ``labels.CHEXPERT_TASKS`` whose models include
        the ensembles (e.g. ``"Ensemble 1"``: DenseNet-121/169/201; ``"Ensemble 2"``: all six references).
    params
        Parameter count per model (an ensemble: summed over its members), e.g. from
        :func:`paperkit.models.count_parameters`.
    throughput
        Measured inference images/s per model (:func:`paperkit.evaluation.metrics.inference_throughput`).
    """
    check_classes(result, CHEXPERT_TASKS, "Table 3")
    paper = paper_numbers.TABLE3_ENSEMBLES
    auc, diff = mean_rows(result)
    tidy_rows, display_rows = [], []
    for model in result.models:
        paper_row = paper_row_for(model, paper, aliases)
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
            **mean_gain_columns(d),
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
                "params (M), ours": "-"
                if pd.isna(row["ours_params_millions"])
                else f"{row['ours_params_millions']:.2f}",
                "img/s, ours": "-" if pd.isna(row["images_per_s"]) else f"{row['images_per_s']:.1f}",
            }
        )
    notes = (
        f"Mean AUC (%) over {', '.join(CHEXPERT_TASKS)}; CIs from {result.n_boot} patient-level bootstrap resamples.",
        f"The paper's B here ({paper_numbers.TABLE3_ENSEMBLES.loc['B', 'mean_auc']:.2f}) differs from its own "
        f"Table 2 B mean ({paper_numbers.TABLE2_CHEXPERT.loc['B', MEAN]:.2f}); both are printed as published.",
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
