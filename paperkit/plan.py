"""Every training run a profile will do, with an estimated time: ``python -m paperkit plan``.

:func:`planned_runs` lists the runs the notebooks request, in the order they request them and
under the folders they train into, from the profile alone (the same :class:`~paperkit.runs.RunSpec`
the notebooks build, soft labels and pools named by what makes them): the references of notebook 02, B and B+MODL+KNNS per seed in 05, the variants, the
K sweep and the teaching ablations of 06 (gated as 06 gates them), and nothing new in 07 and 08,
which reuse 02 and 05. A test checks that the smoke profile's end-to-end run creates exactly
these folders, so the plan cannot drift from the notebooks unnoticed.

:func:`estimate` puts a time on each run from throughput rates: measured by :func:`probe` (a few
training steps of each architecture at the profile's crop and batch size on the device it will
train on), or, where no probe can run, the README's rates measured on one H200 (said so in the
plan). Faithful KNNS forwards the K neighbours with the anchors, so its step costs a measured
(K+1)-fold batch; efficient KNNS costs 1.05x a BCE step. Validation (every epoch), the memory
bank's warm start and the memorisation monitor add inference time. Not included: notebook kernel
start, evaluation (bootstrap CIs), figures and test-set predictions.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from paperkit.artifacts import read_manifest, write_json
from paperkit.config import ConfigError, Profile, resolve
from paperkit.paths import RunPaths
from paperkit.runs import (ALL_REFERENCES, Pools, RunSpec, SoftLabels, dataset_key, oof_subset, pruned_labels, run_spec,
                           teacher_changes)
from paperkit.runs import layouts as profile_layouts
from paperkit.train import VARIANTS

#: The plan's file beside REPORT.md.
PLAN_FILE = "plan.json"
#: Memory-bank (efficient) KNNS step cost relative to a BCE step (README: DenseNet-121, H200, 224 px).
EFFICIENT_FACTOR = 1.05
#: Classes every layout trains (NIH: 14 findings; CheXpert: 14 observations).
N_CLASSES = 14
#: Above this many parameters a CPU probe would take minutes per training step: it is skipped.
CPU_PROBE_MAX_PARAMS = 5_000_000
#: Seconds the throughput probe may take in all (the runner waits for it before the first notebook).
PROBE_BUDGET_S = 60.0
#: What the estimate leaves out (printed with every total).
NOT_INCLUDED = "notebook kernel start, evaluation (bootstrap CIs), figures and test-set predictions"

#: Measured on one NVIDIA H200 (README: torch 2.11, bf16 + channels_last, batch 64, 224 px): inference
#: images per second. Training is taken as a third of inference (forward + backward + Adam step).
H200_INFERENCE = {
    "densenet121": 5358.0,
    "densenet169": 4252.0,
    "densenet201": 3622.0,
    "inception_resnet_v2": 3055.0,
    "legacy_xception": 9956.0,
    "nasnetalarge": 1924.0,
}
H200_TRAIN_FRACTION = 1.0 / 3.0
#: README, H200: a faithful KNNS epoch costs 2.70x a BCE epoch at K = 9 (DenseNet-121, 224 px, batch 32).
H200_FAITHFUL = (9, 2.70)
H200_CROP = 224

#: Image counts of the full public datasets, for a plan without ``--data-root``.
#: NIH: Data_Entry_2017_v2020.csv (112,120 images); train_val_list.txt 86,524 / test_list.txt 25,596.
NIH_IMAGES, NIH_TEST_OFFICIAL = 112_120, 25_596
#: CheXpert-v1.0(-small): train.csv 223,414 rows of which 191,027 frontal (counted in the train.csv
#: bundled with torchxrayvision); valid.csv 234 images (all views: the frontal count needs the file).
CHEXPERT_TRAIN, CHEXPERT_TRAIN_FRONTAL, CHEXPERT_VALID = 223_414, 191_027, 234


# --------------------------------------------------------------------------------------------
# what runs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedRun:
    """One training run: where it trains, what, and (once estimated) for how long."""

    notebook: str  # the first notebook that requests it ("02", "05", "06")
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
    build (:func:`paperkit.runs.run_spec`); a folder requested twice is one run (notebooks reuse runs)."""

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
        knns = spec.config.gamma_knns > 0
        self.runs.setdefault(spec.folder, PlannedRun(
            notebook, purpose, layout, spec.data, spec.name, arch, spec.variant, seed, spec.config.epochs,
            spec.config.knns_mode if knns else "", spec.config.k if knns else 0, fraction, spec.monitored,
            spec.changes))
        return spec

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
    """The runs and soft labels of notebooks 02-08 and :mod:`paperkit.ablations`, gated as they gate them.

    ``tests/test_plan.py`` holds it to the smoke run's ``checkpoints/`` folders.
    """
    runs = _Runs(cfg)
    layouts, first, target = profile_layouts(cfg), cfg.seeds[0], cfg.target_arch
    inputs = {}
    for layout in layouts:  # 02's references, 03's soft labels, 04's pools (07 and 08 reuse them)
        soft = runs.references("02", "reference", layout, cfg.reference_archs, ALL_REFERENCES, soft_notebook="03")
        inputs[layout] = soft, Pools.of(cfg, soft, cfg.k)
    for layout in layouts:  # 05: the headline pair on every seed
        for seed in cfg.seeds:
            for variant in ("B", "B+MODL+KNNS"):
                runs.add("05", "headline", layout, target, seed, variant, soft=inputs[layout][0], pools=inputs[layout][1])
    n_single = cfg.ablation_seeds or len(cfg.seeds)  # 06: the single-term rows on the first seeds
    for layout in layouts:
        for i, seed in enumerate(cfg.seeds):
            for variant in (VARIANTS if i < n_single else ("B", "B+MODL+KNNS")):
                runs.add("06", "Tables 1-2 rows", layout, target, seed, variant, soft=inputs[layout][0],
                         pools=inputs[layout][1])
    layout = "chexpert" if "chexpert" in layouts else layouts[0]  # 06's K sweep (Fig. 4)
    soft = inputs[layout][0]
    for k in cfg.k_sweep:
        runs.add("06", "K sweep", layout, target, first, "B+KNNS", soft=soft, pools=Pools.of(cfg, soft, k),
                 changes={"k": k})
    layout = "nih" if "nih" in layouts else layouts[0]
    _method_ablations(cfg, runs, layout, first, *inputs[layout])
    _teacher_ablations(cfg, runs, layout, first)
    return runs


