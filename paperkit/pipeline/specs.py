"""Runs that name themselves: what determines a training run, and the folder derived from it.

A :class:`RunSpec` holds everything that changes a run: the dataset (its key, and how its
training targets were made), the architecture, seed and variant, every training setting, the
identities of the soft labels and pools it reads, the part of the training split it trains on and
whether teaching curves are recorded. Its folder, ``checkpoints/<dataset key>/<readable
prefix>-<hash>``, is derived from all of that, so two different runs never share a folder and no
caller invents a name. Identical runs are one run: where the target's architecture is among the
references (DenseNet-121 in the paper's profiles), the baseline B on seed 0 *is* that reference
(same BCE training, same seed), trained once.

Soft labels and pools carry their own identity (:class:`SoftLabels`, :class:`Pools`), made from
what produces them (the reference runs' folders, K, σ) rather than from their values: a plan can
name every run before a single reference has trained (:mod:`paperkit.pipeline.plan` builds the same specs
as the notebooks). The values still guard each folder: a run's manifest hashes its actual inputs
(:func:`paperkit.training.loop.fit_run`), so changed inputs under an unchanged identity retrain in place.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from paperkit.artifacts import fingerprint
from paperkit.config import Profile
from paperkit.method.noisy_losses import get_method
from paperkit.training.loop import TrainConfig
from paperkit.training.state import run_config

#: Hex digits of a folder's identity hash (32 bits: a collision needs ~65,000 runs in one dataset folder).
IDENTITY_LENGTH = 8
#: The runs whose memorisation curves notebook 05 draws: the target's on the first seed, profile settings.
MEMORISATION_VARIANTS = ("B", "B+MODL+KNNS")
#: The name of the soft labels that average every reference of the profile (the paper's teachers).
ALL_REFERENCES = "all"
#: ``training_labels`` of a run trained on the benchmark's clean labels (:mod:`paperkit.pipeline.ceiling`).
CLEAN_LABELS = "clean"


def identity(parts: Mapping[str, Any]) -> str:
    """Short hash of the JSON-able ``parts``: the identity in a folder's name."""
    return fingerprint(parts)[:IDENTITY_LENGTH]


def layouts(cfg: Profile) -> list[str]:
    """The datasets a profile trains on: the benchmark's layouts, or the user's dataset."""
    return list(cfg.layouts) if cfg.dataset == "benchmark" else [cfg.dataset]


def dataset_key(cfg: Profile, layout: str, noise: float | None = None) -> str:
    """The folder name of a dataset (caches, checkpoints): the benchmark draw's, or the layout (user data).

    ``noise`` is a label-noise level other than the profile's (benchmark only: the noise sweep).
    """
    if cfg.dataset != "benchmark":
        return layout
    seed = cfg.benchmark_seed
    return layout + ("" if noise is None else f"-noise{noise:g}") + (f"-seed{seed}" if seed else "")


def extra_draw_seed(benchmark_seed: int, n_images: int) -> int:
    """The seed of the benchmark's second draw of ``n_images`` test patients' images
    (:mod:`paperkit.pipeline.scoring`), derived from the benchmark's: each benchmark draw has its own extra
    patients, and profiles that share a results folder with other sizes draw into folders of their own."""
    return int(np.random.SeedSequence([benchmark_seed, 1, n_images]).generate_state(1)[0])


def extra_draw_profile(cfg: Profile) -> Profile:
    """``cfg`` as the generator of its second test draw: ``extra_test_images`` images under their own seed."""
    return dataclasses.replace(cfg, n_images=cfg.extra_test_images,
                               benchmark_seed=extra_draw_seed(cfg.benchmark_seed, cfg.extra_test_images))


@dataclass(frozen=True)
class SoftLabels:
    """Eq. 2's soft labels of one dataset: ``soft_labels/<folder>``, their identity and (once made) values
    ``[N, C]``."""

    name: str  # what they are, e.g. "all" (every reference), "n1", "oof5"
    folder: str  # "<dataset key>/<name>-<identity>"
    identity: str
    values: np.ndarray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, cfg: Profile, key: str, name: str, references: Sequence[str], **settings: Any) -> "SoftLabels":
        """The soft labels named ``name`` that average the runs in folders ``references`` on dataset ``key``.

        ``settings``: anything else that changes them (e.g. ``folds`` of out-of-fold references).
        """
        ident = identity({"references": sorted(references), "crop": cfg.crop, **settings})
        return cls(name, f"{key}/{name}-{ident}", ident)


@dataclass(frozen=True)
class Pools:
    """Eq. 3's K nearest training neighbours in soft-label space: ``pools/<folder>``, identity, and values.

    ``index[i, j]`` is a position in the training split, ``similarity[i, j]`` its s_ij (both ``[n_train, K]``).
    """

    folder: str  # "<dataset key>/<soft labels' name>-k<K>-<identity>"
    identity: str
    k: int
    index: np.ndarray | None = field(default=None, compare=False, repr=False)
    similarity: np.ndarray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, cfg: Profile, soft: SoftLabels, k: int) -> "Pools":
        """The pools of ``k`` neighbours drawn from ``soft`` with the profile's σ."""
        ident = identity({"soft": soft.identity, "k": k, "sigma": cfg.sigma})
        key = soft.folder.split("/")[0]
        return cls(f"{key}/{soft.name}-k{k}-{ident}", ident, k)

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None or self.similarity is None:
            raise ValueError(f"pools {self.folder} are named but not computed yet (experiment.pools makes them)")
        return self.index, self.similarity


