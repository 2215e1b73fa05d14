"""What runs: every training run and soft-label set the notebooks of a profile request, in request order."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from paperkit.config import Profile
from paperkit.pipeline import lab, sections
from paperkit.pipeline.experiment import RunRequest, taken_in_turn
from paperkit.pipeline.sections import NamedData
from paperkit.pipeline.specs import (
    ALL_REFERENCES,
    Pools,
    RunSpec,
    SoftLabels,
    dataset_key,
    oof_subset,
    pruned_labels,
    run_spec,
    teacher_changes,
)
from paperkit.pipeline.specs import layouts as profile_layouts


@dataclass(frozen=True)
class PlannedRun:
    """One training run: where it trains, what, and (once estimated) for how long."""

    notebook: str  # the first notebook that requests it ("02", "05", "06", "07", "09")
    purpose: str  # e.g. "reference", "headline", "K sweep"
    layout: str
    dataset_key: str  # checkpoints/<dataset_key>/<name>
    name: str
    arch: str
    variant: str  # B | B+MODL | B+KNNS | B+MODL+KNNS
    seed: int
    epochs: int
    knns_mode: str = ""  # faithful | efficient; "" without a KNNS term
    k: int = 0  # neighbours per anchor (0 without KNNS)
    train_fraction: float = 1.0  # the out-of-fold references train on (folds - 1) / folds
    monitored: bool = False  # memorisation curves: train and test scored every epoch
    changes: tuple[tuple[str, Any], ...] = ()  # training fields changed from the profile's
    pool: str = ""  # the ``train_runs`` call that trains it ("" = its notebook's purpose on its dataset)
    finished: bool = False  # its folder holds a finished manifest (a changed config still retrains)
    seconds: float | None = None  # estimate; None without rates for its architecture
    train_seconds: float | None = None  # the training steps alone (what metrics.csv train_s measures)

    @property
    def folder(self) -> str:
        """``<dataset key>/<run name>``, relative to ``checkpoints/``."""
        return f"{self.dataset_key}/{self.name}"


@dataclass(frozen=True)
class SoftLabelSet:
    """Soft labels a plan will compute: who first asks for them, where, from how many models."""

    notebook: str
    soft: SoftLabels
    archs: tuple[str, ...]
    models_per_arch: int  # out-of-fold soft labels average one model per fold


class _Runs:
    """The runs and soft labels of a profile, collected in request order under the specs the notebooks
    build (:func:`paperkit.pipeline.specs.run_spec`); a folder requested twice is one run (notebooks reuse runs)."""

    def __init__(self, cfg: Profile) -> None:
        self.cfg = cfg
        self.runs: dict[str, PlannedRun] = {}
        self.soft_sets: dict[str, SoftLabelSet] = {}

    def add(self, notebook: str, purpose: str, layout: str, arch: str, seed: int, variant: str = "B", *,
            noise: float | None = None, soft: SoftLabels | None = None, pools: Pools | None = None,
            subset: str = "", fraction: float = 1.0, labels: str | None = None,
            changes: Mapping[str, Any] | None = None) -> RunSpec:
        spec = run_spec(self.cfg, dataset_key(self.cfg, layout, noise), labels or self.cfg.uncertain_policy, arch,
                        seed, variant, soft=soft, pools=pools, subset=subset, changes=changes)
        self._put(notebook, purpose, layout, spec, arch, seed, fraction)
        return spec

    def _put(self, notebook: str, purpose: str, layout: str, spec: RunSpec, arch: str, seed: int,
             fraction: float = 1.0, pool: str = "") -> None:
        """The run of ``spec``, unless an earlier request named the same folder (notebooks reuse runs)."""
        knns = spec.config.gamma_knns > 0
        self.runs.setdefault(spec.folder, PlannedRun(
            notebook, purpose, layout, spec.data, spec.name, arch, spec.variant, seed, spec.config.epochs,
            spec.config.knns_mode if knns else "", spec.config.k if knns else 0, fraction, spec.monitored,
            spec.changes, pool))

    def add_requests(self, notebook: str, purpose: str, requests: Iterable[RunRequest]) -> None:
        """Runs as a notebook section requests them (:mod:`paperkit.pipeline.sections`), on named data."""
        for request in requests:
            self._put(notebook, purpose, request.prep.layout, request.spec(self.cfg), request.arch, request.seed)

    def add_grouped(self, notebook: str, purpose: str, groups: Mapping[str, Sequence[RunRequest]]) -> None:
        """Runs one :func:`paperkit.pipeline.experiment.train_grouped` call trains, in its order: one pool."""
        for key, i in taken_in_turn(groups):
            request = groups[key][i]
            self._put(notebook, purpose, request.prep.layout, request.spec(self.cfg), request.arch, request.seed,
                      pool=f"{notebook} {purpose}")

    def references(self, notebook: str, purpose: str, layout: str, archs: Sequence[str], name: str, *,
                   noise: float | None = None, soft_notebook: str = "") -> SoftLabels:
        """Reference runs (seed 0, as :func:`experiment.train_references`) and the soft labels they average."""
        folders = [self.add(notebook, purpose, layout, arch, 0, noise=noise).folder for arch in archs]
        return self.soft_set(soft_notebook or notebook, SoftLabels.of(self.cfg, dataset_key(self.cfg, layout, noise),
                                                                      name, folders), archs, 1)

    def soft_set(self, notebook: str, soft: SoftLabels, archs: Sequence[str], models: int) -> SoftLabels:
        self.soft_sets.setdefault(soft.folder, SoftLabelSet(notebook, soft, tuple(archs), models))
        return soft


def planned_runs(cfg: Profile) -> list[PlannedRun]:
    """Every training run the notebooks of ``cfg`` request, first request first."""
    return list(_collect(cfg).runs.values())


def _collect(cfg: Profile) -> _Runs:
    """The runs and soft labels of notebooks 02-08 and :mod:`paperkit.pipeline.ablations`, gated as they gate them.

    ``tests/test_plan.py`` holds it to the smoke run's ``checkpoints/`` folders.
    """
    runs = _Runs(cfg)
    layouts, first = profile_layouts(cfg), cfg.seeds[0]
    named = {layout: named_data(cfg, layout) for layout in layouts}
    # 02's references (both layouts in one pool), 03's soft labels, 04's pools (07 and 08 reuse them)
    runs.add_grouped("02", "reference", {layout: sections.references(cfg, named[layout]) for layout in layouts})
    inputs = {}
    for layout in layouts:
        soft = runs.references("02", "reference", layout, cfg.reference_archs, ALL_REFERENCES, soft_notebook="03")
        inputs[layout] = named[layout], soft, Pools.of(cfg, soft, cfg.k)
    # 05: the headline pair on every seed, then the clean-label ceiling; 06: Tables 1-2's rows and the ceiling
    runs.add_grouped("05", "headline", {layout: sections.headline(cfg, *inputs[layout]) for layout in layouts})
    runs.add_grouped("05", "clean-label ceiling", {layout: sections.ceiling(cfg, named[layout]) for layout in layouts})
    runs.add_grouped("06", "Tables 1-2 rows", {layout: sections.table_rows(cfg, *inputs[layout]) for layout in layouts})
    data, soft, _ = inputs[sections.k_sweep_layout(cfg)]  # 06: Fig. 4
    runs.add_requests("06", "K sweep", sections.k_sweep(cfg, data, soft, lambda k: Pools.of(cfg, soft, k)))
    layout = sections.ablation_layout(cfg)
    _method_ablations(cfg, runs, first, *inputs[layout])
    _teacher_ablations(cfg, runs, layout, first)
    if "clean_references" in cfg.teaching:  # 07: are ensembles misled less by the noise?
        runs.add_requests("07", "clean-label references",
                          sections.clean_references(cfg, inputs[sections.ensemble_layout(cfg)][0]))
    _lab(cfg, runs)
    return runs


def _lab(cfg: Profile, runs: _Runs) -> None:
    """Notebook 09's label-noise lab (:mod:`paperkit.pipeline.lab`) when the profile lists methods. Which
    setting validation will choose is not known before training: the seeds after the first are listed at
    each method's default (the same number of runs, each as long)."""
    if not cfg.lab_methods:
        return
    for layout in profile_layouts(cfg):
        for level in lab.noise_levels(cfg):
            noise = None if level == cfg.noise else level
            soft = runs.references("09", "lab teachers", layout, cfg.reference_archs, ALL_REFERENCES, noise=noise)
            data = named_data(cfg, layout, noise)
            _, grid, _, seed_runs = lab.cell_requests(cfg, data, soft, Pools.of(cfg, soft, cfg.k),
                                                      named_data(cfg, layout), level)
            runs.add_requests("09", "lab grid", grid)  # two calls of train_runs: the grid, then the seeds
            runs.add_requests("09", "lab seeds", seed_runs)


