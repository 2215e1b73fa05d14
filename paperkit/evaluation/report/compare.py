"""What the tables take from a :class:`paperkit.evaluation.metrics.ComparisonResult`: its mean-over-classes rows,
the gain over the reference, and the paper's row each of our models is compared with."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from paperkit.evaluation.metrics import MEAN, ComparisonResult

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


def paper_row_for(model: str, paper: pd.DataFrame, aliases: Mapping[str, str]) -> str | None:
    """The paper's row ``model`` is compared with (its alias, else its own name), or ``None`` if absent."""
    row = aliases.get(model, model)
    return row if row in paper.index else None


def check_classes(result: ComparisonResult, expected: Sequence[str], table: str) -> None:
    """Raise ``ValueError`` unless ``result`` was computed over exactly the classes ``table`` averages."""
    if set(result.classes) != set(expected):
        raise ValueError(
            f"{table} compares means over {list(expected)}, but the result was computed over "
            f"{list(result.classes)}; call compare_models on exactly those columns"
        )


def mean_rows(result: ComparisonResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The mean-over-classes AUC rows and gain rows of ``result``, both indexed by model.

    The gain frame is empty when the comparison has no reference.
    """
    auc = result.auc[result.auc["class"] == MEAN].set_index("model")
    diff = result.diff[result.diff["class"] == MEAN].set_index("model") if len(result.diff) else pd.DataFrame()
    return auc, diff


def mean_gain_columns(gain: pd.Series | None) -> dict[str, float]:
    """A model's mean gain over the reference in %, its CI and bootstrap p; NaN without a gain row."""
    return {
        "gain_over_ref": 100 * gain["diff"] if gain is not None else np.nan,
        "gain_ci_low": 100 * gain["ci_low"] if gain is not None else np.nan,
        "gain_ci_high": 100 * gain["ci_high"] if gain is not None else np.nan,
        "p_boot": gain["p_boot"] if gain is not None else np.nan,
    }
