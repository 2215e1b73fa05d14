"""The one training loop: references, the baseline B and every target variant (eq. 1).

    L = BCE(y, f(x))  +  λ · KL(l ‖ f(x))  +  γ · Σ_k s_k · KL(f(x_k) ‖ f(x))
        (L_cls)          (MODL, eq. 2)        (KNNS, eq. 3-4)

References and B use λ = γ = 0. Paper settings ("Implementation Details"): Adam, lr 1e-3, betas
0.9/0.999, batch 32, 10 epochs, lr ÷ 3 every 2 epochs, random 224 crops of 256 images.

L_cls is BCE unless ``TrainConfig.method`` names another classification loss registered in
:mod:`paperkit.method.noisy_losses` (label-noise methods: GCE, soft bootstrapping, ELR, distillation alone,
or a reader's own); MODL and KNNS are added to it unchanged, and method ``"bce"`` (the default)
trains bit for bit as before. The history's ``bce`` column is L_cls, whichever method computes it.

KNNS has two modes (``TrainConfig.knns_mode``):

- ``faithful`` (the paper): each anchor's K neighbours are drawn from its pool (which may hold more
  than K), augmented and forwarded *with gradients* together with the anchors; ≈ (K+1)× the cost.
- ``efficient``: a memory bank (:class:`paperkit.method.bank.NeighbourBank`) holds the latest logits the
  model produced for every training image, warm-started before epoch 1; neighbour logits are read
  from it: no extra forward. A surrogate, not eq. 4: stale targets and no neighbour-side gradient
  (see :mod:`paperkit.method.bank`; ``metrics.csv`` logs the bank's ages per epoch).

Eq. 1 sums the KNNS term over the K neighbours (``knns_k_reduction="sum"``, the default), so γ
weighs each neighbour like λ weighs the soft label; ``"mean"`` divides it by K.

Memorisation monitor (teaching only): ``fit(monitor=...)`` scores extra rows every epoch (e.g. the
training images against their mined labels, the test images against the clean labels) and logs
``monitor_<name>`` columns. They never select anything: the best epoch comes from ``val_index``.

Paired runs: batch order and anchor augmentation come from a generator seeded only by ``seed``;
neighbour sampling uses a second generator. B and every variant with the same seed therefore see
the same batches in the same order with the same crops. The last incomplete batch of an epoch is
dropped (a batch of one breaks BatchNorm, and DDP needs equal shards).

Scale-out: launched by ``torchrun``, each rank takes its shard of every global batch, gradients are
averaged by DistributedDataParallel, rank 0 writes the files. BatchNorm is synchronised across GPUs
(``sync_bn``) so a global batch behaves as on one GPU; on CPU (gloo) SyncBatchNorm does not exist
and each rank normalises over its own shard.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from paperkit import progress as live
from paperkit.artifacts import Step, read_manifest
from paperkit.config import Profile
from paperkit.data.augment import apply_crops, crop_params
from paperkit.method.losses import knns_loss, modl_loss
from paperkit.method.noisy_losses import DEFAULT_METHOD, get_method
from paperkit.models import Classifier, pretrained_source
from paperkit.runtime import all_gather_rows, memory_format, prefetch
from paperkit.training.inference import load_model, predict
from paperkit.training.state import ArrayImages, ImageSource, RunData, RunState, run_config

VARIANTS = ("B", "B+MODL", "B+KNNS", "B+MODL+KNNS")
__all__ = ["ArrayImages", "ImageSource", "TrainConfig", "TrainResult", "VARIANTS", "fit", "load_model", "predict"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (the run directory's manifest hashes it)."""

    arch: str
    head: str = "pcam"
    pretrained: str = ""  # "" = from scratch, "imagenet" = timm's weights, else a local state-dict file
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    batch_size: int = 32  # global batch, split over DDP ranks
    epochs: int = 10
    lr_step_epochs: int = 2
    lr_gamma: float = 1.0 / 3.0
    crop: int = 224
    lambda_modl: float = 0.0  # λ of eq. 1 (paper 0.1 for the target)
    gamma_knns: float = 0.0  # γ of eq. 1 (paper 0.1 for the target)
    kl_form: str = "bernoulli"  # bernoulli | as_printed, see paperkit.method.losses
    knns_mode: str = "faithful"  # faithful | efficient
    knns_k_reduction: str = "sum"  # sum (eq. 1) | mean over the K neighbours
    k: int = 9  # neighbours per anchor and step, drawn from the pool
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast, CUDA only
    sync_bn: bool = True  # SyncBatchNorm under multi-GPU DDP
    num_threads: int = 0  # torch CPU threads, 0 = default (does not change results)
    method: str = DEFAULT_METHOD  # L_cls, a name registered in paperkit.method.noisy_losses ("bce": the paper's)
    method_param: float | None = None  # the method's one setting, None = its default

    @classmethod
    def from_profile(cls, profile: Profile, arch: str, seed: int, variant: str = "B", **changes: Any) -> "TrainConfig":
        """The profile's settings for one run.

        ``variant`` switches the method terms on with the profile's weights: ``"B"`` (references and
        the baseline: BCE only), ``"B+MODL"``, ``"B+KNNS"``, ``"B+MODL+KNNS"``. ``changes`` override
        single fields last.
        """
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        base = cls(
            arch=arch,
            head=profile.head,
            pretrained=pretrained_source(profile.pretrained, arch),
            lr=profile.lr,
            betas=tuple(profile.betas),
            weight_decay=profile.weight_decay,
            batch_size=profile.batch_size,
            epochs=profile.epochs,
            lr_step_epochs=profile.lr_step_epochs,
            lr_gamma=profile.lr_gamma,
            crop=profile.crop,
            lambda_modl=profile.lambda_modl if "MODL" in variant else 0.0,
            gamma_knns=profile.gamma_knns if "KNNS" in variant else 0.0,
            kl_form=profile.kl_form,
            knns_mode=profile.knns_mode,
            knns_k_reduction=profile.knns_k_reduction,
            k=profile.k,
            seed=seed,
            device=profile.device,
            amp=profile.amp,
            num_threads=profile.num_threads,
        )
        return dataclasses.replace(base, **changes)


