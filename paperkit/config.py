"""Profiles: every hyper-parameter of the paper's "Implementation Details" in one typed object.

A profile is a frozen dataclass. Named profiles (``smoke``, ``cpu``, ``teach``, ``gpu``, ``nih``, ``chexpert``) differ
only in the values below; notebooks and the command line override single fields with
:func:`apply_overrides`, which rejects unknown keys and wrong types *before* any work starts
(papermill itself only warns about unknown parameters).
"""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from paperkit.overrides import ConfigError, coerce


def parse_devices(devices: str) -> tuple[int, ...] | None:
    """GPU indices of a ``devices`` setting: ``None`` for ``all``, else the listed ones (``"0,1,3"``).

    Raises
    ------
    ValueError
        On anything but ``all`` or distinct non-negative integers separated by commas.
    """
    if devices.strip().lower() == "all":
        return None
    items = [d.strip() for d in devices.split(",")]
    if not all(d.isdigit() for d in items) or len(set(map(int, items))) != len(items):
        raise ValueError(f"parameter 'devices' must be all or distinct GPU indices such as 0,1,3, got {devices!r}")
    return tuple(map(int, items))


#: The paper's six reference CNNs (timm names) and its target.
PAPER_REFERENCES = (
    "densenet121",
    "densenet169",
    "densenet201",
    "inception_resnet_v2",
    "legacy_xception",
    "nasnetalarge",
)
#: Six small from-scratch references for CPU profiles (registered in ``paperkit.models``, see
#: ``MODEL_INFO``), shaped like the paper's set: three DenseNets of growing size (the target's own
#: family, as DenseNet-121/169/201) and three other families of comparable strength: Res2Net
#: (multi-scale residual blocks, for Inception-ResNet-v2), EfficientNet (a NAS-derived family, for
#: NASNet) and ResNet (for Xception: a tiny Xception scored 81-85 mean AUC at 2.6x densenet_tiny's
#: step time). As in the paper, the target is the smallest DenseNet, so the references are on
#: average larger than the target (paper: 208 M parameters for the six against 8 M). ConvNeXt
#: (58-76 mean AUC) and the 0.1 M-parameter EfficientNet (80-88) were dropped; these six scored
#: 83-93 (GPU probe, 5,000 images, both layouts, three noise settings), and a weak member pulls
#: the probability average down.
CPU_REFERENCES = (
    "densenet_tiny",
    "densenet_tiny_deep",
    "densenet_tiny_wide",
    "resnet_tiny",
    "res2net_tiny",
    "efficientnet_small",
)

#: Teaching ablations (a profile's ``teaching`` picks a subset): per-epoch memorisation curves of B
#: and B+MODL+KNNS (notebook 05); in notebook 06 the verdict in the other reading (each run at the other
#: epoch than ``score_epoch`` names: how much the choice of epoch matters), faithful vs efficient KNNS,
#: the uncertain-label baselines, Bernoulli vs as-printed KL, MODL with N = 1, out-of-fold vs in-fold
#: teachers, cleanlab prune-and-retrain, and the grid of label-noise level x λ = γ; in notebook 07 the
#: references trained on the clean labels (is the ensemble less misled by the noise, or just an ensemble?).
TEACHING = ("memorisation", "other_reading", "faithful_knns", "uncertain_policies", "as_printed_kl",
            "single_reference", "out_of_fold", "cleanlab", "noise_lambda_grid", "clean_references")


