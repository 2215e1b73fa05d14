"""The classifier: a timm backbone's feature map pooled by a head built on a 1x1 convolution, global
average (:class:`AvgHead`) or probabilistic-CAM (:class:`PcamHead`), so both give a per-position logit map."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _ConvHead(nn.Module):
    """What both heads share: dropout and a 1x1 convolution ``fc`` from features to one logit per class."""

    def __init__(self, num_features: int, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Conv2d(num_features, num_classes, kernel_size=1)

    def logit_maps(self, features: torch.Tensor) -> torch.Tensor:
        """Per-position logits ``s`` ``[B, C, h, w]`` (a class activation map; ``σ(s)`` is the heatmap)."""
        return self.fc(features)


class AvgHead(_ConvHead):
    """Global average pooling, dropout, then a linear layer written as a 1x1 convolution.

    Averaging is linear, so ``forward(x)`` equals the spatial mean of ``logit_maps(x)`` (without
    dropout): the logit map is the classic CAM (Zhou et al. 2016).
    """

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C]`` from features ``[B, F, h, w]``."""
        pooled = self.drop(features.mean(dim=(2, 3), keepdim=True))
        return self.fc(pooled).flatten(1)


class PcamHead(_ConvHead):
    """Probabilistic-CAM pooling (Ye et al. 2020; jfhealthcare/Chexpert), one pooling per class.

    For class c a 1x1 convolution gives the logit map ``s_c = w_c·x + b_c``; the attention over
    positions is ``α_c = σ(s_c) / Σ σ(s_c)``; the pooled feature is ``z_c = Σ α_c·x``; the logit is
    the same convolution applied to it, ``w_c·z_c + b_c``. Because ``Σ α_c = 1``, without dropout
    the logit equals ``Σ α_c·s_c``: an attention-weighted mean of the logit map, where ``σ(s_c)``
    (the heatmap) decides which positions count.
    """

    def attention(self, features: torch.Tensor) -> torch.Tensor:
        """``α = σ(s)/Σσ(s)`` over positions, ``[B, C, h, w]``.

        Computed as a softmax of ``log σ(s)``, which is the same quantity but cannot divide by an
        underflowed sum when every ``s`` is very negative.
        """
        s = self.logit_maps(features)
        return torch.softmax(F.logsigmoid(s).flatten(2), dim=-1).view_as(s)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C]`` from features ``[B, F, h, w]``."""
        alpha = self.attention(features)
        pooled = self.drop(torch.einsum("bchw,bfhw->bcf", alpha, features))  # z_c, [B, C, F]
        weight = self.fc.weight.flatten(1)  # [C, F]
        return (pooled * weight).sum(-1) + self.fc.bias


class Classifier(nn.Module):
    """A timm backbone (feature maps only) and a pooling head.

    Attributes
    ----------
    backbone
        The timm model built with ``num_classes=0, global_pool=""``; only ``forward_features``
        is used.
    head
        :class:`AvgHead` or :class:`PcamHead`.
    arch, num_classes, num_features, in_chans, head_type
        How the model was built.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, *, arch: str, in_chans: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.arch = arch
        self.in_chans = in_chans
        self.num_features = head.fc.in_channels
        self.num_classes = head.fc.out_channels
        self.head_type = "pcam" if isinstance(head, PcamHead) else "avg"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map ``[B, F, h, w]`` of images ``[B, in_chans, H, W]``."""
        return self.backbone.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C]``."""
        return self.head(self.features(x))


class PeerPair(nn.Module):
    """Two networks trained side by side (co-teaching, :mod:`paperkit.method.noisy_losses`).

    In training, ``forward`` returns both networks' logits side by side, ``[B, 2C]`` (the first's, then
    the second's), so one optimiser step trains both on the loss the method computes from them; in
    evaluation it returns the first network's ``[B, C]``, which is the model every table scores
    (Han et al. 2018 report one network of the pair)."""

    peers = 2

    def __init__(self, first: nn.Module, second: nn.Module) -> None:
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return torch.cat([self.first(x), self.second(x)], dim=1)
        return self.first(x)