def named_data(cfg: Profile, layout: str, noise: float | None = None, policy: str | None = None) -> NamedData:
    """What :func:`paperkit.pipeline.experiment.prepare` would return, by name only."""
    return NamedData(dataset_key(cfg, layout, noise), layout, policy or cfg.uncertain_policy,
                     cfg.dataset == "benchmark")


def _method_ablations(cfg: Profile, runs: _Runs, seed: int, data: NamedData, soft: SoftLabels, pool: Pools) -> None:
    """The runs of notebook 06's faithful-vs-efficient, uncertain-policy and loss-variant sections."""
    teaching = set(cfg.teaching)
    if "faithful_knns" in teaching:
        runs.add_requests("06", "faithful vs efficient",
                          sections.faithful_vs_efficient(cfg, data, soft, pool, seed).values())
    if "uncertain_policies" in teaching and "chexpert" in profile_layouts(cfg):
        chexpert = sections.uncertain_policies(cfg, lambda policy: named_data(cfg, "chexpert", policy=policy), seed)
        runs.add_requests("06", "uncertain policies", chexpert.values())
    if {"as_printed_kl", "single_reference"} & teaching:
        def one_reference(arch: str) -> SoftLabels:
            return runs.references("06", "loss variants", data.layout, [arch], "n1")

        runs.add_requests("06", "loss variants", sections.loss_variants(cfg, data, soft, seed, one_reference).values())


