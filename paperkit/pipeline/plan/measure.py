"""The throughput probe: a few training and inference steps of each architecture on the device it will train on."""
from __future__ import annotations

import re
import statistics
import tempfile
import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from paperkit.config import Profile
from paperkit.pipeline.plan.rates import Rates
from paperkit.pipeline.plan.requests import planned_runs
from paperkit.training.workers import threads_per_worker

if TYPE_CHECKING:
    import torch

#: Classes every layout trains (NIH: 14 findings; CheXpert: 14 observations).
N_CLASSES = 14
#: Above this many parameters a CPU probe would take minutes per training step: it is skipped.
CPU_PROBE_MAX_PARAMS = 5_000_000
#: Seconds the throughput probe may take in all (the runner waits for it before the first notebook).
PROBE_BUDGET_S = 60.0


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


@dataclass(frozen=True)
class _Bench:
    """Where and how long the probe times a call: the device with the trainer's settings on it, and
    up to ``steps`` timed calls (fewer once ``budget_s`` is spent)."""

    dev: torch.device
    amp: bool  # bf16 autocast on CUDA, as the trainer
    steps: int
    budget_s: float

    @property
    def cuda(self) -> bool:
        return self.dev.type == "cuda"

    @property
    def warmup(self) -> int:
        return 3 if self.cuda else 1  # cuDNN benchmark mode tries kernels on the first calls

    @property
    def layout(self) -> torch.memory_format:
        from paperkit.runtime import memory_format

        return memory_format(self.dev)

    def autocast(self) -> AbstractContextManager:
        import torch

        return torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda and self.amp else nullcontext()

    def images(self, n: int, crop: int) -> torch.Tensor:
        """A random batch of ``n`` one-channel images in the trainer's memory layout."""
        import torch

        return torch.randn(n, 1, crop, crop, device=self.dev).contiguous(memory_format=self.layout)

    def timed(self, fn: Callable[[], None]) -> tuple[float, float]:
        """Median seconds of ``fn`` over up to :attr:`steps` calls after :attr:`warmup` (fewer once
        :attr:`budget_s` is spent), the device synchronised around each, and the seconds the warm-up
        calls took beyond as many timed ones (what a fresh kernel pays once: cuDNN autotuning)."""
        import torch

        sync = torch.cuda.synchronize if self.cuda else (lambda: None)
        t0 = time.perf_counter()
        for _ in range(self.warmup):
            fn()
        sync()
        warm = time.perf_counter() - t0
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < self.steps and (not times or time.perf_counter() - start < self.budget_s):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        return median, max(0.0, warm - self.warmup * median)


@contextmanager
def _trainer_settings(cuda: bool, num_threads: int) -> Iterator[None]:
    """Torch's global settings as :class:`~paperkit.training.state.RunState` sets them, restored afterwards
    (the probe runs in the caller's process)."""
    import torch

    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark, torch.get_num_threads()
    torch.use_deterministic_algorithms(not cuda)  # as RunState.start: the CPU trainer runs deterministic kernels
    torch.backends.cudnn.benchmark = cuda
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]
        torch.set_num_threads(before[2])


def _training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, bench: _Bench, n: int,
                   crop: int) -> Callable[[], None]:
    """One BCE training step (forward, backward, Adam) on a random batch of ``n`` images."""
    import torch

    x = bench.images(n, crop)
    y = torch.rand(n, N_CLASSES, device=bench.dev).round()

    def run() -> None:
        with bench.autocast():
            out = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return run


def _probe_arch(cfg: Profile, arch: str, bench: _Bench,
                faithful: bool) -> tuple[float, float, float | None, float]:
    """Training and inference images/s of ``arch``, where ``faithful`` the faithful KNNS step time
    relative to a BCE step (a (K+1)-fold batch: anchors and neighbours go through the network together),
    and the warm-up seconds of its training and inference steps."""
    import torch

    from paperkit.models import create_model

    torch.manual_seed(0)
    model = create_model(arch, N_CLASSES, head=cfg.head).to(bench.dev, memory_format=bench.layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas)
    batch = cfg.batch_size
    model.train()
    t_step, warm_train = bench.timed(_training_step(model, optimizer, bench, batch, cfg.crop))
    ratio = None
    if faithful:
        ratio = bench.timed(_training_step(model, optimizer, bench, batch * (cfg.k + 1), cfg.crop))[0] / t_step
    model.eval()
    x = bench.images(batch * 4, cfg.crop)  # validation's batch

    def forward() -> None:
        with torch.inference_mode(), bench.autocast():
            model(x)
    t_infer, warm_infer = bench.timed(forward)
    return batch / t_step, batch * 4 / t_infer, ratio, warm_train + warm_infer