@dataclass
class TrainResult:
    """What :func:`fit` returns: the history and, once asked for, the best-on-validation model."""

    run_dir: Path
    history: pd.DataFrame  # one row per epoch; also run_dir/metrics.csv
    best_epoch: int
    best_auc: float
    skipped: bool  # True when the run was already finished and only loaded

    @functools.cached_property
    def model(self) -> Classifier:
        """The best-on-validation model (CPU, eval mode), read from ``best.pt`` when first asked for: a
        rerun whose predictions are stored reads none (~0.06 s each for the cpu profile's networks)."""
        return load_model(self.run_dir, "best")


def fit(
    config: TrainConfig,
    images: ImageSource,
    train_index: np.ndarray,
    val_index: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None,
    run_dir: str | Path,
    *,
    soft_labels: np.ndarray | None = None,
    pools: tuple[np.ndarray, np.ndarray] | None = None,
    val_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    monitor: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train one model; resume from ``run_dir/last.pt``; skip if ``run_dir`` already finished.

    Parameters
    ----------
    config
        The run's settings.
    images
        Image rows ``0..N-1``; every array below is indexed by the same rows.
    train_index, val_index
        Rows used for training and for choosing the best epoch (mean validation AUC).
    targets, mask
        ``[N, C]`` BCE targets and ``bool`` mask of the elements that count (``None`` = all), from
        ``paperkit.method.losses.uncertain_targets``.
    soft_labels
        ``[N, C]`` averaged reference probabilities l (eq. 2); required when λ > 0.
    pools
        ``(index [n_train, P] int64, similarity [n_train, P])`` as returned by
        ``neighbour_pools(soft_labels[train_index], P, sigma)``: row i is the pool of image
        ``train_index[i]`` and indices are positions in ``train_index``; required when γ > 0 (P ≥ K).
        The paper stores K neighbours per anchor; a pool larger than K gives each step a fresh
        sample of K of them.
    val_labels
        ``[N, C]`` labels to score validation AUC against (``NaN`` = unknown); default ``targets``
        with masked elements unknown.
    class_names
        Names for the per-class AUC columns of the history (default ``c0, c1, ...``).
    monitor
        ``{name: (rows, labels [len(rows), C])}`` scored every epoch into a ``monitor_<name>`` column
        (mean AUC; teaching curves only, never used to choose the epoch).
    progress
        Show a bar with the loss terms and img/s (rank 0 only); under ``run_all.sh`` the run's
        epoch, img/s and ETA go to the runner's status line instead (:mod:`paperkit.progress`).

    A ``run_dir`` whose config or data changed since its manifest or checkpoint is trained again
    from epoch 1 (its epochs belong to other inputs); an unchanged one resumes or is skipped.
    """
    data = RunData.build(
        images, train_index, val_index, targets, mask, soft_labels, pools, val_labels, class_names, monitor
    )
    return fit_run(config, data, run_dir, progress=progress)


def run_step(config: TrainConfig, data: RunData, run_dir: str | Path) -> Step:
    """A run's resumable step: finished when its manifest matches this config and these inputs."""
    return Step(Path(run_dir), {"train": run_config(config), "data": data.hash})


def fit_run(config: TrainConfig, data: RunData, run_dir: str | Path, *, progress: bool = True) -> TrainResult:
    """:func:`fit` on inputs already gathered in a :class:`~paperkit.training.state.RunData`."""
    _check_inputs(config, data)
    step = run_step(config, data, run_dir)
    if step.done:
        return _finished(step.out_dir, read_manifest(step.out_dir)["summary"])
    state = RunState.start(config, data, step)  # model, optimiser, generators, bank; resumed if possible
    try:
        while state.epoch < config.epochs:
            plan = EpochPlan.draw(state)  # the epoch's batch order, crops and neighbours, drawn up front
            state.model.train()
            t0, cpu0, sums = time.perf_counter(), time.process_time(), torch.zeros(4, device=state.ctx.device)
            bar = _epoch_tracker(state, plan, Path(run_dir), progress)
            for s, batch in enumerate(prefetch(epoch_batches(state, plan))):
                sums += training_step(state, plan, s, *batch)  # eq. 1: L_cls + λ·MODL + γ·KNNS
                _advance(bar, sums, s, plan)
            if bar is not None:
                bar.close()
            state.end_epoch(
                sums / plan.steps, time.perf_counter() - t0, time.process_time() - cpu0, plan.steps * config.batch_size
            )  # validation, checkpoint, metrics.csv
        summary = state.finish()
    finally:
        state.ctx.close()
        if state.ctx.rank == 0:
            live.finish_task()
    if progress and state.ctx.rank == 0:  # what stays in a notebook once the bar is gone
        print(
            f"trained {_label(Path(run_dir))}: {config.epochs} epochs, best epoch {summary['best_epoch']} "
            f"(validation AUC {summary['best_auc']:.3f})"
        )
    return _finished(step.out_dir, summary, skipped=False)


def training_step(
    state: RunState,
    plan: "EpochPlan",
    s: int,
    rows: torch.Tensor,
    neighbours: torch.Tensor | None,
    images: torch.Tensor,
) -> torch.Tensor:
    """One optimiser step on eq. 1 for this rank's share of batch ``s``; returns the detached
    ``[loss, L_cls, L_distri, Σ_k L_neigh]`` (the last two unweighted; L_cls is ``config.method``'s loss)."""
    config, data, device = state.config, state.data, state.ctx.device
    x = augment(state, plan, s, images.to(device, non_blocking=True))
    with state.ctx.amp:
        out = state.net(x)
    logits = out[: len(rows)].float()  # the anchors; losses in float32 even under bf16 autocast
    mask = data.mask[rows].to(device) if data.mask is not None else None
    method = get_method(config.method)  # L_cls: BCE, or a label-noise method (paperkit.method.noisy_losses)
    reads_soft = config.lambda_modl > 0 or method.needs_soft
    soft = data.soft[rows].to(device) if reads_soft and data.soft is not None else None
    cls = method.loss(
        logits,
        data.targets[rows].to(device),
        mask,
        soft,
        rows,
        plan.epoch,
        method.resolve(config.method_param),
        state.method_state,
    )
    modl = knns = cls.new_zeros(())
    if config.lambda_modl > 0:  # L_distri (eq. 2): KL(l_i ‖ f(x_i))
        modl = modl_loss(logits, soft, config.kl_form)
    if config.gamma_knns > 0:  # Σ_k s_ik · KL(f(x_i^k) ‖ f(x_i)) (eqs. 3-4)
        nb_logits, similarity, detached = neighbour_logits(state, plan, s, rows, neighbours, out[len(rows) :])
        knns = knns_loss(
            logits,
            nb_logits,
            similarity,
            config.kl_form,
            detach_neighbours=detached,
            k_reduction=config.knns_k_reduction,
        )
    loss = cls + config.lambda_modl * modl + config.gamma_knns * knns  # eq. 1
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    if state.bank is not None:  # this step's anchors become the neighbours' stored predictions
        state.bank.write(
            global_rows(state, plan, s).to(device),
            all_gather_rows(logits.detach(), state.ctx.world),
            plan.epoch + (s + 1) / plan.steps,
        )
    return torch.stack([loss, cls, modl, knns]).detach()


@dataclass
class EpochPlan:
    """One epoch's randomness, drawn up front in a fixed order from the run's two generators: batch
    order and anchor crops (``data_gen``; the same for B and every variant with the same seed),
    neighbour choice and neighbour crops (``knns_gen``). The last incomplete batch is dropped (a batch
    of one breaks BatchNorm, and DDP needs equal shards). It holds the draws only; the functions
    below read them with the run's state."""

    epoch: int
    steps: int
    perm: torch.Tensor  # [steps, global batch] positions in the training rows
    crops: list[tuple[torch.Tensor, ...]]  # per step: (top, left, flip) of the global batch's anchors
    choice: torch.Tensor | None  # [steps, global batch, K] which pool entries are the neighbours
    nb_crops: list[tuple[torch.Tensor, ...]] | None  # faithful KNNS: crops of the forwarded neighbours

    @classmethod
    def draw(cls, state: RunState) -> "EpochPlan":
        config, data = state.config, state.data
        size = data.images.load(data.train[:1]).shape[-1]
        batch, steps = config.batch_size, len(data.train) // config.batch_size
        perm = torch.randperm(len(data.train), generator=state.data_gen)[: steps * batch].view(steps, batch)
        crops = [crop_params(batch, size, config.crop, True, state.data_gen) for _ in range(steps)]
        choice = nb_crops = None
        if config.gamma_knns > 0:
            pool = data.pool_index.shape[1]
            choice = torch.rand(steps, batch, pool, generator=state.knns_gen).argsort(-1)[..., : config.k]
            if config.knns_mode == "faithful":
                nb_crops = [
                    crop_params(batch * config.k, size, config.crop, True, state.knns_gen) for _ in range(steps)
                ]
        return cls(state.epoch, steps, perm, crops, choice, nb_crops)


def _mine(state: RunState, per_anchor: int = 1) -> slice:
    """This rank's share of a global batch (``per_anchor`` entries per anchor)."""
    local = state.config.batch_size // state.ctx.world * per_anchor
    return slice(state.ctx.rank * local, (state.ctx.rank + 1) * local)


def global_rows(state: RunState, plan: EpochPlan, s: int) -> torch.Tensor:
    """Image rows of step ``s``'s whole batch (every rank's share)."""
    return state.data.train[plan.perm[s]]


def epoch_batches(state: RunState, plan: EpochPlan) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]:
    """(anchor rows, neighbour rows ``[b, K]`` or ``None``, uint8 images) of this rank, step by step;
    faithful KNNS loads the neighbours' images after the anchors'."""
    data = state.data
    for s in range(plan.steps):
        rows = global_rows(state, plan, s)[_mine(state)]
        nb = data.pool_index[rows].gather(1, plan.choice[s, _mine(state)]) if plan.choice is not None else None
        x = data.images.load(rows if plan.nb_crops is None else torch.cat([rows, nb.flatten()]))
        yield rows, nb, (x.pin_memory() if state.ctx.cuda else x)


