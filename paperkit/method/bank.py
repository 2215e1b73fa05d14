"""The memory bank of efficient KNNS: the latest logits the target produced for every training image.

Faithful KNNS (eq. 4 as the paper trains it) forwards each anchor's K neighbours with gradients,
≈ (K+1)× the cost of a BCE step. The efficient mode reads the neighbours' logits from this bank
instead. What that changes, stated here because it is a surrogate, not eq. 4:

- **Stale targets.** An entry is written when its image was last an anchor (train mode, augmented
  crop, detached), so a read sees the model as it was some time ago. :meth:`NeighbourBank.read`
  returns each read's age in epochs; the trainer logs the epoch's mean and maximum age and the
  fraction of reads that hit a row never written (``bank_age_mean``, ``bank_age_max``,
  ``bank_unseen`` in ``metrics.csv``).
- **Warm start.** Without one, a neighbour not yet an anchor in this run has no entry: about half the
  reads of epoch 1 hit empty rows (similarity zeroed, no smoothing). :meth:`warm_start` fills every
  training row with one no-grad pass (train-mode BatchNorm statistics of the batch, centre crops,
  BatchNorm's running statistics left untouched) before epoch 1, so no read is unseen.
- **No neighbour-side gradient.** Eq. 4 differentiates through both ``f(x_i)`` and ``f(x_i^k)``; the
  bank is detached, so only the anchor moves towards its neighbours. A pair (i, k) with k also in
  i's pool still pulls both ways, once each as anchor.

Measured (cpu profile, NIH layout, seed 0, B+MODL+KNNS, 6 epochs, batch 32): a read's mean age is
0.33 epoch in epoch 1 and 0.58-0.59 epoch afterwards, the oldest read 2.8 epochs, and no read hits
an unwritten row (``bank_unseen`` 0 in every epoch); without the warm start, a simulation of the
same sizes had about half the reads of epoch 1 hit unwritten rows. Notebook 06 compares the
efficient and faithful modes' gains.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from paperkit.data.augment import augment_batch
from paperkit.runtime import memory_format


class NeighbourBank:
    """Detached logits ``[N, C]`` per image row, with the time (in epochs) each was written.

    Parameters
    ----------
    n_rows, n_classes
        Image rows and findings.
    device
        Where the bank lives (the model's device).
    """

    def __init__(self, n_rows: int, n_classes: int, device: torch.device) -> None:
        self.logits = torch.zeros(n_rows, n_classes, device=device)
        self.written = torch.full((n_rows,), -1.0, device=device)  # epoch time of the last write; -1 = never
        self._reads = torch.zeros(3, device=device)  # sum of ages, reads, unseen reads this epoch
        self._max_age = torch.zeros((), device=device)

    def write(self, rows: torch.Tensor, logits: torch.Tensor, now: float) -> None:
        """Store ``logits`` for ``rows`` at epoch time ``now`` (e.g. 2.5 = halfway through epoch 3)."""
        self.logits[rows] = logits.detach().float()
        self.written[rows] = now

    def read(self, rows: torch.Tensor, now: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits at ``rows`` (any shape) and a float mask that is 0 where a row was never written."""
        written = self.written[rows]
        seen = written >= 0
        age = (now - written).clamp_min(0) * seen
        self._reads += torch.stack(
            [age.sum(), torch.tensor(float(rows.numel()), device=age.device), (~seen).sum().float()]
        )
        self._max_age = torch.maximum(self._max_age, age.max() if age.numel() else self._max_age)
        return self.logits[rows], seen.float()

    def epoch_stats(self) -> dict[str, float]:
        """``bank_age_mean`` and ``bank_age_max`` (epochs) and ``bank_unseen`` (fraction of reads) since
        the last call; resets the counters."""
        total, n, unseen = self._reads.tolist()
        stats = {
            "bank_age_mean": total / max(n, 1),
            "bank_age_max": float(self._max_age),
            "bank_unseen": unseen / max(n, 1),
        }
        self._reads.zero_()
        self._max_age.zero_()
        return stats

    @torch.no_grad()
    def warm_start(
        self, model: torch.nn.Module, images: Any, rows: np.ndarray, crop: int, batch_size: int, amp: Any
    ) -> None:
        """Fill ``rows`` with the untrained model's logits at epoch time 0 (train-mode forward, centre
        crops); BatchNorm running statistics are restored afterwards, so training starts as without it."""
        buffers = {name: b.clone() for name, b in model.named_buffers()}
        model.train()
        device = self.logits.device
        index = torch.as_tensor(np.asarray(rows, dtype=np.int64))
        for start in range(0, len(index), batch_size):
            part = index[start : start + batch_size]
            x = augment_batch(images.load(part).to(device), crop, False).contiguous(memory_format=memory_format(device))
            with amp:
                self.write(part.to(device), model(x).float(), 0.0)
        for name, b in model.named_buffers():
            b.copy_(buffers[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"logits": self.logits.cpu(), "written": self.written.cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.logits.copy_(state["logits"])
        self.written.copy_(state["written"])
