"""The one training loop: references, the baseline B and every target variant (eq. 1).

    L = BCE(y, f(x))  +  λ · KL(l ‖ f(x))  +  γ · Σ_k s_k · KL(f(x_k) ‖ f(x))
        (L_cls)          (MODL, eq. 2)        (KNNS, eq. 3-4)

References and B use λ = γ = 0. Paper settings ("Implementation Details"): Adam, lr 1e-3, betas
0.9/0.999, batch 32, 10 epochs, lr ÷ 3 every 2 epochs, random 224 crops of 256 images.

KNNS has two modes (``TrainConfig.knns_mode``):

- ``faithful`` (the paper): each anchor's K neighbours are drawn from its pool (which may hold more
  than K), augmented and forwarded *with gradients* together with the anchors; ≈ (K+1)× the cost.
- ``efficient``: a memory bank (:class:`paperkit.bank.NeighbourBank`) holds the latest logits the
  model produced for every training image, warm-started before epoch 1; neighbour logits are read
  from it: no extra forward. A surrogate, not eq. 4: stale targets and no neighbour-side gradient
  (see :mod:`paperkit.bank`; ``metrics.csv`` logs the bank's ages per epoch).

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
import hashlib
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from paperkit.artifacts import FORCE_ENV, Step, read_manifest, write_text
from paperkit.checkpoint import global_rng_state, load_checkpoint, save_checkpoint, set_global_rng_state
from paperkit.config import Profile
from paperkit.data.augment import apply_crops, augment_batch, crop_params
from paperkit.losses import bce_loss, knns_loss, modl_loss
from paperkit.models import Classifier, create_model, pretrained_source
from paperkit.bank import NeighbourBank
from paperkit.runtime import all_gather_rows, gather_objects, pick_device, prefetch

VARIANTS = ("B", "B+MODL", "B+KNNS", "B+MODL+KNNS")
#: Offset between the batch-order seed and the neighbour-sampling seed (any fixed constant).
_KNNS_SEED_OFFSET = 7919


class ImageSource(Protocol):
    """What the trainer reads images from (``paperkit.data.cache.ImageCache`` or :class:`ArrayImages`).

    An optional ``fingerprint: str`` attribute identifies the content for the run manifest; without
    one, the class name and length stand in.
    """

    def __len__(self) -> int: ...

    def load(self, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, S, S]`` images at ``indices``."""
        ...


class ArrayImages:
    """An in-memory :class:`ImageSource` over a uint8 array ``[N, S, S]`` (tests, small data)."""

    def __init__(self, array: np.ndarray) -> None:
        if array.dtype != np.uint8 or array.ndim != 3:
            raise ValueError(f"expected uint8 [N, S, S], got {array.dtype} {array.shape}")
        self.array = array
        self.fingerprint = _hash_arrays(array)

    def __len__(self) -> int:
        return len(self.array)

    def load(self, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.array[np.asarray(indices)])


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
    kl_form: str = "bernoulli"  # bernoulli | as_printed, see paperkit.losses
    knns_mode: str = "faithful"  # faithful | efficient
    knns_k_reduction: str = "sum"  # sum (eq. 1) | mean over the K neighbours
    k: int = 9  # neighbours per anchor and step, drawn from the pool
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast, CUDA only
    sync_bn: bool = True  # SyncBatchNorm under multi-GPU DDP
    num_threads: int = 0  # torch CPU threads, 0 = default (does not change results)

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
            arch=arch, head=profile.head, pretrained=pretrained_source(profile.pretrained, arch), lr=profile.lr,
            betas=tuple(profile.betas), weight_decay=profile.weight_decay, batch_size=profile.batch_size,
            epochs=profile.epochs, lr_step_epochs=profile.lr_step_epochs, lr_gamma=profile.lr_gamma,
            crop=profile.crop, lambda_modl=profile.lambda_modl if "MODL" in variant else 0.0,
            gamma_knns=profile.gamma_knns if "KNNS" in variant else 0.0, kl_form=profile.kl_form,
            knns_mode=profile.knns_mode, knns_k_reduction=profile.knns_k_reduction, k=profile.k, seed=seed, device=profile.device, amp=profile.amp,
            num_threads=profile.num_threads,
        )
        return dataclasses.replace(base, **changes)


