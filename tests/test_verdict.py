"""The verdict's seed-mean gain: point estimate, a CI that widens with seed spread, plain words."""
from __future__ import annotations

import numpy as np
import pytest

from paperkit.evaluation.verdict import SeedMeanGain, in_words, paper_gain, seed_mean_gain, verdict_table

N, C = 400, 3


def scores(rng: np.random.Generator, y: np.ndarray, strength: float) -> np.ndarray:
    return y * strength + rng.normal(size=y.shape)


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    y = (rng.random((N, C)) < 0.3).astype(float)
    patients = np.repeat(np.arange(N // 2), 2)
    return rng, y, patients


def test_point_is_mean_of_per_seed_gains(data) -> None:
    rng, y, patients = data
    by_seed = {s: {"B": scores(rng, y, 1.0), "B+MODL+KNNS": scores(rng, y, 1.5)} for s in range(3)}
    g = seed_mean_gain(y, by_seed, patients, ["a", "b", "c"], n_boot=200)
    assert g.gain == pytest.approx(np.mean(list(g.per_seed.values())))
    assert g.gain > 0 and g.ci_low > 0  # a clearly better model
    assert g.ci_low <= g.gain <= g.ci_high


def test_seed_spread_widens_the_ci(data) -> None:
    """Same mean gain, but seeds that disagree: the two-level bootstrap must show it."""
    rng, y, patients = data
    base = scores(rng, y, 1.0)
    steady = {s: {"B": base, "B+MODL+KNNS": base + 0.2 * y} for s in range(4)}
    spread = {s: {"B": base, "B+MODL+KNNS": base + (0.2 + (0.6 if s % 2 else -0.6)) * y} for s in range(4)}
    narrow = seed_mean_gain(y, steady, patients, ["a", "b", "c"], n_boot=300)
    wide = seed_mean_gain(y, spread, patients, ["a", "b", "c"], n_boot=300)
    assert wide.half_width > 2 * narrow.half_width


def test_identical_models_give_zero(data) -> None:
    rng, y, patients = data
    s = scores(rng, y, 1.0)
    g = seed_mean_gain(y, {0: {"B": s, "B+MODL+KNNS": s}}, patients, ["a", "b", "c"], n_boot=100)
    assert g.gain == 0 and g.ci_low == 0 and g.ci_high == 0


def test_paper_gains() -> None:
    assert paper_gain("nih") == pytest.approx(87.35 - 84.30)
    assert paper_gain("chexpert") == pytest.approx(92.63 - 89.37)


@pytest.mark.parametrize("lo,hi,expect", [
    (0.2, 0.8, "beats B"), (-0.5, 0.4, "no difference"), (-0.9, -0.1, "worse than B"), (2.0, 4.0, "inside the CI")])
def test_in_words(lo: float, hi: float, expect: str) -> None:
    g = SeedMeanGain((lo + hi) / 2, lo, hi, {0: (lo + hi) / 2}, 80.0, 80.5, 100)
    assert expect in in_words(g, 3.05)


def test_verdict_table_lists_layouts() -> None:
    g = SeedMeanGain(0.4, 0.1, 0.7, {0: 0.3, 1: 0.5}, 85.0, 85.4, 100)
    table = verdict_table({"nih": g, "chexpert": g})
    assert list(table.display.index) == ["nih", "chexpert"]
    assert (
        "+3.05" in table.display.loc["nih", "paper's gain"] and "+3.26" in table.display.loc["chexpert", "paper's gain"]
    )
    assert "below the paper's" in table.display.loc["nih", "in words"]
    assert table.stem == "verdict" and table.caption.endswith("on each layout.")
    other = verdict_table({"nih": g}, stem="verdict_last_epoch", scored=", each run scored at its last epoch")
    assert other.stem == "verdict_last_epoch" and other.caption.endswith("each run scored at its last epoch.")


def _direct_mean_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Mean over classes of sklearn's AUC, in float64 (%)."""
    from sklearn.metrics import roc_auc_score

    return 100 * float(np.mean([roc_auc_score(y[:, c], s[:, c]) for c in range(y.shape[1])]))


def test_noise_cost_and_recovered_share_match_a_direct_formula(data) -> None:
    rng, y, patients = data
    by_seed = {
        s: {"B": scores(rng, y, 1.0), "B+MODL+KNNS": scores(rng, y, 1.3), "clean": scores(rng, y, 2.0)}
        for s in range(3)
    }
    g = seed_mean_gain(y, by_seed, patients, ["a", "b", "c"], n_boot=300, ceiling="clean")
    mean = {m: np.mean([_direct_mean_auc(y, by_seed[s][m]) for s in by_seed]) for m in ("B", "B+MODL+KNNS", "clean")}
    assert g.ceiling_auc == pytest.approx(mean["clean"])
    assert g.noise_cost.value == pytest.approx(mean["clean"] - mean["B"])
    assert g.recovered.value == pytest.approx((mean["B+MODL+KNNS"] - mean["B"]) / (mean["clean"] - mean["B"]))
    assert g.noise_cost.ci_low <= g.noise_cost.value <= g.noise_cost.ci_high and g.noise_cost.ci_low > 0
    assert g.recovered.ci_low <= g.recovered.value <= g.recovered.ci_high


@pytest.mark.parametrize("model_strength, expect", [(1.0, 0.0), (2.0, 1.0)])
def test_recovered_share_is_zero_at_b_and_one_at_the_ceiling(data, model_strength: float, expect: float) -> None:
    rng, y, patients = data
    rows = [(scores(rng, y, 1.0), scores(rng, y, 2.0)) for _ in range(2)]
    by_seed = {
        s: {"B": b, "clean": c, "B+MODL+KNNS": b if model_strength == 1.0 else c} for s, (b, c) in enumerate(rows)
    }
    g = seed_mean_gain(y, by_seed, patients, ["a", "b", "c"], n_boot=100, ceiling="clean")
    assert g.recovered.value == pytest.approx(expect)
    assert g.recovered.ci_low == pytest.approx(expect) and g.recovered.ci_high == pytest.approx(expect)


def test_verdict_table_shows_the_ceiling(data) -> None:
    rng, y, patients = data
    by_seed = {
        s: {"B": scores(rng, y, 1.0), "B+MODL+KNNS": scores(rng, y, 1.3), "clean": scores(rng, y, 2.0)}
        for s in range(2)
    }
    g = seed_mean_gain(y, by_seed, patients, ["a", "b", "c"], n_boot=100, ceiling="clean")
    table = verdict_table({"nih": g})
    assert {"ceiling", "noise_cost", "recovered", "recovered_ci_low"} <= set(table.tidy.columns)
    assert "recovered [95% CI]" in table.display.columns
    assert "The label noise costs B" in table.tidy.loc[0, "verdict"]


@pytest.mark.parametrize("sd, expect", [(1.43, 32), (0.26, 2), (0.0, 1)])
def test_seeds_for_half_width(sd: float, expect: int) -> None:
    from paperkit.evaluation.verdict import seeds_for_half_width

    assert seeds_for_half_width(sd) == expect
