"""The paper's figures (1, 3, 4, 5) and two teaching figures, each saved as PNG and PDF.

Figures are built on :class:`matplotlib.figure.Figure` objects rendered by the Agg canvas, not
through ``pyplot``, so that writing a file neither needs a display nor changes the backend of a
notebook that imports this module. Every file is written atomically; names start with the
paper's figure number (``fig1_``, ``fig3_``, ``fig4_``, ``fig5_``) or ``teach_``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from paperkit.artifacts import atomic_path
from paperkit.evaluation import paper_numbers
from paperkit.evaluation.heatmaps import Box, overlay
from paperkit.evaluation.metrics import MEAN, ComparisonResult, per_class_auc, roc_points


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _palette(names: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    return dict(zip(names, sns.color_palette("colorblind", len(names))))


def save_figure(fig: Figure, out_dir: str | Path, stem: str, dpi: int = 150) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` atomically; returns their paths (PNG first)."""
    paths = []
    for ext in ("png", "pdf"):
        path = Path(out_dir) / f"{stem}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------------
# Figure 1: three views of one image's labels
# ------------------------------------------------------------------------------------------------
def fig1_label_views(
    classes: Sequence[str],
    binary: np.ndarray,
    lsr: np.ndarray,
    soft: np.ndarray,
    out_dir: str | Path,
    *,
    image: np.ndarray | None = None,
    stem: str = "fig1_label_distribution",
) -> list[Path]:
    """Figure 1 analogue: the image, its mined binary labels, LSR labels and soft label distribution.

    Parameters
    ----------
    classes
        ``C`` class names.
    binary, lsr, soft
        ``[C]`` label vectors of the same image: report-mined binary labels, label-smoothed labels
        (Pham et al. 2019) and the many-to-one soft label distribution (MODL).
    image
        Optional ``[H, W]`` image shown first.
    """
    views = {"(b) binary labels (mined)": binary, "(c) LSR labels": lsr, "(d) soft label distribution": soft}
    n_panels = len(views) + (image is not None)
    fig = _new_figure(3.2 * n_panels, 0.28 * len(classes) + 1.5)
    axes = fig.subplots(1, n_panels)
    if image is not None:
        axes[0].imshow(image, cmap="gray")
        axes[0].set_title("(a) input image")
        axes[0].axis("off")
        axes = axes[1:]
    colours = sns.color_palette("colorblind", len(views))
    for i, (ax, (title, values), colour) in enumerate(zip(axes, views.items(), colours)):
        values = np.asarray(values, dtype=float)
        if values.shape != (len(classes),):
            raise ValueError(f"{title}: expected {len(classes)} values, got shape {values.shape}")
        sns.barplot(x=values, y=list(classes), ax=ax, color=colour, orient="h")
        ax.set_xlim(0, 1)
        ax.set_title(title)
        ax.set_xlabel("probability")
        if i:
            ax.set_yticklabels([])
    return save_figure(fig, out_dir, stem)


# ------------------------------------------------------------------------------------------------
# Figure 3: ROC curves
# ------------------------------------------------------------------------------------------------
def fig3_roc_curves(
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    classes: Sequence[str],
    out_dir: str | Path,
    *,
    stem: str = "fig3_roc_chexpert",
) -> list[Path]:
    """Figure 3: one ROC panel per class with a curve per model, its AUC in the legend.

    Parameters
    ----------
    y_true
        ``[n, C]`` labels in {0, 1, NaN}.
    scores
        ``{model: [n, C]}``, e.g. B, B+MODL, B+KNNS, B+MODL+KNNS.
    classes
        ``C`` class names (the paper: the five CheXpert tasks).
    """
    y = np.asarray(y_true, dtype=float)
    colours = _palette(list(scores))
    fig = _new_figure(3.3 * len(classes), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(classes), sharey=True))
    # evaluability depends on the labels only: warn for the first model, not once per model
    aucs = {
        name: per_class_auc(y, s, classes, warn=i == 0)["auc"].to_numpy() for i, (name, s) in enumerate(scores.items())
    }
    for c, (ax, cls) in enumerate(zip(axes, classes)):
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
        for name, s in scores.items():
            if np.isnan(aucs[name][c]):
                continue  # not evaluable: per_class_auc has warned
            roc = roc_points(y[:, c], np.asarray(s)[:, c])
            ax.plot(roc["fpr"], roc["tpr"], color=colours[name], lw=1.4, label=f"{name} ({aucs[name][c]:.3f})")
        ax.set_title(cls)
        ax.set_xlabel("1 - specificity")
        ax.set_aspect("equal")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=7, title="AUC", title_fontsize=7)
        else:  # no curve: every scored image has the same label for this class
            ax.text(0.5, 0.3, "AUC n/a:\none label value", ha="center", fontsize=8, color="grey")
    axes[0].set_ylabel("sensitivity")
    return save_figure(fig, out_dir, stem)


