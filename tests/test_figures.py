"""Every figure function writes a PNG and a PDF on tiny inputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paperkit.evaluation import figures
from paperkit.evaluation.metrics import compare_models

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


@pytest.fixture()
def drawn(monkeypatch):
    """Capture the Figure a figure function saves, to check what it shows (not only that a file exists)."""
    captured = []
    real = figures.save_figure

    def spy(fig, out_dir, stem, dpi=150):
        captured.append(fig)
        return real(fig, out_dir, stem, dpi)

    monkeypatch.setattr(figures, "save_figure", spy)
    return captured


def test_memorisation_curves(tmp_path, drawn):
    rows = [{"layout": layout, "variant": variant, "epoch": e, "curve": curve, "auc": 70 + e}
            for layout in ("nih", "chexpert") for variant in ("B", "B+MODL+KNNS") for e in (1, 2, 3)
            for curve in ("train vs mined", "test vs clean", "validation vs mined")]
    _check(figures.teach_memorisation(pd.DataFrame(rows), tmp_path), "teach_memorisation")
    axes = drawn[0].axes
    assert [ax.get_title() for ax in axes] == ["nih layout", "chexpert layout"]
    labels = {line.get_label() for line in axes[0].get_lines()}
    assert labels == {f"{v}: {c}" for v in ("B", "B+MODL+KNNS") for c in ("train vs mined", "test vs clean",
                                                                         "validation vs mined")}
    dashed = [line for line in axes[0].get_lines() if line.get_label().endswith("train vs mined")]
    assert all(line.get_linestyle() == "--" for line in dashed) and list(dashed[0].get_xdata()) == [1, 2, 3]


def test_noise_lambda_grid_heatmap(tmp_path, drawn):
    grid = pd.DataFrame([{"noise": n, "weight": w, "gain": n - w, "ci_low": n - w - 0.5, "ci_high": n - w + 0.5,
                          "chosen": w == 0.3} for n in (0.0, 1.0, 2.0) for w in (0.1, 0.3, 1.0)])
    _check(figures.teach_noise_lambda_grid(grid, tmp_path), "teach_noise_lambda_grid")
    ax = drawn[0].axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 9 and "+1.90\n[+1.40, +2.40]" in texts  # noise 2, λ 0.1
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.1", "0.3", "1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]
    assert len(ax.patches) == 3  # one box per noise level: the weight validation chose


def test_loss_terms(tmp_path, drawn):
    history = pd.DataFrame([{"layout": "nih", "variant": v, "epoch": e, "bce": 0.3, "modl": 0.1, "knns": 0.2,
                             "val_auc": 0.8} for v in ("B", "B+MODL+KNNS") for e in (1, 2)])
    _check(figures.teach_loss_terms(history, tmp_path), "teach_loss_terms")
    assert [ax.get_title() for ax in drawn[0].axes] == ["bce", "modl", "knns", "val_auc"]
    assert len(drawn[0].axes[1].get_lines()) == 2
