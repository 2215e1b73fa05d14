"""Label-noise methods as classification losses: what replaces L_cls (the BCE term) of eq. 1.

    L = L_method(y, f(x))  +  λ · KL(l ‖ f(x))  +  γ · Σ_k s_k · KL(f(x_k) ‖ f(x))

The MODL and KNNS terms stay as they are; ``TrainConfig.method`` picks L_method from a registry
and ``TrainConfig.method_param`` its one setting (``None`` = the method's default). Method
``"bce"`` is the paper's L_cls, :func:`paperkit.method.losses.bce_loss` called exactly as before, so
every existing run trains bit for bit as before and keeps its folder.

Every method has ONE signature, whatever it needs::

    loss_fn(logits [B, C] float32, targets [B, C] in [0, 1], mask [B, C] bool or None,
            soft [B, C] or None, rows [B] long, epoch int, param float | None, state dict) -> scalar

``mask`` drops elements whose label does not count (U-Ignore); ``soft`` are the references'
averaged probabilities l of eq. 2 (passed when the run has MODL or the method registered with
``needs_soft=True``, else ``None``); ``rows`` are the training images' row indices
(per-image state); ``epoch`` counts finished epochs (0 in the first); ``state`` is a dict the
trainer keeps for the run, starts as ``{"n_rows": N}`` (the number of image rows, so per-image
state can be allocated ``[N, ...]``), saves in every checkpoint and restores on resume (tensors
and plain values only). Under DDP each rank keeps its own ``state`` and updates only the rows
it trains on (not synchronised).

Outputs are C independent sigmoids, so every method written for a softmax over classes is
adapted per class, each class a two-outcome distribution ``(p, 1 − p)`` against ``(t, 1 − t)``;
each built-in's docstring states its adaptation. Reductions follow :func:`bce_loss`: the mean
over batch and classes (over the unmasked elements where the term reads the labels).

Built-ins: ``bce`` (default), ``kd``, ``gce``, ``bootstrap_soft``, ``elr``, ``coteaching``. A reader's method::

    register_method("sce", my_loss, default=1.0, grid=(0.5, 1.0), doc="symmetric cross entropy")
    TrainConfig(..., method="sce", method_param=0.5)  # or RunRequest(..., changes={"method": "sce"})

Co-teaching (Han et al. 2018) trains two networks that learn from each other's small-loss labels.
It stays a loss in the one loop: a method registered with ``peers=2`` makes the trainer build a
:class:`~paperkit.models.PeerPair`, whose training forward returns both networks' logits side by
side (``[B, 2C]``); one Adam step on the summed loss updates each network from its own term (no
parameter is shared, and Adam's update is per parameter, so this is two optimisers in one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from paperkit.method.losses import bce_loss, modl_loss

#: ``loss_fn(logits, targets, mask, soft, rows, epoch, param, state) -> scalar tensor``
LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None", "torch.Tensor | None", torch.Tensor, int,
                   "float | None", dict], torch.Tensor]

#: The method every run used before the registry existed: the paper's L_cls.
DEFAULT_METHOD = "bce"


@dataclass(frozen=True)
class Method:
    """A registered classification loss: its function, its one setting's default and grid, a line of doc."""

    name: str
    loss: LossFn
    default: float | None  # None: the method takes no parameter
    grid: tuple[float, ...]
    doc: str
    needs_soft: bool = False  # reads the soft labels l (the run must be given them)
    peers: int = 1  # networks trained side by side (2: co-teaching; its logits arrive as [B, 2C])

    def resolve(self, param: float | None) -> float | None:
        """``param``, or the default when ``None``; a parameter for a method that takes none is an error."""
        if param is None:
            return self.default
        if self.default is None:
            raise ValueError(f"method {self.name!r} takes no parameter, got method_param={param!r}")
        return float(param)


_REGISTRY: dict[str, Method] = {}


