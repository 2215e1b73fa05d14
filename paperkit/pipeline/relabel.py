"""Google's 2019 radiologist relabels of NIH ChestX-ray14, scored as their own table (not in the paper).

Table 1 scores all 14 findings against NIH's mined labels, as the paper does; where the data root
holds Google's relabel file, :func:`relabel_evaluation` also scores the same models against Google's
adjudicated labels of the test images it relabelled, through the one evaluation path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from paperkit.config import Profile
from paperkit.data.datasets import DataError
from paperkit.data.nih import GOOGLE_NAMES, find_file
from paperkit.evaluation.metrics import ComparisonResult, compare_models
from paperkit.pipeline.experiment import Prepared

#: Google's 2019 relabel findings that NIH's classes can score, and the classes scoring each. Google
#: graded "Nodule or mass" as one finding, so a model's score for it is the larger of its Nodule and
#: Mass probabilities (AUC needs only the order). Fracture and Airspace opacity have no NIH class.
GOOGLE_FINDINGS: dict[str, tuple[str, ...]] = {
    "Pneumothorax": ("Pneumothorax",),
    "Nodule or mass": ("Nodule", "Mass"),
}


def read_google_relabels(path: Path) -> pd.DataFrame:
    """Google's radiologist labels as float 0/1, one row per relabelled image (index ``Image Index``),
    one column per finding of :data:`GOOGLE_FINDINGS`."""
    columns = ["Image Index", *GOOGLE_FINDINGS]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    lacking = [c for c in columns if c not in frame.columns]
    if lacking:
        raise DataError(f"{path}: column(s) {lacking} missing; is this google2019_nih-chest-xray-labels.csv?")
    for column in GOOGLE_FINDINGS:
        values = frame[column].str.strip()
        bad = np.flatnonzero(~values.isin(["YES", "NO"]).to_numpy())
        if len(bad):
            raise DataError(f"{path}, line {bad[0] + 2}, column {column!r}: "
                            f"value {frame[column][bad[0]]!r} is not YES or NO")
        frame[column] = (values == "YES").astype(np.float32)
    frame["Image Index"] = frame["Image Index"].str.strip()
    twice = frame["Image Index"].duplicated().to_numpy()
    if twice.any():
        first = np.flatnonzero(twice)[0]
        raise DataError(f"{path}, line {first + 2}, column 'Image Index': "
                        f"image {frame['Image Index'][first]!r} is listed twice")
    return frame.set_index("Image Index")[list(GOOGLE_FINDINGS)]


def google_relabels(prep: Prepared, split: str = "test") -> tuple[np.ndarray, np.ndarray] | None:
    """The images of ``split`` Google relabelled and their labels, or ``None`` where there are none.

    Returns
    -------
    (positions, labels)
        ``positions``: indices into ``prep.rows(split)`` of the relabelled images; ``labels``:
        ``[len(positions), len(GOOGLE_FINDINGS)]`` Google's 0/1 labels. ``None`` for a non-NIH
        layout, a root without Google's file, a split without relabelled images, or where the clean
        truth is complete (the benchmark: Table 1 already scores every finding against it).
    """
    if prep.layout != "nih" or prep.clean_coverage(split) == "complete":
        return None
    path = find_file(Path(prep.dataset.root), GOOGLE_NAMES)
    if path is None:
        return None
    relabels = read_google_relabels(path)
    names = prep.dataset.image_ids[prep.rows(split)]
    positions = np.flatnonzero(np.isin(names, relabels.index.to_numpy()))
    if not len(positions):
        return None
    return positions, relabels.loc[names[positions]].to_numpy(np.float32)


def relabel_evaluation(cfg: Profile, prep: Prepared, probs: Mapping[str, np.ndarray], reference: str = "B",
                       split: str = "test") -> ComparisonResult | None:
    """Google's radiologist relabels as their own evaluation (not in the paper), or ``None`` without them.

    Scores the findings of :data:`GOOGLE_FINDINGS` on the images of ``split`` Google relabelled,
    through the one evaluation path (per-finding AUC, patient bootstrap CIs, DeLong) as
    :func:`evaluate`. ``probs`` are ``{model: [n, C]}`` probabilities of ``prep.rows(split)``.
    """
    found = google_relabels(prep, split)
    if found is None:
        return None
    positions, truth = found
    n = len(prep.rows(split))
    for model, p in probs.items():
        if len(p) != n:
            raise ValueError(f"probabilities of {model!r} have {len(p)} rows; the {split} split has {n}")
    column = {c: i for i, c in enumerate(prep.classes)}
    scores = {m: np.stack([p[positions][:, [column[c] for c in classes]].max(axis=1)
                           for classes in GOOGLE_FINDINGS.values()], axis=1) for m, p in probs.items()}
    patients = prep.dataset.patient_ids[prep.rows(split)[positions]]
    return compare_models(truth, scores, patients, tuple(GOOGLE_FINDINGS),
                          reference=reference, n_boot=cfg.bootstrap, seed=0)
