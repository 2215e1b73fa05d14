"""Model factory: shapes, the PCAM identity, parameter counts, channels, local and ImageNet pretrained weights."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import timm
import torch

from paperkit import models
from paperkit.config import CPU_REFERENCES
from paperkit.models import MODEL_INFO, PcamHead, count_parameters, create_model, paper_reference_archs

ARCH = "resnet10t"  # smallest fast timm model; 32 px inputs give a 1x1 map, 64 px a 2x2 one


@pytest.mark.parametrize("head", ["avg", "pcam"])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_shapes(head: str, in_chans: int) -> None:
    model = create_model(ARCH, 5, in_chans=in_chans, head=head).eval()
    x = torch.randn(2, in_chans, 64, 64)
    feats = model.features(x)
    assert feats.shape == (2, model.num_features, 2, 2)
    assert model(x).shape == (2, 5)
    assert model.head(feats).shape == (2, 5)
    assert model.head.logit_maps(feats).shape == (2, 5, 2, 2)
    assert model.head_type == head and model.in_chans == in_chans


def test_pcam_logit_is_attention_weighted_logit_map() -> None:
    """logit_c = w_c·(Σ α_c x) + b_c = Σ α_c s_c, because Σ α_c = 1 (dropout off in eval)."""
    torch.manual_seed(0)
    head = PcamHead(8, 3, drop_rate=0.5).eval().double()
    feats = torch.randn(4, 8, 5, 6, dtype=torch.float64)
    s = head.logit_maps(feats)
    alpha = torch.sigmoid(s) / torch.sigmoid(s).sum(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(head.attention(feats), alpha)
    torch.testing.assert_close(head(feats), (alpha * s).sum(dim=(2, 3)))


def test_pcam_attention_finite_when_logit_map_very_negative() -> None:
    head = PcamHead(2, 1)
    with torch.no_grad():
        head.fc.weight.fill_(0.0)
        head.fc.bias.fill_(-200.0)  # σ(s) underflows to 0 in float32 everywhere
    alpha = head.attention(torch.randn(1, 2, 3, 3))
    torch.testing.assert_close(alpha, torch.full_like(alpha, 1 / 9))


def test_avg_logit_is_mean_of_logit_map() -> None:
    model = create_model(ARCH, 4, head="avg").eval()
    feats = model.features(torch.randn(2, 1, 64, 64))
    torch.testing.assert_close(model.head(feats), model.head.logit_maps(feats).mean(dim=(2, 3)))


def test_parameter_count() -> None:
    one, three = create_model(ARCH, 14), create_model(ARCH, 14, in_chans=3)
    assert count_parameters(one) == sum(p.numel() for p in one.parameters())
    stem = one.backbone.conv1[0]  # resnet10t's deep stem: 3x3 convs, first one takes the image
    assert count_parameters(three) - count_parameters(one) == 2 * stem.out_channels * 3 * 3
    assert count_parameters(create_model(ARCH, 15)) - count_parameters(one) == one.num_features + 1


@pytest.mark.parametrize("arch", CPU_REFERENCES)
def test_cpu_references_build_and_use_every_parameter(arch: str) -> None:
    """Each CPU family runs at 1 channel and 56 px, and every parameter gets a gradient (DDP needs that)."""
    model = create_model(arch, 14)
    model(torch.randn(2, 1, 56, 56)).sum().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused
    assert arch in MODEL_INFO


def test_paper_references_are_documented() -> None:
    assert len(paper_reference_archs()) == 6
    assert all(arch in MODEL_INFO for arch in paper_reference_archs())


@pytest.mark.parametrize("in_chans", [1, 3])
def test_pretrained_from_local_file(tmp_path: Path, in_chans: int) -> None:
    source = timm.create_model(ARCH, pretrained=False, num_classes=1000)  # ImageNet layout, RGB stem
    path = tmp_path / f"{ARCH}.pth"
    torch.save(source.state_dict(), path)
    model = create_model(ARCH, 14, in_chans=in_chans, pretrained=path)
    src, own = source.state_dict(), model.backbone.state_dict()
    stem = "conv1.0.weight"
    expected = src[stem].sum(dim=1, keepdim=True) if in_chans == 1 else src[stem]
    torch.testing.assert_close(own[stem], expected)
    torch.testing.assert_close(own["layer4.0.conv2.weight"], src["layer4.0.conv2.weight"])
    assert not any(k.startswith("fc.") for k in own)


def test_pretrained_reports_and_skips(tmp_path: Path) -> None:
    """MobileNetV3's post-pool conv_head and classifier are skipped silently; a stray key is reported."""
    source = timm.create_model("mobilenetv3_small_100", pretrained=False, num_classes=1000)
    state = source.state_dict()
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "m.pth"
    torch.save({"state_dict": state}, path)
    model = create_model("mobilenetv3_small_100", 3, in_chans=3, pretrained=path)
    report = models.load_backbone_weights(model, path, skip_prefixes=("conv_head.",))
    assert report == {"missing": [], "unexpected": ["extra.weight"]}
    torch.testing.assert_close(model.backbone.conv_stem.weight, state["conv_stem.weight"])