def register_method(name: str, loss_fn: LossFn, *, default: float | None = None, grid: tuple[float, ...] = (),
                    doc: str = "", needs_soft: bool = False, peers: int = 1, replace: bool = False) -> Method:
    """Register ``loss_fn`` as method ``name`` (see the module docstring for its signature).

    ``default``: the value of its one parameter when a run gives none (``None``: it takes none);
    ``grid``: the values a sweep tries; ``needs_soft``: it reads the soft labels; ``peers``: networks
    trained side by side (2: the logits are both networks', ``[B, 2C]``). Registering a
    name twice is an error unless ``replace`` (a notebook cell run again). A run's identity (its
    folder) holds the method's name and parameter, not its code: after changing what a registered
    loss computes, register it under a new name (or train with ``--force``), or finished runs are
    reused.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"a method needs a non-empty name, got {name!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"method {name!r} is already registered (replace=True to redefine it)")
    method = Method(name, loss_fn, None if default is None else float(default), tuple(float(g) for g in grid),
                    doc or (loss_fn.__doc__ or "").strip().split("\n")[0], needs_soft, int(peers))
    _REGISTRY[name] = method
    return method


def get_method(name: str) -> Method:
    """The method registered as ``name``; ``ValueError`` naming the registered ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def methods() -> list[str]:
    """The registered method names, in registration order."""
    return list(_REGISTRY)


# --- built-ins -----------------------------------------------------------------------------------


def bce(logits, targets, mask, soft, rows, epoch, param, state) -> torch.Tensor:
    """The paper's L_cls: ``−[t·log p + (1−t)·log(1−p)]``, mean over unmasked elements.

    :func:`paperkit.method.losses.bce_loss` itself, called as the trainer always called it (bit for bit).
    """
    return bce_loss(logits, targets, mask)


def kd(logits, targets, mask, soft, rows, epoch, param, state) -> torch.Tensor:
    """Knowledge distillation from the soft labels alone: ``KL(l ‖ p)`` per class, no BCE on the mined labels.

    ``l·log(l/p) + (1−l)·log((1−l)/(1−p))``, the Bernoulli KL of eq. 2 (:func:`modl_loss`,
    ``form="bernoulli"``), mean over batch and classes. Distilling the references' ensemble
    without the paper's combination with BCE: ``kd`` with λ = γ = 0 is "distil the ensemble",
    against which B+MODL measures what the mined labels add. Multi-label adaptation: the
    softmax KD of Hinton et al. becomes one Bernoulli KL per class (temperature 1: the references'
    probabilities are used as they are). The mask is not applied: it marks uncertain *labels*,
    and this loss reads none. ``param`` unused.
    """
    if soft is None:
        raise ValueError("method 'kd' needs soft labels (the run reads none)")
    return modl_loss(logits, soft, "bernoulli")


def gce(logits, targets, mask, soft, rows, epoch, param, state) -> torch.Tensor:
    """Generalised cross entropy (Zhang & Sabuncu 2018), per class on the sigmoid outputs.

    ``L_q = t·(1 − p^q)/q + (1 − t)·(1 − (1 − p)^q)/q``, mean over unmasked elements.

    The paper's ``(1 − p_y^q)/q`` on the softmax probability of the labelled class becomes, per
    class, the same expression on the probability of the labelled outcome: ``p_t = p`` for a
    positive, ``1 − p`` for a negative; a soft target ``t`` weighs the two outcomes. ``q → 0`` is
    BCE, ``q = 1`` the mean absolute error ``|t − p|`` (for hard ``t``), the noise-robust end.
    ``param`` = q ∈ (0, 1], default 0.7 (the paper's choice); the truncated variant is not included.
    """
    q = float(param)
    if not 0 < q <= 1:
        raise ValueError(f"gce needs 0 < q <= 1, got {q}")
    logits = _float32(logits)
    t = targets.to(logits.dtype)
    pos = -torch.expm1(q * F.logsigmoid(logits)) / q  # (1 − p^q)/q, p^q computed as exp(q·log p)
    neg = -torch.expm1(q * F.logsigmoid(-logits)) / q  # (1 − (1 − p)^q)/q
    return _masked_mean(t * pos + (1 - t) * neg, mask)


def bootstrap_soft(logits, targets, mask, soft, rows, epoch, param, state) -> torch.Tensor:
    """Soft bootstrapping (Reed et al. 2015), per class: BCE against ``β·t + (1 − β)·p``.

    ``−[(β·t + (1−β)·p)·log p + (1 − β·t − (1−β)·p)·log(1 − p)] = β·BCE(t, p) + (1−β)·H(p)``,
    ``H(p) = −p·log p − (1−p)·log(1−p)`` the binary entropy; mean over unmasked elements.

    ``p`` is **not** detached: Reed et al. write the loss as a function of the prediction in both
    places and read it as softmax regression with minimum-entropy regularisation, which is the
    form above. Detached, the gradient with respect to the logit would be ``p − β·t − (1−β)·p =
    β·(p − t)``: exactly β times BCE's, i.e. BCE with a smaller learning rate, no method at all.
    Multi-label adaptation: the softmax's target mixture and entropy become per-class Bernoulli
    ones. ``param`` = β ∈ [0, 1] (1 = BCE), default 0.95 (the paper's).
    """
    beta = float(param)
    if not 0 <= beta <= 1:
        raise ValueError(f"bootstrap_soft needs 0 <= beta <= 1, got {beta}")
    logits = _float32(logits)
    t = targets.to(logits.dtype)
    log_p, log_1mp = F.logsigmoid(logits), F.logsigmoid(-logits)
    cross = -(t * log_p + (1 - t) * log_1mp)
    entropy = -(log_p.exp() * log_p + log_1mp.exp() * log_1mp)
    return _masked_mean(beta * cross + (1 - beta) * entropy, mask)


