"""Thread settings on a 2-core CPU, measured through the trainer's own loop, side by side.

Each arm runs the real loop of :func:`paperkit.training.loop.fit_run` for one epoch (``RunState``,
``EpochPlan``, the prefetch thread that loads and crops the next batch, ``training_step``) on in-memory
images, in a fresh subprocess so that its thread settings and ``OMP_WAIT_POLICY`` apply from the start;
the arms alternate repeat by repeat, so a load that comes and goes falls on all alike. Reported: the
median img/s of each arm over the repeats and its ratio to the trainer's default (all cores, the OpenMP
runtime's default wait policy). The bare step without the prefetch thread (what the plan's probe
times) is an arm too. Defaults: the cpu profile's target, densenet_tiny, 64 -> 56 px, batch 32; about
2 minutes on an idle 2-core machine. Two runs at once ("2 workers x 1 thread") report their summed rate.

    python bench/bench_threads.py
    python bench/bench_threads.py --arch resnet_tiny --repeats 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ARMS = {  # name -> (environment, threads, runs at once, with prefetch)
    "default (all cores)": ({}, 0, 1, True),
    "OMP_WAIT_POLICY=PASSIVE": ({"OMP_WAIT_POLICY": "PASSIVE"}, 0, 1, True),
    "1 thread": ({}, 1, 1, True),
    "2 workers x 1 thread": ({}, 1, 2, True),
    "bare step, no prefetch (the probe)": ({}, 0, 1, False),
}


def one_epoch(arch: str, threads: int, prefetching: bool, steps: int) -> float:
    """img/s of ``steps`` training steps of the trainer's loop (after two untimed ones)."""
    import numpy as np

    from paperkit.runtime import prefetch
    from paperkit.training.loop import EpochPlan, TrainConfig, epoch_batches, run_step, training_step
    from paperkit.training.state import ArrayImages, RunData, RunState

    rng = np.random.default_rng(0)
    n = 32 * (steps + 2)
    images = ArrayImages(rng.integers(0, 255, (n, 64, 64), dtype=np.uint8))
    targets = (rng.random((n, 14)) < 0.1).astype(np.float32)
    config = TrainConfig(arch=arch, head="pcam", batch_size=32, epochs=1, crop=56, device="cpu", num_threads=threads)
    data = RunData.build(images, np.arange(n), np.arange(32), targets, None, None, None, None, None, None)
    with tempfile.TemporaryDirectory() as tmp:
        state = RunState.start(config, data, run_step(config, data, tmp))
        plan = EpochPlan.draw(state)
        batches = epoch_batches(state, plan)
        source = prefetch(batches) if prefetching else batches
        for s, batch in enumerate(source):
            if s == 2:
                t0 = time.perf_counter()
            training_step(state, plan, s, *batch)
        seconds = time.perf_counter() - t0
        state.ctx.close()
    return 32 * steps / seconds


def run_arm(name: str, arch: str, steps: int) -> float:
    env, threads, runs, prefetching = ARMS[name]
    code = (f"import json; from bench_threads import one_epoch; "
            f"print(json.dumps(one_epoch({arch!r}, {threads}, {prefetching}, {steps})))")
    cwd = os.path.dirname(os.path.abspath(__file__))
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(runs)]
    return sum(json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="densenet_tiny")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in ARMS}
    for _ in range(args.repeats):
        for name in ARMS:
            rates[name].append(run_arm(name, args.arch, args.steps))
    base = statistics.median(rates["default (all cores)"])
    print(f"{args.arch}, batch 32, crop 56, {os.cpu_count()} cores, median of {args.repeats} repeats:")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:36s} {rate:7.0f} img/s   x{rate / base:.2f}")


if __name__ == "__main__":
    main()
