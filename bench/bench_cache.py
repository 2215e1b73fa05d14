"""Cached loading vs decode-and-resize per item, side by side on the same images.

    .venv/bin/python bench/bench_cache.py [--n 200] [--side 1024] [--images DIR] [--batch 64]

Writes ``--n`` radiograph-like PNGs of ``--side`` px (smooth anatomy-scale structure plus film
noise, so they compress like real NIH PNGs) to a temporary folder, or uses the PNGs in ``--images``
(e.g. ``../shared/data/nih-sample-256/images``). Both paths end at the same float32 224-px training
crops from 256-px images. Targets (issue 4): cached >= 20x faster per image, >= 3,000 images/s.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from paperkit.data.cache import build_cache, decode_resize

try:
    from paperkit.data.augment import augment_batch
except ImportError:  # the augmentation module lands separately; crop on tensors here meanwhile

    def augment_batch(
        images: torch.Tensor, crop: int, train: bool, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        s = images.shape[-1]
        top, left = (int(v) for v in torch.randint(0, s - crop + 1, (2,), generator=generator))
        return images[:, None, top : top + crop, left : left + crop].float().div_(255)


def make_images(folder: Path, n: int, side: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        base = Image.fromarray(rng.integers(0, 255, (side // 16, side // 16), dtype=np.uint8)).resize(
            (side, side), Image.BICUBIC
        )
        base = base.filter(ImageFilter.GaussianBlur(side / 128))
        noisy = np.clip(np.asarray(base, np.int16) + rng.normal(0, 4, (side, side)), 0, 255).astype(np.uint8)
        path = folder / f"{i:05d}.png"
        Image.fromarray(noisy).save(path)
        paths.append(path)
    return paths


def per_item(paths: list[Path], size: int, crop: int, seconds: float, gen: torch.Generator) -> float:
    """images/s decoding, resizing and cropping one image at a time (what a naive Dataset does)."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        img = torch.from_numpy(decode_resize(paths[done % len(paths)], size))
        augment_batch(img[None], crop, True, gen)
        done += 1
    return done / (time.perf_counter() - start)


def cached(cache, batch: int, crop: int, seconds: float, gen: torch.Generator, augment: bool = True) -> float:
    """images/s of random batches from the memmap, optionally through the training crop."""
    rng = np.random.default_rng(0)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        images = cache.load(rng.integers(0, len(cache), batch))
        if augment:
            augment_batch(images, crop, True, gen)
        done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--images", type=Path, help="use these PNGs instead of generated ones")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)  # what one DataLoader worker gets; the GPU process keeps the rest
    gen = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.images:
            paths = sorted(args.images.glob("*.png"))[: args.n]
            source = f"{len(paths)} PNGs from {args.images}"
        else:
            t0 = time.perf_counter()
            paths = make_images(tmp, args.n, args.side)
            source = f"{len(paths)} generated {args.side}px PNGs ({time.perf_counter() - t0:.1f}s to write)"
        mb = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
        print(f"images: {source}, {mb:.2f} MB each")
        t0 = time.perf_counter()
        cache = build_cache(paths, tmp / "cache", size=args.size, workers=args.workers, progress=False)
        build = len(paths) / (time.perf_counter() - t0)
        print(f"cache build ({args.workers} workers, incl. start-up): {build:,.0f} images/s")
        slow = per_item(paths, args.size, args.crop, args.seconds, gen)
        raw = cached(cache, args.batch, args.crop, args.seconds, gen, augment=False)
        fast = cached(cache, args.batch, args.crop, args.seconds, gen)
    print(f"decode+resize+crop per item : {slow:10,.1f} images/s")
    print(f"cache.load only             : {raw:10,.0f} images/s")
    print(f"cache.load + {args.crop}px crop/flip : {fast:10,.0f} images/s   (target >= 3,000)")
    print(f"ratio cached/per-item       : {fast / slow:10,.1f}x       (target >= 20x)")


if __name__ == "__main__":
    main()
