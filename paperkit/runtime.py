"""Plumbing of the trainer: device choice, DDP collectives, background loading.

Kept apart from :mod:`paperkit.training.loop` so that the loop there reads as the method.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import torch
import torch.distributed as dist


def pick_device(name: str, rank: int) -> torch.device:
    """``auto`` picks CUDA when present; under DDP each rank takes the GPU ``LOCAL_RANK`` (torchrun's)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device(name)


def memory_format(device: torch.device | str) -> torch.memory_format:
    """The memory layout of the model and its input batches on ``device``, in training, the KNNS
    bank's warm start, inference and the plan's probe alike: channels_last on CUDA and on the CPU."""
    # CPU too: 1.35x training, 1.39x predict img/s (bench/bench_channels_last.py, densenet_tiny 56 px, 2 cores)
    return torch.channels_last if torch.device(device).type in ("cuda", "cpu") else torch.contiguous_format


def prefetch(items: Iterator[Any]) -> Iterator[Any]:
    """Produce the next item in a background thread while the caller works on the current one.

    Image loading (memmap reads, pinning) then overlaps the forward/backward pass.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(next, items, None)
        while (item := future.result()) is not None:
            future = pool.submit(next, items, None)
            yield item


def all_gather_rows(tensor: torch.Tensor, world: int) -> torch.Tensor:
    """Every rank's ``tensor`` stacked along dim 0 in rank order (the tensor itself without DDP)."""
    if world == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor)
    return torch.cat(parts)


def gather_objects(obj: Any, world: int) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` without DDP)."""
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out