@dataclass(frozen=True)
class RunSpec:
    """Everything that changes one training run; :attr:`folder` is derived from it."""

    data: str  # dataset key: checkpoints/<data>/
    training_labels: str  # how the training targets were made: uncertain-label policy and any edit
    config: TrainConfig
    changes: tuple[tuple[str, Any], ...]  # settings that differ from the profile's (shown in the name)
    soft: str | None  # identity of the soft labels read (MODL only)
    pools: str | None  # identity of the pools read (KNNS only)
    subset: str = ""  # a named part of the training split, e.g. "oof0of5"; "" = all of it
    monitored: bool = False  # memorisation curves recorded every epoch

    @property
    def variant(self) -> str:
        return "B" + ("+MODL" if self.config.lambda_modl > 0 else "") + ("+KNNS" if self.config.gamma_knns > 0 else "")

    @property
    def identity(self) -> str:
        return identity(
            {
                "data": self.data,
                "training_labels": self.training_labels,
                "train": run_config(self.config),
                "soft": self.soft,
                "pools": self.pools,
                "subset": self.subset,
                "monitored": self.monitored,
            }
        )

    @property
    def name(self) -> str:
        """Readable prefix and identity, e.g. ``B+KNNS-densenet121-s0-k=5-9f7257ed`` (the nih profile's K = 5 run)."""
        parts = [
            self.variant,
            self.config.arch,
            f"s{self.config.seed}",
            self.subset,
            CLEAN_LABELS if self.training_labels == CLEAN_LABELS else "",
            *(f"{key}={value}" for key, value in self.changes),
        ]
        return "-".join(p for p in parts if p) + f"-{self.identity}"

    @property
    def folder(self) -> str:
        """``<dataset key>/<name>``, relative to ``checkpoints/``."""
        return f"{self.data}/{self.name}"


def run_spec(
    cfg: Profile,
    data: str,
    training_labels: str,
    arch: str,
    seed: int,
    variant: str = "B",
    *,
    soft: SoftLabels | None = None,
    pools: Pools | None = None,
    subset: str = "",
    changes: Mapping[str, Any] | None = None,
) -> RunSpec:
    """The spec of one run of ``cfg`` (see :meth:`paperkit.training.loop.TrainConfig.from_profile` for ``variant``).

    ``changes`` override single training fields; those equal to the profile's value are dropped, so a
    run has one spec however it is requested (a ``method_param`` equal to its method's default too).
    A label-noise method is such a change: ``changes={"method": "gce", "method_param": 0.5}`` (see
    :mod:`paperkit.method.noisy_losses`). Soft labels and pools count only where the run reads them (MODL,
    or a method that needs soft labels; KNNS): B is not renamed when the soft labels change.
    """
    base = TrainConfig.from_profile(cfg, arch, seed, variant)
    changes = dict(changes or {})
    method = get_method(changes.get("method", base.method))
    if changes.get("method_param") is not None and float(changes["method_param"]) == method.default:
        changes["method_param"] = None  # the default named is the default left out: one run, one name
    changed = tuple(sorted((k, v) for k, v in changes.items() if getattr(base, k) != v))
    config = dataclasses.replace(base, **dict(changed))
    soft = soft if config.lambda_modl > 0 or method.needs_soft else None
    pools = pools if config.gamma_knns > 0 else None
    own_teachers = soft is None or soft.name == ALL_REFERENCES
    plain = not subset and not changed and training_labels == cfg.uncertain_policy and own_teachers
    monitored = (
        plain
        and arch == cfg.target_arch
        and seed == cfg.seeds[0]
        and variant in MEMORISATION_VARIANTS
        and "memorisation" in cfg.teaching
        and cfg.dataset == "benchmark"
        and data in {dataset_key(cfg, layout) for layout in layouts(cfg)}
    )
    return RunSpec(
        data,
        training_labels,
        config,
        changed,
        soft.identity if soft else None,
        pools.identity if pools else None,
        subset,
        monitored,
    )


def oof_subset(fold: int, n_folds: int) -> str:
    """The subset name of the out-of-fold reference that leaves fold ``fold`` of ``n_folds`` out."""
    return f"oof{fold}of{n_folds}"


def teacher_changes(weight: float) -> dict[str, float]:
    """λ = γ = ``weight``: the training changes of the grid's and the teachers' B+MODL+KNNS runs."""
    return {"lambda_modl": weight, "gamma_knns": weight}


def pruned_labels(training_labels: str, soft: SoftLabels) -> str:
    """The ``training_labels`` of a dataset whose images cleanlab flagged from ``soft`` are masked out of BCE."""
    return f"{training_labels}+cleanlab-{soft.identity}"
