"""The pipeline's steps, called by the notebooks: data, references, soft labels, pools, targets, evaluation.

Every step is resumable: datasets, caches, soft labels and pools finish with a content-hashed
manifest (:class:`paperkit.artifacts.Step`), and each training run resumes or is skipped by
:func:`paperkit.training.loop.fit`. A notebook can therefore call a step that an earlier notebook already
ran and get the stored result back in a moment: notebooks 06-08 re-request the runs of 02-05.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence, TypeVar

import numpy as np
import pandas as pd
import torch

from paperkit.artifacts import Step
from paperkit.config import Profile
from paperkit.data.cache import ImageCache, build_cache
from paperkit.data.chexpert import load_chexpert
from paperkit.data.datasets import XrayDataset
from paperkit.data.labels import CHEXPERT_TASKS, NIH_CLASSES
from paperkit.data.mimic import load_mimic
from paperkit.data.nih import load_nih
from paperkit.evaluation.comparison_cache import cached_compare_models
from paperkit.evaluation.metrics import ComparisonResult, clean_vs_noisy
from paperkit.method.knn import load_pools, neighbour_pools, save_pools
from paperkit.method.losses import uncertain_targets
from paperkit.method.noisy_losses import get_method
from paperkit.method.soft_labels import (
    average_predictions,
    combine_out_of_fold,
    load_soft_labels,
    out_of_fold_folds,
    save_soft_labels,
)
from paperkit.paths import RunPaths
from paperkit.pipeline.specs import (
    ALL_REFERENCES,
    Pools,
    RunSpec,
    SoftLabels,
    dataset_key,
    layouts,  # noqa: F401  (the notebooks call ex.layouts)
    oof_subset,
    run_spec,
)
from paperkit.runtime import pick_device
from paperkit.training import predictions
from paperkit.training.inference import load_model, predict
from paperkit.training.loop import TrainConfig, TrainResult, fit_run, run_step
from paperkit.training.state import RunData
from paperkit.training.workers import in_process, resolve_workers, run_parallel

#: A group's key in :func:`train_grouped` (a layout, a cell).
K = TypeVar("K", bound=Hashable)

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
    training_labels: str  # how targets and mask were made: the uncertain-label policy and any edit (run identity)

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
            the mined labels, as the paper does; :func:`paperkit.pipeline.relabel.relabel_evaluation` scores
            Google's labels on their own.
        """
        rows = self.rows(split)
        if self.label_source(split, clean) == "clean":
            return self.dataset.clean_labels[rows][:, self.eval_columns].copy()
        return self.mined_labels(split)[:, self.eval_columns]


def prepare(
    cfg: Profile,
    paths: RunPaths,
    layout: str,
    *,
    noise: float | None = None,
    policy: str | None = None,
    progress: bool = False,
) -> Prepared:
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
        key = dataset_key(cfg, layout, noise)
        root = paths.benchmark / key
        from paperkit.data.benchmark import generate_benchmark

        generate_benchmark(
            root,
            layout,
            cfg.n_images,
            cfg.render_size,
            seed=data_seed,
            noise=level,
            workers=data_workers(),
            progress=progress,
        )
    else:
        root, key = Path(cfg.data_root), layout
    # the benchmark writes every image it lists; on real data the profile says what a missing image means
    missing = cfg.missing if cfg.dataset != "benchmark" else "error"
    if layout == "nih":
        split = "official" if cfg.dataset == "benchmark" else cfg.split
        dataset = load_nih(root, split=split, seed=data_seed, val_fraction=cfg.val_fraction, missing=missing)
        eval_classes = NIH_CLASSES
    elif layout == "chexpert":
        dataset = load_chexpert(
            root, frontal_only=cfg.frontal_only, seed=data_seed, val_fraction=cfg.val_fraction, missing=missing
        )
        eval_classes = CHEXPERT_TASKS
    elif layout == "mimic":  # MIMIC-CXR-JPG (not in the paper): CheXpert's observations, scored on its five tasks
        dataset = load_mimic(root, frontal_only=cfg.frontal_only, missing=missing)
        eval_classes = CHEXPERT_TASKS
    else:
        raise ValueError(f"layout must be nih, chexpert or mimic, got {layout!r}")
    images = build_cache(
        dataset.paths,
        paths.image_cache(f"{key}-{cfg.resize}px"),
        size=cfg.resize,
        workers=data_workers(),
        progress=progress,
    )
    policy = policy or cfg.uncertain_policy
    targets, mask = uncertain_targets(dataset.labels, policy, seed=data_seed)
    columns = np.array([dataset.classes.index(c) for c in eval_classes])
    return Prepared(key, layout, dataset, images, targets, mask, tuple(eval_classes), columns, policy)