def _teacher_ablations(cfg: Profile, runs: _Runs, layout: str, seed: int) -> None:
    """The runs of notebook 06's teacher (out-of-fold, cleanlab) and noise x λ grid sections."""
    from paperkit.pipeline import ablations

    target, teaching = cfg.target_arch, set(cfg.teaching)
    archs, name = ablations.grid_references(cfg)
    if {"out_of_fold", "cleanlab"} & teaching:
        in_fold = runs.references("06", "teachers", layout, archs, name)
        runs.add("06", "teachers", layout, target, seed)
        for_cleanlab = in_fold
        if "out_of_fold" in teaching:
            folds = cfg.oof_folds
            folders = [
                runs.add(
                    "06", "teachers", layout, arch, 0, subset=oof_subset(fold, folds), fraction=(folds - 1) / folds
                ).folder
                for arch in archs
                for fold in range(folds)
            ]
            out_of_fold = runs.soft_set(
                "06", SoftLabels.of(cfg, dataset_key(cfg, layout), f"oof{folds}", folders, folds=folds), archs, folds
            )
            for soft in (in_fold, out_of_fold):
                runs.add(
                    "06", "teachers", layout, target, seed, "B+MODL+KNNS", soft=soft, pools=Pools.of(cfg, soft, cfg.k)
                )
            for_cleanlab = out_of_fold
        if "cleanlab" in teaching:
            runs.add("06", "teachers", layout, target, seed, labels=pruned_labels(cfg.uncertain_policy, for_cleanlab))
    if "noise_lambda_grid" in teaching and cfg.dataset == "benchmark":  # real data has one noise level
        for level in sorted({cfg.noise, *cfg.noise_sweep}):
            noise = None if level == cfg.noise else level
            soft = runs.references("06", "noise x λ grid", layout, archs, name, noise=noise)
            runs.add("06", "noise x λ grid", layout, target, seed, noise=noise)
            for weight in sorted({cfg.lambda_modl, *cfg.lambda_sweep}):
                runs.add(
                    "06",
                    "noise x λ grid",
                    layout,
                    target,
                    seed,
                    "B+MODL+KNNS",
                    noise=noise,
                    soft=soft,
                    pools=Pools.of(cfg, soft, cfg.k),
                    changes=teacher_changes(weight),
                )
