"""Localisation: are the target's heatmaps closer to the lesions than B's? Paired per finding, for every
score present. Stem: ``localisation_<truth>``."""
from __future__ import annotations

import pandas as pd

from paperkit.evaluation.report.format import ReportTable, _p


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
        Per-case scores of the two models on the same cases (:func:`paperkit.evaluation.heatmaps.score_masks`:
        ``pointing_hit``, ``iou``; :func:`paperkit.evaluation.heatmaps.score_boxes`: ``iobb``).
    names
        Display names of the two models.
    truth
        What the scores were measured against (``masks`` or ``boxes``); part of the file stem.
    """
    from paperkit.evaluation.heatmaps import compare_localisation  # torch-backed; only needed for this table

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