#: ELR's temporal-ensembling momentum β (Liu et al. 2020, their CIFAR setting) and its probability clamp.
ELR_BETA = 0.7
ELR_CLAMP = 1e-4


def elr(logits, targets, mask, soft, rows, epoch, param, state) -> torch.Tensor:
    """Early-learning regularisation (Liu et al. 2020) with per-class two-outcome targets.

    ``L = BCE(t, p) + λ · mean_{i,c} log(1 − p·t⁺ − (1 − p)·t⁻)``

    ELR adds ``λ·log(1 − ⟨p, t̄⟩)`` to the cross entropy, ``t̄`` a running average of the model's
    own detached predictions for that image, ``t̄ ← β·t̄ + (1−β)·p``, updated each time the image
    is trained on (before the loss is taken), started at 0, with ``p`` clamped to
    ``[1e-4, 1 − 1e-4]`` (the authors' code). Minimising it pulls ``p`` towards what the model
    predicted early, before it memorised the noise. Multi-label adaptation: each class is the
    two-outcome distribution ``(p, 1 − p)``, so its target is a pair ``(t⁺, t⁻)`` averaged the same
    way, ``t⁺ ← β·t⁺ + (1−β)·p``, ``t⁻ ← β·t⁻ + (1−β)·(1 − p)``, and ``⟨p, t̄⟩ = p·t⁺ + (1−p)·t⁻``.
    Both start at 0 as the authors' targets do, so ``t⁺ + t⁻ = 1 − β^n`` after n visits; once
    that is ≈ 1, ``t⁻ = 1 − t⁺`` and the term is ``log(1 − t⁺·p − (1 − t⁺)(1 − p))``. (Keeping
    only ``t⁺`` with ``t⁻ = 1 − t⁺`` from the start would make the first visit's ``t⁺ ≈ 0.3·p``
    pull every class towards negative.) The term reads no label: it covers every element,
    the mask only the BCE. Averaged over batch and classes like the BCE, so λ keeps its role
    per element. ``state`` holds ``elr_pos``, ``elr_neg`` ``[N, C]``. ``param`` = λ ≥ 0, default 3.0.
    """
    lam = float(param)
    if lam < 0:
        raise ValueError(f"elr needs lambda >= 0, got {lam}")
    logits = _float32(logits)
    p = torch.sigmoid(logits).clamp(ELR_CLAMP, 1 - ELR_CLAMP)
    if "elr_pos" not in state:
        shape = (state["n_rows"], logits.shape[1])
        state["elr_pos"] = torch.zeros(shape, dtype=logits.dtype, device=logits.device)
        state["elr_neg"] = torch.zeros(shape, dtype=logits.dtype, device=logits.device)
    rows = rows.to(logits.device)
    p_ = p.detach().to(state["elr_pos"].dtype)
    pos = ELR_BETA * state["elr_pos"][rows] + (1 - ELR_BETA) * p_
    neg = ELR_BETA * state["elr_neg"][rows] + (1 - ELR_BETA) * (1 - p_)
    state["elr_pos"][rows], state["elr_neg"][rows] = pos, neg
    reg = torch.log(1 - (p * pos + (1 - p) * neg)).mean()
    return bce_loss(logits, targets, mask) + lam * reg


#: Co-teaching's ramp: the forget rate grows linearly to τ over this many epochs (Han et al.: 10 of 200
#: epochs; the kit's schedules are 6-10 epochs, so the first epoch trains on every label).
COTEACHING_RAMP_EPOCHS = 2


