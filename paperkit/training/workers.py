"""Independent training runs at once: a process pool with one worker per GPU, or per share of the CPU.

Runs of the pipeline that do not depend on each other (the references, the seeds, an ablation's
variants) can train concurrently: with several GPUs each worker owns one. On a CPU, small networks
scale poorly over threads, so runs with a share of the cores each may finish sooner than one after
the other on all of them (``bench/bench_workers.py`` measures it: 1.25x on 2 cores for runs of a few
thousand images, less than 1x for runs shorter than a worker's start, so the smoke profile keeps one).
Every run writes only its own folder and is the same run in any process, up to float rounding: a
CPU worker's share of the threads sums in another order than all threads do (``tests/test_workers.py``
holds the models equal to 1e-3). This module imports no torch, so a worker can choose its GPU
before torch starts.

The profile fields ``workers`` (0 = one per GPU on CUDA, one on a CPU) and ``devices`` (``all`` or
GPU indices such as ``0,1,3``) become a pool size and the GPUs it shares out in
:func:`resolve_workers`.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

from paperkit.config import parse_devices


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads each of ``workers`` concurrent CPU runs gets (at least one)."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def resolve_workers(workers: int, devices: str, device_type: str, visible_gpus: int) -> tuple[int, tuple[int, ...]]:
    """How many runs train at once, and the GPUs (indices among the visible ones) they share.

    Parameters
    ----------
    workers
        The profile's ``workers``: 0 picks one per GPU on CUDA and one on a CPU.
    devices
        The profile's ``devices``: ``all`` or GPU indices (see :func:`paperkit.config.parse_devices`).
    device_type
        ``"cuda"`` or ``"cpu"``: the type of the device the runs train on.
    visible_gpus
        GPUs torch sees (``torch.cuda.device_count()``).

    Returns
    -------
    tuple
        ``(n_workers, gpu_ids)``; ``gpu_ids`` is empty on a CPU. With more workers than GPUs, GPUs
        are shared round-robin.

    Raises
    ------
    ValueError
        When ``devices`` names a GPU that is not visible, or GPUs while the runs train on a CPU.
    """
    chosen = parse_devices(devices)
    if device_type != "cuda":
        if chosen is not None:
            raise ValueError(f"devices={devices} names GPUs but the runs train on the {device_type}: "
                             f"drop -p devices or run where torch sees a GPU")
        return max(workers, 1), ()
    if visible_gpus < 1:
        raise ValueError("the runs train on CUDA but torch sees no GPU")
    gpu_ids = tuple(range(visible_gpus)) if chosen is None else chosen
    unseen = [str(g) for g in gpu_ids if g >= visible_gpus]
    if unseen:
        raise ValueError(f"devices={devices}: GPU {', '.join(unseen)} not visible; torch sees {visible_gpus} "
                         f"(indices 0..{visible_gpus - 1}, counted within CUDA_VISIBLE_DEVICES when it is set)")
    return workers or len(gpu_ids), gpu_ids


def in_process(workers: int, gpus: Sequence[int] = ()) -> bool:
    """Whether ``workers`` runs at once need no worker process: at most one, on this process's GPU
    (the first visible) or the CPU."""
    return workers <= 1 and tuple(gpus[:1]) in ((), (0,))


def run_parallel(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int,
                 gpus: Sequence[int] = ()) -> list[Any]:
    """``[fn(job) for job in jobs]`` computed by up to ``workers`` spawned processes, in job order.

    Jobs run in this process when one worker suffices and it would use this process's GPU (the
    first visible) or the CPU.

    Parameters
    ----------
    fn
        A module-level function (it is pickled by name into the workers).
    workers
        Most processes at once; fewer when there are fewer jobs.
    gpus
        Indices of the visible GPUs to share out (worker i sees only ``gpus[i % len(gpus)]``, through
        ``CUDA_VISIBLE_DEVICES``); empty on a CPU, where each worker gets ``cores / workers`` torch
        threads.
    """
    n = min(workers, len(jobs))
    if in_process(n, gpus):
        return [fn(job) for job in jobs]
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited thread pools or CUDA context
    slots = ctx.Queue()
    for i in range(n):
        slots.put(_visible_entry(gpus[i % len(gpus)]) if gpus else None)
    with ProcessPoolExecutor(
        n, mp_context=ctx, initializer=_start_worker, initargs=(slots, threads_per_worker(n))
    ) as pool:
        return list(pool.map(fn, jobs))


def _visible_entry(index: int) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` entry of the ``index``-th GPU this process sees (indices count
    within a ``CUDA_VISIBLE_DEVICES`` that is already set, as torch's do)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible.split(",")[index] if visible else str(index)


def _start_worker(slots: Any, threads: int) -> None:
    """Claim a GPU (before torch is imported in this process) or set the CPU thread count."""
    gpu = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)