def augment(state: RunState, plan: EpochPlan, s: int, images: torch.Tensor) -> torch.Tensor:
    """Step ``s``'s random crops and flips of the anchors (and forwarded neighbours), normalised."""
    top, left, flip = (t[_mine(state)] for t in plan.crops[s])
    if plan.nb_crops is not None:
        k = state.config.k
        top, left, flip = (torch.cat([a, t[_mine(state, k)]]) for a, t in zip((top, left, flip), plan.nb_crops[s]))
    x = apply_crops(images, top, left, flip, state.config.crop)
    return x.contiguous(memory_format=memory_format(state.ctx.device))


def neighbour_logits(
    state: RunState, plan: EpochPlan, s: int, rows: torch.Tensor, neighbours: torch.Tensor, forwarded: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Neighbour logits ``[b, K, C]``, their similarities ``s_ik`` and whether they are detached:
    forwarded with the anchors (faithful) or read from the memory bank (efficient; a row never
    written has similarity 0)."""
    similarity = state.data.pool_sim[rows].gather(1, plan.choice[s, _mine(state)]).to(state.ctx.device)
    if plan.nb_crops is not None:
        return forwarded.float().view(len(rows), state.config.k, state.data.n_classes), similarity, False
    logits, written = state.bank.read(neighbours.to(state.ctx.device), plan.epoch + s / plan.steps)
    return logits, similarity * written, True


def _check_inputs(config: TrainConfig, data: RunData) -> None:
    """Raise ``ValueError`` on inputs the config cannot train with."""
    if config.lambda_modl > 0 and data.soft is None:
        raise ValueError("lambda_modl > 0 needs soft_labels")
    method = get_method(config.method)
    method.resolve(config.method_param)  # a parameter for a method that takes none
    if method.needs_soft and data.soft is None:
        raise ValueError(f"method {config.method!r} needs soft_labels")
    if method.peers > 1 and (config.lambda_modl > 0 or config.gamma_knns > 0):
        raise ValueError(f"method {config.method!r} trains {method.peers} networks on L_cls alone: "
                         "use it with lambda_modl = gamma_knns = 0 (variant B)")
    if config.gamma_knns > 0 and (data.pool_index is None or data.pool_index.shape[1] < config.k):
        raise ValueError(f"gamma_knns > 0 needs pools [len(train_index), >= k={config.k}] over train_index")
    if config.knns_mode not in ("faithful", "efficient"):
        raise ValueError(f"knns_mode must be faithful or efficient, got {config.knns_mode!r}")
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    if config.batch_size % world or len(data.train) < config.batch_size:
        raise ValueError(
            f"batch_size {config.batch_size} must divide by {world} ranks "
            f"and not exceed the {len(data.train)} training images"
        )


def _label(run_dir: Path) -> str:
    """``checkpoints/nih-seed20261202/B-densenet_tiny-s0-e3855a7f`` ->
    ``"B-densenet_tiny-s0-e3855a7f (nih-seed20261202)"``."""
    return f"{run_dir.name} ({run_dir.parent.name})"


def _epoch_tracker(state: RunState, plan: EpochPlan, run_dir: Path, show: bool) -> live.Tracker | None:
    """The epoch's bar (interactive) or status (under ``run_all.sh``); rank 0 only."""
    if state.ctx.rank != 0 or not (show or live.status_path()):
        return None
    epochs = state.config.epochs
    return live.Tracker(
        _label(run_dir),
        f"epoch {state.epoch + 1}/{epochs}",
        plan.steps,
        unit="img",
        per_unit=state.config.batch_size,
        after=(epochs - state.epoch - 1) * plan.steps,
        show=show,
        ends_task=False,
    )


def _advance(bar: live.Tracker | None, sums: torch.Tensor, s: int, plan: EpochPlan) -> None:
    """Count the step; every 10 steps put the mean loss terms on the bar (a GPU sync, so not every step)."""
    if bar is None:
        return
    if s % 10 == 0 or s == plan.steps - 1:
        loss, bce, modl, knns = (sums / (s + 1)).tolist()
        bar.update(
            loss=f"{loss:.4f}", bce=f"{bce:.4f}", modl=f"{modl:.4f}", knns=f"{knns:.4f}", img_s=f"{bar.rate():.0f}"
        )
    else:
        bar.update()


def _finished(run_dir: Path, summary: dict[str, Any], skipped: bool = True) -> TrainResult:
    return TrainResult(
        run_dir=run_dir,
        history=pd.read_csv(run_dir / "metrics.csv"),
        best_epoch=summary["best_epoch"],
        best_auc=summary["best_auc"],
        skipped=skipped,
    )
