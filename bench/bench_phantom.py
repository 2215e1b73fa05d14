"""Rendering speed of the embedded benchmark (PNG and mask writing included) against the issue's targets.

    python bench/bench_phantom.py [--n 2000] [--workers 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time

from paperkit.data.benchmark import generate_benchmark

TARGETS = {64: 1000.0, 256: 100.0}  # images per second on the 2-core reference machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="images at 64 px (a quarter of that at 256 px)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for size, target in TARGETS.items():
        n = args.n if size == 64 else max(64, args.n // 4)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate_benchmark(f"{tmp}/nih", "nih", n, size, seed=0, workers=args.workers, progress=False)
            rate = n / (time.perf_counter() - t0)
        print(f"{size:4d} px: {rate:8.1f} images/s  (target {target:.0f}, ratio {rate / target:.2f})")


if __name__ == "__main__":
    main()
