"""The throughput probe: a few training and inference steps of each architecture on the device it will train on."""
from __future__ import annotations

import re
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Sequence

from paperkit.config import Profile
from paperkit.plan.rates import Rates
from paperkit.plan.runs import planned_runs

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
