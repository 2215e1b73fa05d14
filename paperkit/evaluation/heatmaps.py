"""Heatmaps (PCAM probability maps, Grad-CAM) and localisation scored against masks and boxes.

The paper shows heatmaps (its Figure 5) and claims B+MODL+KNNS localises better than B only
qualitatively; here localisation is measured:

- against masks (the embedded benchmark): pointing game (the heatmap's maximum falls inside the
  lesion) and IoU of the thresholded heatmap, per finding;
- against boxes (NIH ``BBox_List_2017.csv``): IoBB, the intersection over the *predicted* box's
  area, counted correct when it exceeds T(IoBB) in {0.1, ..., 0.7} as Wang et al. (2017). The
  predicted box encloses the largest connected component of the thresholded heatmap
  (``mode="largest"``, the default) or all components (``mode="all"``).

Maps are ``[H, W]`` NumPy arrays at image resolution; boxes are ``(x, y, w, h)`` in pixels, as in
the NIH CSV.
"""
from __future__ import annotations

from typing import Literal, Sequence

import matplotlib
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage, stats
from torch import nn

Box = tuple[float, float, float, float]

#: IoBB thresholds of Wang et al. (2017), Table 3.
IOBB_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


# ------------------------------------------------------------------------------------------------
# Heatmaps
# ------------------------------------------------------------------------------------------------
def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``[B, C, h, w]`` maps to ``size`` (image resolution)."""
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def pcam_maps(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """PCAM probability maps ``sigmoid(head.logit_maps(features))`` at the input's resolution.

    Parameters
    ----------
    model
        A :class:`paperkit.models.Classifier` (``features``, ``head.logit_maps``); any head with
        ``logit_maps`` works, the PCAM head's are the maps its pooling attends to.
    x
        ``[B, in_chans, H, W]`` model inputs.

    Returns
    -------
    torch.Tensor
        ``[B, C, H, W]`` probabilities in [0, 1]; the model is evaluated in eval mode.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            maps = torch.sigmoid(model.head.logit_maps(model.features(x)))
    finally:
        model.train(was_training)
    return upsample(maps, tuple(x.shape[-2:]))


def grad_cam(model: nn.Module, x: torch.Tensor, classes: Sequence[int] | None = None) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) of the last feature map, for any classifier.

    Gradients are taken with respect to the ``features(x)`` tensor directly (``head(features)``
    gives the logits by contract), which is what hooks on ``features`` would capture, without
    hook bookkeeping; it also works when the backbone is frozen.

    Parameters
    ----------
    model
        Any module with ``features(x) -> [B, F, h, w]`` and ``head(features) -> [B, C]``.
    x
        ``[B, in_chans, H, W]``.
    classes
        Class indices to explain; all classes when ``None``.

    Returns
    -------
    torch.Tensor
        ``[B, len(classes), H, W]``; each map min-max normalised to [0, 1] (0 where it is flat).
    """
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            features = model.features(x).detach().requires_grad_(True)
            logits = model.head(features)
            idx = range(logits.shape[1]) if classes is None else classes
            cams = []
            for c in idx:
                (grads,) = torch.autograd.grad(logits[:, c].sum(), features, retain_graph=True)
                weights = grads.mean(dim=(2, 3), keepdim=True)
                cams.append(torch.relu((weights * features).sum(dim=1)))
    finally:
        model.train(was_training)
    cam = upsample(torch.stack(cams, dim=1).detach(), tuple(x.shape[-2:]))
    lo = cam.amin(dim=(2, 3), keepdim=True)
    span = cam.amax(dim=(2, 3), keepdim=True) - lo
    return torch.where(span > 0, (cam - lo) / span.clamp_min(1e-12), torch.zeros_like(cam))


def overlay(image: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """Blend a ``[H, W]`` heatmap in [0, 1] over a grey ``[H, W]`` image: ``[H, W, 3]`` RGB in [0, 1]."""
    image = np.asarray(image, dtype=float)
    heatmap = np.asarray(heatmap, dtype=float)
    if image.shape != heatmap.shape:
        raise ValueError(f"image {image.shape} and heatmap {heatmap.shape} differ; upsample the heatmap first")
    span = image.max() - image.min()
    grey = (image - image.min()) / span if span > 0 else np.zeros_like(image)
    colour = matplotlib.colormaps[cmap](np.clip(heatmap, 0.0, 1.0))[..., :3]
    return (1 - alpha) * grey[..., None] + alpha * colour


# ------------------------------------------------------------------------------------------------
# Localisation against masks
# ------------------------------------------------------------------------------------------------
def pointing_game(heatmap: np.ndarray, mask: np.ndarray, tolerance: int = 0) -> bool:
    """True when the heatmap's maximum lies in the mask (dilated by ``tolerance`` pixels)."""
    mask = np.asarray(mask, dtype=bool)
    if tolerance > 0:
        mask = ndimage.binary_dilation(mask, iterations=tolerance)
    peak = np.unravel_index(np.argmax(heatmap), np.shape(heatmap))
    return bool(mask[peak])