@dataclass(frozen=True)
class Profile:
    """All settings of one reproduction run.

    Paper values ("Implementation Details") are the defaults; ``smoke`` and ``cpu`` shrink the
    data, images and schedule so that they run on a 2-core CPU, and say so in their ``notes``.
    """

    name: str = "custom"
    # --- data -------------------------------------------------------------------------------
    dataset: str = "benchmark"  # benchmark | nih | chexpert | mimic
    data_root: str = ""  # user's dataset root (required for nih/chexpert/mimic)
    layouts: tuple[str, ...] = ("nih", "chexpert")  # benchmark layouts to generate
    n_images: int = 6000  # embedded benchmark size (images)
    # embedded benchmark: images of a second draw of patients, never trained on, that the verdict, its seed
    # spread and the lab score beside the test split (paperkit.pipeline.scoring); 0 = the test split alone
    extra_test_images: int = 0
    render_size: int = 256  # embedded benchmark image size (px)
    noise: float = 1.0  # report-mining noise scale: 0 = clean labels, 1 = measured NIH rates
    benchmark_seed: int = 0  # the embedded benchmark's draw (images, patients, noise); splits follow it
    split: str = "official"  # nih: official | patient70_10_20 | lists
    val_fraction: float = 0.1  # validation patients drawn from the training patients
    uncertain_policy: str = "u_ones"  # chexpert: u_ones | u_zeros | u_ignore | lsr_ones | lsr_zeros
    frontal_only: bool = True  # chexpert/mimic: keep frontal views only
    missing: str = "error"
    # --- input pipeline ---------------------------------------------------------------------
    resize: int = 256  # every image is resized to resize x resize once, in the cache
    crop: int = 224  # random crop for training, centre crop for evaluation
    # --- models -----------------------------------------------------------------------------
    reference_archs: tuple[str, ...] = PAPER_REFERENCES
    target_arch: str = "densenet121"
    head: str = "pcam"  # avg | pcam
    pretrained: str = "none"  # none | imagenet (timm download/cache) | a folder of <arch>.pth state dicts
    # --- optimisation (paper: Adam 1e-3, betas .9/.999, batch 32, 10 epochs, lr/3 every 2) ----
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    batch_size: int = 32
    epochs: int = 10
    lr_step_epochs: int = 2
    lr_gamma: float = 1.0 / 3.0
    # --- method (paper: lambda = gamma = 0.1, K = 9, sigma = 1) -------------------------------
    lambda_modl: float = 0.1
    gamma_knns: float = 0.1
    k: int = 9
    sigma: float = 1.0
    kl_form: str = "bernoulli"  # bernoulli | as_printed
    knns_mode: str = "faithful"  # faithful | efficient
    knns_k_reduction: str = "sum"  # sum (eq. 1: γ·Σ_k) | mean (γ·mean_k, K-independent weight)
    k_sweep: tuple[int, ...] = (3, 5, 7, 9, 11)
    # --- scoring (the paper names no rule for the epoch it reports) --------------------------
    # the epoch at which the seed-mean verdict, its spread and the lab score each run: "last", chosen on
    # the development draw by B alone (scripts/epoch_rule.py), or "best" (validation's choice, best.pt)
    score_epoch: str = "last"
    # --- ablations beyond the paper's tables (notebook 06) -----------------------------------
    ablation_seeds: int = 0  # how many of `seeds` the B+MODL and B+KNNS rows use; 0 = all
    teaching: tuple[str, ...] = TEACHING  # which teaching ablations notebook 06 runs (see TEACHING)
    lambda_sweep: tuple[float, ...] = (0.3, 1.0)  # grid: λ = γ of B+MODL+KNNS beside the profile's
    noise_sweep: tuple[float, ...] = (0.0, 2.0)  # grid: benchmark noise levels beside the profile's
    lab_methods: tuple[str, ...] = ()  # notebook 09's label-noise lab: registered L_cls methods (none: no lab)
    # the lab's noise levels beside the profile's, each on the first seed with its own six teachers and every
    # method's grid (the lab profile: 46 runs, ~28 min on 2 cores, per level); () = the measured rates only
    lab_noise_sweep: tuple[float, ...] = ()
    ablation_reference_archs: tuple[str, ...] = ()  # references of the grid and out-of-fold runs; () = all
    oof_folds: int = 2  # folds of the out-of-fold teachers
    # --- statistics and compute -------------------------------------------------------------
    seeds: tuple[int, ...] = (0,)
    results_name: str = ""  # results/<results_name>/ ("" = the profile's name); shared by profiles that add runs
    bootstrap: int = 1000
    device: str = "auto"  # auto | cpu | cuda
    workers: int = 0
    devices: str = "all"  # GPUs the independent runs share: all visible, or indices such as 0,1,3
    amp: bool = True  # bf16 autocast on CUDA only
    num_threads: int = 0  # 0 = torch default
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @property
    def needs_data_root(self) -> bool:
        return self.dataset != "benchmark"


