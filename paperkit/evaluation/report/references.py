"""The references of notebook 02 on the test set: each one's AUC and size, and their ensemble's headroom.

MODL distils the references' average into one network, so it can only help where that average
beats the target's architecture trained alone; :func:`ensemble_headroom` measures by how much.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np
import pandas as pd

from paperkit.evaluation.metrics import MEAN, ComparisonResult

if TYPE_CHECKING:
    from paperkit.training.loop import TrainResult


def reference_auc_table(result: ComparisonResult, runs: Mapping[str, TrainResult]) -> pd.DataFrame:
    """Per-class test AUC of every compared model, with its parameter count and best epoch.

    Parameters
    ----------
    result
        Comparison of the references and of models built from them (an ensemble).
    runs
        Reference name -> its training run.

    Returns
    -------
    pandas.DataFrame
        :meth:`ComparisonResult.wide` of the AUCs plus ``params`` (a model that is not a reference
        counts every reference's) and ``best_epoch`` (``None`` for a model that is not a reference).
    """
    # Imported here so that paperkit.evaluation.report stays importable without torch.
    from paperkit.models import count_parameters

    table = result.wide("auc")
    every_reference = sum(count_parameters(r.model) for r in runs.values())
    return table.assign(params=[count_parameters(runs[m].model) if m in runs else every_reference for m in table.index],
                        best_epoch=[runs[m].best_epoch if m in runs else None for m in table.index])


def ensemble_headroom(results: Mapping[str, ComparisonResult], ensemble: str = "Ensemble") -> pd.DataFrame:
    """How much the ensemble's mean test AUC beats its single members, one row per layout.

    Parameters
    ----------
    results
        Layout -> a comparison of the single references and ``ensemble``, with the target's
        architecture as its ``reference``.
    ensemble
        Name of the ensemble among the compared models; every other model is a single reference.

    Returns
    -------
    pandas.DataFrame
        Indexed by layout, mean AUCs in %: ``ensemble``, ``mean_single``, ``best_single`` (and
        ``best_single_arch``), ``target_arch_single`` (of ``target_arch``), ``over_target_arch``
        with its paired bootstrap CI, ``over_mean_single`` and ``over_best_single``.
    """
    rows = []
    for layout, result in results.items():
        single = {m: 100 * result.mean_auc(m) for m in result.models if m != ensemble}
        gain = result.diff[(result.diff["model"] == ensemble) & (result.diff["class"] == MEAN)].iloc[0]
        rows.append({
            "layout": layout, "ensemble": 100 * result.mean_auc(ensemble),
            "mean_single": np.mean(list(single.values())), "best_single": max(single.values()),
            "best_single_arch": max(single, key=single.get), "target_arch": result.reference,
            "target_arch_single": single[result.reference], "over_target_arch": 100 * gain["diff"],
            "over_target_arch_ci_low": 100 * gain["ci_low"], "over_target_arch_ci_high": 100 * gain["ci_high"],
        })
    headroom = pd.DataFrame(rows).set_index("layout")
    headroom["over_mean_single"] = headroom["ensemble"] - headroom["mean_single"]
    headroom["over_best_single"] = headroom["ensemble"] - headroom["best_single"]
    return headroom