def _method_ablations(cfg: Profile, runs: _Runs, layout: str, seed: int, soft: SoftLabels, pool: Pools) -> None:
    """The runs of notebook 06's faithful-vs-efficient, uncertain-policy and loss-variant sections."""
    target, teaching = cfg.target_arch, set(cfg.teaching)
    if "faithful_knns" in teaching:
        runs.add("06", "faithful vs efficient", layout, target, seed)
        for mode in ("faithful", "efficient"):
            runs.add("06", "faithful vs efficient", layout, target, seed, "B+KNNS", soft=soft, pools=pool,
                     changes={"knns_mode": mode})
    if "uncertain_policies" in teaching and "chexpert" in profile_layouts(cfg):
        for policy in (cfg.uncertain_policy, "u_zeros", "u_ignore", "lsr_ones"):  # same images, other targets
            runs.add("06", "uncertain policies", "chexpert", target, seed, labels=policy)
    if {"as_printed_kl", "single_reference"} & teaching:
        for variant in ("B", "B+MODL"):
            runs.add("06", "loss variants", layout, target, seed, variant, soft=soft)
        if "as_printed_kl" in teaching:
            runs.add("06", "loss variants", layout, target, seed, "B+MODL", soft=soft, changes={"kl_form": "as_printed"})
        if "single_reference" in teaching:
            one = runs.references("06", "loss variants", layout, cfg.reference_archs[:1], "n1")
            runs.add("06", "loss variants", layout, target, seed, "B+MODL", soft=one)


