"""Two-process DDP (gloo, CPU) reaches the same weights as one process on the same global batches.

The model here has no BatchNorm: on CPU there is no SyncBatchNorm, so a BN model would normalise
over each rank's half batch and legitimately differ from one process (on GPUs the trainer converts
BN to SyncBatchNorm). What is tested is the trainer's part: sharding of every global batch,
gradient all-reduce, the gathered memory bank, sharded validation and rank-0 checkpointing.
Tolerance: 1e-6 absolute on every weight (measured: 3e-8) -- the runs differ only in float32 summation order
(a mean over 8 samples vs the average of two means over 4).
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import VARIANT, config, make_data
from torch import nn

import paperkit.training.inference as inference
import paperkit.training.loop as train
import paperkit.training.state as run_state
from paperkit.training.checkpoint import load_checkpoint


class TinyNet(nn.Module):
    """Conv features and a linear head, no normalisation layers."""

    def __init__(self, arch: str, num_classes: int, **_: object) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.GELU(), nn.Conv2d(8, 16, 3, stride=2), nn.GELU())
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).mean(dim=(2, 3)))


def _fit(run_dir: Path) -> None:
    run_state.create_model = inference.create_model = TinyNet  # this process only (training and loading)
    data = make_data()
    train.fit(config(**VARIANT, knns_mode="efficient"), data["images"], data["train_index"], data["val_index"],
              data["targets"], data["mask"], run_dir, soft_labels=data["soft_labels"], pools=data["pools"],
              progress=False)


def _worker(rank: int, port: int, run_dir: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        _fit(run_dir)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_match_one_process(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, tmp_path / "ddp"), nprocs=2, join=True)
    original = run_state.create_model, inference.create_model
    try:
        _fit(tmp_path / "single")
    finally:
        run_state.create_model, inference.create_model = original
    one, two = (load_checkpoint(tmp_path / d / "last.pt") for d in ("single", "ddp"))
    assert one["epoch"] == two["epoch"] == 2
    for name, w in one["model"].items():
        torch.testing.assert_close(two["model"][name], w, rtol=0, atol=1e-6, msg=name)
    torch.testing.assert_close(two["bank"], one["bank"], rtol=0, atol=1e-6)
    assert np.allclose(one["history"][-1]["val_auc"], two["history"][-1]["val_auc"], atol=1e-6)
