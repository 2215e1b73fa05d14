"""What a training run learns from and keeps besides its loop: inputs, model and optimiser, resume, end of epoch.

:func:`paperkit.training.loop.fit` reads as eq. 1 because the bookkeeping lives here:

- :class:`RunData`: the run's inputs as tensors indexed by image row, checked once, with the
  content hash that names them in the run's manifest;
- :class:`RunState`: the model, optimiser, scheduler, the two generators (batch order and crops;
  neighbour sampling), the KNNS memory bank, the L_cls method's state and the history.
  :meth:`RunState.start` builds them and resumes from ``last.pt`` like DINO's
  ``restart_from_checkpoint`` (a checkpoint of other inputs is discarded); :meth:`RunState.end_epoch`
  validates, records and checkpoints; :meth:`RunState.finish` writes the manifest that marks the run done.

Rank, device, precision, determinism and the checkpoint files are the machinery of
:mod:`paperkit.training.context`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
import torch

from paperkit.artifacts import Step, write_text
from paperkit.evaluation.metrics import class_aucs
from paperkit.method.bank import NeighbourBank
from paperkit.method.noisy_losses import DEFAULT_METHOD, get_method
from paperkit.models import Classifier, PeerPair, create_model
from paperkit.runtime import gather_objects, memory_format
from paperkit.training.checkpoint import global_rng_state, set_global_rng_state
from paperkit.training.context import RunContext

#: Offset between the batch-order seed and the neighbour-sampling seed (any fixed constant).
KNNS_SEED_OFFSET = 7919


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
        self.fingerprint = hash_arrays(array)

    def __len__(self) -> int:
        return len(self.array)

    def load(self, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.array[np.asarray(indices)])


@dataclass(frozen=True)
class RunData:
    """A run's inputs: image rows, targets, soft labels and pools as tensors indexed by image row."""

    images: ImageSource
    train: torch.Tensor  # int64 rows trained on
    val_index: np.ndarray  # rows that choose the best epoch
    targets: torch.Tensor  # [N, C] BCE targets
    mask: torch.Tensor | None  # [N, C] which targets count
    soft: torch.Tensor | None  # [N, C] soft labels l (eq. 2)
    pool_index: torch.Tensor | None  # [N, P] neighbour rows of each training row (eq. 3)
    pool_sim: torch.Tensor | None  # [N, P] their similarities s_ik
    val_labels: np.ndarray  # [N, C] validation truth, NaN = unknown
    names: list[str]  # class names of the history's AUC columns
    monitor: Mapping[str, tuple[np.ndarray, np.ndarray]]  # teaching curves: name -> (rows, labels)
    hash: str  # content hash of everything above

    @property
    def n_classes(self) -> int:
        return self.targets.shape[1]

    @classmethod
    def build(cls, images: ImageSource, train_index: np.ndarray, val_index: np.ndarray, targets: np.ndarray,
              mask: np.ndarray | None, soft_labels: np.ndarray | None, pools: tuple[np.ndarray, np.ndarray] | None,
              val_labels: np.ndarray | None, class_names: Sequence[str] | None,
              monitor: Mapping[str, tuple[np.ndarray, np.ndarray]] | None) -> "RunData":
        """Tensors of the arrays :func:`paperkit.training.loop.fit` documents; pools are re-indexed by image row."""
        if val_labels is None:
            val_labels = np.where(mask, targets, np.nan) if mask is not None else targets
        monitor = dict(monitor or {})
        watched = [a for name in sorted(monitor) for a in (name, *monitor[name])]
        digest = hash_arrays(train_index, val_index, targets, mask, soft_labels, val_labels, *(pools or ()),
                             getattr(images, "fingerprint", f"{type(images).__name__}:{len(images)}"), *watched)
        train = torch.from_numpy(np.asarray(train_index, dtype=np.int64))
        pool_index = pool_sim = None
        if pools is not None and (pools[0].shape[0] != len(train) or pools[0].shape != pools[1].shape):
            raise ValueError(f"pools must be [len(train_index)={len(train)}, P] index and similarity arrays, "
                             f"got {pools[0].shape} and {pools[1].shape}")
        if pools is not None:  # row i of a pool is image train_index[i]; its entries are positions in train_index
            pool_index = torch.zeros(len(images), pools[0].shape[1], dtype=torch.int64)
            pool_index[train] = train[torch.as_tensor(pools[0], dtype=torch.int64)]
            pool_sim = torch.zeros(len(images), pools[0].shape[1])
            pool_sim[train] = torch.as_tensor(pools[1], dtype=torch.float32)
        names = list(class_names) if class_names is not None else [f"c{j}" for j in range(targets.shape[1])]
        return cls(images, train, np.asarray(val_index), torch.as_tensor(targets, dtype=torch.float32),
                   torch.as_tensor(mask, dtype=torch.bool) if mask is not None else None,
                   torch.as_tensor(soft_labels, dtype=torch.float32) if soft_labels is not None else None,
                   pool_index, pool_sim, val_labels, names, monitor, digest)


