"""Batch augmentation: crops match slicing, flips mirror, centre crop is deterministic (speed:
bench/bench_augment.py)."""

from __future__ import annotations

import torch

from paperkit.data.augment import GRAY_MEAN, GRAY_STD, apply_crops, augment_batch, crop_params


def _reference(images: torch.Tensor, top, left, flip, crop: int) -> torch.Tensor:
    """Per-sample slicing, the obvious (slow) implementation."""
    out = []
    for i in range(images.shape[0]):
        patch = images[i, top[i] : top[i] + crop, left[i] : left[i] + crop]
        out.append(patch.flip(-1) if flip[i] else patch)
    x = torch.stack(out).unsqueeze(1).float() / 255.0
    return (x - GRAY_MEAN) / GRAY_STD


def test_random_crop_and_flip_match_slicing() -> None:
    images = torch.randint(0, 256, (64, 20, 20), dtype=torch.uint8)
    top, left, flip = crop_params(64, 20, 12, True, torch.Generator().manual_seed(0))
    assert flip.any() and (~flip).any() and len(set(top.tolist())) > 1
    got = apply_crops(images, top, left, flip, 12)
    assert got.shape == (64, 1, 12, 12) and got.dtype == torch.float32
    torch.testing.assert_close(got, _reference(images, top, left, flip, 12), rtol=0, atol=1e-5)


def test_same_generator_same_batch_and_centre_crop() -> None:
    images = torch.randint(0, 256, (8, 16, 16), dtype=torch.uint8)
    a = augment_batch(images, 10, True, torch.Generator().manual_seed(3))
    b = augment_batch(images, 10, True, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    centre = augment_batch(images, 10, False, g)
    assert torch.equal(g.get_state(), state)  # evaluation draws nothing
    zeros = torch.zeros(8, dtype=torch.int64)
    torch.testing.assert_close(centre, _reference(images, zeros + 3, zeros + 3, zeros.bool(), 10))