@dataclass(frozen=True)
class RunRequest:
    """One training run for :func:`train_runs`; its folder comes from :meth:`spec`.

    ``variant`` switches on MODL/KNNS with the profile's λ, γ (see :meth:`TrainConfig.from_profile`);
    ``changes`` override single training fields (``k``, ``lambda_modl``, ``knns_mode``, ...);
    ``rows`` trains on a part of the training split named ``subset`` (the out-of-fold references).
    """

    prep: Prepared
    arch: str
    seed: int
    variant: str = "B"
    soft: SoftLabels | None = None
    pools: Pools | None = None
    subset: str = ""
    rows: np.ndarray | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)

    def spec(self, cfg: Profile) -> RunSpec:
        if (self.rows is None) != (not self.subset):
            raise ValueError(
                f"a run on part of the training split needs both rows and a subset name, "
                f"got subset={self.subset!r} and rows={'None' if self.rows is None else len(self.rows)}"
            )
        return run_spec(
            cfg,
            self.prep.key,
            self.prep.training_labels,
            self.arch,
            self.seed,
            self.variant,
            soft=self.soft,
            pools=self.pools,
            subset=self.subset,
            changes=self.changes,
        )


def train_runs(cfg: Profile, paths: RunPaths, requests: Sequence[RunRequest]) -> list[TrainResult]:
    """Train (or resume, or load) independent runs, up to ``cfg.workers`` at once (:mod:`paperkit.training.workers`).

    Results come in request order; runs already finished are only loaded. The results do not depend
    on ``workers`` (up to float rounding on a CPU). Runs of a method registered outside paperkit (a
    reader's own) train here: a worker starts from a fresh interpreter, which knows only paperkit's methods.
    """
    inputs = [run_inputs(cfg, paths, r) for r in requests]
    pending = [(r, config) for r, (config, data, run_dir) in zip(requests, inputs)
               if not run_step(config, data, run_dir).done]
    device = pick_device(cfg.device, 0).type
    workers, gpus = resolve_workers(
        cfg.workers, cfg.devices, device, torch.cuda.device_count() if device == "cuda" else 0
    )
    if not all(_known_to_workers(config.method) for _, config in pending):
        workers, gpus = 1, gpus[:1]
    if not in_process(min(workers, len(pending)), gpus):  # else the loop below trains them here
        run_parallel(_train_in_worker, [(cfg, paths, r) for r, _ in pending], workers, gpus)
    return [fit_run(config, data, run_dir, progress=True) for config, data, run_dir in inputs]


def train_grouped(
    cfg: Profile, paths: RunPaths, groups: Mapping[K, Sequence[RunRequest]]
) -> dict[K, list[TrainResult]]:
    """:func:`train_runs` over several groups at once (e.g. a section's requests per layout), in one pool.

    One call keeps both workers busy where a call per group would leave one idle at each group's end.
    The groups' requests are handed out in turn (the first of each group, then the second, ...), so that
    runs of the same kind, and about the same length, train side by side. Results come back per group,
    in request order.
    """
    order = taken_in_turn(groups)
    results = dict(zip(order, train_runs(cfg, paths, [groups[key][i] for key, i in order])))
    return {key: [results[key, i] for i in range(len(requests))] for key, requests in groups.items()}


