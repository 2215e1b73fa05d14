"""The pipeline's steps, called by the notebooks: data, references, soft labels, pools, targets, evaluation.

Every step is resumable: datasets, caches, soft labels and pools finish with a content-hashed
manifest (:class:`paperkit.artifacts.Step`), and each training run resumes or is skipped by
:func:`paperkit.train.fit`. A notebook can therefore call a step that an earlier notebook already
ran and get the stored result back in a moment: notebooks 06-08 re-request the runs of 02-05.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from paperkit.artifacts import Step
from paperkit.config import Profile
from paperkit.data.cache import ImageCache, build_cache
from paperkit.data.chexpert import load_chexpert
from paperkit.data.datasets import XrayDataset
from paperkit.data.labels import CHEXPERT_TASKS, NIH_CLASSES
from paperkit.data.mimic import load_mimic
from paperkit.data.nih import load_nih
from paperkit.evaluate import ComparisonResult, clean_vs_noisy, compare_models
from paperkit.inference import load_model, predict
from paperkit.knn import load_pools, neighbour_pools, save_pools
from paperkit.losses import uncertain_targets
from paperkit.paths import RunPaths
from paperkit.runtime import pick_device
from paperkit.run_state import RunData, run_config
from paperkit.soft_labels import (average_predictions, combine_out_of_fold, load_soft_labels, out_of_fold_folds,
                                  save_soft_labels)
from paperkit.train import TrainConfig, TrainResult, fit_run
from paperkit.workers import run_parallel

#: The benchmark is generated from this seed; training seeds vary, the data does not.
DATA_SEED = 0
#: Most processes that render the benchmark and decode the image cache (neither output depends on it).
MAX_DATA_WORKERS = 16


def data_workers() -> int:
    """Processes for rendering and decoding: the CPUs this process may use, 2 to :data:`MAX_DATA_WORKERS`.

    Two on a 2-core laptop as before; a 16-core GPU machine renders the paper-resolution benchmark
    eight times faster, which the ``gpu`` profile's time budget counts on.
    """
    try:
        cpus = len(os.sched_getaffinity(0))  # honours container CPU limits set by affinity
    except AttributeError:  # pragma: no cover - macOS, Windows
        cpus = os.cpu_count() or 2
    return max(2, min(MAX_DATA_WORKERS, cpus))


@dataclass
class Prepared:
    """One dataset ready for training: rows, cached images, training targets, evaluation labels."""

    key: str  # artifact namespace, e.g. "nih" or "nih-noise0.5"
    layout: str  # nih | chexpert
    dataset: XrayDataset
    images: ImageCache
    targets: np.ndarray  # [N, C] BCE targets after the uncertain-label policy
    mask: np.ndarray  # [N, C] which targets count (U-Ignore masks -1)
    eval_classes: tuple[str, ...]  # Table 1: the 14 findings; Table 2: the five CheXpert tasks
    eval_columns: np.ndarray  # positions of eval_classes in dataset.classes

    @property
    def classes(self) -> tuple[str, ...]:
        return self.dataset.classes

    def rows(self, split: str) -> np.ndarray:
        return self.dataset.indices(split)

    def clean_coverage(self, split: str = "test") -> str:
        """How much clean truth ``split`` holds on the eval classes.

        Returns
        -------
        str
            ``complete``: every image and eval class (the embedded benchmark; CheXpert's
            radiologist-labelled test set); ``partial``: some of them (Google's NIH relabels: a few
            findings on a subset of images); ``none``: no clean truth.
        """
        clean = self.dataset.clean_labels
        if clean is None:
            return "none"
        known = ~np.isnan(clean[self.rows(split)][:, self.eval_columns])
        if known.all() and known.size:
            return "complete"
        return "partial" if known.any() else "none"

    def mined_labels(self, split: str | None = None) -> np.ndarray:
        """The report-mined labels ``[n, C]`` over every finding, the one meaning of "mined labels" in the
        kit: a positive mention is 1, a negative or blank one 0, an uncertain one unknown (NaN),
        whatever the training policy. All rows when ``split`` is ``None``."""
        raw = self.dataset.labels if split is None else self.dataset.labels[self.rows(split)]
        mined = np.nan_to_num(raw, nan=0.0).astype(np.float32)
        mined[mined < 0] = np.nan
        return mined

    def label_source(self, split: str = "test", clean: bool = True) -> str:
        """Which labels :meth:`labels` scores ``split`` against: ``clean`` or ``mined``."""
        return "clean" if clean and self.clean_coverage(split) == "complete" else "mined"

    def labels(self, split: str, clean: bool = True) -> np.ndarray:
        """Evaluation labels ``[n, E]`` (0/1/NaN) from one source, never a mix of two.

        Parameters
        ----------
        split
            ``train``, ``val`` or ``test``.
        clean
            Use the clean truth when it is complete on ``split`` (see :meth:`clean_coverage`).
            Partial clean truth (Google's relabels of real NIH) is never used: Table 1 then scores
            the mined labels, as the paper does; :func:`paperkit.relabel.relabel_evaluation` scores Google's labels
            on their own.
        """
        rows = self.rows(split)
        if self.label_source(split, clean) == "clean":
            return self.dataset.clean_labels[rows][:, self.eval_columns].copy()
        return self.mined_labels(split)[:, self.eval_columns]


def layouts(cfg: Profile) -> list[str]:
    """The datasets a profile trains on: both benchmark layouts, or the user's dataset."""
    return list(cfg.layouts) if cfg.dataset == "benchmark" else [cfg.dataset]


def prepare(cfg: Profile, paths: RunPaths, layout: str, *, noise: float | None = None,
            policy: str | None = None, progress: bool = False) -> Prepared:
    """Generate (benchmark) or load (user data) one dataset, cache its images, derive its targets.

    Parameters
    ----------
    noise
        Benchmark only: a label-noise level other than the profile's (the noise sweep).
    policy
        CheXpert uncertain-label policy other than the profile's (the U-Ones/U-Zeros/LSR baselines).
    """
    data_seed = DATA_SEED
    if cfg.dataset == "benchmark":
        level = cfg.noise if noise is None else noise
        data_seed = cfg.benchmark_seed
        root = paths.benchmark_layout(layout, None if noise is None else level, data_seed)
        from paperkit.data.benchmark import generate_benchmark

        generate_benchmark(root, layout, cfg.n_images, cfg.render_size, seed=data_seed, noise=level,
                           workers=data_workers(), progress=progress)
        key = root.name
    else:
        root, key = Path(cfg.data_root), layout
    # the benchmark writes every image it lists; on real data the profile says what a missing image means
    missing = cfg.missing if cfg.dataset != "benchmark" else "error"
    if layout == "nih":
        split = "official" if cfg.dataset == "benchmark" else cfg.split
        dataset = load_nih(root, split=split, seed=data_seed, val_fraction=cfg.val_fraction, missing=missing)
        eval_classes = NIH_CLASSES
    elif layout == "chexpert":
        dataset = load_chexpert(root, frontal_only=cfg.frontal_only, seed=data_seed, val_fraction=cfg.val_fraction,
                                missing=missing)
        eval_classes = CHEXPERT_TASKS
    elif layout == "mimic":  # MIMIC-CXR-JPG (not in the paper): CheXpert's observations, scored on its five tasks
        dataset = load_mimic(root, frontal_only=cfg.frontal_only, missing=missing)
        eval_classes = CHEXPERT_TASKS
    else:
        raise ValueError(f"layout must be nih, chexpert or mimic, got {layout!r}")
    images = build_cache(dataset.paths, paths.image_cache(f"{key}-{cfg.resize}px"), size=cfg.resize,
                         workers=data_workers(), progress=progress)
    targets, mask = uncertain_targets(dataset.labels, policy or cfg.uncertain_policy, seed=data_seed)
    columns = np.array([dataset.classes.index(c) for c in eval_classes])
    return Prepared(key, layout, dataset, images, targets, mask, tuple(eval_classes), columns)


@dataclass(frozen=True)
class RunRequest:
    """One training run for :func:`train_runs`: the arguments of :func:`train_run`."""

    prep: Prepared
    name: str
    arch: str
    seed: int
    variant: str = "B"
    soft: np.ndarray | None = None
    pools: tuple[np.ndarray, np.ndarray] | None = None
    rows: np.ndarray | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)


