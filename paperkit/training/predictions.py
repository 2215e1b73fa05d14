"""A trained run's predictions on a set of rows, stored in its run folder so a rerun only loads them.

``<run_dir>/predictions/<run>-<query>.npy`` holds the float32 ``[n, C]`` probabilities of
:func:`paperkit.pipeline.experiment.probabilities` (the model of the epoch validation chose, ``best.pt``);
``<run_dir>/predictions/last/`` those of the last epoch's model (``last.pt``). The name is the key:

- ``<run>``: the finished training, i.e. the bytes of the run's ``manifest.json`` (its content hash
  over config and inputs, and when it finished) and the size and mtime of the checkpoint. A retrained
  run writes a new manifest (and checkpoint), so it never meets its old predictions; a run folder
  without a manifest (unfinished, or being retrained) is never cached.
- ``<query>``: everything else the numbers depend on: the rows (in order), the image cache's
  manifest, the centre crop and batch size, the device kind (CUDA predicts under bf16 autocast),
  its memory layout, the torch version and the source of the code that predicts (this module's
  neighbours: inference, augmentation, runtime, models).

Files are written atomically (temporary name + rename, :func:`paperkit.artifacts.atomic_path`). A
file that does not load as float32 ``[n, C]`` probabilities in [0, 1] is recomputed and replaced,
never trusted. Writing a run's first file removes the files of its earlier trainings.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from paperkit.artifacts import MANIFEST, atomic_path, read_manifest
from paperkit.runtime import memory_format

FOLDER = "predictions"
#: Source files whose code turns a checkpoint and an image cache into probabilities.
_CODE = ("training/inference.py", "runtime.py", "data/augment.py", "models")


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the prediction code's source (a change there makes every stored prediction stale)."""
    root = Path(__file__).resolve().parents[1]  # paperkit/
    h = hashlib.sha256()
    for name in _CODE:
        path = root / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(file.relative_to(root).as_posix().encode())
            h.update(file.read_bytes())
    return h.hexdigest()[:16]


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_identity(run_dir: str | Path, best_epoch: int | None = None, checkpoint: str = "best") -> str | None:
    """Identity of a finished run's ``checkpoint`` (``best`` or ``last``), or ``None`` when the run is not
    finished (nothing cached).

    ``best_epoch``: the epoch the caller's model came from (a :class:`~paperkit.training.loop.TrainResult`'s);
    a manifest naming another epoch is a different training, so nothing is cached either.
    """
    run_dir = Path(run_dir)
    manifest, saved = read_manifest(run_dir), run_dir / f"{checkpoint}.pt"
    if manifest is None or not saved.is_file():
        return None
    if best_epoch is not None and manifest.get("summary", {}).get("best_epoch") != best_epoch:
        return None
    stat = saved.stat()
    h = hashlib.sha256(_file_sha(run_dir / MANIFEST).encode())
    h.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def query_identity(images: Any, rows: np.ndarray, crop: int, batch_size: int, device: torch.device) -> str | None:
    """Identity of everything but the run that the predictions depend on; ``None`` for an image
    source without a finished cache folder (not cached)."""
    folder = getattr(images, "out_dir", None)
    if folder is None or read_manifest(folder) is None:
        return None
    device = torch.device(device)
    settings = {
        "rows": hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest(),
        "n": int(len(rows)),
        "images": _file_sha(Path(folder) / MANIFEST),
        "crop": int(crop),
        "batch_size": int(batch_size),
        "device": device.type,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "",
        "autocast": "bf16" if device.type == "cuda" else "",
        "layout": str(memory_format(device)),
        "torch": torch.__version__,
        "code": code_fingerprint(),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def load(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The stored probabilities if ``path`` holds float32 ``shape`` values in [0, 1], else ``None``."""
    try:
        probs = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # missing, truncated, not an .npy
        return None
    if not isinstance(probs, np.ndarray) or probs.dtype != np.float32 or probs.shape != shape:
        return None
    if not ((probs >= 0) & (probs <= 1)).all():  # NaN fails too
        return None
    return probs


def save(path: Path, probs: np.ndarray, run: str) -> None:
    """Store ``probs`` atomically and drop the files of the run's earlier trainings."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(probs, dtype=np.float32), allow_pickle=False)
    for old in path.parent.glob("*.npy"):
        if not old.name.startswith(f"{run}-"):
            old.unlink(missing_ok=True)


def cached(run_dir: str | Path, images: Any, rows: np.ndarray, n_classes: int, crop: int, batch_size: int,
           device: torch.device, compute: Callable[[], np.ndarray], best_epoch: int | None = None,
           checkpoint: str = "best") -> np.ndarray:
    """``compute()``'s probabilities ``[len(rows), n_classes]`` with the model of ``checkpoint`` (``best`` or
    ``last``), loaded from the run folder when stored under the same key (see the module docstring),
    else computed and stored."""
    rows = np.asarray(rows)
    run = run_identity(run_dir, best_epoch, checkpoint)
    query = query_identity(images, rows, crop, batch_size, device) if run is not None and len(rows) else None
    if query is None:
        return compute()
    folder = Path(run_dir) / FOLDER / ("" if checkpoint == "best" else checkpoint)
    path = folder / f"{run}-{query}.npy"
    probs = load(path, (len(rows), n_classes))
    if probs is not None:
        return probs
    probs = compute()
    # store only what belongs to the key: the run was not retrained meanwhile, the shape is as promised
    unchanged = run_identity(run_dir, best_epoch, checkpoint) == run
    if unchanged and probs.dtype == np.float32 and probs.shape == (len(rows), n_classes):
        try:
            save(path, probs, run)
        except OSError:  # a read-only results folder still predicts, it only cannot remember
            pass
    return probs