def taken_in_turn(groups: Mapping[K, Sequence[Any]]) -> list[tuple[K, int]]:
    """``(group, index)`` of every item, the groups taken in turn: each group's first, then each one's second, ..."""
    return [(key, i) for i in range(max(map(len, groups.values()), default=0))
            for key, items in groups.items() if i < len(items)]


def train_run(
    cfg: Profile,
    paths: RunPaths,
    prep: Prepared,
    arch: str,
    seed: int,
    variant: str = "B",
    *,
    soft: SoftLabels | None = None,
    pools: Pools | None = None,
    **changes: Any,
) -> TrainResult:
    """One run of :func:`train_runs` over the whole training split (see :class:`RunRequest`)."""
    return train_runs(cfg, paths, [RunRequest(prep, arch, seed, variant, soft, pools, changes=changes)])[0]


def _known_to_workers(method: str) -> bool:
    """Whether a fresh interpreter's registry holds ``method`` (paperkit registers its own on import)."""
    return get_method(method).loss.__module__.startswith("paperkit.")


def _train_in_worker(job: tuple[Profile, RunPaths, RunRequest]) -> None:
    """One run in a worker process, with the torch threads the worker was given; the parent loads it."""
    cfg, paths, request = job
    cfg = dataclasses.replace(cfg, num_threads=torch.get_num_threads())  # not the profile's: the worker's share
    fit_run(*run_inputs(cfg, paths, request), progress=True)


def run_inputs(cfg: Profile, paths: RunPaths, request: RunRequest) -> tuple[TrainConfig, RunData, Path]:
    """The config, inputs (as tensors, content-hashed) and folder of one run."""
    spec = request.spec(cfg)
    prep = request.prep
    train = prep.rows("train") if request.rows is None else request.rows
    monitor = memorisation_monitor(prep) if spec.monitored else None
    # the epoch is chosen on the mined validation labels: a real user has no clean truth to select on
    data = RunData.build(
        prep.images,
        train,
        prep.rows("val"),
        prep.targets,
        prep.mask,
        request.soft.values if spec.soft else None,
        request.pools.arrays if spec.pools else None,
        prep.mined_labels(),
        prep.classes,
        monitor,
    )
    return spec.config, data, paths.run_dir(spec.folder)


def memorisation_monitor(prep: Prepared) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What the memorisation figure needs each epoch (benchmark only: complete clean labels).

    ``train_mined``: the training images against the mined labels they are trained on (rising far
    above the clean-label curve = memorising the noise); ``test_clean``: the test images against
    the clean truth. Only the evaluated findings count. Which runs record it:
    :func:`paperkit.pipeline.specs.run_spec` (``monitored``).
    """
    train, test = prep.rows("train"), prep.rows("test")
    keep = np.full(len(prep.classes), np.nan)
    keep[prep.eval_columns] = 1.0  # other findings are NaN: not scored
    return {
        "train_mined": (train, prep.mined_labels("train") * keep),
        "test_clean": (test, prep.dataset.clean_labels[test] * keep),
    }


def train_references(
    cfg: Profile, paths: RunPaths, prep: Prepared, seed: int = 0, archs: Sequence[str] | None = None
) -> dict[str, TrainResult]:
    """The N reference CNNs of the paper's first step, each trained with BCE only (``cfg.workers`` at once)."""
    archs = list(archs or cfg.reference_archs)
    return dict(zip(archs, train_runs(cfg, paths, [RunRequest(prep, arch, seed) for arch in archs])))


#: Images per inference batch in :func:`probabilities`.
PREDICT_BATCH = 256