# ------------------------------------------------------------------------------------------------
# Figure 4: gain against K
# ------------------------------------------------------------------------------------------------
def k_gain_frame(result: ComparisonResult, k_models: Mapping[int, str]) -> pd.DataFrame:
    """Mean-AUC gain over the reference (% points) with its CI for each K: ``k, gain, ci_low, ci_high``."""
    diff = result.diff[result.diff["class"] == MEAN].set_index("model")
    rows = [
        {
            "k": k,
            "gain": 100 * diff.loc[m, "diff"],
            "ci_low": 100 * diff.loc[m, "ci_low"],
            "ci_high": 100 * diff.loc[m, "ci_high"],
        }
        for k, m in sorted(k_models.items())
    ]
    return pd.DataFrame(rows)


def fig4_k_gain(
    result: ComparisonResult,
    k_models: Mapping[int, str],
    out_dir: str | Path,
    *,
    stem: str = "fig4_k_sweep_gain",
) -> list[Path]:
    """Figure 4: mean-AUC gain of B+KNNS over B against K, ours with bootstrap CIs beside the paper's.

    Parameters
    ----------
    result
        :func:`~paperkit.evaluation.metrics.compare_models` with reference B and one B+KNNS model per K.
    k_models
        K -> model name in ``result``.
    """
    ours = k_gain_frame(result, k_models)
    paper = paper_numbers.FIG4_K_GAINS.dropna(subset=["gain"])
    fig = _new_figure(4.8, 3.6)
    ax = fig.subplots()
    blue, orange = sns.color_palette("colorblind", 2)
    ax.errorbar(
        ours["k"],
        ours["gain"],
        yerr=[ours["gain"] - ours["ci_low"], ours["ci_high"] - ours["gain"]],
        fmt="o-",
        color=blue,
        capsize=4,
        label=f"ours (95% CI, {result.n_boot} bootstrap resamples)",
    )
    ax.plot(paper.index, paper["gain"], "s--", color=orange, label="paper (text; K=9 from Table 2)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(sorted(set(ours["k"]) | set(paper.index)))
    ax.set_xlabel("K (neighbours in KNNS)")
    ax.set_ylabel(f"mean AUC gain over {result.reference} (% points)")
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, stem)


# ------------------------------------------------------------------------------------------------
# Figure 5: heatmaps
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeatmapCase:
    """One positive case of Figure 5: the image, its truth, and each model's heatmap and probability."""

    finding: str
    image: np.ndarray  #: [H, W]
    heatmaps: Mapping[str, np.ndarray]  #: model -> [H, W] in [0, 1]
    probabilities: Mapping[str, float]  #: model -> predicted probability of ``finding``
    mask: np.ndarray | None = None  #: [H, W] lesion mask (embedded benchmark)
    box: Box | None = None  #: (x, y, w, h) in image pixels (NIH)
    extra: Mapping[str, str] = field(default_factory=dict)  #: free text shown under the image