def iou(heatmap: np.ndarray, mask: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of ``heatmap >= threshold`` with the mask (0 when both are empty)."""
    pred = np.asarray(heatmap) >= threshold
    mask = np.asarray(mask, dtype=bool)
    union = np.logical_or(pred, mask).sum()
    return float(np.logical_and(pred, mask).sum() / union) if union else 0.0


def score_masks(
    heatmaps: np.ndarray,
    masks: np.ndarray,
    findings: Sequence[str],
    *,
    threshold: float = 0.5,
    tolerance: int = 0,
) -> pd.DataFrame:
    """Pointing game and IoU of every case.

    Parameters
    ----------
    heatmaps, masks
        ``[N, H, W]``: the heatmap of the case's finding and its lesion mask.
    findings
        ``N`` finding names (one per case).

    Returns
    -------
    pandas.DataFrame
        One row per case: ``case, finding, pointing_hit, iou``.
    """
    rows = [
        {"case": i, "finding": f, "pointing_hit": pointing_game(h, m, tolerance), "iou": iou(h, m, threshold)}
        for i, (h, m, f) in enumerate(zip(heatmaps, masks, findings, strict=True))
    ]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# Localisation against boxes (Wang et al. 2017)
# ------------------------------------------------------------------------------------------------
def heatmap_box(heatmap: np.ndarray, threshold: float = 0.5, mode: Literal["largest", "all"] = "largest") -> Box | None:
    """Box ``(x, y, w, h)`` around the thresholded heatmap; ``None`` when nothing passes.

    ``mode="largest"`` boxes the largest 8-connected component, ``"all"`` one box around every
    component.
    """
    binary = np.asarray(heatmap) >= threshold
    if not binary.any():
        return None
    if mode == "largest":
        labels, n = ndimage.label(binary, structure=np.ones((3, 3)))
        sizes = ndimage.sum_labels(binary, labels, index=np.arange(1, n + 1))
        binary = labels == 1 + int(np.argmax(sizes))
    elif mode != "all":
        raise ValueError(f"mode must be 'largest' or 'all', not {mode!r}")
    rows, cols = np.flatnonzero(binary.any(axis=1)), np.flatnonzero(binary.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1))


def iobb(predicted: Box | None, truth: Box) -> float:
    """Intersection over the predicted box's area (Wang et al. 2017); 0 for no prediction."""
    if predicted is None:
        return 0.0
    px, py, pw, ph = predicted
    tx, ty, tw, th = truth
    ix = max(0.0, min(px + pw, tx + tw) - max(px, tx))
    iy = max(0.0, min(py + ph, ty + th) - max(py, ty))
    return float(ix * iy / (pw * ph)) if pw * ph > 0 else 0.0


def box_to_input(box: Box, original_size: float, resize: int, crop: int) -> Box:
    """Map an NIH box from the original image (e.g. 1024 px) to the model input (resize, centre crop)."""
    scale = resize / original_size
    offset = (resize - crop) / 2.0
    x, y, w, h = box
    return (x * scale - offset, y * scale - offset, w * scale, h * scale)


def score_boxes(
    heatmaps: np.ndarray,
    boxes: Sequence[Box],
    findings: Sequence[str],
    *,
    threshold: float = 0.5,
    mode: Literal["largest", "all"] = "largest",
) -> pd.DataFrame:
    """IoBB of every case: one row per case with ``case, finding, iobb``.

    ``boxes`` must be in heatmap pixels (see :func:`box_to_input`).
    """
    rows = [
        {"case": i, "finding": f, "iobb": iobb(heatmap_box(h, threshold, mode), b)}
        for i, (h, b, f) in enumerate(zip(heatmaps, boxes, findings, strict=True))
    ]
    return pd.DataFrame(rows)


def iobb_accuracy(per_case: pd.DataFrame, thresholds: Sequence[float] = IOBB_THRESHOLDS) -> pd.DataFrame:
    """Share of cases with IoBB above each T(IoBB), per finding: ``finding x T`` (Wang et al. 2017)."""
    table = pd.DataFrame({f"T(IoBB)={t:g}": per_case["iobb"] > t for t in thresholds}).assign(
        finding=per_case["finding"]
    )
    return table.groupby("finding", sort=False).mean()


def compare_localisation(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Paired per-finding comparison of two models' per-case scores on the same cases.

    Parameters
    ----------
    a, b
        Outputs of :func:`score_masks` or :func:`score_boxes` for two models (same cases, same order).
    metric
        ``pointing_hit`` (exact McNemar test: binomial test on the discordant pairs) or a
        continuous score such as ``iou``/``iobb`` (Wilcoxon signed-rank test).

    Returns
    -------
    pandas.DataFrame
        Per finding: ``n, a, b, diff (b - a), p``.
    """
    if not (a["case"].to_numpy() == b["case"].to_numpy()).all():
        raise ValueError("the two score tables must hold the same cases in the same order")
    rows = []
    for finding, idx in a.groupby("finding", sort=False).groups.items():
        xa, xb = a.loc[idx, metric].to_numpy(), b.loc[idx, metric].to_numpy()
        if metric == "pointing_hit":
            only_b, only_a = int((xb & ~xa).sum()), int((xa & ~xb).sum())
            p = stats.binomtest(only_b, only_a + only_b).pvalue if only_a + only_b else 1.0
        else:
            p = stats.wilcoxon(xb, xa).pvalue if np.any(xb != xa) else 1.0
        rows.append(
            {
                "finding": finding,
                "n": len(idx),
                "a": xa.mean(),
                "b": xb.mean(),
                "diff": xb.mean() - xa.mean(),
                "p": float(p),
            }
        )
    return pd.DataFrame(rows)
