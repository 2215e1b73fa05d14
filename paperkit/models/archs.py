"""Which architectures the kit uses: the paper's six references, and small from-scratch families
registered with timm (importing this module registers them) for the CPU profiles."""
from __future__ import annotations

from typing import Any

import timm
from timm.models import register_model
from torch import nn

from paperkit.config import PAPER_REFERENCES

#: What each architecture is in the paper or in the CPU profiles. Parameter counts are for a
#: 1-channel backbone with a 14-class head (``count_parameters(create_model(arch, 14))``).
MODEL_INFO: dict[str, str] = {
    # --- the paper's six references (Pham et al. 2019's set); densenet121 is also the target ----
    "densenet121": "DenseNet-121 (Huang et al. 2017): paper reference and target; 7.0M params.",
    "densenet169": "DenseNet-169 (Huang et al. 2017): paper reference; 12.5M params.",
    "densenet201": "DenseNet-201 (Huang et al. 2017): paper reference; 18.1M params.",
    "inception_resnet_v2": (
        "Inception-ResNet-v2 (Szegedy et al. 2017): paper reference; 54.3M params; "
        "valid-padded stem needs inputs of at least 75 px."
    ),
    "legacy_xception": (
        "Xception (Chollet 2017), timm's port of the original Keras weights: paper reference; 20.8M params."
    ),
    "nasnetalarge": (
        "NASNet-A Large (Zoph et al. 2018): paper reference; 84.8M params; "
        "needs ~331 px inputs to match its ImageNet training."
    ),
    # --- tests and bench/bench_knns.py ---------------------------------------------------------
    "resnet10t": (
        "ResNet-10-T (timm): residual family; the CPU reference and target before the *_tiny variants "
        "(19 img/s under load at 48 px); 4.9M params."
    ),
    # --- small from-scratch families registered below for the CPU profiles (56 px crops). ----
    # ImageNet-sized networks downsample by 32 (a 2x2 map at 56 px, too coarse for PCAM heatmaps)
    # and train at 20-300 img/s on two cores; these train at ~900-2000 img/s and keep >= 3x3 maps.
    "densenet_tiny": (
        "DenseNet (growth 16, blocks (4, 8)): the paper's target family shrunk to two dense blocks, "
        "final stride 8 (7x7 map at 56 px, for PCAM heatmaps); CPU target and reference; 0.19M params."
    ),
    "densenet_tiny_deep": (
        "DenseNet (growth 16, blocks (6, 12)): the DenseNet-169 analogue of densenet_tiny, deeper blocks; "
        "CPU reference; 0.33M params."
    ),
    "densenet_tiny_wide": (
        "DenseNet (growth 24, blocks (4, 8)): the DenseNet-201 analogue of densenet_tiny, wider layers; "
        "CPU reference; 0.42M params."
    ),
    "resnet_tiny": (
        "ResNet with one BasicBlock per stage (32-256 channels, deep stem, avg-down), last stage dilated "
        "(stride 16): residual family, CPU reference; 1.2M params."
    ),
    "res2net_tiny": (
        "Res2Net (Gao et al. 2019; one Bottle2neck per stage, scale 4, width 26, channels 16-128, deep stem, "
        "avg-down), stride 16: multi-scale branches inside residual blocks, the Inception-ResNet-v2 analogue; "
        "CPU reference; 0.50M params."
    ),
    "efficientnet_small": (
        "timm's test EfficientNet at channel multiplier 2 (MBConv + squeeze-excite), stride 16: "
        "a NAS-derived family (MnasNet search), the NASNet analogue; CPU reference; 0.39M params."
    ),
    "efficientnet_tiny": (
        "timm's test EfficientNet (MBConv + squeeze-excite), stride 16: smoke-profile reference; 0.10M params."
    ),
    "byobnet_tiny": (
        "timm's test ByobNet (edge/dark/basic/bottleneck blocks, grouped convs, SE), stride 16: "
        "CSP/GENet-style family, smoke-profile reference; 0.20M params."
    ),
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
    return _variant(
        "densenet_tiny", "densenet121", dict(growth_rate=16, block_config=(4, 8)), dict(kwargs, pretrained=pretrained)
    )


@register_model
def densenet_tiny_deep(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DenseNet, growth rate 16, two dense blocks (6, 12 layers), stride 8: densenet_tiny made deeper."""
    return _variant(
        "densenet_tiny_deep",
        "densenet121",
        dict(growth_rate=16, block_config=(6, 12)),
        dict(kwargs, pretrained=pretrained),
    )


@register_model
def densenet_tiny_wide(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """DenseNet, growth rate 24, two dense blocks (4, 8 layers), stride 8: densenet_tiny made wider."""
    return _variant(
        "densenet_tiny_wide",
        "densenet121",
        dict(growth_rate=24, block_config=(4, 8)),
        dict(kwargs, pretrained=pretrained),
    )


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

    changes = dict(
        block=Bottle2neck,
        layers=(1, 1, 1, 1),
        base_width=26,
        stem_width=16,
        stem_type="deep",
        avg_down=True,
        channels=(16, 32, 64, 128),
        block_args=dict(scale=4),
        output_stride=16,
    )
    return _variant("res2net_tiny", "test_resnet", changes, dict(kwargs, pretrained=pretrained))


@register_model
def efficientnet_small(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """timm's ``test_efficientnet`` (MBConv/SE) with twice the channels, stride 16."""
    return _variant(
        "efficientnet_small",
        "test_efficientnet",
        dict(channel_multiplier=2.0, output_stride=16),
        dict(kwargs, pretrained=pretrained),
    )


@register_model
def efficientnet_tiny(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """timm's ``test_efficientnet`` (MBConv/SE) at stride 16."""
    return _variant(
        "efficientnet_tiny", "test_efficientnet", dict(output_stride=16), dict(kwargs, pretrained=pretrained)
    )


@register_model
def byobnet_tiny(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """timm's ``test_byobnet`` at stride 16."""
    return _variant("byobnet_tiny", "test_byobnet", dict(output_stride=16), dict(kwargs, pretrained=pretrained))


#: Small architectures registered with timm for the CPU profiles (see :data:`MODEL_INFO`).
TINY_ARCHS = (
    "densenet_tiny",
    "densenet_tiny_deep",
    "densenet_tiny_wide",
    "resnet_tiny",
    "res2net_tiny",
    "efficientnet_small",
    "efficientnet_tiny",
    "byobnet_tiny",
)