def _teacher_ablations(cfg: Profile, runs: _Runs, layout: str, seed: int) -> None:
    """The runs of notebook 06's teacher (out-of-fold, cleanlab) and noise x λ grid sections."""
    from paperkit import ablations

    target, teaching = cfg.target_arch, set(cfg.teaching)
    archs, name = ablations.grid_references(cfg)
    if {"out_of_fold", "cleanlab"} & teaching:
        in_fold = runs.references("06", "teachers", layout, archs, name)
        runs.add("06", "teachers", layout, target, seed)
        for_cleanlab = in_fold
        if "out_of_fold" in teaching:
            folds = cfg.oof_folds
            folders = [runs.add("06", "teachers", layout, arch, 0, subset=oof_subset(fold, folds),
                                fraction=(folds - 1) / folds).folder for arch in archs for fold in range(folds)]
            out_of_fold = runs.soft_set("06", SoftLabels.of(cfg, dataset_key(cfg, layout), f"oof{folds}", folders,
                                                            folds=folds), archs, folds)
            for soft in (in_fold, out_of_fold):
                runs.add("06", "teachers", layout, target, seed, "B+MODL+KNNS", soft=soft, pools=Pools.of(cfg, soft, cfg.k))
            for_cleanlab = out_of_fold
        if "cleanlab" in teaching:
            runs.add("06", "teachers", layout, target, seed, labels=pruned_labels(cfg.uncertain_policy, for_cleanlab))
    if "noise_lambda_grid" in teaching and cfg.dataset == "benchmark":  # real data has one noise level
        for level in sorted({cfg.noise, *cfg.noise_sweep}):
            noise = None if level == cfg.noise else level
            soft = runs.references("06", "noise x λ grid", layout, archs, name, noise=noise)
            runs.add("06", "noise x λ grid", layout, target, seed, noise=noise)
            for weight in sorted({cfg.lambda_modl, *cfg.lambda_sweep}):
                runs.add("06", "noise x λ grid", layout, target, seed, "B+MODL+KNNS", noise=noise, soft=soft,
                         pools=Pools.of(cfg, soft, cfg.k), changes=teacher_changes(weight))


# --------------------------------------------------------------------------------------------
# how big the data is
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# how fast
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rates:
    """Images per second by architecture, the faithful KNNS step cost, and where they come from."""

    device: str  # what the rates are for, e.g. "cuda (NVIDIA H200)", "cpu", "one H200 (nominal)"
    source: str  # measured probe, or the README's H200 numbers, or none
    train: dict[str, float] = field(default_factory=dict)  # BCE training images/s at the profile's crop and batch
    infer: dict[str, float] = field(default_factory=dict)  # inference images/s (validation, soft labels)
    faithful_k: int = 0  # the K at which faithful_ratio was measured
    faithful_ratio: float = 0.0  # faithful KNNS step time / BCE step time at faithful_k
    render: float | None = None  # benchmark images rendered per second (all workers)
    decode: float | None = None  # images decoded into the cache per second (all workers)

    def faithful_factor(self, k: int) -> float | None:
        """Faithful KNNS step cost relative to BCE at ``k``: the measured ratio, scaled linearly in K
        between 1 (no neighbour) and the ratio at :attr:`faithful_k`."""
        if not self.faithful_k:
            return None
        return 1.0 + (self.faithful_ratio - 1.0) * k / self.faithful_k


def nominal_rates(cfg: Profile, archs: Sequence[str]) -> Rates | None:
    """The README's H200 rates scaled to the profile's crop (cost ∝ pixels), or ``None`` if an
    architecture was not measured there."""
    if any(a not in H200_INFERENCE for a in archs):
        return None
    scale = (H200_CROP / cfg.crop) ** 2
    infer = {a: H200_INFERENCE[a] * scale for a in archs}
    return Rates("one H200 (nominal)", f"README's measured H200 inference rates (bf16, {H200_CROP} px), training "
                 f"= 1/3 of inference, faithful KNNS {H200_FAITHFUL[1]}x BCE at K = {H200_FAITHFUL[0]}"
                 + (f", scaled by (224/{cfg.crop})² to this crop" if cfg.crop != H200_CROP else ""),
                 {a: r * H200_TRAIN_FRACTION for a, r in infer.items()}, infer, *H200_FAITHFUL)


def parameter_count(arch: str) -> int:
    """Parameters of ``arch`` (1 channel, 14 classes): from ``models.MODEL_INFO``, else built on the meta device."""
    from paperkit.models import MODEL_INFO, count_parameters, create_model

    found = re.search(r"([\d.]+)M params", MODEL_INFO.get(arch, ""))
    if found:
        return int(float(found.group(1)) * 1e6)
    import torch

    with torch.device("meta"):  # no memory and no initialisation cost
        return count_parameters(create_model(arch, N_CLASSES))