def test_pretrained_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        create_model(ARCH, 14, pretrained=tmp_path / "nope.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"something.else": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="no key"):
        create_model(ARCH, 14, pretrained=wrong)


def test_scratch_logged_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(models, "_scratch_logged", False)
    with caplog.at_level(logging.WARNING, logger="paperkit.models"):
        create_model(ARCH, 2)
        create_model(ARCH, 2)
    assert sum("from scratch" in r.message for r in caplog.records) == 1


def test_unknown_head() -> None:
    with pytest.raises(ValueError, match="head"):
        create_model(ARCH, 2, head="max")


@pytest.mark.parametrize("pretrained, expected", [("none", ""), ("", ""), ("imagenet", "imagenet"),
                                                  ("/w", "/w/densenet121.pth")])
def test_pretrained_source(pretrained: str, expected: str) -> None:
    assert models.pretrained_source(pretrained, "densenet121") == expected


@pytest.mark.parametrize("arch", ["densenet_tiny", "efficientnet_tiny"])
def test_imagenet_refused_for_tiny_archs(arch: str) -> None:
    """timm would only warn and start from random weights; create_model names the arch instead."""
    assert not models.has_imagenet_weights(arch) and models.has_imagenet_weights("densenet121")
    with pytest.raises(ValueError, match=f"{arch} has no ImageNet weights"):
        create_model(arch, 3, pretrained="imagenet")


@pytest.mark.parametrize("arch", models.TINY_ARCHS)
@pytest.mark.parametrize("size", [32, 56])
def test_tiny_archs_registered_and_pcam_shapes(arch: str, size: int) -> None:
    """The CPU families are timm models too; at 1 channel they give [B, F, h, w] maps the PCAM head pools."""
    assert timm.is_model(arch) and arch in MODEL_INFO
    assert timm.create_model(arch, num_classes=3, in_chans=1).pretrained_cfg["architecture"] == arch
    model = create_model(arch, 14, head="pcam").eval()
    feats = model.features(torch.randn(2, 1, size, size))
    h, w = feats.shape[-2:]
    assert feats.shape[:2] == (2, model.num_features) and h == w and h >= 2
    assert model.head.logit_maps(feats).shape == (2, 14, h, w)
    assert model.head.attention(feats).shape == (2, 14, h, w)
    assert model(torch.randn(2, 1, size, size)).shape == (2, 14)


def test_densenet_tiny_is_stride_8() -> None:
    model = create_model("densenet_tiny", 14).eval()
    assert model.features(torch.randn(1, 1, 56, 56)).shape[-2:] == (7, 7)
    assert model.features(torch.randn(1, 1, 32, 32)).shape[-2:] == (4, 4)
    assert count_parameters(model) < 300_000


def test_tiny_archs_refuse_timm_pretrained() -> None:
    with pytest.raises(ValueError, match="no published weights"):
        timm.create_model("densenet_tiny", pretrained=True)
