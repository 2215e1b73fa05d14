"""Predictions of a trained model, and loading one from its run folder."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from paperkit.data.augment import augment_batch
from paperkit.models import Classifier, PeerPair, create_model
from paperkit.runtime import memory_format
from paperkit.training.checkpoint import load_checkpoint

if TYPE_CHECKING:
    from paperkit.training.state import ImageSource


def predict(
    model: torch.nn.Module, images: ImageSource, indices: np.ndarray, crop: int, *,
    batch_size: int = 128, device: str | torch.device = "cpu", layout: torch.memory_format | None = None,
) -> np.ndarray:
    """Probabilities ``[n, C]`` (float32) of ``images`` at ``indices``: centre crop, eval mode, no grad.

    The model and its inputs are moved to ``device`` in ``layout`` (default: the trainer's,
    :func:`paperkit.runtime.memory_format`); on CUDA under bf16 autocast.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    layout = memory_format(device) if layout is None else layout
    model.to(device, memory_format=layout).eval()
    index = np.asarray(indices, dtype=np.int64)
    out = []
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        for start in range(0, len(index), batch_size):
            x = augment_batch(images.load(index[start : start + batch_size]).to(device, non_blocking=True), crop, False)
            x = x.contiguous(memory_format=layout)
            out.append(torch.sigmoid(model(x).float()).cpu())
    n_classes = getattr(model, "num_classes", 0)
    return torch.cat(out).numpy() if out else np.zeros((0, n_classes), dtype=np.float32)


def load_model(run_dir: str | Path, which: str = "best") -> Classifier:
    """The model saved in ``run_dir`` (``which`` = ``"best"`` on validation AUC, or ``"last"``), CPU, eval mode."""
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    ck = load_checkpoint(Path(run_dir) / f"{which}.pt")
    cfg = ck["config"]
    model = create_model(cfg["arch"], ck["num_classes"], in_chans=1, head=cfg["head"])
    if ck.get("peers", 1) == 2:  # co-teaching's pair: evaluation scores its first network
        model = PeerPair(model, create_model(cfg["arch"], ck["num_classes"], in_chans=1, head=cfg["head"]))
    model.load_state_dict(ck["model"])
    return model.eval()


def inference_throughput(
    models: "torch.nn.Module | Sequence[torch.nn.Module]",
    input_shape: tuple[int, int, int],
    *,
    batch_size: int = 32,
    n_batches: int = 5,
    device: str = "cpu",
    amp: bool = False,
) -> float:
    """Measured images per second of a model, or of an ensemble run member after member.

    Two warm-up passes are run first and excluded (allocation, oneDNN/cuDNN kernel selection).
    Each later pass is timed on its own and the median is reported, so one pass disturbed by
    another process does not set the figure. A figure measured while another multi-threaded torch
    process shares the CPU cores is not meaningful (thread oversubscription slows both many-fold).

    Parameters
    ----------
    input_shape
        ``(channels, height, width)`` of one image.
    n_batches
        Timed passes (the median is taken).
    device
        Where to measure; the models are moved there (and stay).
    amp
        Run as the kit predicts (:func:`paperkit.training.inference.predict`): in its memory layout
        (:func:`paperkit.runtime.memory_format`) and, on CUDA, under bf16 autocast. Else float32
        in the contiguous layout.
    """
    import contextlib

    cuda = device.startswith("cuda")
    fast = amp and cuda
    layout = memory_format(device) if amp else torch.contiguous_format
    members = [models] if not isinstance(models, Sequence) else list(models)
    x = torch.randn(batch_size, *input_shape, device=device).contiguous(memory_format=layout)
    for m in members:
        m.eval().to(device, memory_format=layout)

    def run_once() -> float:
        start = time.perf_counter()
        for m in members:
            m(x)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if fast else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        for _ in range(2):
            run_once()
        seconds = [run_once() for _ in range(n_batches)]
    return batch_size / float(np.median(seconds))
