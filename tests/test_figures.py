"""Every figure function writes a PNG and a PDF on tiny inputs, and draws what it is meant to show: its panels,
axis labels and titles, one series per model or term, legend entries and annotations (read off the Figure)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from sklearn.metrics import roc_auc_score

from paperkit.evaluation import figures, paper_numbers
from paperkit.evaluation.metrics import NotEvaluableWarning, compare_models

CLASSES = ("Atelectasis", "Edema")


def _data(n=80, models=("B", "B+MODL", "B+KNNS", "B+MODL+KNNS"), seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(CLASSES))) < 0.4).astype(float)
    probs = {m: 1 / (1 + np.exp(-(y * (1 + i) + rng.normal(size=y.shape) - 0.5))) for i, m in enumerate(models)}
    return y, probs, np.arange(n).astype(str)


def _check(paths, stem_prefix):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 500 and p.name.startswith(stem_prefix) for p in paths)


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


LABEL_VIEWS = {"(b) binary labels (mined)": [1.0, 0.0], "(c) LSR labels": [0.9, 0.05],
               "(d) soft label distribution": [0.7, 0.2]}


@pytest.mark.parametrize("with_image", [True, False])
def test_fig1(tmp_path, drawn, with_image):
    image = np.random.default_rng(0).random((16, 16)) if with_image else None
    paths = figures.fig1_label_views(CLASSES, *map(np.array, LABEL_VIEWS.values()), tmp_path, image=image)
    _check(paths, "fig1_")
    axes = drawn[0].axes
    if with_image:
        assert axes[0].get_title() == "(a) input image" and len(axes[0].images) == 1
        axes = axes[1:]
    assert [ax.get_title() for ax in axes] == list(LABEL_VIEWS)  # one bar panel per label view
    for i, (ax, values) in enumerate(zip(axes, LABEL_VIEWS.values())):
        assert ax.get_xlabel() == "probability" and ax.get_xlim() == (0, 1) and not ax.images
        assert [bar.get_width() for bar in ax.patches] == pytest.approx(values)  # a bar per class, its label value
        assert [t.get_text() for t in ax.get_yticklabels()] == (list(CLASSES) if i == 0 else ["", ""])


def test_fig1_refuses_a_vector_of_another_length(tmp_path):
    with pytest.raises(ValueError, match=r"\(c\) LSR labels: expected 2 values"):
        figures.fig1_label_views(CLASSES, np.ones(2), np.ones(3), np.ones(2), tmp_path)


def test_fig3(tmp_path, drawn):
    y, probs, _ = _data()
    _check(figures.fig3_roc_curves(y, probs, CLASSES, tmp_path), "fig3_")
    axes = drawn[0].axes
    assert [ax.get_title() for ax in axes] == list(CLASSES)  # a panel per class
    assert [ax.get_xlabel() for ax in axes] == ["1 - specificity"] * 2 and axes[0].get_ylabel() == "sensitivity"
    for c, ax in enumerate(axes):
        chance, *curves = ax.get_lines()
        assert chance.get_linestyle() == "--" and list(chance.get_xdata()) == list(chance.get_ydata()) == [0, 1]
        expected = [f"{m} ({roc_auc_score(y[:, c], p[:, c]):.3f})" for m, p in probs.items()]
        assert [line.get_label() for line in curves] == expected  # a curve per model, its AUC in the legend
        assert [t.get_text() for t in ax.get_legend().get_texts()] == expected
        assert ax.get_legend().get_title().get_text() == "AUC"
        for line in curves:  # ROC curves run from (0, 0) to (1, 1)
            assert (line.get_xdata()[[0, -1]] == [0, 1]).all() and (line.get_ydata()[[0, -1]] == [0, 1]).all()


def test_fig3_class_with_one_label_value_has_no_curve(tmp_path, drawn):
    y, probs, _ = _data()
    y[:, 1] = 0
    with pytest.warns(NotEvaluableWarning, match="Edema"):
        figures.fig3_roc_curves(y, probs, CLASSES, tmp_path)
    scored, empty = drawn[0].axes
    assert len(scored.get_lines()) == 1 + len(probs) and not scored.texts
    assert len(empty.get_lines()) == 1 and empty.get_legend() is None  # the chance diagonal only
    assert [t.get_text() for t in empty.texts] == ["AUC n/a:\none label value"]


def test_fig4(tmp_path, drawn):
    y, probs, patients = _data(models=("B", "K3", "K9"))
    result = compare_models(y, probs, patients, CLASSES, n_boot=30)
    frame = figures.k_gain_frame(result, {3: "K3", 9: "K9"})
    assert list(frame["k"]) == [3, 9] and (frame["ci_low"] <= frame["gain"]).all()
    _check(figures.fig4_k_gain(result, {3: "K3", 9: "K9"}, tmp_path), "fig4_")
    (ax,) = drawn[0].axes
    assert ax.get_xlabel() == "K (neighbours in KNNS)" and ax.get_ylabel() == "mean AUC gain over B (% points)"
    (ours,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert ours.get_label() == "ours (95% CI, 30 bootstrap resamples)"
    line, caps, _ = ours.lines
    assert list(line.get_xdata()) == [3, 9] and line.get_ydata() == pytest.approx(frame["gain"])
    assert sorted(y for cap in caps for y in cap.get_ydata()) == pytest.approx(
        sorted([*frame["ci_low"], *frame["ci_high"]]))  # the CI whiskers
    paper = paper_numbers.FIG4_K_GAINS.dropna(subset=["gain"])
    (theirs,) = [line for line in ax.get_lines() if line.get_label() == "paper (text; K=9 from Table 2)"]
    assert list(theirs.get_xdata()) == list(paper.index) and list(theirs.get_ydata()) == list(paper["gain"])
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == sorted([ours.get_label(), theirs.get_label()])
    assert list(ax.get_xticks()) == sorted({3, 9} | set(paper.index))


@pytest.mark.parametrize("truth", ["mask", "box"])
def test_fig5(tmp_path, drawn, truth):
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
    axes = np.array(drawn[0].axes).reshape(len(CLASSES), 2 * 3)  # a row per finding; 2 cases x (image, B, target)
    assert all(len(ax.images) == 1 for ax in axes.flat)
    assert [ax.get_title(loc="left") for ax in axes[:, 0]] == list(CLASSES)
    assert [ax.get_title() for ax in axes[0]] == ["", "B", "B+MODL+KNNS"] * 2
    for ax in axes[:, [0, 3]].flat:  # the image with its truth: a mask outline or the box
        if truth == "mask":
            assert len(ax.collections) == 1 and not ax.patches
        else:
            (box,) = ax.patches
            assert (box.get_xy(), box.get_width(), box.get_height()) == ((4, 4), 5, 5) and not ax.collections
    assert [t.get_text() for ax in axes[:, [1, 2, 4, 5]].flat for t in ax.texts] == ["0.60", "0.80"] * 4


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
    assert all(len(ax.get_lines()) == 2 for ax in drawn[0].axes)  # one line per (layout, variant)
    assert [t.get_text() for t in drawn[0].axes[0].get_legend().get_texts()] == ["nih B", "nih B+MODL+KNNS"]
    assert list(drawn[0].axes[1].get_lines()[0].get_ydata()) == [0.1, 0.1]
