"""Backbones from timm with a global-average-pooling or a PCAM head.

Every model is ``Classifier(backbone, head)``: the backbone turns an image into a feature map
``[B, F, h, w]``, the head turns the map into one logit per finding. Both heads are built on a
1x1 convolution, so a per-position logit map (a class activation map) comes for free; ``σ`` of it
is the heatmap.

The paper trains six ImageNet-pretrained references (DenseNet-121/169/201, Inception-ResNet-v2,
Xception, NASNetLarge) and a DenseNet-121 target. ``create_model(pretrained=...)`` starts from
timm's ImageNet weights (``"imagenet"``: timm downloads and caches them), from a local state dict
in timm's layout (a path; :mod:`paperkit.weights` writes such files for offline machines), or from
scratch (``None``; the kit says so once). Both weight sources go through one loader, so a 3-channel
stem becomes a 1-channel one the same way (RGB summed). The small CPU architectures registered
here have no ImageNet weights.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from timm.layers import NormMlpClassifierHead
from timm.models import register_model
from torch import nn

from paperkit.config import CPU_REFERENCES, PAPER_REFERENCES
from paperkit.weights import verify_file

log = logging.getLogger(__name__)

HEADS = ("avg", "pcam")
#: ``create_model(pretrained=IMAGENET)`` starts from timm's ImageNet weights.
IMAGENET = "imagenet"

#: What each architecture is in the paper or in the CPU profiles. Parameter counts are for a
#: 1-channel backbone with a 14-class head (``count_parameters(create_model(arch, 14))``).
MODEL_INFO: dict[str, str] = {
    # --- the paper's six references (Pham et al. 2019's set); densenet121 is also the target ----
    "densenet121": "DenseNet-121 (Huang et al. 2017): paper reference and target; 7.0M params.",
    "densenet169": "DenseNet-169 (Huang et al. 2017): paper reference; 12.5M params.",
    "densenet201": "DenseNet-201 (Huang et al. 2017): paper reference; 18.1M params.",
    "inception_resnet_v2": "Inception-ResNet-v2 (Szegedy et al. 2017): paper reference; 54.3M params; valid-padded stem needs inputs of at least 75 px.",
    "legacy_xception": "Xception (Chollet 2017), timm's port of the original Keras weights: paper reference; 20.8M params.",
    "nasnetalarge": "NASNet-A Large (Zoph et al. 2018): paper reference; 84.8M params; needs ~331 px inputs to match its ImageNet training.",
    # --- tests and bench/bench_knns.py ---------------------------------------------------------
    "resnet10t": "ResNet-10-T (timm): residual family; the CPU reference and target before the *_tiny variants (19 img/s under load at 48 px); 4.9M params.",
    # --- small from-scratch families registered below for the CPU profiles (56 px crops). ----
    # ImageNet-sized networks downsample by 32 (a 2x2 map at 56 px, too coarse for PCAM heatmaps)
    # and train at 20-300 img/s on two cores; these train at ~900-2000 img/s and keep >= 3x3 maps.
    "densenet_tiny": "DenseNet (growth 16, blocks (4, 8)): the paper's target family shrunk to two dense blocks, final stride 8 (7x7 map at 56 px, for PCAM heatmaps); CPU target and reference; 0.19M params.",
    "densenet_tiny_deep": "DenseNet (growth 16, blocks (6, 12)): the DenseNet-169 analogue of densenet_tiny, deeper blocks; CPU reference; 0.33M params.",
    "densenet_tiny_wide": "DenseNet (growth 24, blocks (4, 8)): the DenseNet-201 analogue of densenet_tiny, wider layers; CPU reference; 0.42M params.",
    "resnet_tiny": "ResNet with one BasicBlock per stage (32-256 channels, deep stem, avg-down), last stage dilated (stride 16): residual family, CPU reference; 1.2M params.",
    "res2net_tiny": "Res2Net (Gao et al. 2019; one Bottle2neck per stage, scale 4, width 26, channels 16-128, deep stem, avg-down), stride 16: multi-scale branches inside residual blocks, the Inception-ResNet-v2 analogue; CPU reference; 0.50M params.",
    "efficientnet_small": "timm's test EfficientNet at channel multiplier 2 (MBConv + squeeze-excite), stride 16: a NAS-derived family (MnasNet search), the NASNet analogue; CPU reference; 0.39M params.",
    "efficientnet_tiny": "timm's test EfficientNet (MBConv + squeeze-excite), stride 16: smoke-profile reference; 0.10M params.",
    "byobnet_tiny": "timm's test ByobNet (edge/dark/basic/bottleneck blocks, grouped convs, SE), stride 16: CSP/GENet-style family, smoke-profile reference; 0.20M params.",
}


def paper_reference_archs() -> tuple[str, ...]:
    """timm names of the paper's six reference networks (its target is ``densenet121``)."""
    return PAPER_REFERENCES