_SMOKE = Profile(
    name="smoke",
    n_images=240,
    extra_test_images=60,
    render_size=64,
    resize=40,
    crop=32,
    reference_archs=("efficientnet_tiny", "byobnet_tiny"),
    target_arch="densenet_tiny",
    batch_size=16,
    epochs=2,
    lr_step_epochs=1,
    k=3,
    k_sweep=(1, 3),
    lambda_sweep=(1.0,),
    noise_sweep=(2.0,),
    seeds=(0,),
    bootstrap=50,
    lab_methods=("kd", "coteaching"),  # the lab's plumbing: soft labels and a two-network method
    notes="Plumbing check only: tiny data and schedule; its numbers mean nothing.",
)

_CPU = Profile(
    name="cpu",
    n_images=5000,
    # the test split holds ~1,000 images: five times as many test images for the verdict, at the cost
    # of predictions only (the patients' share of its CI shrinks by about sqrt(5))
    extra_test_images=4000,
    benchmark_seed=20261202,  # a draw no choice of the kit was made on (noise model, references: seed 0)
    render_size=96,
    resize=64,
    crop=56,
    reference_archs=CPU_REFERENCES,
    target_arch="densenet_tiny",
    batch_size=32,
    epochs=6,  # paper: 10; lr still divided by 3 every 2 epochs
    lr_step_epochs=2,
    # three seeds keep the whole story within ~20 minutes on 2 cores; the `verdict` profile adds seeds 3-9
    # for a verdict decided to about ±0.5, the `lab` profile trains seeds 0-4 of every method
    seeds=(0, 1, 2),
    bootstrap=1000,
    knns_mode="efficient",  # faithful KNNS costs ~6x a BCE epoch here; the teach profile compares both
    # two independent runs at once, each on half the cores: small networks scale poorly over threads
    # (bench/bench_workers.py on 2 cores: 1.25x for two densenet_tiny runs of 3,072 images x 3 epochs)
    workers=2,
    # headline and ceiling on every seed, single-term rows and the K sweep on the first seed; every other
    # teaching ablation (the verdict's other reading, faithful KNNS, 07's clean-label references, ...) is the
    # `teach` profile's (the other reading: 18 more predictions of ~5,000 images and bootstraps, 48 s here)
    ablation_seeds=1,
    k_sweep=(3, 5, 9),
    teaching=("memorisation",),
    ablation_reference_archs=("densenet_tiny_deep", "resnet_tiny"),
    notes=(
        "Embedded benchmark on a 2-core CPU: 64 px images (crop 56) instead of 256/224, six small "
        "from-scratch references (three DenseNets and three other families, paperkit.models.TINY_ARCHS) "
        "instead of the paper's six ImageNet CNNs, the smallest DenseNet (densenet_tiny) as target instead "
        "of DenseNet-121 (from scratch, so it runs offline), 6 epochs instead of 10, and memory-bank (efficient) "
        "KNNS instead of forwarding every neighbour."
    ),
)