def train_runs(cfg: Profile, paths: RunPaths, requests: Sequence[RunRequest]) -> list[TrainResult]:
    """Independent runs, up to ``cfg.workers`` at once (:mod:`paperkit.workers`); results in request order.

    Runs already finished are only loaded. The results do not depend on ``workers``.
    """
    pending = [r for r in requests if not _run_step(cfg, paths, r).done]
    if cfg.workers > 1 and len(pending) > 1:
        gpus = torch.cuda.device_count() if pick_device(cfg.device, 0).type == "cuda" else 0
        run_parallel(_train_in_worker, [(cfg, paths, r) for r in pending], cfg.workers, gpus)
    return [train_run(cfg, paths, r.prep, r.name, r.arch, r.seed, r.variant, soft=r.soft, pools=r.pools, rows=r.rows,
                      **r.changes) for r in requests]


def _train_in_worker(job: tuple[Profile, RunPaths, RunRequest]) -> None:
    """One run in a worker process, with the torch threads the worker was given; the parent loads it."""
    cfg, paths, r = job
    cfg = dataclasses.replace(cfg, num_threads=torch.get_num_threads())  # not the profile's: the worker's share
    train_run(cfg, paths, r.prep, r.name, r.arch, r.seed, r.variant, soft=r.soft, pools=r.pools, rows=r.rows,
              **r.changes)


