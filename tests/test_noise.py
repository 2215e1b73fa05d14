"""The report-mining noise model: calibration, structure and the noise knob."""
from __future__ import annotations

import numpy as np
import pytest

from paperkit.data.benchmark import sample_cases
from paperkit.data.labels import NIH_CLASSES
from paperkit.data.noise import NoiseConfig, apply_noise, label_rates, mined_label_noise

N = 6000
# Tolerance: 4 binomial standard errors (PPV: + 0.02, since its calibration uses expected counts),
# on the classes with >= 150 positives among N NIH-distributed label vectors.


@pytest.fixture(scope="module")
def cases():
    return sample_cases(N, np.random.default_rng(0))


@pytest.mark.parametrize("seed", [1, 2])
def test_measured_rates_match_configuration(cases, seed):
    cfg = NoiseConfig()
    noisy = apply_noise(cases["labels"], cases["severity"], np.random.default_rng(seed), 1.0, cases["view_ap"], cfg)
    rates = label_rates(cases["labels"], noisy.reported)
    checked = 0
    for name in NIH_CLASSES:
        ppv, sens = cfg.rates[name]
        r = rates[name]
        if r["n_pos"] < 150:
            continue
        checked += 1
        tol_sens = 4 * np.sqrt(sens * (1 - sens) / r["n_pos"])
        tol_ppv = 4 * np.sqrt(ppv * (1 - ppv) / max(r["n_reported"], 1)) + 0.02
        assert abs(r["sensitivity"] - sens) < tol_sens, (name, r, sens)
        assert abs(r["ppv"] - ppv) < tol_ppv, (name, r, ppv)
    assert checked >= 5


def test_noise_zero_is_clean(cases):
    noisy = apply_noise(cases["labels"], cases["severity"], np.random.default_rng(0), 0.0, cases["view_ap"])
    assert np.array_equal(noisy.reported, cases["labels"])
    assert np.array_equal(noisy.chexpert, cases["labels"].astype(np.float32))


def test_misses_depend_on_severity(cases):
    y, s = cases["labels"], cases["severity"]
    noisy = apply_noise(y, s, np.random.default_rng(3), 1.0, cases["view_ap"])
    missed = y & ~noisy.reported
    faint, clear = y & (s < 0.3), y & (s > 0.7)
    assert missed[faint].mean() > 2 * missed[clear].mean()


def test_false_positives_favour_lookalikes(cases):
    y, s = cases["labels"], cases["severity"]
    noisy = apply_noise(y, s, np.random.default_rng(4), 1.0, cases["view_ap"])
    c, d = NIH_CLASSES.index("Consolidation"), NIH_CLASSES.index("Pneumonia")
    fp = noisy.reported[:, c] & ~y[:, c]
    with_lookalike = ~y[:, c] & y[:, d]
    without = ~y[:, c] & ~y.any(1)
    assert fp[with_lookalike].mean() > 3 * fp[without].mean()


def test_noise_scales_monotonically(cases):
    y, s = cases["labels"], cases["severity"]
    errors = [(apply_noise(y, s, np.random.default_rng(5), k).reported != y).mean() for k in (0.0, 0.5, 1.0, 1.5)]
    assert errors == sorted(errors) and errors[0] == 0


def test_chexpert_values(cases):
    y, s = cases["labels"], cases["severity"]
    noisy = apply_noise(y, s, np.random.default_rng(6), 1.0)
    values = set(np.unique(noisy.chexpert[~np.isnan(noisy.chexpert)]).tolist())
    assert values == {-1.0, 0.0, 1.0}
    assert np.isnan(noisy.chexpert).mean() > 0.5  # most findings are not mentioned
    assert np.all(noisy.reported[noisy.chexpert == 1])


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
def test_bad_noise_is_a_clear_error(cases, bad):
    with pytest.raises(ValueError, match="noise"):
        apply_noise(cases["labels"][:5], cases["severity"][:5], np.random.default_rng(0), bad)


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="rates"):
        NoiseConfig(rates={"Atelectasis": (0.5, 0.5)})
    rates = {n: (0.5, 0.5) for n in NIH_CLASSES}
    rates["Hernia"] = (1.5, 0.5)
    with pytest.raises(ValueError, match="Hernia"):
        NoiseConfig(rates=rates)


def test_mined_label_noise_counts_only_positive_mentions():
    clean = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=float)
    mined = np.array([[1, -1, 0], [0, 1, np.nan], [-1, 1, 0], [1, 0, 0]], dtype=float)
    table = mined_label_noise(mined, clean, ["a", "b", "c"])
    assert table["clean positives"].tolist() == [2, 1, 0] and table["mined positives"].tolist() == [2, 2, 0]
    assert table["PPV"].tolist() == [0.5, 0.5, 0.0]
    assert table["sensitivity"].tolist() == [0.5, 1.0, 0.0]
