"""Epoch time of BCE, BCE+MODL, BCE+KNNS(faithful) and BCE+KNNS(efficient), side by side.

All four train the same model on the same images, batches and crops (one seed), in one process,
interleaved over ``--repeats`` rounds so that load on a shared machine hits every variant alike.
For each variant the fastest wall time and the smallest CPU time of one training epoch (validation
excluded) are reported, as ratios to BCE: other processes only ever add time, so minima are the best
estimates of the cost, and CPU time (one thread by default) is the more robust one on a busy machine.

    python bench/bench_knns.py                      # resnet10t, 256 images, 40 -> 32 px, K = 9
    python bench/bench_knns.py --size 64 --crop 56 --device cuda
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from paperkit.method.knn import neighbour_pools
from paperkit.training.loop import ArrayImages, TrainConfig, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet10t")
    parser.add_argument("--n", type=int, default=256, help="training images")
    parser.add_argument("--size", type=int, default=40, help="cached image side")
    parser.add_argument("--crop", type=int, default=32)
    parser.add_argument("--k", type=int, default=9)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: no spin-wait CPU time)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n, c = args.n + args.batch_size, 14  # a few validation images; their time is not counted
    images = ArrayImages(rng.integers(0, 256, (n, args.size, args.size), dtype=np.uint8))
    targets = (rng.random((n, c)) < 0.2).astype(np.float32)
    soft = rng.random((n, c)).astype(np.float32)
    train_index, val_index = np.arange(args.n), np.arange(args.n, n)
    pools = neighbour_pools(soft[train_index], args.k)
    base = TrainConfig(arch=args.arch, crop=args.crop, batch_size=args.batch_size, epochs=1, k=args.k,
                       device=args.device)
    variants = {
        "BCE": base,
        "BCE+MODL": dataclasses.replace(base, lambda_modl=0.1),
        "BCE+KNNS (faithful)": dataclasses.replace(base, gamma_knns=0.1, knns_mode="faithful"),
        "BCE+KNNS (efficient)": dataclasses.replace(base, gamma_knns=0.1, knns_mode="efficient"),
    }
    torch.set_num_threads(args.threads)
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    runs: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats + 1):  # round 0 warms up allocators and thread pools
            for name, cfg in variants.items():
                start = time.perf_counter()
                result = fit(cfg, images, train_index, val_index, targets, None, Path(tmp) / f"{r}-{name}",
                             soft_labels=soft, pools=pools, progress=False)
                if r:
                    runs[name].append(time.perf_counter() - start)
                    times[name].append(float(result.history.train_s.iloc[0]))
                    cpu[name].append(float(result.history.train_cpu_s.iloc[0]))
    bce, bce_cpu = min(times["BCE"]), min(cpu["BCE"])
    print(f"{args.arch}, {args.n} images {args.size}->{args.crop} px, batch {args.batch_size}, K={args.k}, "
          f"{args.device}, {torch.get_num_threads()} threads, best of {args.repeats}")
    print("run s: the whole one-epoch fit (model set-up, the efficient bank's warm start, validation, checkpoints)")
    print(f"{'variant':<22}{'epoch s':>9}{'img/s':>8}{'x BCE':>7}{'CPU s':>8}{'x BCE':>7}{'run s':>8}{'x BCE':>7}")
    bce_run = min(runs["BCE"])
    for name in variants:
        t, c, whole = min(times[name]), min(cpu[name]), min(runs[name])
        rate = args.n // args.batch_size * args.batch_size / t
        print(
            f"{name:<22}{t:>9.2f}{rate:>8.0f}{t / bce:>7.2f}{c:>8.2f}{c / bce_cpu:>7.2f}"
            f"{whole:>8.2f}{whole / bce_run:>7.2f}"
        )


if __name__ == "__main__":
    main()
