"""Contiguous (NCHW) against channels_last (NHWC) memory layout on the CPU, training and inference side by side.

Both layouts run in this one process, interleaved repeat by repeat (contiguous, channels_last,
contiguous, ...), so a load that comes and goes on the machine falls on both alike; each figure is
the median img/s over the repeats. Training: blocks of :func:`paperkit.training.loop.training_step` (the
trainer's step: forward, BCE, backward, Adam) on a run built by :meth:`paperkit.training.state.RunState.start`
with the trainer's thread count and determinism settings, the model and its centre-cropped batches
in the layout under test (data loading and random crops are left out: the trainer prefetches them).
Inference: :func:`paperkit.training.inference.predict` (uint8 images -> centre crop -> probabilities) in
the layout under test. Defaults: the cpu profile's target, densenet_tiny, 64 -> 56 px, batch 32,
2 threads; about 40 s on an idle 2-core machine. Another multi-threaded torch process on the same
cores slows both layouts many-fold (one run took over 10 minutes so), and the ratio then says little.

    python bench/bench_channels_last.py
    python bench/bench_channels_last.py --arch resnet_tiny --threads 1 --repeats 9
"""
from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from paperkit.data.augment import augment_batch
from paperkit.models import create_model
from paperkit.training.inference import predict
from paperkit.training.loop import TrainConfig, run_step, training_step
from paperkit.training.state import ArrayImages, RunData, RunState

LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def training_arm(config: TrainConfig, data: RunData, run_dir: Path, layout: torch.memory_format, images: torch.Tensor):
    """A run's state with its model in ``layout`` and a function timing ``steps`` training steps (s)."""
    state = RunState.start(config, data, run_step(config, data, run_dir))
    state.model.to(memory_format=layout)  # before the first step: Adam's moments follow the parameters' layout
    plan = SimpleNamespace(augment=lambda s, x: augment_batch(x, config.crop, False).contiguous(memory_format=layout))
    rows = data.train[: config.batch_size]

    def timed(steps: int) -> float:
        start = time.perf_counter()
        for s in range(steps):
            training_step(state, plan, s, rows, None, images)
        return time.perf_counter() - start
    return state, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="densenet_tiny")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--crop", type=int, default=56)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per layout (interleaved)")
    parser.add_argument("--steps", type=int, default=8, help="training steps per repeat")
    parser.add_argument("--infer-images", type=int, default=512, help="images predicted per repeat")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n = max(args.infer_images, 2 * args.batch_size)
    array = rng.integers(0, 256, (n, args.size, args.size), dtype=np.uint8)
    images = ArrayImages(array)
    targets = (rng.random((n, 14)) < 0.2).astype(np.float32)
    data = RunData.build(images, np.arange(n - 16), np.arange(n - 16, n), targets, None, None, None, None, None, None)
    config = TrainConfig(arch=args.arch, crop=args.crop, batch_size=args.batch_size, device="cpu",
                         num_threads=args.threads)
    batch = images.load(np.arange(args.batch_size))
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads; {args.arch}, {args.size} -> "
          f"{args.crop} px, batch {args.batch_size}; median of {args.repeats} interleaved repeats")

    train_rates: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    infer_rates: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    with tempfile.TemporaryDirectory() as tmp:
        arms = {name: training_arm(config, data, Path(tmp) / name, layout, batch) for name, layout in LAYOUTS.items()}
        try:
            for _, timed in arms.values():
                timed(2)  # warm-up: allocation, oneDNN primitive creation
            for _ in range(args.repeats):
                for name, (_, timed) in arms.items():
                    train_rates[name].append(args.steps * args.batch_size / timed(args.steps))
        finally:
            for state, _ in reversed(arms.values()):
                state.close()

    torch.manual_seed(0)
    base = create_model(args.arch, 14, in_chans=1, head=config.head).eval()
    models = {name: copy.deepcopy(base) for name in LAYOUTS}
    index = np.arange(args.infer_images)
    for name, layout in LAYOUTS.items():  # warm-up
        predict(
            models[name], images, index[: 2 * args.batch_size], args.crop, batch_size=args.batch_size, layout=layout
        )
    for _ in range(args.repeats):
        for name, layout in LAYOUTS.items():
            start = time.perf_counter()
            predict(models[name], images, index, args.crop, batch_size=args.batch_size, layout=layout)
            infer_rates[name].append(args.infer_images / (time.perf_counter() - start))

    print(f"{'':<11}{'contiguous img/s':>18}{'channels_last img/s':>21}{'ratio CL/contig':>17}")
    for label, rates in (("training", train_rates), ("inference", infer_rates)):
        a, b = (statistics.median(rates[name]) for name in LAYOUTS)
        print(f"{label:<11}{a:>18.0f}{b:>21.0f}{b / a:>17.3f}")
    for label, rates in (("training", train_rates), ("inference", infer_rates)):
        pairs = [b / a for a, b in zip(*(rates[name] for name in LAYOUTS))]
        print(
            f"{label} ratio per repeat: min {min(pairs):.3f}, median {statistics.median(pairs):.3f}, "
            f"max {max(pairs):.3f}"
        )


if __name__ == "__main__":
    main()