#: Teaching ablations that need what only the embedded benchmark has: clean labels on every training
#: image (memorisation curves) and control of the label noise (the noise x λ grid). Notebooks skip
#: them on real data; the real-data profiles leave them out so that their plans list no such run.
BENCHMARK_ONLY_TEACHING = ("memorisation", "noise_lambda_grid", "clean_references")
REAL_DATA_TEACHING = tuple(t for t in TEACHING if t not in BENCHMARK_ONLY_TEACHING)
#: References of the out-of-fold and cleanlab ablations on real data. Out-of-fold teachers cost
#: ``oof_folds`` trainings per architecture (each on (folds-1)/folds of the data): with all six, 12
#: trainings, as much as six full reference trainings again. Two networks of different families, the
#: target's own (DenseNet-121) and an Inception-residual one (Inception-ResNet-v2), keep it to about
#: two and leave out NASNet-A Large, the slowest of the six (1,924 img/s inference on an H200 against
#: DenseNet-121's 5,358). Both are among the references, so the in-fold teachers need no new run.
REAL_ABLATION_REFERENCES = ("densenet121", "inception_resnet_v2")
_REAL_NOTE = (
    " Teaching ablations that need the embedded benchmark (memorisation curves, noise x λ grid) are "
    "left out; out-of-fold and cleanlab use densenet121 + inception_resnet_v2 (ablation_reference_archs). "
    "Needs --data-root and a GPU; `python -m paperkit plan --profile {name}` lists every run with its time."
)

_NIH = Profile(
    name="nih",
    dataset="nih",
    split="patient70_10_20",  # the paper follows CheXNet's patient-wise split
    pretrained="imagenet",
    teaching=REAL_DATA_TEACHING,
    ablation_reference_archs=REAL_ABLATION_REFERENCES,
    notes="Paper settings on NIH ChestX-ray14 (Table 1): 23 training runs." + _REAL_NOTE.format(name="nih"),
)

_CHEXPERT = Profile(
    name="chexpert",
    dataset="chexpert",
    pretrained="imagenet",
    uncertain_policy="u_ones",  # the paper trains B and the references with U-Ones
    teaching=REAL_DATA_TEACHING,
    ablation_reference_archs=REAL_ABLATION_REFERENCES,
    notes=(
        "Paper settings on CheXpert (Tables 2, 3, Figs 3-5): 26 training runs (23 as nih, and the U-Zeros, "
        "U-Ignore and U-Ones+LSR baselines)." + _REAL_NOTE.format(name="chexpert")
    ),
)

#: The paper's networks and resolution on the embedded benchmark, sized for one H200 (~6 minutes).
#: Derivation with the README's H200 rates (bf16, 224 px; training = 1/3 of inference: DenseNet-121
#: 1,786 img/s, -169 1,417, -201 1,207, Inception-ResNet-v2 1,018, Xception 3,319, NASNet-A Large 641;
#: faithful KNNS 2.7x a BCE step at K = 9, linear in K) and n_train = 0.72 n_images (20 % test
#: patients, 10 % of the rest validation): per image and epoch the six references cost 4.94 ms, B
#: 0.56 ms, B+MODL+KNNS (faithful) 1.51 ms. Both layouts: references 9.9 ms, 3 seeds x (B +
#: B+MODL+KNNS) 12.4 ms, 06's B+MODL and B+KNNS on one seed 4.1 ms, the K sweep 3/5/7/11 on one
#: layout 5.0 ms, efficient B+KNNS 0.6 ms: 32.0 ms x 0.72 x 3,000 images x 3 epochs = 207 s of
#: training steps; validation (~6 s), soft labels (~10 s), rendering 2 x 3,000 images on 16 cores and
#: the cache (not in the plan without a probe; ~10 s at the bench target of 50 images/s per core) add
#: ~25 s (`python -m paperkit plan --profile gpu --no-probe` prints its part). What no plan counts (8 kernel
#: starts, bootstrap CIs, figures, loading checkpoints) takes the rest of ~6 minutes.
#: Measured on one H200 (README, 2026-12-04): training runs at about 1/13 of inference, not 1/3
#: (DenseNet-121 417-438 img/s), and each architecture's first epoch in a fresh kernel adds 13-67 s;
#: 02 alone took over 8 minutes, so the profile takes far longer than this sizing says.
_GPU = Profile(
    name="gpu",
    n_images=3000,
    benchmark_seed=20261202,  # the cpu profile's draw: no choice of the kit was made on it
    render_size=256,
    resize=256,
    crop=224,
    reference_archs=PAPER_REFERENCES,
    target_arch="densenet121",
    pretrained="none",  # runs offline; -p pretrained=imagenet or a weights folder restores the paper's
    epochs=3,  # paper: 10; lr still divided by 3 every 2 epochs
    seeds=(0, 1, 2),
    ablation_seeds=1,
    k_sweep=(3, 5, 7, 9, 11),
    teaching=("faithful_knns",),  # memorisation curves would score train + test each epoch of 16 runs: ~35 s
    device="cuda",
    notes=(
        "The paper's six references and DenseNet-121 at its resolution (256 px images, 224 crops) on the "
        "embedded benchmark, every notebook: 3,000 images per layout, "
        "3 epochs, 3 seeds, from scratch (-p pretrained=imagenet or a weights folder for ImageNet "
        "initialisation). A scale check of the pipeline on a GPU: models this briefly trained from "
        "scratch are weak, so its AUCs are not the paper's. Needs a CUDA GPU."
    ),
)

