"""Independent training runs at once: a process pool with one worker per GPU, or per share of the CPU.

Runs of the pipeline that do not depend on each other (the references, the seeds, an ablation's
variants) can train concurrently. Small networks scale poorly over threads, so on a CPU two runs
with one thread each finish sooner than the same runs one after the other on two threads
(``bench/bench_workers.py`` measures it); with several GPUs each worker owns one. Results do not
depend on the number of workers: a CPU run is deterministic, and every run writes only its own
folder. This module imports no torch, so a worker can choose its GPU before torch starts.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads each of ``workers`` concurrent CPU runs gets (at least one)."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def run_parallel(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int, gpus: int = 0) -> list[Any]:
    """``[fn(job) for job in jobs]`` computed by up to ``workers`` spawned processes, in job order.

    Parameters
    ----------
    fn
        A module-level function (it is pickled by name into the workers).
    workers
        Most processes at once; fewer when there are fewer jobs.
    gpus
        GPUs to share out (worker i sees only the i-th visible GPU, modulo ``gpus``, through
        ``CUDA_VISIBLE_DEVICES``); 0 on a CPU, where each worker gets ``cores / workers`` torch threads.
    """
    n = min(workers, len(jobs))
    if n <= 1:
        return [fn(job) for job in jobs]
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited thread pools or CUDA context
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(gpus)))).split(",")
    slots = ctx.Queue()
    for i in range(n):
        slots.put(visible[i % len(visible)] if gpus else None)
    with ProcessPoolExecutor(n, mp_context=ctx, initializer=_start_worker, initargs=(slots, threads_per_worker(n))) as pool:
        return list(pool.map(fn, jobs))


def _start_worker(slots: Any, threads: int) -> None:
    """Claim a GPU (before torch is imported in this process) or set the CPU thread count."""
    gpu = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)
