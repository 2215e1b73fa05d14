"""Inference batch size, and ``torch.inference_mode`` against ``torch.no_grad``, for predictions and validation.

Every arm runs :func:`paperkit.training.inference.predict` (uint8 images -> centre crop -> probabilities, the
trainer's memory layout) on the same model and images in this one process, interleaved repeat by repeat
(batch 32, 64, ..., then the no_grad arm, then again), so a load that comes and goes on the machine falls
on all alike; each figure is the median img/s over the repeats, each ratio is against the batch size the kit
uses there. Test-set and soft-label predictions run in the notebook's kernel on all cores at
``paperkit.pipeline.experiment.PREDICT_BATCH`` (256); validation runs every epoch inside a run, on one
thread when two runs train at once, at 4x the training batch (128 for the cpu profile). The no_grad arm
patches ``torch.inference_mode`` with ``torch.no_grad`` for the kit's own batch size. Defaults: the cpu
profile's target, densenet_tiny, 64 -> 56 px; about a minute on an idle 2-core machine.

    python bench/bench_predict_batch.py                  # the kernel's predictions: 2 threads
    python bench/bench_predict_batch.py --threads 1 --current 128   # validation inside a worker
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from unittest import mock

import numpy as np
import torch

from paperkit.models import create_model
from paperkit.pipeline.experiment import PREDICT_BATCH
from paperkit.training.inference import predict
from paperkit.training.state import ArrayImages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="densenet_tiny")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--crop", type=int, default=56)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="32,64,128,256,512,1024", help="batch sizes to time")
    parser.add_argument("--current", type=int, default=PREDICT_BATCH, help="the kit's batch size (the ratios' base)")
    parser.add_argument("--images", type=int, default=2048, help="images predicted per repeat")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per arm (interleaved)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = sorted({*map(int, args.batches.split(",")), args.current})
    images = ArrayImages(np.random.default_rng(0).integers(0, 256, (args.images, args.size, args.size), dtype=np.uint8))
    index = np.arange(args.images)
    torch.manual_seed(0)
    model = create_model(args.arch, 14, in_chans=1).eval()
    arms = {f"batch {b}": (b, False) for b in sizes} | {f"batch {args.current}, no_grad": (args.current, True)}

    def timed(batch: int, no_grad: bool) -> float:
        with mock.patch.object(torch, "inference_mode", torch.no_grad) if no_grad else contextlib.nullcontext():
            start = time.perf_counter()
            predict(model, images, index, args.crop, batch_size=batch)
            return args.images / (time.perf_counter() - start)

    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} thread(s); {args.arch}, {args.size} -> "
          f"{args.crop} px, {args.images} images; median of {args.repeats} interleaved repeats")
    for batch, no_grad in arms.values():
        timed(batch, no_grad)  # warm-up: allocation, oneDNN primitive creation per shape
    rates: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.repeats):
        for name, (batch, no_grad) in arms.items():
            rates[name].append(timed(batch, no_grad))
    base = statistics.median(rates[f"batch {args.current}"])
    print(f"{'arm':<24}{'img/s':>8}{'ratio':>8}")
    for name, values in rates.items():
        rate = statistics.median(values)
        mark = "  (the kit's)" if name == f"batch {args.current}" else ""
        print(f"{name:<24}{rate:>8.0f}{rate / base:>8.3f}{mark}")


if __name__ == "__main__":
    main()
