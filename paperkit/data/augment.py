"""Batch augmentation on cached uint8 images: random crop + horizontal flip for training, centre crop
for evaluation, then one gray normalisation.

The paper resizes every image to 256 x 256 once and trains on random 224 x 224 crops; the cache
already holds the resized images, so augmentation is only cropping, flipping and scaling. It is
vectorised over the batch (two ``torch.gather`` calls, no per-sample Python loop), so it runs on
the CPU or, after copying the uint8 batch, on the GPU.

Randomness is split into *drawing* (:func:`crop_params`, from a caller's ``torch.Generator``) and
*applying* (:func:`apply_crops`). The trainer draws the parameters of a whole global batch and
applies each rank's share, so a run on one process and on several sees the same crops.
"""
from __future__ import annotations

import torch

#: ImageNet's RGB mean and std averaged over the three channels. A one-channel model initialised
#: from ImageNet weights (timm sums the first convolution over RGB) then sees inputs on the scale
#: it was trained on; from scratch any fixed affine map would do, so the same constants serve both.
GRAY_MEAN = 0.449
GRAY_STD = 0.226


def crop_params(
    batch: int, size: int, crop: int, train: bool, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw per-sample crop offsets and flips.

    Parameters
    ----------
    batch, size, crop
        Number of images, side of the cached square images, side of the crop.
    train
        Random offsets in ``[0, size - crop]`` and a fair coin per image for the flip; otherwise
        the centre crop and no flip (nothing is drawn, the generator is untouched).
    generator
        Source of randomness; ``None`` uses torch's global generator.

    Returns
    -------
    (top, left, flip)
        ``int64 [batch]``, ``int64 [batch]``, ``bool [batch]`` on the CPU.
    """
    if crop > size:
        raise ValueError(f"crop ({crop}) is larger than the images ({size})")
    if not train:
        centre = torch.full((batch,), (size - crop) // 2, dtype=torch.int64)
        return centre, centre.clone(), torch.zeros(batch, dtype=torch.bool)
    top = torch.randint(0, size - crop + 1, (batch,), generator=generator)
    left = torch.randint(0, size - crop + 1, (batch,), generator=generator)
    flip = torch.randint(0, 2, (batch,), generator=generator).bool()
    return top, left, flip


def apply_crops(
    images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor, crop: int
) -> torch.Tensor:
    """Crop, flip and normalise ``images`` (uint8 ``[B, S, S]``) to float32 ``[B, 1, crop, crop]``.

    The crop is two gathers (rows, then columns); a flip is a reversed column index, so flipped and
    unflipped samples share one code path. Parameters are moved to the images' device.
    """
    b, s, _ = images.shape
    device = images.device
    ar = torch.arange(crop, device=device)
    rows = top.to(device)[:, None] + ar  # [B, crop]
    cols = left.to(device)[:, None] + torch.where(flip.to(device)[:, None], crop - 1 - ar, ar)
    out = torch.gather(images, 1, rows[:, :, None].expand(b, crop, s))
    out = torch.gather(out, 2, cols[:, None, :].expand(b, crop, crop))
    # (x / 255 - mean) / std as one multiply-add on the float copy.
    scale = 1.0 / (255.0 * GRAY_STD)
    return out.unsqueeze(1).float().mul_(scale).sub_(GRAY_MEAN / GRAY_STD)


def augment_batch(
    images: torch.Tensor, crop: int, train: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random crop + horizontal flip (``train``) or centre crop, normalised.

    Parameters
    ----------
    images
        uint8 ``[B, S, S]`` as returned by ``ImageCache.load``.
    crop
        Output side (the paper: 224 from 256).
    train
        Random augmentation when true, deterministic centre crop otherwise.
    generator
        Source of randomness for ``train``; ``None`` uses torch's global generator.

    Returns
    -------
    torch.Tensor
        float32 ``[B, 1, crop, crop]``, ``(x / 255 - GRAY_MEAN) / GRAY_STD``.
    """
    if images.dtype != torch.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 [B, S, S] images, got {images.dtype} {tuple(images.shape)}")
    top, left, flip = crop_params(images.shape[0], images.shape[1], crop, train, generator)
    return apply_crops(images, top, left, flip, crop)
