"""A notebook section's runs per layout, one pool call each, against both layouts' runs in one call.

With two workers, a call whose run count is odd leaves one worker idle for its last run, and every call
starts its pool again; ``paperkit.pipeline.experiment.train_grouped`` hands both layouts' runs to one
pool. This trains the same runs both ways with the kit's pool (:func:`paperkit.training.workers.run_parallel`,
two workers, one thread each) and prints both wall times, pool starts included, and their ratio. Default:
three equal densenet_tiny runs per layout, as many as the cpu profile's clean-label ceiling (three seeds);
about 1.5 minutes on an idle 2-core machine.

    python bench/bench_grouped.py
    python bench/bench_grouped.py --runs 5 --n 2048     # notebook 05's headline: five new runs per layout
"""
from __future__ import annotations

import argparse
import tempfile
import time

from bench_workers import one_run

from paperkit.training.workers import run_parallel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="densenet_tiny")
    parser.add_argument("--runs", type=int, default=3, help="runs per layout (two layouts)")
    parser.add_argument("--n", type=int, default=2048, help="training images per run")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--crop", type=int, default=56)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        def jobs(tag: str, layout: str) -> list[tuple]:
            return [(args.arch, args.n, args.size, args.crop, args.epochs, 1, f"{tmp}/{tag}-{layout}-{i}")
                    for i in range(args.runs)]

        start = time.perf_counter()
        for layout in ("nih", "chexpert"):
            run_parallel(one_run, jobs("apart", layout), 2)
        apart = time.perf_counter() - start
        start = time.perf_counter()
        run_parallel(one_run, jobs("together", "nih") + jobs("together", "chexpert"), 2)
        together = time.perf_counter() - start
    print(f"{args.arch}, {args.n} images {args.size}->{args.crop} px, {args.epochs} epochs, "
          f"{args.runs} runs per layout, two layouts, two workers of one thread")
    print(f"a pool per layout: {apart:.1f} s; one pool for both: {together:.1f} s (pool starts included); "
          f"speed-up {apart / together:.2f}x")


if __name__ == "__main__":
    main()
