"""Eager against ``torch.compile`` training steps on the CPU, side by side in one process, with the compile time.

Both arms train their own copy of the same model (channels_last, Adam, BCE, deterministic algorithms, as
the trainer sets them on a CPU) on the same fixed batch; the steady-state repeats are interleaved (eager,
compiled, eager, ...) so a load that comes and goes falls on both alike, each figure the median img/s.
The compiled arm's first steps (Inductor's code generation, or its on-disk cache when warm) are timed
apart: the break-even is the number of training images after which compiling has paid for itself, to
set beside a cpu-profile run (3,621 training images x 6 epochs = 21,726; validation's other batch sizes
would compile again and are left out). Defaults: the cpu profile's target, densenet_tiny, 56 px crops,
batch 32, all threads.

    python bench/bench_compile.py
    python bench/bench_compile.py --arch resnet_tiny --threads 1
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from paperkit.models import create_model


def step_fn(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """One BCE training step (forward, backward, Adam) of ``model`` on the fixed batch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def timed(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="densenet_tiny")
    parser.add_argument("--crop", type=int, default=56)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=8, help="training steps per repeat")
    parser.add_argument("--run-images", type=int, default=21_726, help="training images of one run, for the break-even")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)  # as the trainer on a CPU
    torch.manual_seed(0)
    eager = create_model(args.arch, 14).to(memory_format=torch.channels_last).train()
    compiled_model = copy.deepcopy(eager)
    x = torch.randn(args.batch_size, 1, args.crop, args.crop).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(args.batch_size, 14) < 0.2).float()
    arms = {"eager": step_fn(eager, x, y), "compiled": step_fn(torch.compile(compiled_model), x, y)}
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads; {args.arch}, {args.crop} px, "
          f"batch {args.batch_size}; median of {args.repeats} interleaved repeats of {args.steps} steps")
    timed(arms["eager"], 2)
    first = timed(arms["compiled"], 2)  # code generation (or the warm on-disk cache) + two steps
    rates: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.repeats):
        for name, step in arms.items():
            rates[name].append(args.steps * args.batch_size / timed(step, args.steps))
    eager_rate, compiled_rate = (statistics.median(rates[name]) for name in arms)
    compile_s = first - 2 * args.batch_size / compiled_rate
    saved_per_image = 1 / eager_rate - 1 / compiled_rate
    print(f"eager {eager_rate:,.0f} img/s, compiled {compiled_rate:,.0f} img/s: {compiled_rate / eager_rate:.2f}x; "
          f"compile {compile_s:.1f} s")
    if saved_per_image > 0:
        even = compile_s / saved_per_image
        print(f"break-even after {even:,.0f} training images; one cpu-profile run ({args.run_images:,} images) "
              f"{'saves' if even < args.run_images else 'loses'} "
              f"{abs(args.run_images * saved_per_image - compile_s):.1f} s")
    else:
        print("compiled steps are not faster: compiling never pays")


if __name__ == "__main__":
    main()
