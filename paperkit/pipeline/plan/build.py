"""The plan: every run and data step of a profile with its estimated seconds."""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from paperkit.artifacts import read_manifest
from paperkit.config import Profile
from paperkit.method.noisy_losses import DEFAULT_METHOD, get_method
from paperkit.paths import RunPaths
from paperkit.pipeline.plan.measure import probe, probe_device
from paperkit.pipeline.plan.rates import Rates, nominal_rates
from paperkit.pipeline.plan.requests import PlannedRun, _collect
from paperkit.pipeline.plan.sizes import DataSize, data_sizes
from paperkit.pipeline.specs import dataset_key, extra_draw_profile
from paperkit.pipeline.specs import layouts as profile_layouts
from paperkit.training.workers import resolve_workers

#: Memory-bank (efficient) KNNS step cost relative to a BCE step (README: DenseNet-121, H200, 224 px).
EFFICIENT_FACTOR = 1.05
#: Seconds a pool of worker processes takes to start (spawn, import torch and paperkit; 2-core CPU, 2026-12-04).
WORKER_START_S = 4.0
#: What the estimate leaves out (printed with every total).
NOT_INCLUDED = "notebook kernel start, evaluation (bootstrap CIs), figures and test-set predictions"


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
    workers: int = 1  # runs that train at once (the profile's ``workers`` on its device)

    @property
    def remaining(self) -> list[PlannedRun | DataStep]:
        return [item for item in (*self.steps, *self.runs) if not item.finished]

    @property
    def total_seconds(self) -> float | None:
        """Estimated wall seconds of everything not yet finished; ``None`` if any of it has no estimate."""
        return None if any(item.seconds is None for item in self.remaining) else self.known_seconds

    @property
    def known_seconds(self) -> float:
        """Estimated wall seconds of what is not finished and has an estimate: data steps one after the
        other; each group of runs one ``train_runs`` call trains (:attr:`PlannedRun.pool`, else a notebook's
        purpose on one dataset) :attr:`workers` at once, in request order, plus the workers' start."""
        steps = sum(s.seconds for s in self.steps if not s.finished and s.seconds is not None)
        groups: dict[tuple[str, ...], list[float]] = {}
        for run in self.runs:
            if not run.finished and run.seconds is not None:
                key = (run.pool,) if run.pool else (run.notebook, run.purpose, run.dataset_key)
                groups.setdefault(key, []).append(run.seconds)
        pools = sum(1 for g in groups.values() if min(self.workers, len(g)) > 1)
        return float(steps + sum(makespan(g, self.workers) for g in groups.values()) + pools * WORKER_START_S)

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
            "workers": self.workers,
            "runs_seconds": _sum(r.seconds for r in self.runs if not r.finished),
            "not_included": NOT_INCLUDED,
        }


def makespan(seconds: Sequence[float], workers: int) -> float:
    """Wall seconds of independent jobs taken in order by ``workers`` processes, each job going to the
    first process free (as a process pool's ``map`` hands them out)."""
    free_at = [0.0] * max(1, workers)
    for s in seconds:
        i = free_at.index(min(free_at))
        free_at[i] += s
    return max(free_at)


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
    factor *= get_method(dict(run.changes).get("method", DEFAULT_METHOD)).peers  # co-teaching: two networks
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
    runs, warm = [], set()
    for run in collected.runs.values():
        parts = estimate(run, sizes.get(run.dataset_key), rates, cfg.batch_size)
        finished = not redo and read_manifest(paths.run_dir(run.folder)) is not None
        if parts and not finished and (run.notebook, run.arch) not in warm:  # its first epoch in this kernel
            warm.add((run.notebook, run.arch))
            parts = (parts[0] + rates.warmup.get(run.arch, 0.0), parts[1])
        runs.append(dataclasses.replace(run, finished=finished, seconds=sum(parts) if parts else None,
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
    if cfg.dataset == "benchmark" and cfg.extra_test_images:  # the verdict's extra test patients (06)
        n, draw = cfg.extra_test_images, extra_draw_profile(cfg)
        for layout in profile_layouts(cfg):
            key = dataset_key(draw, layout)
            add("06", f"render {n} images of a second test draw", paths.benchmark / key,
                n / rates.render if rates and rates.render else None)
            add("06", f"cache {n} images at {cfg.resize} px", paths.image_cache(f"{key}-{cfg.resize}px"),
                n / rates.decode if rates and rates.decode else None)
    for soft_set in collected.soft_sets.values():
        size, archs, models = sizes.get(soft_set.soft.folder.split("/")[0]), soft_set.archs, soft_set.models_per_arch
        known = size is not None and rates is not None and all(a in rates.infer for a in archs)
        add(soft_set.notebook, f"soft labels '{soft_set.soft.name}' ({models * len(archs)} model(s))",
            paths.soft_labels / soft_set.soft.folder,
            models * size.n_all * sum(1.0 / rates.infer[a] for a in archs) if known else None)
    return Plan(cfg.name, runs, steps, sizes, rates, probe_note, plan_workers(cfg, rates))


def plan_workers(cfg: Profile, rates: Rates | None) -> int:
    """Runs that train at once on the device the rates are for: the profile's ``workers`` on a CPU (the
    probe measured one worker's share of the cores), one per GPU the runs share out on CUDA (the probe
    measured one GPU), one for the nominal H200 rates (one GPU)."""
    if rates is None or rates.device.startswith("one H200"):
        return 1
    if rates.device.startswith("cpu"):
        return max(1, cfg.workers)
    import torch

    try:
        n, gpus = resolve_workers(cfg.workers, cfg.devices, "cuda", torch.cuda.device_count())
    except ValueError:  # the preflight names the problem
        return 1
    return max(1, min(n, len(set(gpus))))  # workers sharing a GPU do not add its speed


def _own_keys(cfg: Profile) -> set[str]:
    return {dataset_key(cfg, layout) for layout in profile_layouts(cfg)}


def make_plan(cfg: Profile, *, probe_requested: bool = True, counted: Mapping[str, DataSize] | None = None,
              redo: bool = False, echo: Callable[..., None] = lambda *a, **k: None) -> Plan:
    """:func:`build_plan` with rates: a probe where one can run (see :func:`probe_device`), else the
    README's H200 rates where they cover every architecture, else none (runs without an estimate)."""
    from paperkit.config import trained_archs

    archs = trained_archs(cfg)
    device, why = probe_device(cfg, archs) if probe_requested else (None, "--no-probe")
    if device is not None:
        echo(
            f"probing throughput on {device} ({len(archs)} architecture(s), "
            f"crop {cfg.crop}, batch {cfg.batch_size}) ...",
            flush=True,
        )
        return build_plan(cfg, counted=counted, rates=probe(cfg, device, archs, echo=echo), redo=redo)
    rates = nominal_rates(cfg, archs)
    note = f"no probe ({why})"
    note += ": times are for one H200, not this machine" if rates else ": no rates, so no time estimate"
    return build_plan(cfg, counted=counted, rates=rates, probe_note=note, redo=redo)