def probe_device(cfg: Profile, archs: Sequence[str]) -> tuple[str | None, str]:
    """The device a throughput probe runs on, or ``None`` and why it is skipped."""
    import torch

    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        return None, "device=cuda but torch sees no CUDA GPU"
    if device == "cpu":
        largest = max(archs, key=parameter_count)
        if parameter_count(largest) > CPU_PROBE_MAX_PARAMS:
            return None, (f"no GPU here, and paper-size networks take minutes per training step on a CPU "
                          f"({largest}: {parameter_count(largest) / 1e6:.1f}M parameters)")
    return device, ""


def _timed(fn: Callable[[], None], sync: Callable[[], None], warmup: int, steps: int, budget_s: float) -> float:
    """Median seconds of ``fn`` over up to ``steps`` calls after ``warmup`` (fewer once ``budget_s`` is spent)."""
    for _ in range(warmup):
        fn()
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < steps and (not times or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def probe(cfg: Profile, device: str, archs: Sequence[str], *, steps: int = 3, budget_s: float = 3.0,
          total_budget_s: float = PROBE_BUDGET_S, echo: Callable[..., None] = lambda *a, **k: None) -> Rates:
    """Measure training and inference throughput of ``archs`` on ``device``, as the trainer runs them.

    Random inputs at the profile's crop and batch size, the trainer's settings (channels_last and bf16
    autocast on CUDA when ``amp``; Adam; BCE). A faithful KNNS step is a BCE step on a (K+1)-fold
    batch of the target (anchors and neighbours go through the network together). Data loading is not
    measured (it is prefetched in a background thread during training). Benchmark rendering and cache
    decoding are timed on a few images and scaled by the data workers. Once ``total_budget_s`` is spent
    (a loaded machine), the architectures left get no rate: their runs have no estimate, and the
    rates' ``source`` says so.
    """
    import torch

    from paperkit.models import create_model

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    warmup = 3 if cuda else 1  # cuDNN benchmark mode tries kernels on the first calls
    layout = torch.channels_last if cuda else torch.contiguous_format
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda and cfg.amp else nullcontext
    before_det, before_bench = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(not cuda)  # as RunState.start: the CPU trainer runs deterministic kernels
    torch.backends.cudnn.benchmark = cuda
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    batch = cfg.batch_size
    needs_faithful = any(r.knns_mode == "faithful" for r in planned_runs(cfg))
    train, infer, ratio = {}, {}, 0.0
    start, skipped = time.perf_counter(), []
    try:
        for arch in archs:
            if time.perf_counter() - start > total_budget_s:
                skipped.append(arch)
                continue
            t_arch = time.perf_counter()
            torch.manual_seed(0)
            model = create_model(arch, N_CLASSES, head=cfg.head).to(dev, memory_format=layout)
            optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas)

            def step(n: int) -> Callable[[], None]:
                x = torch.randn(n, 1, cfg.crop, cfg.crop, device=dev).contiguous(memory_format=layout)
                y = torch.rand(n, N_CLASSES, device=dev).round()

                def run() -> None:
                    with amp():
                        out = model(x)
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                return run

            model.train()
            t_step = _timed(step(batch), sync, warmup, steps, budget_s)
            train[arch] = batch / t_step
            if arch == cfg.target_arch and needs_faithful:
                ratio = _timed(step(batch * (cfg.k + 1)), sync, warmup, steps, budget_s) / t_step
            model.eval()
            x = torch.randn(batch * 4, 1, cfg.crop, cfg.crop, device=dev).contiguous(memory_format=layout)

            def forward() -> None:
                with torch.inference_mode(), amp():
                    model(x)
            infer[arch] = batch * 4 / _timed(forward, sync, warmup, steps, budget_s)  # validation's batch
            echo(f"  probe {arch}: train {train[arch]:,.0f} img/s, inference {infer[arch]:,.0f} img/s "
                 f"({time.perf_counter() - t_arch:.1f} s)", flush=True)
            del model, optimizer
            if cuda:
                torch.cuda.empty_cache()
    finally:
        torch.use_deterministic_algorithms(before_det)
        torch.backends.cudnn.benchmark = before_bench
    over = time.perf_counter() - start > total_budget_s
    render, decode = (None, None) if over else _probe_data(cfg)
    name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    source = (f"measured here ({device}: {name}), up to {steps} steps per architecture after {warmup} warm-up at "
              f"crop {cfg.crop}, batch {batch}" + (f", faithful KNNS as a {cfg.k + 1}x batch" if ratio else ""))
    if skipped or over:
        source += (f"; probe stopped after its {total_budget_s:.0f} s budget"
                   + (f": no rate for {', '.join(skipped)}" if skipped else "") + " (a loaded machine?)")
    return Rates(f"{device} ({name})" if cuda else "cpu", source, train, infer, cfg.k if ratio else 0, ratio,
                 render, decode)