def probe(cfg: Profile, device: str, archs: Sequence[str], *, steps: int = 3, budget_s: float = 3.0,
          total_budget_s: float = PROBE_BUDGET_S, echo: Callable[..., None] = lambda *a, **k: None) -> Rates:
    """Measure training and inference throughput of ``archs`` on ``device``, as the trainer runs them.

    Random inputs at the profile's crop and batch size, the trainer's settings (channels_last, bf16
    autocast on CUDA when ``amp``; Adam; BCE). A faithful KNNS step is a BCE step on a (K+1)-fold
    batch of the target (anchors and neighbours go through the network together). Data loading is not
    measured (it is prefetched in a background thread during training). Benchmark rendering and cache
    decoding are timed on a few images and scaled by the data workers. Once ``total_budget_s`` is spent
    (a loaded machine), the architectures left get no rate: their runs have no estimate, and the
    rates' ``source`` says so.
    """
    import torch

    bench = _Bench(torch.device(device), cfg.amp, steps, budget_s)
    needs_faithful = any(r.knns_mode == "faithful" for r in planned_runs(cfg))
    train: dict[str, float] = {}
    infer: dict[str, float] = {}
    warmup: dict[str, float] = {}
    ratio, start, skipped = 0.0, time.perf_counter(), []
    # with several CPU workers, each run gets its share of the cores: the rate of one share is what a run trains at
    threads = threads_per_worker(cfg.workers) if not bench.cuda and cfg.workers > 1 else cfg.num_threads
    with _trainer_settings(bench.cuda, threads):
        for arch in archs:
            if time.perf_counter() - start > total_budget_s:
                skipped.append(arch)
                continue
            t_arch = time.perf_counter()
            measure_faithful = arch == cfg.target_arch and needs_faithful
            train[arch], infer[arch], faithful, warmup[arch] = _probe_arch(cfg, arch, bench, measure_faithful)
            ratio = ratio if faithful is None else faithful
            echo(f"  probe {arch}: train {train[arch]:,.0f} img/s, inference {infer[arch]:,.0f} img/s "
                 f"({time.perf_counter() - t_arch:.1f} s)", flush=True)
            if bench.cuda:
                torch.cuda.empty_cache()  # the model is gone with _probe_arch: its memory goes to the next one
    over = time.perf_counter() - start > total_budget_s
    render, decode = (None, None) if over else _probe_data(cfg)
    name = torch.cuda.get_device_name(bench.dev) if bench.cuda else "cpu"
    source = (f"measured here ({device}: {name}), up to {steps} steps per architecture after {bench.warmup} warm-up "
              f"at crop {cfg.crop}, batch {cfg.batch_size}"
              + (f", {threads} thread(s) per run ({cfg.workers} runs at once)" if threads and cfg.workers > 1 else "")
              + (f", faithful KNNS as a {cfg.k + 1}x batch" if ratio else ""))
    if skipped or over:
        source += (f"; probe stopped after its {total_budget_s:.0f} s budget"
                   + (f": no rate for {', '.join(skipped)}" if skipped else "") + " (a loaded machine?)")
    return Rates(f"{device} ({name})" if bench.cuda else "cpu", source, train, infer, cfg.k if ratio else 0, ratio,
                 render, decode, warmup)


def _probe_data(cfg: Profile, n: int = 16) -> tuple[float | None, float | None]:
    """Benchmark rendering and cache decoding rates (images/s over all data workers), from ``n`` images
    rendered and decoded in this process; ``(None, None)`` for user data (decoding its files would read
    the disk the preflight only lists)."""
    if cfg.dataset != "benchmark":
        return None, None
    from paperkit.data.benchmark import generate_benchmark
    from paperkit.data.cache import build_cache
    from paperkit.pipeline.experiment import data_workers

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