_TEACH = replace(
    _CPU,
    name="teach",
    results_name="cpu",  # adds its runs to the cpu profile's folder: a cpu run's runs are reused
    teaching=TEACHING,
    notes=_CPU.notes + " Adds every teaching ablation of notebook 06 to the cpu profile's runs.",
)

_VERDICT = replace(
    _CPU,
    name="verdict",
    results_name="cpu",  # the cpu profile's seeds 0-2 are the verdict's first three
    # seeds 0-4 on 4,977 test images (2026-12-05, last epoch) reached ±0.53 (NIH) and ±0.46 (CheXpert) with a
    # gain sd over seeds of only 0.3-0.5: most of what was left was the test patients' share
    seeds=tuple(range(10)),
    extra_test_images=12000,
    teaching=("memorisation", "other_reading"),  # the verdict in both readings
    notes=_CPU.notes + " Trains B, B+MODL+KNNS and the ceiling on seeds 3-9 as well and scores them on 12,000 "
    "more test images: the verdict on 10 seeds and about 13,000 test images.",
)

_LAB = replace(
    _CPU,
    name="lab",
    results_name="cpu",  # the cpu profile's B, ceiling, references and B+MODL+KNNS runs are the lab's own
    seeds=(0, 1, 2, 3, 4),
    lab_methods=("kd", "gce", "bootstrap_soft", "elr", "coteaching"),
    # at the measured rates only (lab_noise_sweep=()): another level's one seed decides nothing, and 0x and 2x
    # would add 92 runs, ~55 minutes on 2 cores (paperkit plan), to the ~1 hour the lab takes; -p lab_noise_sweep=0,2
    notes=_CPU.notes + " Adds notebook 09's label-noise lab at the measured noise rates: KD, GCE, soft bootstrapping, "
    "ELR and co-teaching beside B+MODL+KNNS on 5 seeds, each setting chosen on validation (-p lab_noise_sweep=0,2 "
    "adds no noise and twice it, on the first seed).",
)

PROFILES: dict[str, Profile] = {p.name: p for p in (_SMOKE, _CPU, _TEACH, _VERDICT, _LAB, _GPU, _NIH, _CHEXPERT)}
#: ``--profile``'s help text: every profile, the default named.
PROFILE_HELP = " | ".join(f"{name} (default)" if name == "cpu" else name for name in PROFILES)

_CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": ("benchmark", "nih", "chexpert", "mimic"),
    "split": ("official", "patient70_10_20", "lists"),
    "uncertain_policy": ("u_ones", "u_zeros", "u_ignore", "lsr_ones", "lsr_zeros"),
    "head": ("avg", "pcam"),
    "kl_form": ("bernoulli", "as_printed"),
    "knns_mode": ("faithful", "efficient"),
    "score_epoch": ("last", "best"),
    "knns_k_reduction": ("sum", "mean"),
    "device": ("auto", "cpu", "cuda"),
    "missing": ("error", "skip"),
}


