"""The test images the verdict, its seed spread and the lab score: the test split and, on the embedded
benchmark, every image of a second draw of patients that no run trains on (the profile's ``extra_test_images``).

Why: the verdict's CI resamples test patients as well as training seeds. On the cpu profile's test split
(about 1,000 images) the patients alone leave one seed's paired gain a CI of about ±0.8 (CheXpert) to
±1.2 (NIH) AUC points, and no number of seeds removes that share. Scoring an image costs a forward
pass; training a seed costs minutes. So the benchmark renders more test patients instead.

The second draw comes from the same generator (NIH's statistics, the same findings and noise model)
under its own seed (:func:`paperkit.pipeline.specs.extra_draw_seed`): new patients from the same
population, all of whose images are test images (the draw's own train/validation/test split is not
used), scored against their clean labels. Nothing a run trains or selects on changes, so every
trained run stays valid and only predictions are added. Real data has no second draw: its test set is its test split.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from paperkit.config import Profile
from paperkit.evaluation.verdict import ScoredImages
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment as ex
from paperkit.pipeline.specs import extra_draw_profile
from paperkit.training.loop import TrainResult

#: The splits of the second draw, in the order its images are scored.
_DRAW_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ScoringSet(ScoredImages):
    """:class:`~paperkit.evaluation.verdict.ScoredImages` that can also be predicted: ``parts`` lists each
    dataset and its rows, in the order of ``labels``."""

    parts: tuple[tuple[ex.Prepared, np.ndarray], ...] = field(default=(), repr=False)

    def probabilities(self, cfg: Profile, run: TrainResult, last_epoch: bool = False) -> np.ndarray:
        """``[n, C]`` probabilities of ``run`` on every image, at its chosen epoch (stored in its folder)
        or at its last epoch (:func:`paperkit.pipeline.experiment.last_epoch_probabilities`)."""
        predict = ex.last_epoch_probabilities if last_epoch else ex.probabilities
        return np.concatenate([predict(cfg, run, prep, rows) for prep, rows in self.parts])


def split_only(prep: ex.Prepared) -> ScoringSet:
    """``prep``'s test split alone, scored against the labels of Tables 1-2 (clean where complete)."""
    rows = prep.rows("test")
    return ScoringSet(prep.layout, f"{prep.key} test split ({len(rows):,} images)", prep.labels("test"),
                      prep.dataset.patient_ids[rows].astype(str), prep.eval_classes, prep.eval_columns,
                      ((prep, rows),))


def extra_draw(cfg: Profile, paths: RunPaths, layout: str) -> ex.Prepared | None:
    """The second draw of ``layout`` (rendered and cached once, like the benchmark), or ``None`` where the
    profile has none (``extra_test_images`` 0, or real data)."""
    if cfg.dataset != "benchmark" or not cfg.extra_test_images:
        return None
    return ex.prepare(extra_draw_profile(cfg), paths, layout)


def scoring_set(cfg: Profile, paths: RunPaths, prep: ex.Prepared) -> ScoringSet:
    """The verdict's test images on ``prep``'s layout: its test split, plus every image of the second draw.

    Raises
    ------
    ValueError
        If the second draw lacks the clean label of an image or finding (it is scored on nothing else).
    """
    split = split_only(prep)
    extra = extra_draw(cfg, paths, prep.layout)
    if extra is None:
        return split
    for name in _DRAW_SPLITS:
        if extra.label_source(name) != "clean":
            raise ValueError(f"the second test draw {extra.key} has no complete clean labels on its {name} split")
    rows = np.concatenate([extra.rows(name) for name in _DRAW_SPLITS])
    labels = np.concatenate([extra.labels(name) for name in _DRAW_SPLITS])
    patients = np.char.add(f"{extra.key}:", extra.dataset.patient_ids[rows].astype(str))  # other people
    return ScoringSet(
        prep.layout,
        f"{split.name} and every image of a second draw of patients ({extra.key}, {len(rows):,} images)",
        np.concatenate([split.labels, labels]),
        np.concatenate([split.patient_ids, patients]),
        prep.eval_classes,
        prep.eval_columns,
        (*split.parts, (extra, rows)),
    )
