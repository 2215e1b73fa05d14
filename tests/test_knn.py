"""Neighbour pools (eq. 3): exact against brute force, self excluded, similarity, save/load."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from paperkit.method.knn import load_pools, neighbour_agreement, neighbour_pools, save_pools


def _brute_force(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 distances to every other row, nearest first, ties by row number."""
    d2 = ((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    index = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return index, np.take_along_axis(d2, index, axis=1)


@pytest.mark.parametrize("n, c, k, batch", [(300, 14, 9, None), (257, 5, 3, 64), (40, 14, 39, 7)])
def test_pools_equal_brute_force(n: int, c: int, k: int, batch: int | None) -> None:
    rng = np.random.default_rng(n)
    x = rng.beta(0.5, 3.0, size=(n, c)).astype(np.float32)  # soft labels: mostly near 0, like findings
    index, similarity = neighbour_pools(x, k, batch=batch)
    ref_index, ref_d2 = _brute_force(x, k)
    assert index.dtype == np.int64 and similarity.dtype == np.float32
    assert index.shape == similarity.shape == (n, k)
    np.testing.assert_array_equal(index, ref_index)
    np.testing.assert_allclose(similarity, np.exp(-ref_d2 / 2), rtol=1e-6)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_similarity_formula(sigma: float) -> None:
    x = np.array([[0.0, 0.0], [0.3, 0.4], [1.0, 1.0]], dtype=np.float32)  # d(0,1) = 0.5
    index, similarity = neighbour_pools(x, 1, sigma=sigma)
    assert index[0, 0] == 1 and index[1, 0] == 0
    assert similarity[0, 0] == pytest.approx(np.exp(-0.25 / (2 * sigma**2)), rel=1e-6)


def test_self_excluded_with_duplicate_rows() -> None:
    """Rows 0-3 are identical: each one's pool holds the other three (distance 0), never itself."""
    x = np.vstack([np.full((4, 3), 0.2), np.random.default_rng(0).uniform(size=(10, 3))]).astype(np.float32)
    index, similarity = neighbour_pools(x, 3)
    assert not np.any(index == np.arange(len(x))[:, None])
    for i in range(4):
        assert sorted(index[i]) == sorted({0, 1, 2, 3} - {i})
        np.testing.assert_array_equal(similarity[i], 1.0)


def test_bad_arguments() -> None:
    x = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="k must"):
        neighbour_pools(x, 5)
    with pytest.raises(ValueError, match="sigma"):
        neighbour_pools(x, 2, sigma=0)


def test_save_load_roundtrip(tmp_path: Path) -> None:
    x = np.random.default_rng(0).uniform(size=(20, 4)).astype(np.float32)
    index, similarity = neighbour_pools(x, 3)
    ids = np.array([f"img{i:03d}.png" for i in range(20)])
    save_pools(tmp_path / "pools", index, similarity, ids)
    got_index, got_similarity, got_ids = load_pools(tmp_path / "pools")
    np.testing.assert_array_equal(got_index, index)
    np.testing.assert_array_equal(got_similarity, similarity)
    np.testing.assert_array_equal(got_ids, ids)
    assert [p.name for p in (tmp_path / "pools").iterdir()] == ["pools.npz"]  # no temporaries left
    with pytest.raises(ValueError, match="do not match"):
        save_pools(tmp_path / "bad", index, similarity, ids[:5])


def test_neighbour_agreement_counts_identical_finding_sets():
    truth = np.array([[1, 0], [1, 0], [0, 1], [np.nan, 1]])  # unknown counts as negative: rows 2 and 3 agree
    index = np.array([[1, 2], [0, 3], [3, 0], [2, 1]])
    share = neighbour_agreement(truth, index)
    assert share["KNN neighbours"] == pytest.approx(4 / 8)
    assert 0 <= share["random images"] <= 1
    assert share["random images"] == neighbour_agreement(truth, index)["random images"]  # seeded
