"""How fast: throughput rates by architecture, and the README's H200 rates for a plan without a probe."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from paperkit.config import Profile

#: Measured on one NVIDIA H200 (README: torch 2.11, bf16 + channels_last, batch 64, 224 px): inference
#: images per second.
H200_INFERENCE = {
    "densenet121": 5358.0,
    "densenet169": 4252.0,
    "densenet201": 3622.0,
    "inception_resnet_v2": 3055.0,
    "legacy_xception": 9956.0,
    "nasnetalarge": 1924.0,
}
#: Training images/s on one H200 in the gpu profile's runs (2026-12-04, README: epochs 2-3 of each run, bf16,
#: 224 px crops, batch 32, BCE + Adam), about 1/13 of inference: batch 32 leaves the GPU mostly idle.
H200_TRAIN = {
    "densenet121": 420.0,
    "densenet169": 310.0,
    "densenet201": 220.0,
    "inception_resnet_v2": 200.0,
    "legacy_xception": 750.0,
    "nasnetalarge": 150.0,
}
#: Seconds the first epoch of an architecture in a fresh kernel took beyond a later one there (cuDNN's
#: benchmark-mode autotuning of every new shape, CUDA's lazy module loading), same runs.
H200_WARMUP = {
    "densenet121": 24.0,
    "densenet169": 12.0,
    "densenet201": 7.0,
    "inception_resnet_v2": 17.0,
    "legacy_xception": 29.0,
    "nasnetalarge": 67.0,
}
#: README, H200: a faithful KNNS epoch costs 2.70x a BCE epoch at K = 9 (DenseNet-121, 224 px, batch 32).
H200_FAITHFUL = (9, 2.70)
H200_CROP = 224


@dataclass(frozen=True)
class Rates:
    """Images per second by architecture, the faithful KNNS step cost, and where they come from."""

    device: str  # what the rates are for, e.g. "cuda (NVIDIA H200)", "cpu", "one H200 (nominal)"
    source: str  # measured probe, or the README's H200 numbers, or none
    train: dict[str, float] = field(default_factory=dict)  # BCE training images/s at the profile's crop and batch
    infer: dict[str, float] = field(default_factory=dict)  # inference images/s (validation, soft labels)
    faithful_k: int = 0  # the K at which faithful_ratio was measured
    faithful_ratio: float = 0.0  # faithful KNNS step time / BCE step time at faithful_k
    render: float | None = None  # benchmark images rendered per second (all workers)
    decode: float | None = None  # images decoded into the cache per second (all workers)
    warmup: dict[str, float] = field(default_factory=dict)  # seconds an architecture's first run in a kernel adds

    def faithful_factor(self, k: int) -> float | None:
        """Faithful KNNS step cost relative to BCE at ``k``: the measured ratio, scaled linearly in K
        between 1 (no neighbour) and the ratio at :attr:`faithful_k`."""
        if not self.faithful_k:
            return None
        return 1.0 + (self.faithful_ratio - 1.0) * k / self.faithful_k


def nominal_rates(cfg: Profile, archs: Sequence[str]) -> Rates | None:
    """The README's H200 rates scaled to the profile's crop (cost ∝ pixels), or ``None`` if an
    architecture was not measured there."""
    if any(a not in H200_INFERENCE or a not in H200_TRAIN for a in archs):
        return None
    scale = (H200_CROP / cfg.crop) ** 2
    return Rates("one H200 (nominal)", f"README's measured H200 rates (bf16, {H200_CROP} px): inference, training in "
                 f"the gpu profile's runs, each architecture's first-epoch warm-up per kernel, faithful KNNS "
                 f"{H200_FAITHFUL[1]}x BCE at K = {H200_FAITHFUL[0]}"
                 + (f", scaled by (224/{cfg.crop})² to this crop" if cfg.crop != H200_CROP else ""),
                 {a: H200_TRAIN[a] * scale for a in archs}, {a: H200_INFERENCE[a] * scale for a in archs},
                 *H200_FAITHFUL, warmup={a: H200_WARMUP[a] for a in archs})