def _probe_data(cfg: Profile, n: int = 16) -> tuple[float | None, float | None]:
    """Benchmark rendering and cache decoding rates (images/s over all data workers), from ``n`` images
    rendered and decoded in this process; ``(None, None)`` for user data (decoding its files would read
    the disk the preflight only lists)."""
    if cfg.dataset != "benchmark":
        return None, None
    from paperkit.data.benchmark import generate_benchmark
    from paperkit.data.cache import build_cache
    from paperkit.experiment import data_workers

    workers = data_workers()
    with tempfile.TemporaryDirectory(prefix="paperkit-probe-") as tmp:
        t0 = time.perf_counter()
        generate_benchmark(Path(tmp) / "nih", "nih", n, cfg.render_size, seed=0, workers=1, progress=False)
        render = n / (time.perf_counter() - t0)
        images = sorted(str(p) for p in (Path(tmp) / "nih" / "images").glob("*.png"))
        t0 = time.perf_counter()
        build_cache(images, Path(tmp) / "cache", size=cfg.resize, workers=1, progress=False)
        decode = len(images) / (time.perf_counter() - t0)
    return render * workers, decode * workers  # chunks are independent: rates scale with the workers


# --------------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataStep:
    """A non-training step with a cost: rendering a benchmark draw, building an image cache, soft labels."""

    notebook: str
    what: str
    folder: str  # relative to results/<profile>/
    finished: bool
    seconds: float | None


@dataclass(frozen=True)
class Plan:
    """Every run and data step of a profile, with estimates and a total."""

    profile: str
    runs: list[PlannedRun]
    steps: list[DataStep]
    sizes: dict[str, DataSize]
    rates: Rates | None
    probe_note: str  # why the rates are what they are (e.g. why no probe ran)

    @property
    def remaining(self) -> list[PlannedRun | DataStep]:
        return [item for item in (*self.steps, *self.runs) if not item.finished]

    @property
    def total_seconds(self) -> float | None:
        """Estimated seconds of everything not yet finished; ``None`` if any of it has no estimate."""
        seconds = [item.seconds for item in self.remaining]
        return None if any(s is None for s in seconds) else float(sum(seconds))

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "runs": [{**dataclasses.asdict(r), "folder": r.folder} for r in self.runs],
            "steps": [dataclasses.asdict(s) for s in self.steps],
            "sizes": {k: {**dataclasses.asdict(v), "n_all": v.n_all} for k, v in self.sizes.items()},
            "rates": dataclasses.asdict(self.rates) if self.rates else None,
            "probe_note": self.probe_note,
            "total_seconds": self.total_seconds,
            "runs_seconds": _sum(r.seconds for r in self.runs if not r.finished),
            "not_included": NOT_INCLUDED,
        }


def _sum(values) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) else float(sum(values))