def get_profile(name: str) -> Profile:
    """Return the named profile.

    Raises
    ------
    ConfigError
        If ``name`` is not one of :data:`PROFILES`.
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}") from None


def apply_overrides(profile: Profile, overrides: Mapping[str, Any]) -> Profile:
    """Return ``profile`` with ``overrides`` applied, every key and value validated.

    Parameters
    ----------
    profile
        The base profile.
    overrides
        Field name to value; values may be strings (``"0.3"``, ``"3,5,7"``) as typed on a
        command line, or already-typed Python values as papermill passes them.

    Raises
    ------
    ConfigError
        On an unknown key, a value of the wrong type, or a value outside its allowed choices.
    """
    names = {f.name for f in fields(Profile)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in names:
            close = [n for n in names if n.startswith(key[:3])]
            hint = f" (did you mean {', '.join(sorted(close))}?)" if close else ""
            raise ConfigError(f"unknown parameter {key!r}{hint}")
        if key == "name":
            raise ConfigError("parameter 'name' cannot be overridden; pick a profile instead")
        changes[key] = coerce(key, value, typing.get_type_hints(Profile)[key])
    new = replace(profile, **changes)
    validate(new)
    return new


def validate(profile: Profile) -> None:
    """Check choices and ranges; raise :class:`ConfigError` naming the first bad field."""
    for key, allowed in _CHOICES.items():
        if getattr(profile, key) not in allowed:
            raise ConfigError(f"parameter {key!r} must be one of {', '.join(allowed)}, got {getattr(profile, key)!r}")
    positive = ("n_images", "render_size", "resize", "crop", "batch_size", "epochs", "k", "lr_step_epochs")
    for key in positive:
        if getattr(profile, key) <= 0:
            raise ConfigError(f"parameter {key!r} must be positive, got {getattr(profile, key)!r}")
    if profile.workers < 0:
        raise ConfigError(f"parameter 'workers' must be 0 (one per GPU, or 1 on a CPU) or more, got {profile.workers}")
    try:
        parse_devices(profile.devices)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if profile.crop > profile.resize:
        raise ConfigError(f"crop ({profile.crop}) must not exceed resize ({profile.resize})")
    if profile.sigma <= 0 or profile.lr <= 0:
        raise ConfigError("parameters 'sigma' and 'lr' must be positive")
    if profile.noise < 0:
        raise ConfigError(f"parameter 'noise' must be >= 0, got {profile.noise!r}")
    if not profile.seeds:
        raise ConfigError("parameter 'seeds' needs at least one seed")
    if not profile.reference_archs:
        raise ConfigError("parameter 'reference_archs' needs at least one architecture")
    unknown = [t for t in profile.teaching if t not in TEACHING]
    if unknown:
        raise ConfigError(
            f"parameter 'teaching' has unknown ablation(s) {', '.join(unknown)}; choose from {', '.join(TEACHING)}"
        )
    if not 0 <= profile.ablation_seeds <= len(profile.seeds):
        raise ConfigError(
            f"parameter 'ablation_seeds' must be in 0..{len(profile.seeds)} (the number of seeds), "
            f"got {profile.ablation_seeds}"
        )
    extra = profile.extra_test_images
    if extra < 0 or 0 < extra < 10:
        raise ConfigError(f"parameter 'extra_test_images' must be 0 (none) or at least 10, got {extra}")
    if profile.oof_folds < 2:
        raise ConfigError(f"parameter 'oof_folds' must be at least 2, got {profile.oof_folds}")
    for key in ("noise_sweep", "lab_noise_sweep"):
        if any(level < 0 for level in getattr(profile, key)):
            raise ConfigError(f"parameter {key!r} needs levels >= 0, got {getattr(profile, key)}")


def resolve(profile: str | Profile, overrides: Mapping[str, Any] | None = None) -> Profile:
    """Profile by name (or as given) with validated ``overrides``; the one entry point notebooks use."""
    base = get_profile(profile) if isinstance(profile, str) else profile
    return apply_overrides(base, dict(overrides or {}))


for _p in PROFILES.values():
    validate(_p)


def trained_archs(profile: Profile) -> tuple[str, ...]:
    """Every architecture ``profile`` trains: its references, its target, its ablation references."""
    return tuple(dict.fromkeys((*profile.reference_archs, profile.target_arch, *profile.ablation_reference_archs)))
