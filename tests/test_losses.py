"""Losses against independent float64 numpy computations, gradients, masks and uncertain-label policies."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paperkit.method.losses import LSR_RANGES, bce_loss, knns_loss, modl_loss, uncertain_targets


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _plogq(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p·log(p/q) with 0·log 0 = 0."""
    p, q = np.broadcast_arrays(p, q)
    out = np.zeros_like(p)
    pos = p > 0
    out[pos] = p[pos] * (np.log(p[pos]) - np.log(q[pos]))
    return out


def _ref_kl(p: np.ndarray, q: np.ndarray, form: str) -> np.ndarray:
    """Element-wise KL of eq. 2/4 in float64, straight from the definitions."""
    kl = _plogq(p, q)
    if form == "bernoulli":
        kl = kl + _plogq(1 - p, 1 - q)
    return kl


def _logits(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Logits spanning p near 0 and near 1 (|z| up to 12) as well as the middle."""
    z = rng.normal(0, 3, size=shape)
    z.flat[::5] = rng.choice([-12.0, 12.0], size=z.flat[::5].shape)
    return z


def _soft_labels(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    labels = rng.uniform(0, 1, size=shape)
    labels.flat[::3] = rng.choice([0.0, 1.0], size=labels.flat[::3].shape)  # hard labels are legal soft labels
    return labels


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("use_mask", [False, True])
def test_bce_matches_numpy(seed: int, use_mask: bool) -> None:
    rng = np.random.default_rng(seed)
    z, y = _logits(rng, (6, 5)), _soft_labels(rng, (6, 5))
    mask = rng.uniform(size=(6, 5)) > 0.3 if use_mask else np.ones((6, 5), bool)
    p = _sigmoid(z)
    ref = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    got = bce_loss(torch.tensor(z), torch.tensor(y), torch.tensor(mask) if use_mask else None)
    assert got.item() == pytest.approx(ref[mask].mean(), rel=1e-10)


def test_bce_mask_all_false_is_zero_with_gradient() -> None:
    z = torch.randn(3, 4, requires_grad=True)
    loss = bce_loss(z, torch.ones(3, 4), torch.zeros(3, 4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(z.grad == 0)


def test_bce_masked_elements_get_no_gradient() -> None:
    z = torch.randn(3, 4, requires_grad=True)
    mask = torch.rand(3, 4) > 0.5
    bce_loss(z, torch.rand(3, 4), mask).backward()
    assert torch.all(z.grad[~mask] == 0) and torch.all(z.grad[mask] != 0)


@pytest.mark.parametrize("form", ["bernoulli", "as_printed"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_modl_matches_numpy(form: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    z, soft = _logits(rng, (8, 14)), _soft_labels(rng, (8, 14))
    ref = _ref_kl(soft, _sigmoid(z), form).mean()
    got = modl_loss(torch.tensor(z), torch.tensor(soft), form=form)
    assert np.isfinite(got.item())
    assert got.item() == pytest.approx(ref, rel=1e-9, abs=1e-12)
    # float32 agrees to float32 precision
    got32 = modl_loss(torch.tensor(z, dtype=torch.float32), torch.tensor(soft, dtype=torch.float32), form=form)
    assert got32.item() == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
def test_modl_zero_when_prediction_equals_soft_label(dtype: torch.dtype, tol: float) -> None:
    z = torch.randn(16, 14, dtype=dtype) * 3
    loss = modl_loss(z, torch.sigmoid(z))
    assert abs(loss.item()) < tol
    assert modl_loss(z, (torch.sigmoid(z) + 0.01 * (torch.rand_like(z) - 0.5)).clamp(0, 1)).item() > abs(loss.item())


def test_modl_exact_at_hard_labels() -> None:
    """l ∈ {0, 1}: Bernoulli KL reduces to BCE (the entropy of a hard label is 0), no NaN."""
    z = torch.tensor([[-30.0, 0.0, 30.0], [5.0, -5.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    assert modl_loss(z, y).item() == pytest.approx(bce_loss(z, y).item(), rel=1e-12)


def test_as_printed_is_minimised_by_pushing_p_to_one() -> None:
    """Why Bernoulli is the default: the printed form keeps falling as every p → 1."""
    soft = torch.full((1, 3), 0.2, dtype=torch.float64)
    at_label, saturated = torch.logit(soft), torch.full((1, 3), 10.0, dtype=torch.float64)
    assert modl_loss(saturated, soft, form="as_printed") < modl_loss(at_label, soft, form="as_printed")
    assert modl_loss(saturated, soft, form="bernoulli") > modl_loss(at_label, soft, form="bernoulli")


def _ref_knns(za: np.ndarray, zn: np.ndarray, s: np.ndarray, form: str, k_reduction: str) -> float:
    """Eq. 4 element by element in plain Python loops: Σ_k (or mean_k) s_ik·KL(f_k‖f_i), mean over i, c."""
    b, k, c = zn.shape
    total = 0.0
    for i in range(b):
        for j in range(c):
            p = 1 / (1 + math.exp(-za[i, j]))
            terms = []
            for n in range(k):
                q = 1 / (1 + math.exp(-zn[i, n, j]))
                kl = q * math.log(q / p)
                if form == "bernoulli":
                    kl += (1 - q) * math.log((1 - q) / (1 - p))
                terms.append(s[i, n] * kl)
            total += sum(terms) if k_reduction == "sum" else sum(terms) / k
    return total / (b * c)


@pytest.mark.parametrize("k_reduction", ["sum", "mean"])
@pytest.mark.parametrize("form", ["bernoulli", "as_printed"])
@pytest.mark.parametrize("seed", [0, 1])
def test_knns_matches_independent_computation(form: str, seed: int, k_reduction: str) -> None:
    rng = np.random.default_rng(seed)
    b, k, c = 5, 4, 7
    za, zn, s = _logits(rng, (b, c)), _logits(rng, (b, k, c)), rng.uniform(0, 1, (b, k))
    ref = _ref_knns(za, zn, s, form, k_reduction)
    got = knns_loss(torch.tensor(za), torch.tensor(zn), torch.tensor(s), form=form, k_reduction=k_reduction)
    assert got.item() == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_knns_sum_is_eq1_weighting() -> None:
    """Eq. 1 puts γ·Σ_k beside BCE: with K identical neighbours the sum is K times one neighbour's term."""
    za, zn1 = torch.randn(4, 3), torch.randn(4, 1, 3)
    s1 = torch.rand(4, 1)
    one = knns_loss(za, zn1, s1)
    nine = knns_loss(za, zn1.expand(4, 9, 3), s1.expand(4, 9))
    assert nine.item() == pytest.approx(9 * one.item(), rel=1e-5)
    assert knns_loss(za, zn1.expand(4, 9, 3), s1.expand(4, 9), k_reduction="mean").item() == pytest.approx(
        one.item(), rel=1e-5
    )
    with pytest.raises(ValueError, match="k_reduction"):
        knns_loss(za, zn1, s1, k_reduction="max")


@pytest.mark.parametrize("form", ["bernoulli", "as_printed"])
def test_knns_zero_when_neighbours_agree(form: str) -> None:
    za = torch.randn(4, 6) * 4
    zn = za[:, None, :].expand(4, 3, 6)
    assert knns_loss(za, zn, torch.rand(4, 3), form=form).item() == 0.0


def test_knns_saturated_logits_are_finite() -> None:
    za = torch.tensor([[40.0, -40.0]])
    zn = torch.tensor([[[-40.0, 40.0]]])
    loss = knns_loss(za, zn, torch.ones(1, 1))
    assert torch.isfinite(loss) and loss.item() == pytest.approx(40.0, rel=1e-4)  # −log σ(−40) per class


def test_knns_gradients_and_detach() -> None:
    za = torch.randn(3, 4, requires_grad=True)
    zn = torch.randn(3, 2, 4, requires_grad=True)
    knns_loss(za, zn, torch.rand(3, 2)).backward()
    assert za.grad.abs().sum() > 0 and zn.grad.abs().sum() > 0
    za.grad, zn.grad = None, None
    knns_loss(za, zn, torch.rand(3, 2), detach_neighbours=True).backward()
    assert za.grad.abs().sum() > 0 and zn.grad is None


def test_knns_shape_errors() -> None:
    with pytest.raises(ValueError, match="expected anchor"):
        knns_loss(torch.randn(3, 4), torch.randn(3, 2, 4), torch.rand(3, 3))


@pytest.mark.parametrize("form", ["bernoulli", "as_printed"])
def test_gradcheck(form: str) -> None:
    torch.manual_seed(0)
    z = (torch.randn(3, 4, dtype=torch.float64) * 3).requires_grad_()
    zn = (torch.randn(3, 2, 4, dtype=torch.float64) * 3).requires_grad_()
    soft = torch.rand(3, 4, dtype=torch.float64)
    soft[0] = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    s = torch.rand(3, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: modl_loss(a, soft, form), (z,))
    assert torch.autograd.gradcheck(lambda a, n: knns_loss(a, n, s, form), (z, zn))
    assert torch.autograd.gradcheck(lambda a: bce_loss(a, soft, soft > 0.5), (z,))


def test_bf16_logits_are_promoted() -> None:
    z = torch.randn(4, 5)
    soft = torch.rand(4, 5)
    assert modl_loss(z.bfloat16(), soft).dtype == torch.float32
    assert bce_loss(z.bfloat16(), soft).dtype == torch.float32


def test_unknown_form() -> None:
    with pytest.raises(ValueError, match="form"):
        modl_loss(torch.zeros(1, 1), torch.zeros(1, 1), form="categorical")


# --- uncertain labels ----------------------------------------------------------------------------

RAW = np.array([[1, 0, -1, np.nan], [-1, -1, 1, 0]], dtype=np.float32)


@pytest.mark.parametrize(
    "policy, expected, mask",
    [
        ("u_ones", [[1, 0, 1, 0], [1, 1, 1, 0]], [[1, 1, 1, 1], [1, 1, 1, 1]]),
        ("u_zeros", [[1, 0, 0, 0], [0, 0, 1, 0]], [[1, 1, 1, 1], [1, 1, 1, 1]]),
        ("u_ignore", [[1, 0, 0, 0], [0, 0, 1, 0]], [[1, 1, 0, 1], [0, 0, 1, 1]]),
    ],
)
def test_uncertain_targets_hard_policies(policy: str, expected: list, mask: list) -> None:
    targets, got_mask = uncertain_targets(RAW, policy)
    assert targets.dtype == np.float32 and got_mask.dtype == bool
    np.testing.assert_array_equal(targets, np.array(expected, np.float32))
    np.testing.assert_array_equal(got_mask, np.array(mask, bool))


@pytest.mark.parametrize("policy", ["lsr_ones", "lsr_zeros"])
def test_uncertain_targets_lsr(policy: str) -> None:
    raw = np.random.default_rng(0).choice([1.0, 0.0, -1.0, np.nan], size=(200, 14)).astype(np.float32)
    targets, mask = uncertain_targets(raw, policy, seed=3)
    low, high = LSR_RANGES[policy]
    u = raw == -1
    assert mask.all()
    assert np.all((targets[u] >= low) & (targets[u] <= high)) and targets[u].std() > 0.05
    np.testing.assert_array_equal(targets[~u], np.where(raw[~u] == 1, 1.0, 0.0))
    np.testing.assert_array_equal(targets, uncertain_targets(raw, policy, seed=3)[0])
    assert not np.array_equal(targets, uncertain_targets(raw, policy, seed=4)[0])


def test_uncertain_targets_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="policy"):
        uncertain_targets(RAW, "u_maybe")
    with pytest.raises(ValueError, match="labels must be"):
        uncertain_targets(np.array([[0.5]]), "u_ones")
