"""How big the data is: images by split of every dataset key a plan trains on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from paperkit.artifacts import read_manifest
from paperkit.config import Profile
from paperkit.paths import RunPaths
from paperkit.pipeline.plan.requests import planned_runs
from paperkit.pipeline.specs import dataset_key
from paperkit.pipeline.specs import layouts as profile_layouts

#: Image counts of the full public datasets, for a plan without ``--data-root``.
#: NIH: Data_Entry_2017_v2020.csv (112,120 images); train_val_list.txt 86,524 / test_list.txt 25,596.
NIH_IMAGES, NIH_TEST_OFFICIAL = 112_120, 25_596
#: CheXpert-v1.0(-small): train.csv 223,414 rows of which 191,027 frontal (counted in the train.csv
#: bundled with torchxrayvision); valid.csv 234 images (all views: the frontal count needs the file).
CHEXPERT_TRAIN, CHEXPERT_TRAIN_FRONTAL, CHEXPERT_VALID = 223_414, 191_027, 234


@dataclass(frozen=True)
class DataSize:
    """Images of one dataset key by split, and where the counts come from."""

    n_train: int
    n_val: int
    n_test: int
    source: str  # "counted in the metadata", "benchmark manifest", "estimated from the profile", ...

    @property
    def n_all(self) -> int:
        return self.n_train + self.n_val + self.n_test


def _split_train_val(n_train_val: int, n_test: int, val_fraction: float, source: str) -> DataSize:
    n_val = round(val_fraction * n_train_val)  # validation patients drawn from the training patients
    return DataSize(n_train_val - n_val, n_val, n_test, source)


def nominal_size(cfg: Profile, layout: str) -> DataSize | None:
    """Counts without the data: the benchmark's from the profile, a public dataset's from its full size."""
    if cfg.dataset == "benchmark":
        from paperkit.data.benchmark import TEST_FRACTION

        test = round(TEST_FRACTION * cfg.n_images)
        return _split_train_val(cfg.n_images - test, test, cfg.val_fraction, "estimated from the profile's n_images")
    if layout == "nih":
        if cfg.split == "official":
            return _split_train_val(NIH_IMAGES - NIH_TEST_OFFICIAL, NIH_TEST_OFFICIAL, cfg.val_fraction,
                                    "NIH's full Data_Entry and official lists (no --data-root)")
        return DataSize(round(0.7 * NIH_IMAGES), round(0.1 * NIH_IMAGES), round(0.2 * NIH_IMAGES),
                        "NIH's full Data_Entry, 70/10/20 by patients (no --data-root)")
    if layout == "chexpert":
        train = CHEXPERT_TRAIN_FRONTAL if cfg.frontal_only else CHEXPERT_TRAIN
        return _split_train_val(train, CHEXPERT_VALID, cfg.val_fraction, "CheXpert's full train.csv and valid.csv "
                                "(no --data-root)")
    return None


def data_sizes(cfg: Profile, paths: RunPaths, counted: Mapping[str, DataSize] | None = None) -> dict[str, DataSize]:
    """Sizes by dataset key: ``counted`` (the preflight's count of a user's data), a generated benchmark's
    manifest, else :func:`nominal_size`. Every noise level of the benchmark holds the same images."""
    out: dict[str, DataSize] = {}
    for layout in profile_layouts(cfg):
        size = (counted or {}).get(layout)
        if size is None and cfg.dataset == "benchmark":
            manifest = read_manifest(paths.benchmark / dataset_key(cfg, layout))
            if manifest and manifest.get("config", {}).get("n_images") == cfg.n_images:
                summary = manifest["summary"]
                size = _split_train_val(summary["n_train"], summary["n_test"], cfg.val_fraction,
                                        "the generated benchmark's manifest")
        size = size or nominal_size(cfg, layout)
        if size is None:
            continue
        out[dataset_key(cfg, layout)] = size
    for run in planned_runs(cfg):  # the noise grid's other draws: the same images, relabelled
        own = out.get(dataset_key(cfg, run.layout))
        if run.dataset_key not in out and own is not None:
            out[run.dataset_key] = own
    return out