@dataclass
class TrainResult:
    """What :func:`fit` returns: the best-on-validation model (CPU, eval mode) and the history."""

    run_dir: Path
    model: Classifier
    history: pd.DataFrame  # one row per epoch; also run_dir/metrics.csv
    best_epoch: int
    best_auc: float
    skipped: bool  # True when the run was already finished and only loaded


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
        ``paperkit.losses.uncertain_targets``.
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
        Show a tqdm bar with the loss terms and img/s (rank 0 only).

    A ``run_dir`` whose config or data changed since its manifest or checkpoint is trained again
    from epoch 1 (its epochs belong to other inputs); an unchanged one resumes or is skipped.
    """
    run_dir = Path(run_dir)
    n_classes = targets.shape[1]
    names = list(class_names) if class_names is not None else [f"c{j}" for j in range(n_classes)]
    use_modl, use_knns = config.lambda_modl > 0, config.gamma_knns > 0
    if use_modl and soft_labels is None:
        raise ValueError("lambda_modl > 0 needs soft_labels")
    if use_knns:
        if pools is None or pools[0].shape != (len(train_index), max(config.k, pools[0].shape[1])):
            raise ValueError(f"gamma_knns > 0 needs pools [len(train_index), >= k={config.k}] over train_index")
    if config.knns_mode not in ("faithful", "efficient"):
        raise ValueError(f"knns_mode must be faithful or efficient, got {config.knns_mode!r}")
    if val_labels is None:
        val_labels = np.where(mask, targets, np.nan) if mask is not None else targets
    world, rank = (dist.get_world_size(), dist.get_rank()) if dist.is_initialized() else (1, 0)
    if config.batch_size % world or len(train_index) < config.batch_size:
        raise ValueError(f"batch_size {config.batch_size} must divide by {world} ranks "
                         f"and not exceed the {len(train_index)} training images")

    config_dict = dataclasses.asdict(config)
    config_dict.pop("num_threads")
    monitored = [a for name in sorted(monitor or {}) for a in (name, *monitor[name])]
    data_hash = _hash_arrays(train_index, val_index, targets, mask, soft_labels, val_labels,
                             *(pools or ()), getattr(images, "fingerprint", f"{type(images).__name__}:{len(images)}"),
                             *monitored)
    step = Step(run_dir, {"train": config_dict, "data": data_hash})
    if step.done:
        return _finished(run_dir, read_manifest(run_dir)["summary"])

    device = pick_device(config.device, rank)
    cuda = device.type == "cuda"
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(not cuda)  # CPU: exact resume; CUDA: speed (cudnn.benchmark)

    torch.manual_seed(config.seed)  # model initialisation depends on the seed only
    model = create_model(config.arch, n_classes, in_chans=1, head=config.head, pretrained=config.pretrained or None)
    model.to(device, memory_format=torch.channels_last if cuda else torch.contiguous_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_epochs, gamma=config.lr_gamma)
    data_gen = torch.Generator().manual_seed(config.seed)
    knns_gen = torch.Generator().manual_seed(config.seed + _KNNS_SEED_OFFSET)
    bank = NeighbourBank(len(images), n_classes, device) if use_knns and config.knns_mode == "efficient" else None
    history: list[dict[str, Any]] = []
    start_epoch, best_epoch, best_auc = 0, -1, -math.inf

    last_path = run_dir / "last.pt"
    ck = _resumable_checkpoint(last_path, step.hash)
    if ck is None and last_path.is_file() and rank == 0:
        # the run's config or data changed (or --force): its epochs are for other inputs, start over
        print(f"{run_dir.name}: inputs changed since the last checkpoint, training again from epoch 1")
        last_path.unlink()
    if ck is not None:
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        start_epoch, best_epoch, best_auc, history = ck["epoch"], ck["best_epoch"], ck["best_auc"], ck["history"]
        data_gen.set_state(ck["data_gen"])
        knns_gen.set_state(ck["knns_gen"])
        set_global_rng_state(ck["rng"][rank])
        if bank is not None:
            bank.load_state_dict(ck["bank"])
    elif rank == 0:
        step.start()
    if world > 1:
        dist.barrier()  # rank 0 has prepared run_dir before anyone reads or writes it

    net = model
    if world > 1:
        if cuda and config.sync_bn:
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if cuda else None)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and config.amp else nullcontext()
    if bank is not None and ck is None:
        bank.warm_start(model, images, train_index, config.crop, config.batch_size * 4, amp)
    t_train = torch.from_numpy(np.asarray(train_index, dtype=np.int64))
    t_targets = torch.as_tensor(targets, dtype=torch.float32)
    t_mask = torch.as_tensor(mask, dtype=torch.bool) if mask is not None else None
    t_soft = torch.as_tensor(soft_labels, dtype=torch.float32) if use_modl else None
    pool_index = pool_sim = None
    if use_knns:  # pools indexed by image row, holding image rows (a row outside train_index is never read)
        pool_index = torch.zeros(len(images), pools[0].shape[1], dtype=torch.int64)
        pool_index[t_train] = t_train[torch.as_tensor(pools[0], dtype=torch.int64)]
        pool_sim = torch.zeros(len(images), pools[0].shape[1])
        pool_sim[t_train] = torch.as_tensor(pools[1], dtype=torch.float32)
    size = images.load(t_train[:1]).shape[-1]
    b_global, steps = config.batch_size, len(train_index) // config.batch_size
    b_local = b_global // world
    mine = slice(rank * b_local, (rank + 1) * b_local)
    faithful = use_knns and config.knns_mode == "faithful"

    try:
        for epoch in range(start_epoch, config.epochs):
            # The whole epoch's randomness is drawn up front, in a fixed order, from the two generators:
            # batch order and anchor crops (data_gen), neighbour choice and neighbour crops (knns_gen).
            perm = torch.randperm(len(train_index), generator=data_gen)[: steps * b_global].view(steps, b_global)
            crops = [crop_params(b_global, size, config.crop, True, data_gen) for _ in range(steps)]
            choice = (torch.rand(steps, b_global, pool_index.shape[1], generator=knns_gen).argsort(-1)[..., : config.k]
                      if use_knns else None)
            nb_crops = ([crop_params(b_global * config.k, size, config.crop, True, knns_gen) for _ in range(steps)]
                        if faithful else None)

            def batches() -> Iterator[tuple[torch.Tensor, ...]]:
                """(rows, uint8 images[, neighbour rows, neighbour images]) of this rank, step by step."""
                for s in range(steps):
                    rows = t_train[perm[s, mine]]
                    nb = pool_index[rows].gather(1, choice[s, mine]) if use_knns else None
                    load = rows if not faithful else torch.cat([rows, nb.flatten()])
                    x = images.load(load)
                    yield rows, nb, (x.pin_memory() if cuda else x)

            model.train()
            t0, cpu0, sums, bar = time.perf_counter(), time.process_time(), torch.zeros(4, device=device), None
            if progress and rank == 0:
                bar = tqdm(total=steps, desc=f"{config.arch} epoch {epoch + 1}/{config.epochs}", leave=False)
            for s, (rows, nb, x) in enumerate(prefetch(batches())):
                x = x.to(device, non_blocking=True)
                top, left, flip = (t[mine] for t in crops[s])
                if faithful:
                    nb_mine = slice(rank * b_local * config.k, (rank + 1) * b_local * config.k)
                    top, left, flip = (torch.cat([a, t[nb_mine]]) for a, t in zip((top, left, flip), nb_crops[s]))
                x = apply_crops(x, top, left, flip, config.crop)
                if cuda:
                    x = x.contiguous(memory_format=torch.channels_last)
                with amp:
                    out = net(x)
                logits = out[:b_local].float()  # losses in float32 even under bf16 autocast
                y, m = t_targets[rows].to(device), t_mask[rows].to(device) if t_mask is not None else None
                bce = bce_loss(logits, y, m)
                modl = modl_loss(logits, t_soft[rows].to(device), config.kl_form) if use_modl else bce.new_zeros(())
                knns = bce.new_zeros(())
                if use_knns:
                    sim = pool_sim[rows].gather(1, choice[s, mine]).to(device)
                    if faithful:
                        nb_logits = out[b_local:].float().view(b_local, config.k, n_classes)
                        knns = knns_loss(logits, nb_logits, sim, config.kl_form, k_reduction=config.knns_k_reduction)
                    else:
                        nb_logits, written = bank.read(nb.to(device), epoch + s / steps)
                        knns = knns_loss(logits, nb_logits, sim * written, config.kl_form, detach_neighbours=True,
                                         k_reduction=config.knns_k_reduction)
                loss = bce + config.lambda_modl * modl + config.gamma_knns * knns
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if bank is not None:
                    bank.write(t_train[perm[s]].to(device), all_gather_rows(logits.detach(), world), epoch + (s + 1) / steps)
                sums += torch.stack([loss.detach(), bce.detach(), modl.detach(), knns.detach()])
                if bar is not None:
                    bar.update()
                    if s % 10 == 0 or s == steps - 1:
                        mean = (sums / (s + 1)).tolist()
                        rate = (s + 1) * b_global / (time.perf_counter() - t0)
                        bar.set_postfix(loss=f"{mean[0]:.4f}", bce=f"{mean[1]:.4f}", modl=f"{mean[2]:.4f}",
                                        knns=f"{mean[3]:.4f}", img_s=f"{rate:.0f}")
            if bar is not None:
                bar.close()
            train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()

            aucs = _validate(model, images, val_index, val_labels, config.crop, b_global * 4, device, rank, world)
            mean_auc = _mean_auc(aucs)
            terms = (sums / steps).tolist()
            watched = {f"monitor_{name}": _mean_auc(_validate(model, images, rows, np.asarray(labels), config.crop,
                                                                b_global * 4, device, rank, world, row_labels=True))
                       for name, (rows, labels) in (monitor or {}).items()}
            history.append({"epoch": epoch + 1, "lr": lr, "loss": terms[0], "bce": terms[1], "modl": terms[2],
                            "knns": terms[3], "train_s": train_s, "train_cpu_s": train_cpu_s,
                            "img_per_s": steps * b_global / train_s, **(bank.epoch_stats() if bank else {}),
                            "val_auc": mean_auc, **{f"auc_{n}": a for n, a in zip(names, aucs)}, **watched})
            improved = best_epoch < 0 or mean_auc > best_auc
            if improved:
                best_epoch, best_auc = epoch + 1, mean_auc
            rng = gather_objects(global_rng_state(), world)
            if rank == 0:
                meta = {"config": config_dict, "num_classes": n_classes, "fingerprint": step.hash}
                if improved:
                    save_checkpoint(run_dir / "best.pt", {**meta, "epoch": epoch + 1, "model": model.state_dict(),
                                                          "val_auc": mean_auc})
                save_checkpoint(last_path, {
                    **meta, "epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "best_epoch": best_epoch, "best_auc": best_auc,
                    "history": history, "data_gen": data_gen.get_state(), "knns_gen": knns_gen.get_state(),
                    "rng": rng, "bank": bank.state_dict() if bank is not None else None,
                })
                _write_metrics(run_dir, history)  # for watching a run; rewritten below before the manifest
            if world > 1:
                dist.barrier()  # nobody starts the next epoch (or returns) before the files exist
        summary = {"best_epoch": best_epoch, "best_auc": best_auc, "epochs": config.epochs}
        if rank == 0:
            # from the checkpoint's history: a kill after the last epoch's last.pt and before its
            # metrics.csv resumes with no epoch left to run, and must not finish on an old metrics.csv
            _write_metrics(run_dir, history)
            step.finish(summary)
        if world > 1:
            dist.barrier()
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
    return _finished(run_dir, summary, skipped=False)


def predict(
    model: torch.nn.Module, images: ImageSource, indices: np.ndarray, crop: int, *,
    batch_size: int = 128, device: str | torch.device = "cpu",
) -> np.ndarray:
    """Probabilities ``[n, C]`` (float32) of ``images`` at ``indices``: centre crop, eval mode, no grad.

    The model is moved to ``device``; on CUDA inputs are channels_last under bf16 autocast.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    model.to(device).eval()
    index = np.asarray(indices, dtype=np.int64)
    out = []
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        for start in range(0, len(index), batch_size):
            x = augment_batch(images.load(index[start : start + batch_size]).to(device, non_blocking=True), crop, False)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(torch.sigmoid(model(x).float()).cpu())
    n_classes = getattr(model, "num_classes", 0)
    return torch.cat(out).numpy() if out else np.zeros((0, n_classes), dtype=np.float32)


