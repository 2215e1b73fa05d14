"""Where and how a run executes, apart from what it learns (DINO's ``utils`` beside its ``main``): the
process's rank among the run's processes, its device, mixed precision and determinism, the run's
folder, and the checkpoints written there. :class:`paperkit.training.state.RunState` holds what the
run learns and uses one of these for everything else."""
from __future__ import annotations

import os
import pickle
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist

from paperkit.artifacts import FORCE_ENV, Step
from paperkit.runtime import gather_objects, pick_device
from paperkit.training.checkpoint import load_checkpoint, save_checkpoint
from paperkit.training.inference import predict

if TYPE_CHECKING:
    from paperkit.training.state import ImageSource


@dataclass
class RunContext:
    """One process's share of a run: built by :meth:`open`, undone by :meth:`close`."""

    step: Step  # the run's folder and the manifest that marks it done
    device: torch.device
    rank: int
    world: int
    amp: Any  # bf16 autocast on CUDA when the config asks for it, else a no-op context
    deterministic_before: bool  # the global flag this run changed, restored by close()

    @classmethod
    def open(cls, config: Any, step: Step) -> "RunContext":
        """Rank and world size (DDP or one process), device, CPU threads, cuDNN autotuning and determinism."""
        world, rank = (dist.get_world_size(), dist.get_rank()) if dist.is_initialized() else (1, 0)
        device = pick_device(config.device, rank)
        if config.num_threads > 0:
            torch.set_num_threads(config.num_threads)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
        before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(device.type != "cuda")  # CPU: exact resume; CUDA: speed
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and config.amp else nullcontext()
        return cls(step, device, rank, world, amp, before)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def out_dir(self) -> Path:
        return self.step.out_dir

    def close(self) -> None:
        """Restore the global deterministic-algorithms flag the run changed."""
        torch.use_deterministic_algorithms(self.deterministic_before)

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for in one process)."""
        if self.world > 1:
            dist.barrier()

    def distribute(self, model: torch.nn.Module, sync_bn: bool) -> torch.nn.Module:
        """``model`` wrapped for DDP across the ranks (SyncBatchNorm on CUDA when asked); itself in one process."""
        if self.world == 1:
            return model
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model) if self.cuda and sync_bn else model
        return torch.nn.parallel.DistributedDataParallel(net, device_ids=[self.device.index] if self.cuda else None)

    def resume_checkpoint(self) -> dict[str, Any] | None:
        """``last.pt`` if this run (the step's hash) can resume from it, else ``None`` after rank 0 has
        removed a stale one and reset the folder: its epochs belong to other inputs."""
        last = self.out_dir / "last.pt"
        ck = resumable_checkpoint(last, self.step.hash)
        if ck is None and self.rank == 0:
            if last.is_file():  # other inputs (or --force): its epochs do not count
                print(f"{self.out_dir.name}: inputs changed since the last checkpoint, training again from epoch 1")
                last.unlink()
            self.step.start()
        return ck

    def save_checkpoints(self, meta: dict[str, Any], best: dict[str, Any] | None, resume: dict[str, Any]) -> None:
        """Rank 0 writes ``best.pt`` (``meta`` + ``best``, when given: the epoch improved) and ``last.pt``
        (``meta`` + ``resume``: everything to continue from here), each atomically."""
        if self.rank != 0:
            return
        if best is not None:
            save_checkpoint(self.out_dir / "best.pt", {**meta, **best})
        save_checkpoint(self.out_dir / "last.pt", {**meta, **resume})

    def predict_shards(
        self, model: torch.nn.Module, images: "ImageSource", index: np.ndarray, crop: int, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, probabilities)`` of ``index``: each rank predicts a shard, every rank gets all of them,
        rows in the order the probabilities come."""
        shards = np.array_split(np.asarray(index, dtype=np.int64), self.world)
        mine = predict(model, images, shards[self.rank], crop, batch_size=batch_size, device=self.device)
        return np.concatenate(shards), np.concatenate(gather_objects(mine, self.world))


def resumable_checkpoint(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """``path`` loaded once if a run with ``fingerprint`` can resume from it; ``None`` when it is absent,
    unreadable, belongs to other inputs, was written before a ``--force`` run started, or holds more than
    tensors and plain values. Every rank decides from the same file, so no rank resumes while another
    starts over."""
    try:
        written = path.stat().st_mtime
        ck = load_checkpoint(path)
    except FileNotFoundError:  # absent, or removed as stale by rank 0 meanwhile
        return None
    except (pickle.UnpicklingError, RuntimeError):  # not a checkpoint this kit can trust, or damaged: start over
        return None
    force_since = float(os.environ.get(FORCE_ENV, 0) or 0)
    return ck if ck["fingerprint"] == fingerprint and written >= force_since else None
