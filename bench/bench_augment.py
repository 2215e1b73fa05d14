"""Batched random crop + flip (``augment_batch``) against per-image slicing, side by side in one run.

The training loop crops every batch on the fly, so this step must stay cheap next to a forward pass.
Both paths crop the same images with the same parameters; the ratio is what to read (machines
differ up to 2x in absolute speed).

    python bench/bench_augment.py                    # 32 images 256 -> 224, best of 10
"""
from __future__ import annotations

import argparse
import time

import torch

from paperkit.data.augment import GRAY_MEAN, GRAY_STD, apply_crops, crop_params


def per_image(
    images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor, crop: int
) -> torch.Tensor:
    """The obvious implementation: slice, flip and normalise one image at a time."""
    out = []
    for i in range(images.shape[0]):
        patch = images[i, top[i] : top[i] + crop, left[i] : left[i] + crop]
        out.append(patch.flip(-1) if flip[i] else patch)
    return (torch.stack(out).unsqueeze(1).float() / 255.0 - GRAY_MEAN) / GRAY_STD


def best_rate(fn, images: torch.Tensor, params: tuple, crop: int, repeats: int) -> float:
    fn(images, *params, crop)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(images, *params, crop)
        best = min(best, time.perf_counter() - start)
    return images.shape[0] / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    images = torch.randint(0, 256, (args.batch, args.size, args.size), dtype=torch.uint8)
    params = crop_params(args.batch, args.size, args.crop, True, torch.Generator().manual_seed(0))
    batched = best_rate(apply_crops, images, params, args.crop, args.repeats)
    sliced = best_rate(per_image, images, params, args.crop, args.repeats)
    print(
        f"{args.batch} images {args.size} -> {args.crop} px, {torch.get_num_threads()} threads, best of {args.repeats}"
    )
    print(
        f"batched crop + flip: {batched:,.0f} img/s; per-image slicing: {sliced:,.0f} img/s; "
        f"ratio {batched / sliced:.2f}x"
    )


if __name__ == "__main__":
    main()