def _run_step(cfg: Profile, paths: RunPaths, r: RunRequest) -> Step:
    config, data, run_dir = _run_inputs(cfg, paths, r.prep, r.name, r.arch, r.seed, r.variant, r.soft, r.pools,
                                        r.rows, dict(r.changes))
    return Step(run_dir, {"train": run_config(config), "data": data.hash})


def _run_inputs(cfg: Profile, paths: RunPaths, prep: Prepared, name: str, arch: str, seed: int, variant: str,
                soft: np.ndarray | None, pools: tuple[np.ndarray, np.ndarray] | None, rows: np.ndarray | None,
                changes: dict[str, Any]) -> tuple[TrainConfig, RunData, Path]:
    """The config, inputs and folder of one run (what :func:`train_run` trains)."""
    config = TrainConfig.from_profile(cfg, arch, seed, variant, **changes)
    # pass only what the run uses, so B is not retrained when the soft labels change
    soft = soft if config.lambda_modl > 0 else None
    pools = pools if config.gamma_knns > 0 else None
    train = prep.rows("train") if rows is None else rows
    watched = rows is None and not changes and seed == cfg.seeds[0] and variant in MEMORISATION_VARIANTS
    monitor = memorisation_monitor(cfg, prep) if watched else None
    # the epoch is chosen on the mined validation labels: a real user has no clean truth to select on
    data = RunData.build(prep.images, train, prep.rows("val"), prep.targets, prep.mask, soft, pools,
                         prep.mined_labels(), prep.classes, monitor)
    return config, data, paths.run_dir(f"{prep.key}/{name}")


def train_run(cfg: Profile, paths: RunPaths, prep: Prepared, name: str, arch: str, seed: int,
              variant: str = "B", *, soft: np.ndarray | None = None,
              pools: tuple[np.ndarray, np.ndarray] | None = None, rows: np.ndarray | None = None,
              **changes) -> TrainResult:
    """Train (or resume, or load) one run named ``name`` under ``checkpoints/<dataset key>/``.

    ``variant`` switches on MODL/KNNS with the profile's λ, γ (see :meth:`TrainConfig.from_profile`);
    ``changes`` override single training fields (``k``, ``lambda_modl``, ``knns_mode``, ...).
    ``rows`` trains on a subset of the training split (the out-of-fold references); default: all of it.
    """
    config, data, run_dir = _run_inputs(cfg, paths, prep, name, arch, seed, variant, soft, pools, rows, changes)
    return fit_run(config, data, run_dir, progress=True)


#: The runs whose memorisation curves notebook 05 draws (first seed, the profile's own settings).
MEMORISATION_VARIANTS = ("B", "B+MODL+KNNS")


