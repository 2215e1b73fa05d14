"""Every figure function writes a PNG and a PDF on tiny inputs."""
from __future__ import annotations

import numpy as np
import pytest

from paperkit import figures
from paperkit.evaluate import compare_models

CLASSES = ("Atelectasis", "Edema")


def _data(n=80, models=("B", "B+MODL", "B+KNNS", "B+MODL+KNNS"), seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(CLASSES))) < 0.4).astype(float)
    probs = {m: 1 / (1 + np.exp(-(y * (1 + i) + rng.normal(size=y.shape) - 0.5))) for i, m in enumerate(models)}
    return y, probs, np.arange(n).astype(str)


def _check(paths, stem_prefix):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 500 and p.name.startswith(stem_prefix) for p in paths)


def test_fig1(tmp_path):
    paths = figures.fig1_label_views(
        CLASSES, np.array([1.0, 0.0]), np.array([0.9, 0.05]), np.array([0.7, 0.2]), tmp_path,
        image=np.random.default_rng(0).random((16, 16)),
    )
    _check(paths, "fig1_")


def test_fig3(tmp_path):
    y, probs, _ = _data()
    _check(figures.fig3_roc_curves(y, probs, CLASSES, tmp_path), "fig3_")


def test_fig4(tmp_path):
    y, probs, patients = _data(models=("B", "K3", "K9"))
    result = compare_models(y, probs, patients, CLASSES, n_boot=30)
    frame = figures.k_gain_frame(result, {3: "K3", 9: "K9"})
    assert list(frame["k"]) == [3, 9] and (frame["ci_low"] <= frame["gain"]).all()
    _check(figures.fig4_k_gain(result, {3: "K3", 9: "K9"}, tmp_path), "fig4_")


@pytest.mark.parametrize("truth", ["mask", "box"])
def test_fig5(tmp_path, truth):
    rng = np.random.default_rng(0)
    cases = []
    for finding in CLASSES:
        for _ in range(2):
            mask = np.zeros((16, 16), bool)
            mask[4:9, 4:9] = True
            cases.append(
                figures.HeatmapCase(
                    finding=finding,
                    image=rng.random((16, 16)),
                    heatmaps={"B": rng.random((16, 16)), "B+MODL+KNNS": rng.random((16, 16))},
                    probabilities={"B": 0.6, "B+MODL+KNNS": 0.8},
                    mask=mask if truth == "mask" else None,
                    box=(4, 4, 5, 5) if truth == "box" else None,
                )
            )
    _check(figures.fig5_heatmap_grid(cases, tmp_path), "fig5_")


def test_teaching_figures(tmp_path):
    results = {}
    for noise in (0.0, 1.0):
        y, probs, patients = _data(models=("B", "B+MODL+KNNS"), seed=int(noise))
        results[noise] = compare_models(y, probs, patients, CLASSES, n_boot=20)
    _check(figures.teach_noise_gain(results, tmp_path), "teach_")
    _check(figures.teach_reliability(y, probs, tmp_path, n_bins=5), "teach_")