def load_model(run_dir: str | Path, which: str = "best") -> Classifier:
    """The model saved in ``run_dir`` (``which`` = ``"best"`` on validation AUC, or ``"last"``), CPU, eval mode."""
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    ck = load_checkpoint(Path(run_dir) / f"{which}.pt")
    cfg = ck["config"]
    model = create_model(cfg["arch"], ck["num_classes"], in_chans=1, head=cfg["head"])
    model.load_state_dict(ck["model"])
    return model.eval()


# --- helpers ---------------------------------------------------------------------------------------


def _validate(model: torch.nn.Module, images: ImageSource, val_index: np.ndarray, labels: np.ndarray, crop: int,
              batch_size: int, device: torch.device, rank: int, world: int, row_labels: bool = False) -> np.ndarray:
    """Per-class AUC on ``val_index`` (``NaN`` for a class with one label value); each rank scores a shard.

    ``labels`` is indexed by image row, or holds one row per ``val_index`` entry when ``row_labels``."""
    shards = np.array_split(np.asarray(val_index, dtype=np.int64), world)
    probs = np.concatenate(gather_objects(predict(model, images, shards[rank], crop, batch_size=batch_size,
                                                   device=device), world))
    model.train()
    truth = labels if row_labels else labels[np.concatenate(shards)]
    aucs = np.full(truth.shape[1], np.nan)
    for j in range(truth.shape[1]):
        known = ~np.isnan(truth[:, j])
        if len(np.unique(truth[known, j])) == 2:
            aucs[j] = roc_auc_score(truth[known, j], probs[known, j])
    return aucs