def memorisation_monitor(cfg: Profile, prep: Prepared) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """What the memorisation figure needs each epoch, on the embedded benchmark only (teaching).

    ``train_mined``: the training images against the mined labels they are trained on (rising far
    above the clean-label curve = memorising the noise); ``test_clean``: the test images against
    the clean truth. Only the evaluated findings count. ``None`` unless the profile's ``teaching``
    asks for ``memorisation`` and the data is the benchmark (complete clean labels).
    """
    own_data = RunPaths(Path()).benchmark_layout(prep.layout, None, cfg.benchmark_seed).name
    if "memorisation" not in cfg.teaching or cfg.dataset != "benchmark" or prep.key != own_data:
        return None
    train, test = prep.rows("train"), prep.rows("test")
    keep = np.full(len(prep.classes), np.nan)
    keep[prep.eval_columns] = 1.0  # other findings are NaN: not scored
    return {"train_mined": (train, prep.mined_labels("train") * keep),
            "test_clean": (test, prep.dataset.clean_labels[test] * keep)}


def reference_name(arch: str, seed: int = 0) -> str:
    return f"ref-{arch}-s{seed}"


def oof_run_name(arch: str, seed: int, fold: int, n_folds: int) -> str:
    """The out-of-fold reference of ``arch`` that leaves fold ``fold`` of ``n_folds`` out."""
    return f"{reference_name(arch, seed)}-oof{fold}of{n_folds}"


def target_name(variant: str, seed: int, **tags) -> str:
    extra = "".join(f"-{k}{v}" for k, v in sorted(tags.items()))
    return f"{variant}-s{seed}{extra}"


def train_references(cfg: Profile, paths: RunPaths, prep: Prepared, seed: int = 0,
                     archs: Sequence[str] | None = None) -> dict[str, TrainResult]:
    """The N reference CNNs of the paper's first step, each trained with BCE only (``cfg.workers`` at once)."""
    archs = list(archs or cfg.reference_archs)
    runs = train_runs(cfg, paths, [RunRequest(prep, reference_name(arch, seed), arch, seed) for arch in archs])
    return dict(zip(archs, runs))


def probabilities(cfg: Profile, result: TrainResult | Path, prep: Prepared, rows: np.ndarray) -> np.ndarray:
    """Predicted probabilities ``[n, C]`` of a trained run on dataset ``rows`` (centre crops), on the
    profile's device (bf16 autocast on CUDA, as in training)."""
    model = load_model(result) if isinstance(result, Path) else result.model
    probs = predict(model, prep.images, rows, cfg.crop, batch_size=256, device=pick_device(cfg.device, 0))
    model.cpu()  # a TrainResult's model lives on the CPU (fit's contract): notebooks feed it CPU tensors
    return probs


def soft_labels(cfg: Profile, paths: RunPaths, prep: Prepared, refs: Mapping[str, TrainResult],
                name: str = "all") -> np.ndarray:
    """Eq. 2's l_i for every row: the average of the references' probabilities (cached with a manifest)."""
    every = np.arange(len(prep.dataset))
    return _cached_soft_labels(cfg, paths, prep, name, {"references": sorted(refs)}, list(refs.values()),
                               lambda: average_predictions([probabilities(cfg, r, prep, every) for r in refs.values()]))


def out_of_fold_soft_labels(cfg: Profile, paths: RunPaths, prep: Prepared, n_folds: int,
                            archs: Sequence[str] | None = None, seed: int = 0) -> np.ndarray:
    """Soft labels from references that never saw the image they score (a teaching ablation, not the paper).

    The training *patients* are dealt into ``n_folds`` folds; each architecture is trained once per
    fold on the other folds' rows and scores the held-out fold. Rows outside the training split
    (validation, test) take the mean of an architecture's fold models. Costs ``n_folds`` reference
    trainings per architecture, each on ``(n_folds - 1) / n_folds`` of the data.
    """
    archs = list(archs or cfg.reference_archs)
    train = prep.rows("train")
    fold_of_train = out_of_fold_folds(prep.dataset.patient_ids[train], n_folds, seed=DATA_SEED)
    requests = [RunRequest(prep, oof_run_name(arch, seed, f, n_folds), arch, seed,
                           rows=train[fold_of_train != f]) for arch in archs for f in range(n_folds)]
    done = iter(train_runs(cfg, paths, requests))
    runs = {arch: [next(done) for _ in range(n_folds)] for arch in archs}

    def compute() -> np.ndarray:
        every = np.arange(len(prep.dataset))
        folds = np.full(len(every), n_folds)  # fold id n_folds = "outside the training split"
        folds[train] = fold_of_train
        per_arch = []
        for fold_runs in runs.values():
            fold_probs = [probabilities(cfg, r, prep, every) for r in fold_runs]
            outside = average_predictions(fold_probs)
            per_arch.append(combine_out_of_fold([*fold_probs, outside], folds))
        return average_predictions(per_arch)

    every_run = [r for fold_runs in runs.values() for r in fold_runs]
    return _cached_soft_labels(cfg, paths, prep, f"oof{n_folds}", {"references": archs, "folds": n_folds},
                               every_run, compute)