def fig5_heatmap_grid(
    cases: Sequence[HeatmapCase],
    out_dir: str | Path,
    *,
    models: Sequence[str] = ("B", "B+MODL+KNNS"),
    stem: str = "fig5_heatmaps_b_vs_target",
) -> list[Path]:
    """Figure 5: a row per finding, its cases side by side; each case shows the image with its
    truth, then every model's heatmap overlay with the predicted probability in the top-left corner.
    """
    if not cases:
        raise ValueError("no cases to show")
    findings = list(dict.fromkeys(c.finding for c in cases))
    per_row = max(sum(c.finding == f for c in cases) for f in findings)
    width = 1 + len(models)
    fig = _new_figure(1.9 * width * per_row, 2.0 * len(findings))
    axes = np.atleast_2d(fig.subplots(len(findings), width * per_row, squeeze=False))
    for ax in axes.flat:
        ax.axis("off")
    for r, finding in enumerate(findings):
        for j, case in enumerate(c for c in cases if c.finding == finding):
            ax = axes[r, j * width]
            ax.imshow(case.image, cmap="gray")
            if case.mask is not None:
                ax.contour(np.asarray(case.mask, dtype=float), levels=[0.5], colors="lime", linewidths=1)
            if case.box is not None:
                x, y, w, h = case.box
                ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="lime", lw=1))
            ax.set_title(f"{finding}" if j == 0 else "", fontsize=8, loc="left")
            for m, model in enumerate(models):
                ax = axes[r, j * width + 1 + m]
                ax.imshow(overlay(case.image, case.heatmaps[model]))
                ax.text(
                    0.03,
                    0.97,
                    f"{case.probabilities[model]:.2f}",
                    transform=ax.transAxes,
                    va="top",
                    ha="left",
                    fontsize=8,
                    color="white",
                    bbox={"facecolor": "black", "alpha": 0.6, "pad": 1.5, "lw": 0},
                )
                if r == 0:
                    ax.set_title(model, fontsize=8)
    return save_figure(fig, out_dir, stem)


# ------------------------------------------------------------------------------------------------
# Teaching figures: loss terms, memorisation curves, the noise x lambda grid
# ------------------------------------------------------------------------------------------------
def teach_memorisation(frame: pd.DataFrame, out_dir: str | Path, *, stem: str = "teach_memorisation") -> list[Path]:
    """Per-epoch AUC of B and B+MODL+KNNS on the training images against their mined labels (dashed)
    and on the test images against the clean labels (solid), one panel per layout.

    Parameters
    ----------
    frame
        :func:`paperkit.pipeline.ablations.memorisation_frame` (``layout, variant, epoch, curve, auc``).
    """
    layouts = list(dict.fromkeys(frame["layout"]))
    fig = _new_figure(4.6 * len(layouts), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(layouts), sharey=True))
    colours = _palette(list(dict.fromkeys(frame["variant"])))
    styles = {"train vs mined": "--", "test vs clean": "-", "validation vs mined": ":"}
    for ax, layout in zip(axes, layouts):
        for (variant, curve), part in frame[frame["layout"] == layout].groupby(["variant", "curve"], sort=False):
            ax.plot(
                part["epoch"],
                part["auc"],
                styles[curve],
                marker="o",
                ms=3,
                color=colours[variant],
                label=f"{variant}: {curve}",
            )
        ax.set(title=f"{layout} layout", xlabel="epoch")
    axes[0].set_ylabel("mean AUC (%)")
    axes[-1].legend(fontsize=7)
    return save_figure(fig, out_dir, stem)