def _mean_auc(aucs: np.ndarray) -> float:
    return float(np.nanmean(aucs)) if np.isfinite(aucs).any() else math.nan


def _write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """``run_dir/metrics.csv``, one row per epoch, written atomically (a kill never leaves half a file)."""
    write_text(run_dir / "metrics.csv", pd.DataFrame(history).to_csv(index=False))


def _resumable_checkpoint(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """``path`` loaded once if a run with ``fingerprint`` can resume from it; ``None`` when it is absent,
    belongs to other inputs, or was written before a ``--force`` run started. Every rank decides from the
    same file, so no rank resumes while another starts over."""
    try:
        written = path.stat().st_mtime
        ck = load_checkpoint(path)
    except FileNotFoundError:  # absent, or removed as stale by rank 0 meanwhile
        return None
    force_since = float(os.environ.get(FORCE_ENV, 0) or 0)
    return ck if ck["fingerprint"] == fingerprint and written >= force_since else None


def _finished(run_dir: Path, summary: dict[str, Any], skipped: bool = True) -> TrainResult:
    return TrainResult(run_dir=run_dir, model=load_model(run_dir, "best"),
                       history=pd.read_csv(run_dir / "metrics.csv"), best_epoch=summary["best_epoch"],
                       best_auc=summary["best_auc"], skipped=skipped)


def _hash_arrays(*items: Any) -> str:
    """Content hash of arrays (and strings, ``None``) for the run manifest."""
    h = hashlib.sha256()
    for item in items:
        if item is None or isinstance(item, str):
            h.update(json.dumps(item).encode())
        else:
            a = np.ascontiguousarray(item)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()[:16]