def probabilities(cfg: Profile, result: TrainResult | Path, prep: Prepared, rows: np.ndarray) -> np.ndarray:
    """Predicted probabilities ``[n, C]`` of a trained run on dataset ``rows`` (centre crops), on the
    profile's device (bf16 autocast on CUDA, as in training).

    Stored in the run's folder (:mod:`paperkit.training.predictions`), keyed by the finished training, the
    rows, the image cache and the inference settings: a rerun loads them instead of predicting again.
    """
    device = pick_device(cfg.device, 0)
    run_dir = Path(result) if isinstance(result, Path) else result.run_dir

    def compute() -> np.ndarray:
        model = load_model(result) if isinstance(result, Path) else result.model
        probs = predict(model, prep.images, rows, cfg.crop, batch_size=PREDICT_BATCH, device=device)
        model.cpu()  # a TrainResult's model lives on the CPU (fit's contract): notebooks feed it CPU tensors
        return probs

    best_epoch = None if isinstance(result, Path) else result.best_epoch
    return predictions.cached(
        run_dir, prep.images, rows, len(prep.classes), cfg.crop, PREDICT_BATCH, device, compute, best_epoch=best_epoch
    )


def last_epoch_probabilities(cfg: Profile, result: TrainResult, prep: Prepared, rows: np.ndarray) -> np.ndarray:
    """Probabilities ``[n, C]`` of the run's model after its last epoch (``last.pt``), not the epoch
    validation chose; stored beside :func:`probabilities`' under the same kind of key."""
    device = pick_device(cfg.device, 0)

    def compute() -> np.ndarray:
        return predict(load_model(result.run_dir, "last"), prep.images, rows, cfg.crop, batch_size=PREDICT_BATCH,
                       device=device)

    return predictions.cached(result.run_dir, prep.images, rows, len(prep.classes), cfg.crop, PREDICT_BATCH, device,
                              compute, checkpoint="last")


def soft_labels(
    cfg: Profile, paths: RunPaths, prep: Prepared, refs: Mapping[str, TrainResult], name: str = ALL_REFERENCES
) -> SoftLabels:
    """Eq. 2's l_i for every row: the average of the references' probabilities (cached with a manifest)."""
    every = np.arange(len(prep.dataset))
    return _cached_soft_labels(
        cfg,
        paths,
        prep,
        name,
        list(refs.values()),
        lambda: average_predictions([probabilities(cfg, r, prep, every) for r in refs.values()]),
    )


def out_of_fold_soft_labels(
    cfg: Profile, paths: RunPaths, prep: Prepared, n_folds: int, archs: Sequence[str] | None = None, seed: int = 0
) -> SoftLabels:
    """Soft labels from references that never saw the image they score (a teaching ablation, not the paper).

    The training *patients* are dealt into ``n_folds`` folds; each architecture is trained once per
    fold on the other folds' rows and scores the held-out fold. Rows outside the training split
    (validation, test) take the mean of an architecture's fold models. Costs ``n_folds`` reference
    trainings per architecture, each on ``(n_folds - 1) / n_folds`` of the data.
    """
    archs = list(archs or cfg.reference_archs)
    train = prep.rows("train")
    fold_of_train = out_of_fold_folds(prep.dataset.patient_ids[train], n_folds, seed=DATA_SEED)
    requests = [
        RunRequest(prep, arch, seed, subset=oof_subset(f, n_folds), rows=train[fold_of_train != f])
        for arch in archs
        for f in range(n_folds)
    ]
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
    return _cached_soft_labels(cfg, paths, prep, f"oof{n_folds}", every_run, compute, folds=n_folds)


def run_folder(run: TrainResult) -> str:
    """``<dataset key>/<run name>``: a trained run's folder relative to ``checkpoints/`` (its
    :attr:`RunSpec.folder`)."""
    return f"{run.run_dir.parent.name}/{run.run_dir.name}"


