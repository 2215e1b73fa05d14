"""Rendering the benchmark's images in fixed chunks on worker processes, and writing them (PNG or
JPEG) with their lesion masks (``.npz``) byte for byte the same for the same seed."""
from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from paperkit.data import phantom

CHUNK = 64  # images per work unit; fixed so output does not depend on the number of workers


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, so the same masks give the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=1)


def png_bytes(image: np.ndarray, level: int = 1) -> bytes:
    """Encode a uint8 grey image as PNG (filter "Sub" on every row, zlib ``level``).

    Written by hand because PIL's adaptive row filtering costs as much as rendering a 256-px image;
    any PNG reader (PIL included) decodes the result.
    """
    h, w = image.shape
    rows = np.empty((h, w + 1), np.uint8)
    rows[:, 0] = 1  # filter type Sub: each byte minus its left neighbour (mod 256)
    rows[:, 1] = image[:, 0]
    rows[:, 2:] = np.diff(image, axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + chunk(b"IEND", b""))


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box ``(x, y, w, h)`` in pixels around a mask, or None if it is empty."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def _render_chunk(job: tuple) -> list[tuple[int, str, tuple[int, int, int, int]]]:
    """Render and write one chunk; return ``(row, finding, box)`` for every non-empty mask."""
    start, params, size, seed, image_paths, mask_paths = job
    images, masks = phantom.render(params, size, (seed, start))
    per_image: list[dict[str, np.ndarray]] = [{} for _ in image_paths]
    boxes = []
    for name, (rows, m) in masks.items():
        for r, mk in zip(rows, m):
            per_image[r][name] = mk.astype(np.uint8)
            box = mask_box(mk)
            if box is not None:
                boxes.append((start + int(r), name, box))
    for img, ip, mp, mk in zip(images, image_paths, mask_paths, per_image):
        if ip.endswith(".png"):
            Path(ip).write_bytes(png_bytes(img))
        else:
            Image.fromarray(img).save(ip, quality=95)
        write_npz(mp, mk)
    return boxes


def render_all(
    params: dict[str, np.ndarray],
    size: int,
    seed: int,
    image_paths: list[str],
    mask_paths: list[str],
    workers: int,
    progress: bool,
    label: str = "",
) -> list[tuple[int, str, tuple[int, int, int, int]]]:
    """Render every image (in fixed chunks, on ``workers`` processes) with a progress bar."""
    from paperkit.progress import Tracker

    for p in {os.path.dirname(q) for q in (*image_paths, *mask_paths)}:
        os.makedirs(p, exist_ok=True)
    n = len(image_paths)
    jobs = ((s, phantom.take(params, slice(s, s + CHUNK)), size, seed, image_paths[s:s + CHUNK],
             mask_paths[s:s + CHUNK]) for s in range(0, n, CHUNK))
    boxes: list = []
    with Tracker(f"phantom {label} {size}px".replace("  ", " "), "", n, show=progress) as bar:
        if workers <= 1:
            results: Iterable = map(_render_chunk, jobs)
            for res in results:
                boxes += res
                bar.update(min(CHUNK, n - bar.done))
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as ex:
                for res in ex.map(_render_chunk, jobs):
                    boxes += res
                    bar.update(min(CHUNK, n - bar.done))
    return boxes

