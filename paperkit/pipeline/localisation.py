"""Heatmaps of the trained targets scored against the embedded benchmark's lesion masks (notebook 08).

For each finding, its positive test images that carry a lesion mask are centre-cropped as the
models were scored, every model's PCAM map of that finding is scored with
:func:`paperkit.evaluation.heatmaps.score_masks`, and the first few cases are kept for Fig. 5.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from paperkit.config import Profile
from paperkit.data.augment import augment_batch
from paperkit.data.benchmark import CHEXPERT_MAP, mask_file
from paperkit.evaluation.figures import HeatmapCase
from paperkit.evaluation.heatmaps import pcam_maps, score_masks
from paperkit.pipeline.experiment import Prepared


def mask_localisation(
    cfg: Profile,
    prep: Prepared,
    models: Mapping[str, nn.Module],
    *,
    max_cases: int,
    cases_per_finding: int,
) -> tuple[list[HeatmapCase], dict[str, list[pd.DataFrame]]]:
    """Score every model's heatmaps on the same positive test cases, and draw Fig. 5's cases.

    Parameters
    ----------
    cfg, prep
        The profile and the prepared dataset the models were trained on.
    models
        Model name -> a classifier with a PCAM head, in eval mode.
    max_cases
        Positive test images scored per finding (those without a mask are skipped).
    cases_per_finding
        Cases per finding kept for the figure.

    Returns
    -------
    tuple
        The figure's cases, and per model one :func:`~paperkit.evaluation.heatmaps.score_masks` frame per
        finding that has masks (same findings and cases, in the same order, for every model).
    """
    test = prep.rows("test")
    truth = prep.labels("test")
    cases, scores = [], {v: [] for v in models}
    for c, finding in enumerate(prep.eval_classes):
        positive = test[truth[:, c] == 1][:max_cases]
        with_mask = [(r, m) for r in positive if (m := finding_mask(cfg, prep, r, finding)) is not None]
        if not with_mask:
            continue
        rows = np.array([r for r, _ in with_mask])
        masks = np.stack([m for _, m in with_mask])
        x = augment_batch(prep.images.load(rows), cfg.crop, train=False)  # centre crops, as the models were scored
        column = int(prep.eval_columns[c])
        maps, probs = {}, {}
        with torch.no_grad():
            for v, model in models.items():
                maps[v] = pcam_maps(model, x)[:, column].numpy()
                probs[v] = torch.sigmoid(model(x))[:, column].numpy()
                scores[v].append(score_masks(maps[v], masks, [finding] * len(rows)))
        image = x[:, 0].numpy()
        for i in range(min(cases_per_finding, len(rows))):
            cases.append(HeatmapCase(finding, image[i], {v: maps[v][i] for v in models},
                                     {v: float(probs[v][i]) for v in models}, mask=masks[i]))
    return cases, scores


def finding_mask(cfg: Profile, prep: Prepared, row: int, finding: str) -> np.ndarray | None:
    """The benchmark's lesion mask of ``finding`` on image ``row``, resized and centre-cropped like the input.

    ``finding`` is an NIH finding or a CheXpert observation (the union of the NIH findings it maps
    to, e.g. "Pleural Effusion" -> Effusion); ``None`` when the image has no such mask (or the data
    is not the benchmark)."""
    npz = mask_file(Path(prep.dataset.paths[row]))
    if npz is None or not npz.is_file():
        return None
    with np.load(npz) as masks:
        parts = [masks[name] for name in CHEXPERT_MAP.get(finding, (finding,)) if name in masks]
    if not parts:
        return None
    mask = np.logical_or.reduce(parts)
    resized = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((cfg.resize, cfg.resize)))
    top = (cfg.resize - cfg.crop) // 2
    return resized[top : top + cfg.crop, top : top + cfg.crop] > 127
