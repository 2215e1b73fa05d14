"""The three loss terms of eq. 1: BCE (L_cls), MODL (L_distri, eq. 2) and KNNS (L_neigh, eq. 4).

    L = Σ_i,j [ L_cls(y_ij, f_T(x_i)) + λ·L_distri(l_i, f_T(x_i)) + γ·Σ_k L_neigh(f_T(x_i), f_T(x_i^k)) ]

The outputs are C independent sigmoids (multi-label), so every "distribution" in the paper is a
vector of C Bernoulli probabilities, not a categorical distribution. The paper writes both KL
terms as ``Σ l·log(l/p)``, the categorical KL. For sigmoid outputs that expression ignores the
``(1−l)`` mass: each term ``−l·log p`` decreases monotonically in ``p``, so it is minimised by
pushing *every* probability towards 1, whatever the soft label says. The default here,
``form="bernoulli"``, is the per-class Bernoulli KL

    KL(l‖p) = l·log(l/p) + (1−l)·log((1−l)/(1−p)),

which is ≥ 0 and zero exactly when ``p = l``. ``form="as_printed"`` keeps the printed expression
for the ablation. Every term is averaged over anchors and classes, the reduction of
``binary_cross_entropy_with_logits`` (eq. 1 sums over images and classes; the mean keeps λ and γ
independent of the batch size and the number of findings). Over the K neighbours eq. 1 *sums*
(``γ·Σ_k L_neigh``), so the KNNS weight grows with K; ``k_reduction="sum"`` (default) does that,
``"mean"`` divides by K (a K-independent weight, i.e. the paper's γ/K). Everything is computed from
logits with ``logsigmoid``: finite for any logit, exact at ``l ∈ {0, 1}`` (``0·log 0 = 0``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

FORMS = ("bernoulli", "as_printed")
K_REDUCTIONS = ("sum", "mean")
POLICIES = ("u_ones", "u_zeros", "u_ignore", "lsr_ones", "lsr_zeros")

#: Uniform ranges for uncertain labels under label smoothing (Pham et al. 2019, as used in the
#: CheXpert literature): U-Ones maps -1 to U(0.55, 0.85), U-Zeros to U(0, 0.3).
LSR_RANGES: dict[str, tuple[float, float]] = {"lsr_ones": (0.55, 0.85), "lsr_zeros": (0.0, 0.3)}


def bce_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_cls: binary cross-entropy with logits, mean over the unmasked elements.

    Parameters
    ----------
    logits, targets
        ``[B, C]``; targets in [0, 1] (hard or LSR-smoothed).
    mask
        Optional bool ``[B, C]``; ``False`` drops an element (U-Ignore's uncertain labels). With
        no element kept the loss is 0 (and still differentiable).
    """
    logits = _at_least_float32(logits)
    loss = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    if mask is None:
        return loss.mean()
    mask = mask.to(loss.dtype)
    return (loss * mask).sum() / mask.sum().clamp_min(1.0)


def modl_loss(logits: torch.Tensor, soft_labels: torch.Tensor, form: str = "bernoulli") -> torch.Tensor:
    """L_distri (eq. 2): KL from the soft label distribution ``l`` to the target's prediction ``σ(z)``.

    Parameters
    ----------
    logits
        Target-model logits ``z`` ``[B, C]``.
    soft_labels
        ``l`` ``[B, C]`` in [0, 1]: the mean of the reference models' probabilities (fixed).
        Not range-checked (that would synchronise the GPU every step): outside [0, 1] gives NaN.
    form
        ``"bernoulli"`` (default): ``l·log(l/p) + (1−l)·log((1−l)/(1−p))`` per class.
        ``"as_printed"``: eq. 2 as printed, ``l·log(l/p)``; it is minimised by ``p → 1``
        for every class with ``l > 0`` (see the module docstring).

    Returns
    -------
    Scalar: mean over batch and classes (eq. 2 prints a sum over images; the mean keeps λ
    independent of the batch size).
    """
    _check_form(form)
    _check_same_shape(logits, soft_labels)
    logits = _at_least_float32(logits)
    soft = soft_labels.to(logits.dtype)
    kl = torch.xlogy(soft, soft) - soft * F.logsigmoid(logits)
    if form == "bernoulli":
        kl = kl + torch.xlogy(1 - soft, 1 - soft) - (1 - soft) * F.logsigmoid(-logits)
    return kl.mean()


