"""The embedded benchmark: phantom radiographs with known clean labels, written in the official layouts.

``python -m paperkit phantom --out DIR --layout nih|chexpert --n-images N --size PX --seed S --noise X``

Cases follow NIH's real statistics (:mod:`paperkit.data.nih_stats`): label combinations (so
prevalence and co-occurrence are NIH's), images per patient (a follow-up keeps the previous
image's findings as often as in NIH), age, sex and view. Training labels are report-mined noisy
labels (:mod:`paperkit.data.noise`); the clean truth is written beside them.

NIH layout (``DIR/``): ``images/<id>.png``, ``Data_Entry_2017_v2020.csv`` (official header, *noisy*
``Finding Labels``), ``train_val_list.txt`` / ``test_list.txt`` (patient-disjoint, ~20 % test),
``BBox_List_2017.csv`` (official header; test images, the 8 boxed findings, NIH's spelling
"Infiltrate"; pixel coordinates of the rendered image, tight around the mask),
``clean_labels.csv`` (``Image Index`` + 14 clean 0/1 columns), ``google2019_nih-chest-xray-labels.csv``
(clean truth of the test images in Google's relabel format), ``masks/<stem>.npz``.

CheXpert layout (``DIR/``): ``CheXpert-v1.0-small/train.csv`` (noisy: 1, 0, -1, blank),
``valid.csv`` (clean 0/1: the test set), ``train_clean.csv`` (clean 0/1 truth of the training rows;
not an official file), images ``CheXpert-v1.0-small/{train,valid}/patientNNNNN/studyK/view1_frontal.jpg``,
masks at ``DIR/masks/{train,valid}/patientNNNNN/studyK/view1_frontal.npz``. NIH findings map to
CheXpert observations by :data:`CHEXPERT_MAP` (a parent is positive when any child is; "No Finding"
when no NIH finding; "Support Devices" from the rendered devices; "Fracture" is never rendered).

Modules: :mod:`.cases` (what is drawn), :mod:`.images` (rendering and image/mask files),
:mod:`.layouts` (the NIH and CheXpert files); this module generates a benchmark from them and is
the ``python -m paperkit phantom`` verb.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from paperkit.artifacts import Step, atomic_path, read_manifest
from paperkit.data import noise as noise_model
from paperkit.data import phantom
from paperkit.data.benchmark.cases import TEST_FRACTION, Draw, draw_benchmark, sample_cases
from paperkit.data.benchmark.images import png_bytes
from paperkit.data.benchmark.layouts import (
    BBOX_HEADER,
    BBOX_NAMES,
    CHEXPERT_MAP,
    NIH_HEADER,
    mask_file,
    write_chexpert_layout,
    write_nih_layout,
)
from paperkit.data.labels import NIH_CLASSES

__all__ = ["BBOX_HEADER", "BBOX_NAMES", "CHEXPERT_MAP", "LAYOUTS", "NIH_HEADER", "TEST_FRACTION", "add_arguments",
           "generate_benchmark", "main", "mask_file", "png_bytes", "sample_cases"]

LAYOUTS = ("nih", "chexpert")


def _rounded(x: float) -> float | None:
    """JSON-safe rate: None where undefined (NaN would not compare equal after a reload)."""
    return None if np.isnan(x) else round(float(x), 4)


def generate_benchmark(
    out_dir: str | os.PathLike,
    layout: str = "nih",
    n_images: int = 6000,
    size: int = 256,
    seed: int = 0,
    noise: float = 1.0,
    workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate the embedded benchmark in ``out_dir`` (see the module docstring for the files).

    Parameters
    ----------
    out_dir
        Layout root; built in a temporary sibling and renamed into place.
    layout
        ``"nih"`` or ``"chexpert"``.
    n_images
        Number of images (at least 10).
    size
        Image size in pixels (32-512).
    seed
        Seed of everything: the same settings give the same bytes.
    noise
        Report-mining noise scale (0 = noisy labels equal the clean ones, 1 = measured rates).
    workers
        Rendering processes (the output does not depend on it).
    overwrite
        Replace a non-empty ``out_dir`` built with other settings.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    Summary dict (also stored in ``out_dir/manifest.json``).

    Raises
    ------
    ValueError
        On a bad argument (the message names it).
    FileExistsError
        If ``out_dir`` is non-empty, not this very benchmark, and ``overwrite`` is false.
    """
    _check_arguments(layout, n_images, size, noise)
    out_dir = Path(out_dir)
    config = {"layout": layout, "n_images": int(n_images), "size": int(size), "seed": int(seed),
              "noise": float(noise), "version": 2}  # 2: noise structure (3, 2, 1), see paperkit.data.noise
    step = Step(out_dir, config)
    if step.done:
        return read_manifest(out_dir)["summary"]
    this_benchmark = (read_manifest(out_dir) or {}).get("hash") == step.hash  # stale only: run_all.sh --force
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite and not this_benchmark:
        raise FileExistsError(f"{out_dir} is not empty; pass --overwrite (overwrite=True) to replace it")
    t0 = time.perf_counter()
    draw = draw_benchmark(n_images, seed, noise)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if layout == "nih":
            extra = write_nih_layout(tmp, draw, size, seed, workers, progress)
        else:
            (tmp / "CheXpert-v1.0-small").mkdir()
            extra = write_chexpert_layout(tmp, draw, size, seed, workers, progress)
    seconds = round(time.perf_counter() - t0, 2)
    summary = {**config, **extra, **_label_summary(draw), "seconds": seconds}
    step.finish(summary)
    return summary


def _check_arguments(layout: str, n_images: int, size: int, noise: float) -> None:
    """Raise ``ValueError`` naming the first bad argument of :func:`generate_benchmark`."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not isinstance(n_images, (int, np.integer)) or n_images < 10:
        raise ValueError(f"n_images must be an integer >= 10, got {n_images!r}")
    phantom.check_size(size)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")


def _label_summary(draw: Draw) -> dict[str, Any]:
    """Patients, split sizes, clean and noisy prevalence, and the noisy labels' PPV and sensitivity."""
    cases, test, noisy = draw.cases, draw.test, draw.noisy
    rates = noise_model.label_rates(cases["labels"], noisy.reported)
    return {
        "n_patients": int(cases["patient"].max()),
        "n_train": int((~test).sum()), "n_test": int(test.sum()),
        "prevalence_clean": dict(zip(NIH_CLASSES, cases["labels"].mean(0).round(5).tolist())),
        "prevalence_noisy": dict(zip(NIH_CLASSES, noisy.reported.mean(0).round(5).tolist())),
        "noisy_ppv": {k: _rounded(v["ppv"]) for k, v in rates.items()},
        "noisy_sensitivity": {k: _rounded(v["sensitivity"]) for k, v in rates.items()},
    }


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``phantom`` verb's options (see :func:`generate_benchmark`)."""
    parser.add_argument("--out", required=True, help="layout root to create")
    parser.add_argument("--layout", choices=LAYOUTS, default="nih")
    parser.add_argument("--n-images", type=int, default=6000)
    parser.add_argument("--size", type=int, default=256, help="image size in px (32-512)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=1.0, help="0 = clean labels, 1 = measured NIH rates")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


def main(args: argparse.Namespace) -> int:
    """Generate the benchmark the options describe; exit status 2 on a bad argument."""
    try:
        summary = generate_benchmark(args.out, args.layout, args.n_images, args.size, args.seed, args.noise,
                                     workers=args.workers, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.out}: {summary['n_images']} images ({summary['n_train']} train, {summary['n_test']} test, "
          f"{summary['n_patients']} patients) in {summary['seconds']} s")
    return 0