def coteaching(logits, targets, mask, soft, rows, epoch, param, state) -> torch.Tensor:
    """Co-teaching (Han et al. 2018): each of two networks learns from the labels the *other* finds easy.

    ``logits`` are ``[B, 2C]``: network a's, then network b's (:class:`~paperkit.models.PeerPair`).
    With ``ℓ_a, ℓ_b`` the elementwise BCE of each network and ``R = τ·min(epoch / 2, 1)`` the forget
    rate, b keeps the ``⌈(1 − R)·n⌉`` elements of smallest ``ℓ_b`` in each stratum, a keeps its own;
    ``L = mean(ℓ_a over b's kept) + mean(ℓ_b over a's kept)``.

    Multi-label adaptation: selection is per element (image, class), not per image: mined-label noise
    is per finding, and dropping a whole image for one doubtful finding would discard its other
    labels. The strata are each class's positive and negative labels in the batch: ranked within a
    class alone, the rare positives (high loss early on) would be dropped first and the networks would
    learn to say "no finding"; per stratum, τ of the positives and τ of the negatives are forgotten,
    as false positives and missed findings both occur. Masked (U-Ignore) elements are never kept.
    ``param`` = τ ∈ [0, 1), the forget rate (Han et al. set it to the noise rate), default 0.2.
    """
    tau = float(param)
    if not 0 <= tau < 1:
        raise ValueError(f"coteaching needs 0 <= tau < 1, got {tau}")
    n_classes = targets.shape[1]
    if logits.shape[1] != 2 * n_classes:
        raise ValueError(f"coteaching needs both networks' logits [B, {2 * n_classes}], got {tuple(logits.shape)}: "
                         "train it with method='coteaching' (the trainer then builds a PeerPair)")
    logits = _float32(logits)
    t = targets.to(logits.dtype)
    loss_a = F.binary_cross_entropy_with_logits(logits[:, :n_classes], t, reduction="none")
    loss_b = F.binary_cross_entropy_with_logits(logits[:, n_classes:], t, reduction="none")
    known = torch.ones_like(t, dtype=torch.bool) if mask is None else mask.bool()
    rate = tau * min(epoch / COTEACHING_RAMP_EPOCHS, 1.0)
    kept_by_a = _small_loss(loss_a.detach(), t >= 0.5, known, rate)
    kept_by_b = _small_loss(loss_b.detach(), t >= 0.5, known, rate)
    return _masked_mean(loss_a, kept_by_b) + _masked_mean(loss_b, kept_by_a)


def _small_loss(loss: torch.Tensor, positive: torch.Tensor, known: torch.Tensor, rate: float) -> torch.Tensor:
    """``[B, C]`` bool: in each class's positives and negatives, the ``⌈(1 − rate)·n⌉`` smallest losses."""
    kept = torch.zeros_like(known)
    for stratum in (positive & known, ~positive & known):
        ranked = torch.where(stratum, loss, torch.full_like(loss, float("inf")))
        order = ranked.argsort(dim=0, stable=True)
        rank = torch.empty_like(order)
        rank.scatter_(0, order, torch.arange(len(loss), device=loss.device).unsqueeze(1).expand_as(order))
        keep_n = torch.ceil((1 - rate) * stratum.sum(dim=0))  # per class
        kept |= stratum & (rank < keep_n)
    return kept


def _float32(logits: torch.Tensor) -> torch.Tensor:
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def _masked_mean(elementwise: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the unmasked elements, as :func:`bce_loss` reduces (0 when none is kept)."""
    if mask is None:
        return elementwise.mean()
    mask = mask.to(elementwise.dtype)
    return (elementwise * mask).sum() / mask.sum().clamp_min(1.0)


register_method("bce", bce, doc="binary cross entropy: the paper's L_cls (default)")
register_method("kd", kd, needs_soft=True, doc="distil the references' soft labels alone: Bernoulli KL(l || p)")
register_method("gce", gce, default=0.7, grid=(0.3, 0.5, 0.7, 0.9),
                doc="generalised cross entropy (Zhang & Sabuncu 2018) per class, q")
register_method("bootstrap_soft", bootstrap_soft, default=0.95, grid=(0.8, 0.9, 0.95),
                doc="soft bootstrapping (Reed et al. 2015) per class, beta")
register_method("elr", elr, default=3.0, grid=(1.0, 3.0, 7.0),
                doc="early-learning regularisation (Liu et al. 2020) per class, lambda")
register_method("coteaching", coteaching, default=0.2, grid=(0.1, 0.2, 0.4), peers=2,
                doc="co-teaching (Han et al. 2018): two networks, per-element small-loss exchange, tau")

__all__ = ["DEFAULT_METHOD", "ELR_BETA", "ELR_CLAMP", "LossFn", "Method", "bce", "bootstrap_soft", "elr", "gce",
           "get_method", "kd", "methods", "register_method"]