def teach_noise_lambda_grid(
    grid: pd.DataFrame, out_dir: str | Path, *, stem: str = "teach_noise_lambda_grid"
) -> list[Path]:
    """Annotated heatmap of the gain over B (AUC points) by noise level (rows) and λ = γ (columns),
    each cell with its 95 % CI; the cell validation would choose at each noise level is boxed.

    Parameters
    ----------
    grid
        :func:`paperkit.pipeline.ablations.noise_lambda_grid`.
    """
    gain = grid.pivot(index="noise", columns="weight", values="gain")
    text = grid.assign(
        label=[f"{g:+.2f}\n[{lo:+.2f}, {hi:+.2f}]" for g, lo, hi in grid[["gain", "ci_low", "ci_high"]].to_numpy()]
    ).pivot(index="noise", columns="weight", values="label")
    fig = _new_figure(1.9 * gain.shape[1] + 1.6, 1.1 * gain.shape[0] + 1.2)
    ax = fig.subplots()
    limit = max(float(np.nanmax(np.abs(gain.to_numpy()))), 0.5)
    sns.heatmap(
        gain,
        annot=text.to_numpy(),
        fmt="",
        cmap="RdBu",
        center=0,
        vmin=-limit,
        vmax=limit,
        ax=ax,
        cbar_kws={"label": "gain over B (mean AUC points)"},
        annot_kws={"fontsize": 8},
    )
    for noise, weight in grid.loc[grid["chosen"], ["noise", "weight"]].to_numpy():
        ax.add_patch(
            Rectangle(
                (list(gain.columns).index(weight), list(gain.index).index(noise)), 1, 1, fill=False, lw=2, ec="black"
            )
        )
    ax.set(
        xlabel="λ = γ",
        ylabel="label-noise scale",
        xticklabels=[f"{w:g}" for w in gain.columns],
        yticklabels=[f"{n:g}" for n in gain.index],
    )
    ax.set_title("boxed: chosen on validation (mined labels)", fontsize=8)
    return save_figure(fig, out_dir, stem)


def teach_loss_terms(history: pd.DataFrame, out_dir: str | Path, *, stem: str = "teach_loss_terms") -> list[Path]:
    """Per-epoch BCE, MODL and KNNS terms (unweighted) and validation AUC, one panel each.

    Parameters
    ----------
    history
        Concatenated ``metrics.csv`` rows with ``layout`` and ``variant`` columns.
    """
    terms = ("bce", "modl", "knns", "val_auc")
    fig = _new_figure(3.4 * len(terms), 3.0)
    axes = fig.subplots(1, len(terms))
    colours = _palette(list(dict.fromkeys(history["variant"])))
    markers = dict(zip(dict.fromkeys(history["layout"]), "os^D"))
    for ax, term in zip(axes, terms):
        for (layout, variant), part in history.groupby(["layout", "variant"], sort=False):
            ax.plot(
                part["epoch"], part[term], marker=markers[layout], color=colours[variant], label=f"{layout} {variant}"
            )
        ax.set(title=term, xlabel="epoch")
    axes[0].legend(fontsize=7)
    return save_figure(fig, out_dir, stem)


def lab_forest(frame: pd.DataFrame, out_dir: str | Path, *, stem: str = "lab_forest") -> list[Path]:
    """The lab at a glance: each method's gain over B with its 95 % CI, one panel per layout and noise level.

    A dashed line marks the noise cost (ceiling − B): a method on it wins back all the noise takes.
    ``frame`` is :func:`paperkit.pipeline.lab.lab_frame`'s.
    """
    cells = list(frame.groupby(["layout", "noise"], sort=False))
    methods = list(dict.fromkeys(frame["method"]))
    fig = _new_figure(3.4 * len(cells), 0.45 * len(methods) + 1.4)
    axes = np.atleast_1d(fig.subplots(1, len(cells), sharey=True))
    colors = _palette(methods)
    for ax, ((layout, noise), rows) in zip(axes, cells):
        rows = rows.set_index("method").reindex(methods)
        y = np.arange(len(methods))
        for i, (name, row) in enumerate(rows.iterrows()):
            if pd.isna(row["gain"]):
                continue
            ax.errorbar(row["gain"], i, xerr=[[row["gain"] - row["gain_low"]], [row["gain_high"] - row["gain"]]],
                        fmt="o", color=colors[name], capsize=3)
        ax.axvline(0, color="grey", lw=0.8)
        if "noise_cost" in rows and rows["noise_cost"].notna().any():
            ax.axvline(rows["noise_cost"].dropna().iloc[0], color="black", ls="--", lw=0.8,
                       label="noise cost (ceiling − B)")
            ax.legend(fontsize=7, loc="lower right")
        seeds = int(rows["seeds"].max())
        ax.set_title(f"{layout}, noise {noise:g}x ({seeds} seed{'s' if seeds > 1 else ''})", fontsize=9)
        ax.set_xlabel("mean AUC gain over B (% points)")
        ax.set_yticks(y, methods)
    axes[0].invert_yaxis()
    return save_figure(fig, out_dir, stem)