def _variant(name: str, base: str, changes: dict[str, Any], kwargs: dict[str, Any]) -> nn.Module:
    """timm's ``base`` built with ``changes`` (the caller's ``kwargs`` win), renamed to ``name``.

    These variants have no ImageNet weights; ``pretrained=True`` is refused rather than silently
    loading ``base``'s. A local file can still be loaded with :func:`load_backbone_weights`.
    """
    if kwargs.pop("pretrained", False):
        raise ValueError(f"{name} has no published weights; pass a local file to paperkit's create_model instead")
    kwargs.pop("pretrained_cfg", None)
    kwargs.pop("pretrained_cfg_overlay", None)
    model = timm.create_model(base, pretrained=False, **{**changes, **kwargs})
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    cfg.update(architecture=name, tag=None, hf_hub_id=None, url="")
    model.pretrained_cfg = model.default_cfg = cfg
    return model


@register_model
def densenet_tiny(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DenseNet, growth rate 16, two dense blocks (4, 8 layers): stem /4 + one transition = stride 8."""
    return _variant("densenet_tiny", "densenet121", dict(growth_rate=16, block_config=(4, 8)), dict(kwargs, pretrained=pretrained))


@register_model
def densenet_tiny_deep(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DenseNet, growth rate 16, two dense blocks (6, 12 layers), stride 8: densenet_tiny made deeper."""
    return _variant("densenet_tiny_deep", "densenet121", dict(growth_rate=16, block_config=(6, 12)), dict(kwargs, pretrained=pretrained))


@register_model
def densenet_tiny_wide(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DenseNet, growth rate 24, two dense blocks (4, 8 layers), stride 8: densenet_tiny made wider."""
    return _variant("densenet_tiny_wide", "densenet121", dict(growth_rate=24, block_config=(4, 8)), dict(kwargs, pretrained=pretrained))


@register_model
def resnet_tiny(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """ResNet, one BasicBlock per stage, channels 32-64-128-256, deep 16-wide stem, stride 16."""
    from timm.models.resnet import BasicBlock

    changes = dict(block=BasicBlock, channels=(32, 64, 128, 256), output_stride=16)
    return _variant("resnet_tiny", "test_resnet", changes, dict(kwargs, pretrained=pretrained))


@register_model
def res2net_tiny(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Res2Net, one Bottle2neck (scale 4, base width 26) per stage, channels 16-128, deep stem, stride 16."""
    from timm.models.res2net import Bottle2neck

    changes = dict(block=Bottle2neck, layers=(1, 1, 1, 1), base_width=26, stem_width=16, stem_type="deep", avg_down=True,
                   channels=(16, 32, 64, 128), block_args=dict(scale=4), output_stride=16)
    return _variant("res2net_tiny", "test_resnet", changes, dict(kwargs, pretrained=pretrained))


@register_model
def efficientnet_small(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """timm's ``test_efficientnet`` (MBConv/SE) with twice the channels, stride 16."""
    return _variant("efficientnet_small", "test_efficientnet", dict(channel_multiplier=2.0, output_stride=16),
                    dict(kwargs, pretrained=pretrained))


@register_model
def efficientnet_tiny(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """timm's ``test_efficientnet`` (MBConv/SE) at stride 16."""
    return _variant("efficientnet_tiny", "test_efficientnet", dict(output_stride=16), dict(kwargs, pretrained=pretrained))


@register_model
def byobnet_tiny(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """timm's ``test_byobnet`` at stride 16."""
    return _variant("byobnet_tiny", "test_byobnet", dict(output_stride=16), dict(kwargs, pretrained=pretrained))


#: Small architectures registered with timm for the CPU profiles (see :data:`MODEL_INFO`).
TINY_ARCHS = ("densenet_tiny", "densenet_tiny_deep", "densenet_tiny_wide", "resnet_tiny", "res2net_tiny", "efficientnet_small",
              "efficientnet_tiny", "byobnet_tiny")


class AvgHead(nn.Module):
    """Global average pooling, dropout, then a linear layer written as a 1x1 convolution.

    Averaging is linear, so ``forward(x)`` equals the spatial mean of ``logit_maps(x)`` (without
    dropout): the logit map is the classic CAM (Zhou et al. 2016).
    """

    def __init__(self, num_features: int, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Conv2d(num_features, num_classes, kernel_size=1)

    def logit_maps(self, features: torch.Tensor) -> torch.Tensor:
        """Per-position logits ``[B, C, h, w]``."""
        return self.fc(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C]`` from features ``[B, F, h, w]``."""
        pooled = self.drop(features.mean(dim=(2, 3), keepdim=True))
        return self.fc(pooled).flatten(1)


class PcamHead(nn.Module):
    """Probabilistic-CAM pooling (Ye et al. 2020; jfhealthcare/Chexpert), one pooling per class.

    For class c a 1x1 convolution gives the logit map ``s_c = w_c·x + b_c``; the attention over
    positions is ``α_c = σ(s_c) / Σ σ(s_c)``; the pooled feature is ``z_c = Σ α_c·x``; the logit is
    the same convolution applied to it, ``w_c·z_c + b_c``. Because ``Σ α_c = 1``, without dropout
    the logit equals ``Σ α_c·s_c``: an attention-weighted mean of the logit map, where ``σ(s_c)``
    (the heatmap) decides which positions count.
    """

    def __init__(self, num_features: int, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Conv2d(num_features, num_classes, kernel_size=1)

    def logit_maps(self, features: torch.Tensor) -> torch.Tensor:
        """Per-position logits ``s`` ``[B, C, h, w]``; ``σ(s)`` is the PCAM heatmap."""
        return self.fc(features)

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
        it, see :mod:`paperkit.weights`). Either way a 3-channel stem is summed to
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


def has_imagenet_weights(arch: str) -> bool:
    """Whether timm publishes ImageNet weights for ``arch`` (the small CPU architectures: no)."""
    cfg = timm.models.get_pretrained_cfg(arch) if timm.is_model(arch) else None
    return bool(cfg and (cfg.hf_hub_id or cfg.url or cfg.file))


def imagenet_source(arch: str) -> str:
    """Where timm fetches ``arch``'s ImageNet weights: a Hugging Face hub id, else a URL or file."""
    cfg = timm.models.get_pretrained_cfg(arch) if timm.is_model(arch) else None
    return (cfg and (cfg.hf_hub_id or cfg.url or cfg.file)) or ""


def imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """timm's ImageNet state dict of ``arch`` in timm's own layout (3-channel stem, classifier kept).

    timm downloads the file once into its cache (Hugging Face hub or torch hub) and reads it from
    there afterwards. The state dict is what :func:`paperkit.weights.save_weights` writes, so a
    model built from a saved folder equals one built with ``pretrained="imagenet"``.

    Raises
    ------
    ValueError
        If timm has no ImageNet weights for ``arch`` (timm itself would only warn and start from
        random weights).
    """
    if not timm.is_model(arch):
        raise ValueError(f"{arch!r} is not a timm architecture; see paperkit.models.MODEL_INFO for the ones used here")
    if not has_imagenet_weights(arch):
        raise ValueError(
            f"{arch} has no ImageNet weights (paperkit's small CPU architectures train from scratch): "
            f"use pretrained='none', or a folder holding {arch}.pth"
        )
    return timm.create_model(arch, pretrained=True).state_dict()


def pretrained_source(pretrained: str, arch: str) -> str:
    """What ``create_model(pretrained=...)`` gets for the profile's ``pretrained`` field and ``arch``:
    ``""`` (from scratch), ``"imagenet"`` (timm's weights) or ``<folder>/<arch>.pth``."""
    if pretrained in ("", "none"):
        return ""
    if pretrained == "imagenet":
        return "imagenet"
    return str(Path(pretrained) / f"{arch}.pth")


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def _drop_post_pool_layers(backbone: nn.Module) -> tuple[str, ...]:
    """Remove layers timm applies *after* global pooling (MobileNetV3's and GhostNet's ``conv_head``, ConvNeXt's ``head.norm``).

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
    global _scratch_logged
    if not _scratch_logged:
        log.warning("no pretrained weights given: training from scratch (the profile's pretrained=imagenet or "
                    "pretrained=/folder/of/<arch>.pth loads ImageNet weights)")
        _scratch_logged = True


def load_backbone_weights(
    model: Classifier, path: str | os.PathLike, *, skip_prefixes: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """Load a local timm-layout state dict into ``model.backbone``, as :func:`load_state_into_backbone`.

    If a ``MANIFEST.json`` beside the file lists it, the file's sha256 must match (see
    :func:`paperkit.weights.verify_file`).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file's sha256 differs from its manifest, or no key of the file matches the
        backbone (wrong architecture or layout).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights {path} not found; give a local state dict in timm's layout "
            f"(python -m paperkit weights --out DIR writes them), 'imagenet', or None to train from scratch"
        )
    verify_file(path)
    return load_state_into_backbone(model, _read_state_dict(path), str(path), skip_prefixes=skip_prefixes)


def load_state_into_backbone(
    model: Classifier, state: dict[str, torch.Tensor], source: str, *, skip_prefixes: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """Load a timm-layout state dict (a local file's or timm's ImageNet one) into ``model.backbone``.

    The first convolution is adapted to the model's ``in_chans`` (summed over RGB for one
    channel, timm's ``adapt_input_conv``, as timm's own ``in_chans=1`` loading does); the
    source's classifier keys (and ``skip_prefixes``) are ignored. Returns
    ``{"missing": [...], "unexpected": [...]}`` and logs both; ``source`` names the weights there.

    Raises
    ------
    ValueError
        If no key of ``state`` matches the backbone (wrong architecture or layout).
    """
    cfg = model.backbone.pretrained_cfg
    classifier = cfg.get("classifier") or ()
    ignore = tuple(c + "." for c in ((classifier,) if isinstance(classifier, str) else classifier))
    ignore += skip_prefixes
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    first_conv = cfg.get("first_conv")
    first_convs = (first_conv,) if isinstance(first_conv, str) else tuple(first_conv or ())
    for name in first_convs:
        key = name + ".weight"
        if key in state and state[key].shape[1] != model.in_chans:
            state[key] = timm.models.adapt_input_conv(model.in_chans, state[key])
    own = model.backbone.state_dict()
    matched = [k for k in state if k in own]
    if not matched:
        raise ValueError(f"no key of {source} matches {model.arch}'s backbone; is it a timm {model.arch} state dict?")
    result = model.backbone.load_state_dict(state, strict=False)
    report = {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}
    log.info("loaded %d tensors from %s into %s", len(matched), source, model.arch)
    if report["missing"] or report["unexpected"]:
        log.warning("%s: missing keys %s; unexpected keys %s", source, report["missing"], report["unexpected"])
    return report


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth``/``.pt``/``.bin`` (optionally wrapped in ``state_dict``/``model``) or ``.safetensors`` file."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    return obj
