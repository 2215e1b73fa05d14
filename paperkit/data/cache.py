"""Decode every image once into a uint8 memmap so training never decodes PNG/JPEG per step.

Layout of a cache folder: ``images.npy`` (uint8 ``[N, S, S]``, row i = ``paths[i]``), ``index.txt``
(the source paths, one a line), ``build.json`` and ``chunks_done.txt`` (resume state) and, written
last, the :class:`~paperkit.artifacts.Step` ``manifest.json``. A killed build keeps its finished
chunks and resumes; :meth:`ImageCache.open` refuses a cache without its manifest.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
from PIL import Image

from paperkit.artifacts import Step, read_manifest, write_json, write_text
from paperkit.data.datasets import DataError
from paperkit.progress import Tracker

if TYPE_CHECKING:
    import torch

IMAGES = "images.npy"
INDEX = "index.txt"
STATE = "build.json"
DONE = "chunks_done.txt"
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def to_gray8(img: Image.Image) -> Image.Image:
    """8-bit grayscale: first channel of RGB/RGBA/LA; 16-bit and float scaled min-max to 0..255."""
    if img.mode == "L":
        return img
    if img.mode in ("RGB", "RGBA", "LA"):
        return img.getchannel(0)
    if img.mode in _SIXTEEN_BIT:
        # radiograph PNGs often use 10-14 of the 16 bits, so a fixed >> 8 would leave them nearly black
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        return Image.fromarray(np.round((arr - lo) * (255.0 / max(hi - lo, 1e-6))).astype(np.uint8))
    return img.convert("L")


def decode_resize(path: str | os.PathLike, size: int) -> np.ndarray:
    """Decode one image, make it 8-bit grayscale and resize it to ``size x size`` (bilinear, antialiased).

    Raises
    ------
    DataError
        If the file is missing, unreadable or truncated; the message names the file.
    """
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("L", (size, size))  # DCT-domain downscale: decodes large JPEGs several times faster
            img.load()
            gray = to_gray8(img)
            return np.array(gray.resize((size, size), Image.BILINEAR), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"image {path} not found") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"image {path} is unreadable or truncated: {err}") from None


def _decode_chunk(job: tuple[int, list[str], int]) -> tuple[int, np.ndarray]:
    chunk, paths, size = job
    return chunk, np.stack([decode_resize(p, size) for p in paths])


def _run_jobs(jobs: list[tuple[int, list[str], int]], workers: int) -> Iterator[tuple[int, np.ndarray]]:
    if workers <= 1:
        yield from map(_decode_chunk, jobs)
        return
    # fork as torch's DataLoader does on Linux: spawn re-imports the caller's __main__ (torch and
    # all), which costs seconds per worker; the children only run PIL and numpy
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers) as pool:
        yield from pool.imap_unordered(_decode_chunk, jobs)


def build_cache(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    size: int = 256,
    workers: int = 2,
    chunk_size: int = 256,
    progress: bool = True,
) -> "ImageCache":
    """Decode ``paths`` once into ``out_dir`` (resumable, finished by a manifest) and open the cache.

    Parameters
    ----------
    paths
        Source images; row i of the cache is ``paths[i]``.
    out_dir
        Cache folder; an up-to-date cache there is reused, a partial one of the same paths and size
        resumes from its finished chunks, anything else is rebuilt.
    size
        Side of the stored square images (px).
    workers
        Decoding processes (``<= 1``: decode in this process).
    chunk_size
        Most images per chunk, the unit of work and of resumption (smaller for small inputs, so
        every worker gets work).
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise ValueError("build_cache needs at least one image path")
    out = Path(out_dir)
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
    config = {"n": len(paths), "size": size, "paths_sha256": digest}
    step = Step(out, config)
    if step.done:
        return ImageCache.open(out)
    step.start()
    chunk_size = max(1, min(chunk_size, -(-len(paths) // (4 * max(workers, 1)))))
    # chunk numbers in chunks_done.txt only mean something for the same chunk size
    build_state = {**config, "chunk_size": chunk_size}
    state = out / STATE
    resume = state.is_file() and json.loads(state.read_text()) == build_state and (out / IMAGES).is_file()
    if not resume:
        for name in (STATE, DONE, IMAGES):
            (out / name).unlink(missing_ok=True)
        write_text(out / INDEX, "\n".join(paths) + "\n")
        np.lib.format.open_memmap(out / IMAGES, mode="w+", dtype=np.uint8, shape=(len(paths), size, size)).flush()
        write_json(state, build_state)  # last: only a fully initialised folder is ever resumed
    done = set(int(line) for line in (out / DONE).read_text().split()) if (out / DONE).is_file() else set()
    starts = range(0, len(paths), chunk_size)
    jobs = [(c, paths[s : s + chunk_size], size) for c, s in enumerate(starts) if c not in done]
    images = np.load(out / IMAGES, mmap_mode="r+")
    with Tracker(f"cache {out.name}", "", len(paths), initial=len(paths) - sum(len(j[1]) for j in jobs),
                 show=progress) as bar, open(out / DONE, "a") as log:
        for chunk, block in _run_jobs(jobs, workers):
            images[chunk * chunk_size : chunk * chunk_size + len(block)] = block
            images.flush()
            # a chunk is recorded only after its pixels are on disk, so a kill never marks it done early
            log.write(f"{chunk}\n")
            log.flush()
            os.fsync(log.fileno())
            bar.update(len(block))
    del images
    step.finish({"n": len(paths), "size": size, "bytes": len(paths) * size * size})
    return ImageCache.open(out)


class ImageCache:
    """A finished cache: ``len(cache)`` images, ``cache.load(indices) -> torch.uint8 [B, S, S]``."""

    def __init__(self, out_dir: Path, images: np.ndarray, paths: list[str]) -> None:
        self.out_dir = out_dir
        self.images = images
        self.paths = paths

    @classmethod
    def open(cls, out_dir: str | os.PathLike) -> "ImageCache":
        """Open a finished cache read-only (memory-mapped)."""
        out = Path(out_dir)
        if read_manifest(out) is None:
            raise DataError(
                f"{out}: no finished image cache (manifest.json missing); run build_cache to build or resume it"
            )
        images = np.load(out / IMAGES, mmap_mode="r")
        paths = (out / INDEX).read_text().splitlines()
        if len(paths) != len(images):
            raise DataError(f"{out}: {INDEX} lists {len(paths)} paths but {IMAGES} holds {len(images)} images")
        return cls(out, images, paths)

    def __len__(self) -> int:
        return len(self.images)

    def __reduce__(self):
        # pickled into DataLoader workers by folder, never by copying the memmap's pixels
        return (ImageCache.open, (str(self.out_dir),))

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    def load(self, indices: Sequence[int] | np.ndarray) -> "torch.Tensor":
        """uint8 ``[B, S, S]`` rows in the order asked; read from disk in sorted order."""
        import torch  # imported here so spawned decode workers do not pay for torch

        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(
                f"cache {self.out_dir} has {len(self)} images; "
                f"asked for index {idx.min() if idx.min() < 0 else idx.max()}"
            )
        order = np.argsort(idx, kind="stable")
        out = np.empty((len(idx), self.size, self.size), dtype=np.uint8)
        # sorted reads walk the file forwards (page-cache and readahead friendly)
        out[order] = self.images[idx[order]]
        return torch.from_numpy(out)