def knns_loss(
    anchor_logits: torch.Tensor,
    neighbour_logits: torch.Tensor,
    similarity: torch.Tensor,
    form: str = "bernoulli",
    detach_neighbours: bool = False,
    k_reduction: str = "sum",
) -> torch.Tensor:
    """L_neigh (eq. 4): ``s_ik · KL(f(x_i^k) ‖ f(x_i))``, neighbours' predictions towards the anchor's.

    Parameters
    ----------
    anchor_logits
        ``[B, C]``, the target model's logits for the anchors ``x_i``.
    neighbour_logits
        ``[B, K, C]``, the same model's logits for each anchor's neighbours ``x_i^k``.
    similarity
        ``s_ik`` ``[B, K]`` from eq. 3 (see :func:`paperkit.method.knn.neighbour_pools`); fixed.
    form
        ``"bernoulli"`` (default) or ``"as_printed"`` ``f_k·log(f_k/f_i)``, as in :func:`modl_loss`.
    detach_neighbours
        Stop gradients into the neighbour logits. The paper forwards anchor and neighbours with
        gradients (the default); a memory bank of stored predictions needs ``True``.
    k_reduction
        ``"sum"`` (default, eq. 1's ``Σ_k``) or ``"mean"`` over the K neighbours.

    Returns
    -------
    Scalar: ``Σ_k s_ik·KL`` (or its mean over k), averaged over anchors and classes.
    """
    _check_form(form)
    if k_reduction not in K_REDUCTIONS:
        raise ValueError(f"k_reduction must be one of {K_REDUCTIONS}, got {k_reduction!r}")
    batch, k, classes = neighbour_logits.shape
    if anchor_logits.shape != (batch, classes) or similarity.shape != (batch, k):
        raise ValueError(
            f"expected anchor [B, C], neighbours [B, K, C], similarity [B, K]; got "
            f"{tuple(anchor_logits.shape)}, {tuple(neighbour_logits.shape)}, {tuple(similarity.shape)}"
        )
    anchor_logits, neighbour_logits = _at_least_float32(anchor_logits), _at_least_float32(neighbour_logits)
    if detach_neighbours:
        neighbour_logits = neighbour_logits.detach()
    anchor = anchor_logits.unsqueeze(1)  # [B, 1, C], broadcast over neighbours
    log_p = F.logsigmoid(neighbour_logits)  # log f_k
    kl = log_p.exp() * (log_p - F.logsigmoid(anchor))
    if form == "bernoulli":
        log_1mp = F.logsigmoid(-neighbour_logits)  # log(1 − f_k)
        kl = kl + log_1mp.exp() * (log_1mp - F.logsigmoid(-anchor))
    weighted = similarity.to(kl.dtype).unsqueeze(-1) * kl  # [B, K, C]
    per_anchor = weighted.sum(1) if k_reduction == "sum" else weighted.mean(1)
    return per_anchor.mean()


def uncertain_targets(labels: np.ndarray, policy: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training targets and loss mask from raw labels (1, 0, −1 uncertain, NaN blank).

    Blank (NaN, "not mentioned") counts as negative under every policy, as in CheXpert practice.
    Uncertain (−1) becomes, per policy (Irvin et al. 2019; Pham et al. 2019):

    - ``u_ones``: 1; ``u_zeros``: 0; ``u_ignore``: 0 and masked out of the loss;
    - ``lsr_ones``: a draw from U(0.55, 0.85); ``lsr_zeros``: a draw from U(0, 0.3).

    LSR values are drawn once per (row, class) from ``seed`` over the whole array, so an entry's
    value does not depend on which other entries are uncertain; pass a new seed to redraw.

    Returns
    -------
    targets
        float32 ``[N, C]`` in [0, 1].
    mask
        bool ``[N, C]``; ``False`` only for uncertain labels under ``u_ignore``.

    Raises
    ------
    ValueError
        On an unknown policy or a label outside {1, 0, −1, NaN}.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    labels = np.asarray(labels, dtype=np.float32)
    known = np.isnan(labels) | np.isin(labels, (1.0, 0.0, -1.0))
    if not known.all():
        raise ValueError(f"labels must be 1, 0, -1 or NaN; found {np.unique(labels[~known])[:5]}")
    uncertain = labels == -1
    targets = np.where(labels == 1, 1.0, 0.0).astype(np.float32)
    mask = np.ones(labels.shape, dtype=bool)
    if policy == "u_ones":
        targets[uncertain] = 1.0
    elif policy == "u_ignore":
        mask = ~uncertain
    elif policy in LSR_RANGES:
        low, high = LSR_RANGES[policy]
        draws = np.random.default_rng(seed).uniform(low, high, size=labels.shape).astype(np.float32)
        targets = np.where(uncertain, draws, targets)
    return targets, mask


def _at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 logits (autocast) are promoted: log-ratios of near-equal probabilities need float32."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def _check_form(form: str) -> None:
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")


def _check_same_shape(logits: torch.Tensor, other: torch.Tensor) -> None:
    if logits.shape != other.shape:
        raise ValueError(f"shapes differ: logits {tuple(logits.shape)} vs {tuple(other.shape)}")
