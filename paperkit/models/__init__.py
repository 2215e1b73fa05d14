"""Backbones from timm with a global-average-pooling or a PCAM head.

Every model is ``Classifier(backbone, head)``: the backbone turns an image into a feature map
``[B, F, h, w]``, the head turns the map into one logit per finding. Both heads are built on a
1x1 convolution, so a per-position logit map (a class activation map) comes for free; ``σ`` of it
is the heatmap.

The paper trains six ImageNet-pretrained references (DenseNet-121/169/201, Inception-ResNet-v2,
Xception, NASNetLarge) and a DenseNet-121 target. ``create_model(pretrained=...)`` starts from
timm's ImageNet weights (``"imagenet"``: timm downloads and caches them), from a local state dict
in timm's layout (a path; :mod:`paperkit.orchestration.weights` writes such files for offline machines), or from
scratch (``None``; the kit says so once). Both weight sources go through one loader, so a 3-channel
stem becomes a 1-channel one the same way (RGB summed). The small CPU architectures registered
here have no ImageNet weights.

Modules: :mod:`.archs` (which architectures, and the small ones registered with timm), :mod:`.heads`
(:class:`Classifier` and its two heads), :mod:`.pretrained` (ImageNet or local weights); this
module builds a model from them (:func:`create_model`) and re-exports their public names.
"""
from __future__ import annotations

import logging
import os

import timm
from timm.layers import NormMlpClassifierHead
from torch import nn

from paperkit.models.archs import MODEL_INFO, TINY_ARCHS, paper_reference_archs
from paperkit.models.heads import AvgHead, Classifier, PcamHead, PeerPair
from paperkit.models.pretrained import (
    has_imagenet_weights,
    imagenet_source,
    imagenet_state_dict,
    load_backbone_weights,
    load_state_into_backbone,
    pretrained_source,
)

log = logging.getLogger(__name__)

__all__ = ["HEADS", "IMAGENET", "MODEL_INFO", "TINY_ARCHS", "AvgHead", "Classifier", "PcamHead", "PeerPair",
           "count_parameters",
           "create_model", "has_imagenet_weights", "imagenet_source", "imagenet_state_dict", "load_backbone_weights",
           "load_state_into_backbone", "paper_reference_archs", "pretrained_source"]

HEADS = ("avg", "pcam")
#: ``create_model(pretrained=IMAGENET)`` starts from timm's ImageNet weights.
IMAGENET = "imagenet"


def create_model(
    arch: str,
    num_classes: int,
    *,
    in_chans: int = 1,
    head: str = "pcam",
    pretrained: str | os.PathLike | None = None,
    drop_rate: float = 0.0,
) -> Classifier:
    """Build a classifier: timm backbone ``arch`` plus an ``avg`` or ``pcam`` head.

    Parameters
    ----------
    arch
        timm model name, e.g. ``"densenet121"`` (see :data:`MODEL_INFO`).
    num_classes
        Number of findings C (one sigmoid output each).
    in_chans
        1 for radiographs as cached here; 3 to match an unchanged ImageNet stem.
    head
        ``"pcam"`` (the default, as in the CheXpert top solutions) or ``"avg"``.
    pretrained
        ``"imagenet"`` for timm's ImageNet weights (downloaded once into timm's cache), or the
        path of a local state dict in timm's layout (checked against a ``MANIFEST.json`` beside
        it, see :mod:`paperkit.orchestration.weights`). Either way a 3-channel stem is summed to
        ``in_chans=1``, classifier weights are skipped, and missing or unexpected keys are
        logged. ``None`` trains from scratch.
    drop_rate
        Dropout on the pooled features, before the final linear layer.

    Raises
    ------
    ValueError
        On an unknown ``head``, ``"imagenet"`` for an architecture without ImageNet weights, or a
        weights file that matches none of the backbone's keys (or its manifest's sha256).
    FileNotFoundError
        If the ``pretrained`` file does not exist.
    """
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    backbone = timm.create_model(arch, pretrained=False, num_classes=0, global_pool="", in_chans=in_chans)
    skipped = _drop_post_pool_layers(backbone)
    head_cls = PcamHead if head == "pcam" else AvgHead
    model = Classifier(
        backbone, head_cls(backbone.num_features, num_classes, drop_rate), arch=arch, in_chans=in_chans
    )
    if pretrained is None:
        _log_scratch_once()
    elif isinstance(pretrained, str) and pretrained == IMAGENET:
        source = f"timm's ImageNet weights for {arch} ({imagenet_source(arch)})"
        load_state_into_backbone(model, imagenet_state_dict(arch), source, skip_prefixes=skipped)
    else:
        load_backbone_weights(model, pretrained, skip_prefixes=skipped)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def _drop_post_pool_layers(backbone: nn.Module) -> tuple[str, ...]:
    """Remove layers timm applies *after* global pooling (MobileNetV3's and GhostNet's ``conv_head``,
    ConvNeXt's ``head.norm``).

    ``forward_features`` never calls them, and unused parameters make DDP fail. Returns the
    state-dict prefixes removed, so pretrained loading skips them.
    """
    removed = []
    head = getattr(backbone, "head", None)
    if isinstance(head, NormMlpClassifierHead) and not isinstance(head.norm, nn.Identity):
        head.norm = nn.Identity()  # ConvNeXt's (head_norm_first=False) LayerNorm after pooling
        removed.append("head.norm.")
    if getattr(backbone, "head_hidden_size", backbone.num_features) == backbone.num_features:
        return tuple(removed)
    for name in ("conv_head", "norm_head", "act2"):
        if isinstance(getattr(backbone, name, None), nn.Module):
            setattr(backbone, name, nn.Identity())
            removed.append(name + ".")
    backbone.head_hidden_size = backbone.num_features
    return tuple(removed)


_scratch_logged = False


def _log_scratch_once() -> None:
    """Say once per process that models start from random weights, and how to load pretrained ones."""
    global _scratch_logged
    if not _scratch_logged:
        log.warning(
            "no pretrained weights given: training from scratch (the profile's pretrained=imagenet or "
            "pretrained=/folder/of/<arch>.pth loads ImageNet weights)"
        )
        _scratch_logged = True
