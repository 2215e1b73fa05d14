"""Which runs each notebook section trains: one function per section, from the profile and the section's inputs.

The notebooks (and :mod:`paperkit.pipeline.ablations`) call these with their prepared data, soft labels
and pools, then train what they return; ``python -m paperkit plan`` calls the very same functions with
:class:`NamedData` and soft labels and pools that are named but not computed (``SoftLabels.of``,
``Pools.of``), so the plan lists exactly the folders the notebooks train into. (The teacher and noise x λ
sections, whose inputs are themselves trained in the section, are mirrored in
:mod:`paperkit.pipeline.plan.requests`; ``tests/test_end_to_end.py`` holds the whole plan to the smoke
run's folders.)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from paperkit.config import Profile
from paperkit.pipeline.ceiling import clean_label_twin, has_clean_training_labels
from paperkit.pipeline.experiment import Prepared, RunRequest
from paperkit.pipeline.specs import CLEAN_LABELS, Pools, SoftLabels
from paperkit.pipeline.specs import layouts as profile_layouts
from paperkit.training.loop import VARIANTS

#: The verdict's pair: the baseline and the paper's method, on every seed.
HEADLINE = ("B", "B+MODL+KNNS")


@dataclass(frozen=True)
class NamedData:
    """What names a run's data before the data exists (the plan): dataset key, layout, training labels."""

    key: str
    layout: str
    training_labels: str
    clean_training_labels: bool  # the embedded benchmark: every training image's clean label is known


def references(cfg: Profile, data: Prepared | NamedData, seed: int = 0) -> list[RunRequest]:
    """Notebook 02: the N reference CNNs of the paper's first step, each trained with BCE only."""
    return [RunRequest(data, arch, seed) for arch in cfg.reference_archs]


def headline(cfg: Profile, data: Prepared | NamedData, soft: SoftLabels, pools: Pools) -> list[RunRequest]:
    """Notebook 05: B and B+MODL+KNNS on every seed (paired: the same seed draws the same batches)."""
    return [RunRequest(data, cfg.target_arch, seed, v, soft, pools) for seed in cfg.seeds for v in HEADLINE]


def clean_world(data: Prepared | NamedData) -> Prepared | NamedData | None:
    """``data`` with the clean truth as every label (:func:`paperkit.pipeline.ceiling.clean_label_twin`, or its
    name for the plan); ``None`` on data without clean training labels (real data)."""
    if isinstance(data, NamedData):
        return dataclasses.replace(data, training_labels=CLEAN_LABELS) if data.clean_training_labels else None
    return clean_label_twin(data) if has_clean_training_labels(data) else None


def ceiling(cfg: Profile, data: Prepared | NamedData) -> list[RunRequest]:
    """Notebook 05: the clean-label ceiling on every seed (:mod:`paperkit.pipeline.ceiling`); none on real data."""
    twin = clean_world(data)
    return [] if twin is None else [RunRequest(twin, cfg.target_arch, seed) for seed in cfg.seeds]


def table_rows(cfg: Profile, data: Prepared | NamedData, soft: SoftLabels, pools: Pools) -> list[RunRequest]:
    """Notebook 06's Tables 1-2: the four variants on the first ``ablation_seeds`` seeds (all when 0), the
    headline pair on the others."""
    n_single = cfg.ablation_seeds or len(cfg.seeds)
    return [RunRequest(data, cfg.target_arch, seed, v, soft, pools)
            for i, seed in enumerate(cfg.seeds) for v in (VARIANTS if i < n_single else HEADLINE)]


def k_sweep_layout(cfg: Profile) -> str:
    """Fig. 4's layout: CheXpert, as in the paper, where the profile has it."""
    layouts = profile_layouts(cfg)
    return "chexpert" if "chexpert" in layouts else layouts[0]


def k_sweep(
    cfg: Profile, data: Prepared | NamedData, soft: SoftLabels, pools_of: Callable[[int], Pools]
) -> list[RunRequest]:
    """Notebook 06's Fig. 4: B+KNNS with each K of ``k_sweep`` (pools of K neighbours), first seed."""
    return [RunRequest(data, cfg.target_arch, cfg.seeds[0], "B+KNNS", soft, pools_of(k), changes={"k": k})
            for k in cfg.k_sweep]


def ensemble_layout(cfg: Profile) -> str:
    """Table 3's layout (notebook 07): CheXpert, as in the paper, where the profile has it (as Fig. 4's)."""
    return k_sweep_layout(cfg)


def clean_references(cfg: Profile, data: Prepared | NamedData) -> list[RunRequest]:
    """Notebook 07: the references trained on the clean labels (seed 0, as the references), the ensembles'
    ceiling as "B (clean labels)" is B's; none on real data."""
    twin = clean_world(data)
    return [] if twin is None else [RunRequest(twin, arch, 0) for arch in cfg.reference_archs]


def ablation_layout(cfg: Profile) -> str:
    """The teaching ablations' layout: NIH where the profile has it."""
    layouts = profile_layouts(cfg)
    return "nih" if "nih" in layouts else layouts[0]


def faithful_vs_efficient(
    cfg: Profile, data: Prepared | NamedData, soft: SoftLabels, pools: Pools, seed: int
) -> dict[str, RunRequest]:
    """B and B+KNNS with neighbours forwarded (faithful, eq. 4) and read from the memory bank (efficient)."""
    requests = {"B": RunRequest(data, cfg.target_arch, seed)}
    for mode in ("faithful", "efficient"):
        requests[f"B+KNNS ({mode})"] = RunRequest(
            data, cfg.target_arch, seed, "B+KNNS", soft, pools, changes={"knns_mode": mode}
        )
    return requests


#: Table 2's baselines: the name a table shows -> the uncertain-label policy (U-Ones is the profile's).
UNCERTAIN_POLICIES = {"U-Zeros": "u_zeros", "U-Ignore": "u_ignore", "U-Ones+LSR": "lsr_ones"}


def uncertain_policies(
    cfg: Profile, data_with_policy: Callable[[str], Prepared | NamedData], seed: int
) -> dict[str, RunRequest]:
    """B on the CheXpert layout under the profile's policy ("B") and each of :data:`UNCERTAIN_POLICIES`."""
    policies = {"B": cfg.uncertain_policy, **UNCERTAIN_POLICIES}
    return {name: RunRequest(data_with_policy(policy), cfg.target_arch, seed) for name, policy in policies.items()}


def loss_variants(
    cfg: Profile, data: Prepared | NamedData, soft: SoftLabels, seed: int,
    single_reference_soft: Callable[[str], SoftLabels],
) -> dict[str, RunRequest]:
    """B and B+MODL, and whichever of ``as_printed_kl`` (eq. 2 as printed) and ``single_reference``
    (N = 1: soft labels of the first reference alone, from ``single_reference_soft(arch)``) ``teaching`` lists."""
    requests = {v: RunRequest(data, cfg.target_arch, seed, v, soft) for v in ("B", "B+MODL")}
    if "as_printed_kl" in cfg.teaching:
        requests["B+MODL (as printed)"] = RunRequest(
            data, cfg.target_arch, seed, "B+MODL", soft, changes={"kl_form": "as_printed"}
        )
    if "single_reference" in cfg.teaching:
        first = cfg.reference_archs[0]
        requests[f"B+MODL (N=1, {first})"] = RunRequest(
            data, cfg.target_arch, seed, "B+MODL", single_reference_soft(first)
        )
    return requests
