"""Pretrained backbone weights: timm's ImageNet weights or a local state dict in timm's layout, loaded
into a :class:`~paperkit.models.heads.Classifier`'s backbone with the stem adapted to its channels."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import timm
import torch

from paperkit.artifacts import file_sha256
from paperkit.models.heads import Classifier
from paperkit.overrides import ConfigError

log = logging.getLogger(__name__)

#: Beside the ``<arch>.pth`` files: ``{"files": {name: {"arch", "sha256", "bytes", "source", "timm"}}}``.
MANIFEST = "MANIFEST.json"


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
    there afterwards. The state dict is what :func:`paperkit.orchestration.weights.save_weights` writes, so a
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


def load_backbone_weights(
    model: Classifier, path: str | os.PathLike, *, skip_prefixes: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """Load a local timm-layout state dict into ``model.backbone``, as :func:`load_state_into_backbone`.

    If a ``MANIFEST.json`` beside the file lists it, the file's sha256 must match (see
    :func:`verify_file`).

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
    """Tensors of a ``.pth``/``.pt``/``.bin`` (optionally wrapped in ``state_dict``/``model``) or
    ``.safetensors`` file."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    return obj


def read_manifest(folder: str | os.PathLike) -> dict:
    """``MANIFEST.json`` of a weights folder; ``{"files": {}}`` if it has none.

    Raises
    ------
    ConfigError
        If the manifest is not valid JSON.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {"files": {}}
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{path} is not valid JSON ({err}); delete it or rewrite it with "
            f"`python -m paperkit weights --out {path.parent}`"
        ) from None
    manifest.setdefault("files", {})
    return manifest


def verify_file(path: str | os.PathLike) -> None:
    """Check ``path`` against the sha256 the ``MANIFEST.json`` beside it records (if it lists the file).

    Raises
    ------
    ConfigError
        If the sha256 differs, naming the file and how to rewrite it.
    """
    path = Path(path)
    entry = read_manifest(path.parent)["files"].get(path.name)
    if not entry:
        return
    actual = file_sha256(path)
    if actual != entry.get("sha256"):
        arch = entry.get("arch") or path.stem
        raise ConfigError(
            f"{path} has sha256 {actual[:12]}..., but {path.parent / MANIFEST} records "
            f"{str(entry.get('sha256'))[:12]}...: "
            f"the file is damaged or was replaced; rewrite it with `python -m paperkit weights --out {path.parent} "
            f"--archs {arch}` on an online machine"
        )
