"""How fast: throughput rates by architecture, and the README's H200 rates for a plan without a probe."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from paperkit.config import Profile

#: Measured on one NVIDIA H200 (README: torch 2.11, bf16 + channels_last, batch 64, 224 px): inference
#: images per second. Training is taken as a third of inference (forward + backward + Adam step).
H200_INFERENCE = {
    "densenet121": 5358.0,
    "densenet169": 4252.0,
    "densenet201": 3622.0,
    "inception_resnet_v2": 3055.0,
    "legacy_xception": 9956.0,
    "nasnetalarge": 1924.0,
}
H200_TRAIN_FRACTION = 1.0 / 3.0
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

    def faithful_factor(self, k: int) -> float | None:
        """Faithful KNNS step cost relative to BCE at ``k``: the measured ratio, scaled linearly in K
        between 1 (no neighbour) and the ratio at :attr:`faithful_k`."""
        if not self.faithful_k:
            return None
        return 1.0 + (self.faithful_ratio - 1.0) * k / self.faithful_k


def nominal_rates(cfg: Profile, archs: Sequence[str]) -> Rates | None:
    """The README's H200 rates scaled to the profile's crop (cost ∝ pixels), or ``None`` if an
    architecture was not measured there."""
    if any(a not in H200_INFERENCE for a in archs):
        return None
    scale = (H200_CROP / cfg.crop) ** 2
    infer = {a: H200_INFERENCE[a] * scale for a in archs}
    return Rates("one H200 (nominal)", f"README's measured H200 inference rates (bf16, {H200_CROP} px), training "
                 f"= 1/3 of inference, faithful KNNS {H200_FAITHFUL[1]}x BCE at K = {H200_FAITHFUL[0]}"
                 + (f", scaled by (224/{cfg.crop})² to this crop" if cfg.crop != H200_CROP else ""),
                 {a: r * H200_TRAIN_FRACTION for a, r in infer.items()}, infer, *H200_FAITHFUL)