def estimate(run: PlannedRun, size: DataSize | None, rates: Rates | None,
             batch_size: int) -> tuple[float, float] | None:
    """Seconds of one run as ``(training steps, the rest)``; ``None`` without a rate for it.

    The rest: validation every epoch, the memory bank's warm start (efficient KNNS) and the
    memorisation monitor (train and test images scored every epoch)."""
    if size is None or rates is None or run.arch not in rates.train:
        return None
    n_train = math.floor(size.n_train * run.train_fraction)
    images = (n_train // batch_size) * batch_size  # the last incomplete batch is dropped
    factor: float | None = 1.0
    if run.knns_mode == "efficient":
        factor = EFFICIENT_FACTOR
    elif run.knns_mode == "faithful":
        factor = rates.faithful_factor(run.k)
    if factor is None:
        return None
    infer = rates.infer[run.arch]
    rest = run.epochs * size.n_val / infer
    if run.knns_mode == "efficient":
        rest += n_train / infer
    if run.monitored:
        rest += run.epochs * (n_train + size.n_test) / infer
    return run.epochs * images * factor / rates.train[run.arch], rest


def build_plan(cfg: Profile, paths: RunPaths | None = None, *, counted: Mapping[str, DataSize] | None = None,
               rates: Rates | None = None, probe_note: str = "", redo: bool = False) -> Plan:
    """The plan of ``cfg``: runs (finished ones marked from their manifests, none under ``redo``: --force),
    data steps, estimates."""
    paths = paths or RunPaths.for_profile(cfg)
    sizes = data_sizes(cfg, paths, counted)
    collected = _collect(cfg)
    runs = []
    for run in collected.runs.values():
        parts = estimate(run, sizes.get(run.dataset_key), rates, cfg.batch_size)
        runs.append(dataclasses.replace(run, finished=not redo and read_manifest(paths.run_dir(run.folder)) is not None,
                                        seconds=sum(parts) if parts else None,
                                        train_seconds=parts[0] if parts else None))
    own = _own_keys(cfg)
    steps: list[DataStep] = []

    def add(notebook: str, what: str, folder: Path, seconds: float | None) -> None:
        steps.append(DataStep(notebook, what, folder.relative_to(paths.root).as_posix(),
                              not redo and read_manifest(folder) is not None, seconds))

    for key in dict.fromkeys(r.dataset_key for r in runs):
        size = sizes.get(key)
        n = size.n_all if size else None
        notebook = "01" if key in own else "06"  # other noise levels are drawn by 06's grid
        if cfg.dataset == "benchmark":
            add(notebook, f"render {n or '?'} benchmark images", paths.benchmark / key,
                n / rates.render if n and rates and rates.render else None)
        # a user's full-size files were not decoded by the probe: no rate for them
        add(notebook, f"cache {n or '?'} images at {cfg.resize} px", paths.image_cache(f"{key}-{cfg.resize}px"),
            n / rates.decode if n and rates and rates.decode else None)
    for soft_set in collected.soft_sets.values():
        size, archs, models = sizes.get(soft_set.soft.folder.split("/")[0]), soft_set.archs, soft_set.models_per_arch
        known = size is not None and rates is not None and all(a in rates.infer for a in archs)
        add(soft_set.notebook, f"soft labels '{soft_set.soft.name}' ({models * len(archs)} model(s))",
            paths.soft_labels / soft_set.soft.folder,
            models * size.n_all * sum(1.0 / rates.infer[a] for a in archs) if known else None)
    return Plan(cfg.name, runs, steps, sizes, rates, probe_note)


def _own_keys(cfg: Profile) -> set[str]:
    return {dataset_key(cfg, layout) for layout in profile_layouts(cfg)}


def make_plan(cfg: Profile, *, probe_requested: bool = True, counted: Mapping[str, DataSize] | None = None,
              redo: bool = False, echo: Callable[..., None] = lambda *a, **k: None) -> Plan:
    """:func:`build_plan` with rates: a probe where one can run (see :func:`probe_device`), else the
    README's H200 rates where they cover every architecture, else none (runs without an estimate)."""
    from paperkit.weights import trained_archs

    archs = trained_archs(cfg)
    device, why = probe_device(cfg, archs) if probe_requested else (None, "--no-probe")
    if device is not None:
        echo(f"probing throughput on {device} ({len(archs)} architecture(s), crop {cfg.crop}, batch {cfg.batch_size}) ...",
             flush=True)
        return build_plan(cfg, counted=counted, rates=probe(cfg, device, archs, echo=echo), redo=redo)
    rates = nominal_rates(cfg, archs)
    note = f"no probe ({why})"
    note += ": times are for one H200, not this machine" if rates else ": no rates, so no time estimate"
    return build_plan(cfg, counted=counted, rates=rates, probe_note=note, redo=redo)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_plan(plan: Plan, *, every_run: bool = True) -> str:
    """The plan as text: one line per run (and data step), then the total."""
    lines = [f"plan: profile {plan.profile!r}"]
    for key, size in plan.sizes.items():
        lines.append(f"  data {key}: {size.n_train:,} train / {size.n_val:,} validation / {size.n_test:,} test "
                     f"images ({size.source})")
    rates = plan.rates
    lines.append(f"  rates: {rates.source if rates else 'none'}" + (f"; {plan.probe_note}" if plan.probe_note else ""))
    if every_run:
        lines.append(f"  {'nb':3s} {'purpose':22s} {'run folder (checkpoints/)':46s} {'arch':20s} {'ep':>3s} "
                     f"{'KNNS':10s} {'estimate':>9s}")
        for run in plan.runs:
            knns = f"{run.knns_mode} K={run.k}" if run.knns_mode else "-"
            done = "finished" if run.finished else format_seconds(run.seconds)
            lines.append(f"  {run.notebook:3s} {run.purpose:22s} {run.folder:46s} {run.arch:20s} {run.epochs:3d} "
                         f"{knns:10s} {done:>9s}")
        for step in plan.steps:
            done = "finished" if step.finished else format_seconds(step.seconds)
            lines.append(f"  {step.notebook:3s} {'data':22s} {step.folder:46s} {step.what:35s} {done:>9s}")
    lines.append(summary_line(plan))
    return "\n".join(lines)


def summary_line(plan: Plan) -> str:
    """``total: N training runs (M finished), estimated H:MM:SS left on DEVICE`` and what it leaves out."""
    finished = sum(r.finished for r in plan.runs)
    text = f"total: {len(plan.runs)} training runs ({finished} finished), "
    if not plan.remaining:
        return text + "nothing left to do"
    unknown = sum(item.seconds is None for item in plan.remaining)
    if plan.rates is None or unknown == len(plan.remaining):
        return text + f"no time estimate ({plan.probe_note or 'no rates'})"
    total = _sum(item.seconds for item in plan.remaining if item.seconds is not None)
    text += f"estimated {format_seconds(total)} left on {plan.rates.device}"
    if unknown:
        text += f" plus {unknown} item(s) without an estimate"
    return text + f"; not included: {NOT_INCLUDED}"


def write_plan(plan: Plan, paths: RunPaths) -> Path:
    """``results/<profile>/plan.json`` (atomic), for REPORT.md to show the estimate beside the measured time."""
    out = paths.root / PLAN_FILE
    write_json(out, plan.to_dict())
    return out


def plan_vs_measured(paths: RunPaths) -> str | None:
    """One line for REPORT.md: the plan's estimate of the training steps beside the measured training time
    (``metrics.csv`` ``train_s``) of the runs trained since the plan was written; ``None`` without a plan."""
    import pandas as pd

    try:
        saved = json.loads((paths.root / PLAN_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    estimated = measured = 0.0
    compared = 0
    for run in saved.get("runs", []):
        metrics = paths.run_dir(run["folder"]) / "metrics.csv"
        if run.get("finished") or run.get("train_seconds") is None or not metrics.is_file():
            continue
        history = pd.read_csv(metrics)
        if "train_s" not in history or len(history) < run["epochs"]:
            continue  # not finished (or another schedule): no like-for-like time
        estimated += run["train_seconds"]
        measured += float(history["train_s"].sum())
        compared += 1
    device = (saved.get("rates") or {}).get("device", "no rates")
    head = f"plan ({PLAN_FILE}): {len(saved.get('runs', []))} training runs, estimated " \
           f"{format_seconds(saved.get('total_seconds'))} on {device}"
    if not compared or not estimated:
        return f"{head}; no planned run has finished training since"
    return (f"{head}; training steps of the {compared} runs trained since: estimated {format_seconds(estimated)}, "
            f"measured {format_seconds(measured)} ({measured / estimated:.2f}x the estimate)")


# --------------------------------------------------------------------------------------------
# command line: python -m paperkit plan
# --------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu", help="smoke | cpu (default) | teach | gpu | nih | chexpert")
    parser.add_argument("--data-root", default="", help="your dataset root (nih/chexpert): counts its images")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile field, as for `run`")
    parser.add_argument("--no-probe", action="store_true",
                        help="no throughput probe: the README's H200 rates where they cover the networks, else no times")
    parser.add_argument("--total", action="store_true", help="print the total only, not one line per run")


def main(args: argparse.Namespace) -> int:
    from paperkit.preflight import run_preflight
    from paperkit.runner import parse_overrides

    try:
        overrides = parse_overrides(args.param)
        if args.data_root:
            overrides["data_root"] = str(Path(args.data_root).expanduser().resolve())
        cfg = resolve(args.profile, overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counted = None
    if cfg.needs_data_root and cfg.data_root:
        report = run_preflight(cfg)  # counts the images; its problems do not stop a plan
        print(report.summary())
        for problem in report.problems:
            print(f"warning: {problem}", file=sys.stderr)
        counted = report.sizes
    elif cfg.needs_data_root:
        print(f"no --data-root: image counts of the full public {cfg.dataset} dataset")
    plan = make_plan(cfg, probe_requested=not args.no_probe, counted=counted, echo=print)
    print(summary_line(plan) if args.total else format_plan(plan))
    return 0
