"""Teaching-ablation helpers that need no training: label quality and memorisation curves."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from paperkit.pipeline import ablations


def test_label_quality_scores_each_source_against_the_truth() -> None:
    rng = np.random.default_rng(0)
    truth = (rng.random((200, 2)) < 0.3).astype(np.float32)
    truth[:5, 1] = np.nan  # unknown truth is left out
    prep = SimpleNamespace(dataset=SimpleNamespace(clean_labels=truth), classes=("A", "B"))
    flipped = np.where(rng.random(truth.shape) < 0.2, 1 - np.nan_to_num(truth), np.nan_to_num(truth))
    sources = {"perfect": np.nan_to_num(truth), "noisy": flipped, "unknown-as-nan": np.full_like(truth, np.nan)}
    table = ablations.label_quality(prep, sources, np.arange(200)).set_index(["source", "class"])
    assert table.loc[("perfect", "A"), "auc"] == pytest.approx(100) and table.loc[("perfect", "B"), "brier"] == 0
    assert 60 < table.loc[("noisy", "A"), "auc"] < 95 and table.loc[("noisy", "A"), "brier"] > 0.1
    assert table.loc[("unknown-as-nan", "A"), "auc"] == pytest.approx(50)  # NaN counts as 0 everywhere


def test_memorisation_frame_keeps_monitored_runs_only() -> None:
    history = pd.DataFrame({"epoch": [1, 2], "monitor_train_mined": [0.7, 0.9], "monitor_test_clean": [0.72, 0.74],
                            "val_auc": [0.70, 0.71]})
    runs = {("nih", "B"): SimpleNamespace(history=history),
            ("nih", "B+MODL"): SimpleNamespace(history=history[["epoch", "val_auc"]])}
    frame = ablations.memorisation_frame(runs)
    assert set(frame["variant"]) == {"B"} and len(frame) == 6
    train = frame[frame["curve"] == "train vs mined"]
    assert list(train["auc"]) == pytest.approx([70.0, 90.0])
    assert ablations.memorisation_frame({}).empty
