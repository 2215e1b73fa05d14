"""Neighbour pools for KNNS: each image's K nearest neighbours in soft-label space (eq. 3).

Before the target is trained, every training image (the anchor) gets a pool of the K images whose
soft label distributions ``l`` are closest in Euclidean distance, with similarity

    s_ik = exp(−‖l_i − l_i^k‖² / 2σ²)        (eq. 3; σ = 1 in the paper)

Search is exact brute force in blocks of rows, on the GPU when there is one: 224k × 14 takes
seconds on a GPU and about two minutes on a 2-core CPU (N² distances: 20,000 rows take 0.9 s here).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from paperkit.artifacts import atomic_path

POOLS_FILE = "pools.npz"

#: Extra candidates taken from the fast float32 search and re-ranked with exact float64
#: distances, so rounding in ``‖a‖² + ‖b‖² − 2a·b`` cannot reorder near-ties.
_RERANK_MARGIN = 8
#: Elements of one block of the distance matrix (≈ 256 MB in float32).
_BLOCK_ELEMENTS = 1 << 26


def neighbour_pools(
    soft_labels: np.ndarray | torch.Tensor,
    k: int,
    sigma: float = 1.0,
    batch: int | None = None,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact K nearest neighbours of every row in soft-label space, and their similarities.

    Parameters
    ----------
    soft_labels
        ``l`` ``[N, C]``, one soft label distribution per training image.
    k
        Pool size K (the paper's K = 9 for NIH); needs ``k < N``.
    sigma
        Width σ of eq. 3.
    batch
        Anchors per block; default: as many as fit a ~256 MB distance block.
    device
        Where to compute; default CUDA if available, else CPU.

    Returns
    -------
    index
        int64 ``[N, K]``: row numbers of the neighbours, nearest first (ties by row number).
        An image is never its own neighbour, even when other rows duplicate it exactly (self is
        excluded by row number, not by zero distance).
    similarity
        float32 ``[N, K]``: ``exp(−d²/2σ²)`` with ``d`` the Euclidean distance.
    """
    x = torch.as_tensor(soft_labels).detach()
    if x.ndim != 2:
        raise ValueError(f"soft_labels must be [N, C], got shape {tuple(x.shape)}")
    n = x.shape[0]
    if not 0 < k < n:
        raise ValueError(f"k must be in 1..N-1 = {n - 1}, got {k}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    exact = x.to(torch.float64)
    # Centring leaves distances unchanged and shrinks the norms, hence float32 cancellation error.
    fast = (exact - exact.mean(0)).to(device=device, dtype=torch.float32)
    sq = (fast * fast).sum(1)
    n_candidates = min(n - 1, k + _RERANK_MARGIN)
    batch = batch or max(1, _BLOCK_ELEMENTS // n)
    index = np.empty((n, k), dtype=np.int64)
    dist2 = np.empty((n, k), dtype=np.float64)
    for start in range(0, n, batch):
        rows = torch.arange(start, min(start + batch, n), device=device)
        d2 = torch.addmm(sq[None, :], fast[rows], fast.T, alpha=-2).add_(sq[rows, None])
        d2[torch.arange(len(rows), device=device), rows] = float("inf")  # self, by row number
        candidates = d2.topk(n_candidates, dim=1, largest=False, sorted=False).indices.cpu()
        # Re-rank in float64, ties broken by row number: sort by index, then stable sort by distance.
        candidates = candidates.sort(dim=1).values
        cand_d2 = ((exact[candidates] - exact[rows.cpu(), None]) ** 2).sum(-1)
        order = cand_d2.argsort(dim=1, stable=True)[:, :k]
        index[start : start + len(rows)] = candidates.gather(1, order).numpy()
        dist2[start : start + len(rows)] = cand_d2.gather(1, order).numpy()
    similarity = np.exp(-dist2 / (2.0 * sigma**2)).astype(np.float32)
    return index, similarity


def save_pools(
    out_dir: str | os.PathLike, index: np.ndarray, similarity: np.ndarray, image_ids: np.ndarray
) -> Path:
    """Write ``pools.npz`` (``index``, ``similarity``, ``image_ids``) into ``out_dir`` atomically.

    ``image_ids[i]`` names anchor row i, so a reader can check the pools match its dataset rows.
    """
    index, similarity, image_ids = np.asarray(index), np.asarray(similarity), np.asarray(image_ids).astype(str)
    if index.shape != similarity.shape or index.shape[0] != len(image_ids):
        raise ValueError(
            f"index {index.shape}, similarity {similarity.shape} and {len(image_ids)} image ids do not match"
        )
    path = Path(out_dir) / POOLS_FILE
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, index=index.astype(np.int64), similarity=similarity.astype(np.float32), image_ids=image_ids)
    return path


def load_pools(out_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``(index [N, K] int64, similarity [N, K] float32, image_ids [N] str)`` written by :func:`save_pools`."""
    with np.load(Path(out_dir) / POOLS_FILE, allow_pickle=False) as data:
        return data["index"], data["similarity"], data["image_ids"]


def neighbour_agreement(truth: np.ndarray, index: np.ndarray, seed: int = 0) -> pd.Series:
    """How often a neighbour has exactly its anchor's clean findings, against random images.

    Parameters
    ----------
    truth
        ``[N, C]`` clean labels of the anchors (unknown, ``NaN``, counts as negative).
    index
        ``[N, K]`` pools from :func:`neighbour_pools`: each anchor's neighbours, as rows of ``truth``.
    seed
        Seed of the ``[N, K]`` random images the neighbours are compared with.

    Returns
    -------
    pandas.Series
        ``KNN neighbours`` and ``random images``: the fraction of (anchor, image) pairs whose clean
        finding sets are identical.
    """
    t = np.nan_to_num(truth)
    random_images = np.random.default_rng(seed).integers(0, len(t), size=index.shape)

    def agree(neighbours: np.ndarray) -> float:
        return float((t[:, None, :] == t[neighbours]).all(-1).mean())

    return pd.Series({"KNN neighbours": agree(index), "random images": agree(random_images)},
                     name="fraction with the anchor's exact clean findings")
