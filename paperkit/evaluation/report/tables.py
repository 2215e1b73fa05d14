"""Tables 1 and 2 (per-class AUC) beside the paper's published values, and the same view of our models
against Google's radiologist relabels of NIH test images (not in the paper).

The display view shows, for each model, the paper's AUC, ours with its bootstrap CI, the difference,
and the gain over the reference with its p-value. Stems: ``table1_nih_auc``, ``table2_chexpert_auc``,
``table_google_relabel_auc``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from paperkit.data.labels import CHEXPERT_TASKS, NIH_CLASSES, NIH_SHORT
from paperkit.evaluation import paper_numbers
from paperkit.evaluation.metrics import MEAN, ComparisonResult
from paperkit.evaluation.report.compare import PAPER_ROW_ALIASES, check_classes, paper_row_for
from paperkit.evaluation.report.format import ReportTable, _ci, _number, _p, _pct

_STAT_PAPER = "paper"
_STAT_OURS = "ours [95% CI]"
_STAT_SEEDS = "ours, mean ± sd over seeds"
_STAT_DELTA = "ours - paper"
_STAT_GAIN = "gain over {ref} [95% CI]"
_STAT_P = "p (classes: DeLong, Holm; mean: bootstrap)"


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
    """Per-class AUC of every model beside ``paper``'s row for it (NaN where the paper has none)."""
    columns = [*classes, MEAN]
    auc = result.auc.set_index(["model", "class"])
    diff = result.diff.set_index(["model", "class"]) if len(result.diff) else None
    seeds = seed_stats.set_index(["model", "class"]) if seed_stats is not None else None
    ref = result.reference

    tidy_rows, display_rows = [], {}
    for model in result.models:
        paper_row = paper_row_for(model, paper, aliases)
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
    notes = _auc_notes(result, classes, tidy_rows, with_seeds=seeds is not None)
    return ReportTable(stem, caption, pd.DataFrame(tidy_rows), display, notes)


def _auc_notes(
    result: ComparisonResult, classes: Sequence[str], tidy_rows: list[dict], *, with_seeds: bool
) -> tuple[str, ...]:
    """How the AUCs were computed, which classes are n/a, and which paper row each renamed model meets."""
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
    if with_seeds:
        notes.append("CIs are those of the first seed's evaluation; 'mean ± sd' is across training seeds.")
    return tuple(notes)


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
        :func:`~paperkit.evaluation.metrics.compare_models` over exactly ``labels.NIH_CLASSES``.
    seed_stats
        Optional :func:`~paperkit.evaluation.metrics.seed_summary` over training seeds (adds a mean ± sd row).
    aliases
        Our model name -> the paper's row label, for models whose names differ.
    """
    check_classes(result, NIH_CLASSES, "Table 1")
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


#: Google's 2019 relabel findings scored by :func:`paperkit.pipeline.relabel.relabel_evaluation` (its
#: ``GOOGLE_FINDINGS``); Fracture and Airspace opacity have no NIH class.
GOOGLE_RELABEL_FINDINGS: tuple[str, ...] = ("Pneumothorax", "Nodule or mass")


def table_google_relabel(result: ComparisonResult, *, seed_stats: pd.DataFrame | None = None) -> ReportTable:
    """Per-finding AUC against Google's radiologist relabels of NIH test images (not in the paper).

    Parameters
    ----------
    result
        :func:`paperkit.pipeline.relabel.relabel_evaluation`: Google's findings on the test images it relabelled.
    seed_stats
        Optional :func:`~paperkit.evaluation.metrics.seed_summary` over training seeds (adds a mean ± sd row).
    """
    check_classes(result, GOOGLE_RELABEL_FINDINGS, "The Google relabel table")
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
    check_classes(result, CHEXPERT_TASKS, "Table 2")
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