@dataclass
class RunState:
    """What one run learns and the randomness it draws, on this rank; where and how it executes is its
    :class:`~paperkit.training.context.RunContext`. Built by :meth:`start`."""

    config: Any  # paperkit.training.loop.TrainConfig
    data: RunData
    ctx: RunContext  # rank, device, precision, determinism, folder and checkpoints
    model: Classifier | PeerPair
    net: torch.nn.Module  # the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    data_gen: torch.Generator  # batch order and anchor crops
    knns_gen: torch.Generator  # neighbour choice and neighbour crops
    bank: NeighbourBank | None
    epoch: int = 0  # epochs done
    best_epoch: int = -1
    best_auc: float = -math.inf
    history: list[dict[str, Any]] = field(default_factory=list)
    method_state: dict[str, Any] = field(default_factory=dict)  # the L_cls method's own (method.noisy_losses)

    @classmethod
    def start(cls, config: Any, data: RunData, step: Step) -> "RunState":
        """Build model, optimiser, scheduler, generators and bank; resume from ``last.pt`` when it
        belongs to these inputs (else train from epoch 1)."""
        ctx = RunContext.open(config, step)
        torch.manual_seed(config.seed)  # model initialisation depends on the seed only
        model = create_model(config.arch, data.n_classes, in_chans=1, head=config.head,
                             pretrained=config.pretrained or None)
        if get_method(config.method).peers == 2:  # co-teaching: a second network, initialised after the first
            model = PeerPair(model, create_model(config.arch, data.n_classes, in_chans=1, head=config.head,
                                                 pretrained=config.pretrained or None))
        model.to(ctx.device, memory_format=memory_format(ctx.device))
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas,
                                     weight_decay=config.weight_decay)
        state = cls(config=config, data=data, ctx=ctx, model=model, net=model, optimizer=optimizer,
                    scheduler=torch.optim.lr_scheduler.StepLR(optimizer, config.lr_step_epochs, config.lr_gamma),
                    data_gen=torch.Generator().manual_seed(config.seed),
                    knns_gen=torch.Generator().manual_seed(config.seed + KNNS_SEED_OFFSET),
                    bank=(NeighbourBank(len(data.images), data.n_classes, ctx.device)
                          if config.gamma_knns > 0 and config.knns_mode == "efficient" else None),
                    method_state={"n_rows": len(data.images)})
        resumed = state.restart_from_checkpoint()
        ctx.barrier()  # rank 0 has prepared the run folder before anyone reads or writes it
        state.net = ctx.distribute(model, config.sync_bn)
        if state.bank is not None and not resumed:
            state.bank.warm_start(model, data.images, data.train.numpy(), config.crop, config.batch_size * 4, ctx.amp)
        return state

    def restart_from_checkpoint(self) -> bool:
        """Load every state from ``last.pt`` if it was written for these inputs; ``True`` when resumed."""
        ck = self.ctx.resume_checkpoint()
        if ck is None:
            return False
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.epoch, self.best_epoch, self.best_auc, self.history = (
            ck["epoch"], ck["best_epoch"], ck["best_auc"], ck["history"]
        )
        self.data_gen.set_state(ck["data_gen"])
        self.knns_gen.set_state(ck["knns_gen"])
        set_global_rng_state(ck["rng"][self.ctx.rank])
        if self.bank is not None:
            self.bank.load_state_dict(ck["bank"])
        self.method_state = {
            k: v.to(self.ctx.device) if torch.is_tensor(v) else v
            for k, v in (ck.get("method_state") or self.method_state).items()
        }
        return True

    def end_epoch(self, terms: torch.Tensor, train_s: float, train_cpu_s: float, images_seen: int) -> None:
        """Step the lr schedule, validate, append the epoch's row to the history, write best.pt / last.pt
        and metrics.csv (rank 0), and wait for every rank."""
        config, data = self.config, self.data
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        aucs = self.validate(data.val_index, data.val_labels)
        mean_auc = mean_of(aucs)
        loss, bce, modl, knns = terms.tolist()
        watched = {
            f"monitor_{name}": mean_of(self.validate(rows, np.asarray(labels), row_labels=True))
            for name, (rows, labels) in data.monitor.items()
        }
        self.epoch += 1
        self.history.append({
            "epoch": self.epoch, "lr": lr, "loss": loss, "bce": bce, "modl": modl, "knns": knns,
            "train_s": train_s, "train_cpu_s": train_cpu_s, "img_per_s": images_seen / train_s,
            **(self.bank.epoch_stats() if self.bank else {}), "val_auc": mean_auc,
            **{f"auc_{n}": float(a) for n, a in zip(data.names, aucs)}, **watched,
        })
        improved = self.best_epoch < 0 or mean_auc > self.best_auc
        if improved:
            self.best_epoch, self.best_auc = self.epoch, mean_auc
        rng = gather_objects(global_rng_state(), self.ctx.world)
        if self.ctx.rank == 0:
            meta = {"config": run_config(config), "num_classes": data.n_classes, "fingerprint": self.ctx.step.hash,
                    "epoch": self.epoch, "model": self.model.state_dict(), "peers": getattr(self.model, "peers", 1)}
            self.ctx.save_checkpoints(meta, {"val_auc": mean_auc} if improved else None, {
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "best_epoch": self.best_epoch, "best_auc": self.best_auc, "history": self.history,
                "data_gen": self.data_gen.get_state(), "knns_gen": self.knns_gen.get_state(), "rng": rng,
                "bank": self.bank.state_dict() if self.bank is not None else None, "method_state": self.method_state,
            })
            write_metrics(self.ctx.out_dir, self.history)  # for watching a run; rewritten by finish()
        self.ctx.barrier()  # nobody starts the next epoch (or returns) before the files exist

    def finish(self) -> dict[str, Any]:
        """Write metrics.csv from the checkpoint's history and the manifest that marks the run done.

        From the history, not the last epoch's file: a kill after the last epoch's last.pt and before
        its metrics.csv resumes with no epoch left to run and must not finish on an old metrics.csv."""
        summary = {"best_epoch": self.best_epoch, "best_auc": self.best_auc, "epochs": self.config.epochs}
        if self.ctx.rank == 0:
            write_metrics(self.ctx.out_dir, self.history)
            self.ctx.step.finish(summary)
        self.ctx.barrier()
        return summary

    def validate(self, index: np.ndarray, labels: np.ndarray, row_labels: bool = False) -> np.ndarray:
        """Per-class AUC on ``index`` (``NaN`` for a class with one label value); each rank scores a shard.

        ``labels`` is indexed by image row, or holds one row per ``index`` entry when ``row_labels``."""
        rows, probs = self.ctx.predict_shards(self.model, self.data.images, index, self.config.crop,
                                              self.config.batch_size * 4)
        self.model.train()
        return class_aucs(labels if row_labels else labels[rows], probs)


def run_config(config: Any) -> dict[str, Any]:
    """The config fields that name a run (thread count does not change results).

    The L_cls method appears only when it is not BCE, and its parameter only when it is not the
    method's default: every run from before the methods existed keeps its identity (and folder),
    and a method's default named or left out is one run.
    """
    out = dataclasses.asdict(config)
    out.pop("num_threads")
    method = out.pop("method", DEFAULT_METHOD)
    param = get_method(method).resolve(out.pop("method_param", None))
    if method != DEFAULT_METHOD:
        out["method"] = method
        if param != get_method(method).default:
            out["method_param"] = param
    return out


def mean_of(aucs: np.ndarray) -> float:
    return float(np.nanmean(aucs)) if np.isfinite(aucs).any() else math.nan


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """``run_dir/metrics.csv``, one row per epoch, written atomically (a kill never leaves half a file)."""
    write_text(run_dir / "metrics.csv", pd.DataFrame(history).to_csv(index=False))


def hash_arrays(*items: Any) -> str:
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