def _cached_soft_labels(cfg: Profile, paths: RunPaths, prep: Prepared, name: str, config: dict,
                        runs: Sequence[TrainResult], compute) -> np.ndarray:
    """Soft labels ``soft_labels/<key>/<name>``, computed once per set of reference runs (Step manifest)."""
    out = paths.soft_labels / prep.key / name
    step = Step(out, {**config, "crop": cfg.crop}, [r.run_dir for r in runs])
    if not step.done:
        step.start()
        soft = compute()
        save_soft_labels(out, soft, prep.dataset.image_ids, [r.run_dir.name for r in runs])
        step.finish({"n": len(soft)})
    return load_soft_labels(out)[0]


def pools(cfg: Profile, paths: RunPaths, prep: Prepared, soft: np.ndarray, k: int,
          name: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """K nearest training neighbours of every training image in soft-label space (eq. 3), cached."""
    out = paths.pools / prep.key / f"{name}-k{k}"
    soft_dir = paths.soft_labels / prep.key / name
    step = Step(out, {"k": k, "sigma": cfg.sigma}, [soft_dir])
    if not step.done:
        step.start()
        train = prep.rows("train")
        index, similarity = neighbour_pools(soft[train], k, cfg.sigma)
        save_pools(out, index, similarity, prep.dataset.image_ids[train])
        step.finish({"n": len(index)})
    index, similarity, _ = load_pools(out)
    return index, similarity


def evaluate(cfg: Profile, prep: Prepared, probs: Mapping[str, np.ndarray], reference: str = "B",
             clean: bool = True, split: str = "test") -> ComparisonResult:
    """The one evaluation path: per-class AUC, patient bootstrap CIs, DeLong, on the eval classes."""
    rows = prep.rows(split)
    scores = {m: p[:, prep.eval_columns] for m, p in probs.items()}
    return compare_models(prep.labels(split, clean), scores, prep.dataset.patient_ids[rows],
                          prep.eval_classes, reference=reference, n_boot=cfg.bootstrap, seed=0)


def clean_vs_mined(cfg: Profile, prep: Prepared, probs: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Mean test AUC (%) of each model against the clean and against the mined test labels, with the
    gap (benchmark only): label noise in the *test* set caps the AUC one can measure."""
    rows = prep.rows("test")
    table = clean_vs_noisy(prep.labels("test", clean=True), prep.labels("test", clean=False),
                           {m: p[:, prep.eval_columns] for m, p in probs.items()}, prep.dataset.patient_ids[rows],
                           prep.eval_classes, n_boot=cfg.bootstrap)
    mean = table[table["class"] == "Mean"].set_index("model")[["auc_clean", "auc_noisy", "noise_gap"]]
    return (100 * mean.rename(columns={"auc_clean": "clean labels", "auc_noisy": "mined labels",
                                       "noise_gap": "mined − clean"})).round(2)


def finding_mask(cfg: Profile, prep: Prepared, row: int, finding: str) -> np.ndarray | None:
    """The benchmark's lesion mask of ``finding`` on image ``row``, resized and centre-cropped like the input.

    ``finding`` is an NIH finding or a CheXpert observation (the union of the NIH findings it maps
    to, e.g. "Pleural Effusion" -> Effusion); ``None`` when the image has no such mask (or the data
    is not the benchmark)."""
    from paperkit.data.benchmark import CHEXPERT_MAP, mask_file

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
