"""One training run on two threads against two runs on one thread each, side by side in one process tree.

Small networks scale poorly over threads: on a 2-core machine two independent runs with one thread
each may finish sooner than the same two runs one after the other on two threads. This prints both
wall times and their ratio, for the cpu profile's target (densenet_tiny at 56 px) by default.

    python bench/bench_workers.py                       # densenet_tiny, 1,024 images 64 -> 56 px, 2 epochs
    python bench/bench_workers.py --arch resnet_tiny --epochs 1
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np


def one_run(args: tuple[str, int, int, int, int, int, str]) -> float:
    """Train one model (BCE) with ``threads`` torch threads; return its wall time."""
    arch, n, size, crop, epochs, threads, out = args
    import torch

    from paperkit.training.loop import ArrayImages, TrainConfig, fit

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    images = ArrayImages(rng.integers(0, 256, (n + 64, size, size), dtype=np.uint8))
    targets = (rng.random((n + 64, 14)) < 0.2).astype(np.float32)
    config = TrainConfig(arch=arch, crop=crop, batch_size=32, epochs=epochs, device="cpu", num_threads=threads)
    start = time.perf_counter()
    fit(config, images, np.arange(n), np.arange(n, n + 64), targets, None, Path(out), progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="densenet_tiny")
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--crop", type=int, default=56)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")  # a fresh interpreter per run: no thread pool shared with this one
    with tempfile.TemporaryDirectory() as tmp:
        job = lambda i, threads: (args.arch, args.n, args.size, args.crop, args.epochs, threads, f"{tmp}/{i}")  # noqa: E731
        with ctx.Pool(1) as pool:
            sequential = sum(pool.map(one_run, [job(0, 2), job(1, 2)]))  # one after the other, 2 threads each
        start = time.perf_counter()
        with ctx.Pool(2) as pool:
            pool.map(one_run, [job(2, 1), job(3, 1)])  # both at once, 1 thread each
        parallel = time.perf_counter() - start
    print(f"{args.arch}, {args.n} images {args.size}->{args.crop} px, {args.epochs} epochs, two runs")
    print(f"one after the other, 2 threads each: {sequential:.1f} s; both at once, 1 thread each: {parallel:.1f} s "
          f"(includes process start); speed-up {sequential / parallel:.2f}x")


if __name__ == "__main__":
    main()