def _cached_soft_labels(
    cfg: Profile,
    paths: RunPaths,
    prep: Prepared,
    name: str,
    runs: Sequence[TrainResult],
    compute: Callable[[], np.ndarray],
    **settings: Any,
) -> SoftLabels:
    """Soft labels ``soft_labels/<key>/<name>-<identity>``, computed once per set of reference runs (Step manifest)."""
    soft = SoftLabels.of(cfg, prep.key, name, [run_folder(r) for r in runs], **settings)
    out = paths.soft_labels / soft.folder
    step = Step(out, {"crop": cfg.crop, **settings}, [r.run_dir for r in runs])
    if not step.done:
        step.start()
        values = compute()
        save_soft_labels(out, values, prep.dataset.image_ids, [run_folder(r) for r in runs])
        step.finish({"n": len(values)})
    return dataclasses.replace(soft, values=load_soft_labels(out)[0])


def pools(cfg: Profile, paths: RunPaths, prep: Prepared, soft: SoftLabels, k: int) -> Pools:
    """K nearest training neighbours of every training image in soft-label space (eq. 3), cached."""
    pool = Pools.of(cfg, soft, k)
    out = paths.pools / pool.folder
    step = Step(out, {"k": k, "sigma": cfg.sigma}, [paths.soft_labels / soft.folder])
    if not step.done:
        step.start()
        train = prep.rows("train")
        index, similarity = neighbour_pools(soft.values[train], k, cfg.sigma)
        save_pools(out, index, similarity, prep.dataset.image_ids[train])
        step.finish({"n": len(index)})
    index, similarity, _ = load_pools(out)
    return dataclasses.replace(pool, index=index, similarity=similarity)


def method_inputs(cfg: Profile, paths: RunPaths, layout: str) -> tuple[Prepared, SoftLabels, Pools]:
    """The method's inputs on one layout: the prepared data, the soft labels of every reference and
    their pools of ``cfg.k`` neighbours (notebooks 01-04 make them; afterwards each is only loaded)."""
    prep = prepare(cfg, paths, layout)
    soft = soft_labels(cfg, paths, prep, train_references(cfg, paths, prep))
    return prep, soft, pools(cfg, paths, prep, soft, cfg.k)


def evaluate(
    cfg: Profile,
    prep: Prepared,
    probs: Mapping[str, np.ndarray],
    reference: str = "B",
    clean: bool = True,
    split: str = "test",
) -> ComparisonResult:
    """The one evaluation path: per-class AUC, patient bootstrap CIs, DeLong, on the eval classes.

    Remembered under the profile's ``evaluations/`` folder, keyed by every input
    (:mod:`paperkit.evaluation.comparison_cache`): a rerun with the same predictions loads the bootstrap."""
    rows = prep.rows(split)
    scores = {m: p[:, prep.eval_columns] for m, p in probs.items()}
    return cached_compare_models(
        RunPaths.for_profile(cfg).evaluations,
        prep.labels(split, clean),
        scores,
        prep.dataset.patient_ids[rows],
        prep.eval_classes,
        reference=reference,
        n_boot=cfg.bootstrap,
        seed=0,
    )


def clean_vs_mined(cfg: Profile, prep: Prepared, probs: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Mean test AUC (%) of each model against the clean and against the mined test labels, with the
    gap (benchmark only): label noise in the *test* set caps the AUC one can measure."""
    rows = prep.rows("test")
    table = clean_vs_noisy(
        prep.labels("test", clean=True),
        prep.labels("test", clean=False),
        {m: p[:, prep.eval_columns] for m, p in probs.items()},
        prep.dataset.patient_ids[rows],
        prep.eval_classes,
        n_boot=cfg.bootstrap,
    )
    mean = table[table["class"] == "Mean"].set_index("model")[["auc_clean", "auc_noisy", "noise_gap"]]
    return (
        100
        * mean.rename(columns={"auc_clean": "clean labels", "auc_noisy": "mined labels", "noise_gap": "mined − clean"})
    ).round(2)
