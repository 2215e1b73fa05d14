"""Heatmaps and localisation scores on tiny, hand-made inputs, and notebook 08's scoring on a tiny benchmark."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from paperkit.config import resolve
from paperkit.evaluation.heatmaps import (
    box_to_input,
    compare_localisation,
    grad_cam,
    heatmap_box,
    iobb,
    iobb_accuracy,
    iou,
    overlay,
    pcam_maps,
    pointing_game,
    score_boxes,
    score_masks,
)
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment as ex
from paperkit.pipeline.localisation import mask_localisation


class _Head(nn.Module):
    """Average-pooling head with the contract's ``logit_maps``."""

    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(features, classes, 1)

    def logit_maps(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f).mean(dim=(2, 3))


class _StandIn(nn.Module):
    """Tiny Classifier stand-in: ``features`` (stride 4), ``head``, ``forward = head(features)``."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 4, stride=4)
        self.head = _Head(4, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@pytest.fixture
def model() -> _StandIn:
    torch.manual_seed(0)
    return _StandIn()


@pytest.mark.parametrize("size", [16, 24])
def test_pcam_maps_are_upsampled_probabilities(model, size):
    x = torch.randn(2, 1, size, size)
    maps = pcam_maps(model, x)
    assert maps.shape == (2, 3, size, size)
    assert 0 <= maps.min() and maps.max() <= 1
    low = torch.sigmoid(model.head.logit_maps(model.features(x)))
    assert maps.mean().item() == pytest.approx(low.mean().item(), abs=0.05)


@pytest.mark.parametrize("classes", [None, [1]])
def test_grad_cam_shape_and_value(model, classes):
    x = torch.randn(2, 1, 16, 16)
    cam = grad_cam(model, x, classes)
    assert cam.shape == (2, 3 if classes is None else 1, 16, 16)
    assert 0 <= cam.min() and cam.max() <= 1
    # linear head on the mean: Grad-CAM of class c is relu(w_c . f), min-max normalised
    c = 0 if classes is None else 1
    f = model.features(x)
    raw = torch.relu(torch.einsum("f,bfhw->bhw", model.head.fc.weight[c, :, 0, 0], f)).detach()
    expected = torch.nn.functional.interpolate(raw[:, None], size=(16, 16), mode="bilinear", align_corners=False)[:, 0]
    lo, hi = expected.amin(dim=(1, 2), keepdim=True), expected.amax(dim=(1, 2), keepdim=True)
    got = cam[:, 0 if classes else c]
    torch.testing.assert_close(got, torch.where(hi > lo, (expected - lo) / (hi - lo), torch.zeros_like(expected)))


def test_real_classifier_contract():
    models = pytest.importorskip("paperkit.models")
    net = models.create_model("resnet10t", 2, in_chans=1, head="pcam")
    x = torch.randn(1, 1, 32, 32)
    assert pcam_maps(net, x).shape == (1, 2, 32, 32)
    assert grad_cam(net, x, [0]).shape == (1, 1, 32, 32)


def test_overlay_rgb_in_range():
    out = overlay(np.random.default_rng(0).random((8, 8)), np.linspace(0, 1, 64).reshape(8, 8))
    assert out.shape == (8, 8, 3) and 0 <= out.min() and out.max() <= 1


def _blob(shape=(10, 10)):
    h = np.zeros(shape)
    h[2:4, 2:5] = 0.8  # large component
    h[7, 7] = 0.9  # small, brighter component (holds the maximum)
    return h


@pytest.mark.parametrize(
    ("mask_cells", "tolerance", "hit"),
    [([(7, 7)], 0, True), ([(2, 2)], 0, False), ([(6, 7)], 1, True)],
)
def test_pointing_game(mask_cells, tolerance, hit):
    mask = np.zeros((10, 10), bool)
    for r, c in mask_cells:
        mask[r, c] = True
    assert pointing_game(_blob(), mask, tolerance) is hit


def test_iou_hand_case():
    mask = np.zeros((10, 10), bool)
    mask[2:4, 2:4] = True  # 4 px, prediction 6 + 1 px
    assert iou(_blob(), mask, 0.5) == pytest.approx(4 / 7)
    assert iou(np.zeros((4, 4)), np.zeros((4, 4), bool)) == 0.0


@pytest.mark.parametrize(("mode", "box"), [("largest", (2, 2, 3, 2)), ("all", (2, 2, 6, 6))])
def test_heatmap_box(mode, box):
    assert heatmap_box(_blob(), 0.5, mode) == box
    assert heatmap_box(_blob(), 0.95, mode) is None


@pytest.mark.parametrize(
    ("pred", "truth", "value"),
    [
        ((0, 0, 2, 2), (0, 0, 4, 4), 1.0),
        ((0, 0, 4, 4), (0, 0, 2, 2), 0.25),
        ((0, 0, 2, 2), (5, 5, 1, 1), 0.0),
        (None, (0, 0, 1, 1), 0.0),
    ],
)
def test_iobb_is_over_the_predicted_box(pred, truth, value):
    assert iobb(pred, truth) == pytest.approx(value)


def test_box_to_input_maps_resize_and_centre_crop():
    assert box_to_input((512, 512, 128, 64), 1024, 256, 224) == (112.0, 112.0, 32.0, 16.0)


def test_scores_tables_and_paired_comparison():
    heat = np.stack([_blob(), _blob(), np.zeros((10, 10))])
    masks = np.zeros((3, 10, 10), bool)
    masks[:, 7, 7] = True
    findings = ["Mass", "Mass", "Nodule"]
    a = score_masks(heat, masks, findings)
    assert a["pointing_hit"].tolist() == [True, True, False]
    b = score_masks(heat[::-1].copy(), masks, findings)
    cmp = compare_localisation(a, b, "pointing_hit")
    assert list(cmp["finding"]) == ["Mass", "Nodule"] and cmp["p"].between(0, 1).all()
    boxes = score_boxes(heat, [(2, 2, 3, 2), (0, 0, 2, 2), (0, 0, 1, 1)], findings)
    assert boxes["iobb"].tolist() == [1.0, 0.0, 0.0]
    acc = iobb_accuracy(boxes)
    assert acc.loc["Mass", "T(IoBB)=0.1"] == 0.5 and acc.shape == (2, 7)
    assert compare_localisation(boxes, boxes, "iobb")["p"].eq(1.0).all()


def test_mask_localisation_scores_every_model_on_the_same_masked_cases(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERKIT_RESULTS", str(tmp_path))
    cfg = resolve("smoke", {"n_images": 120, "layouts": "nih"})
    prep = ex.prepare(cfg, RunPaths.for_profile(cfg), "nih")
    torch.manual_seed(0)
    models = {"B": _StandIn(len(prep.classes)).eval(), "target": _StandIn(len(prep.classes)).eval()}
    cases, scores = mask_localisation(cfg, prep, models, max_cases=3, cases_per_finding=1)
    assert scores["B"] and len(scores["B"]) == len(scores["target"]) == len(cases)  # one case per finding
    for b, target, case in zip(scores["B"], scores["target"], cases):
        assert 0 < len(b) <= 3 and b[["case", "finding"]].equals(target[["case", "finding"]])
        assert set(b["finding"]) == {case.finding}
        assert case.image.shape == case.mask.shape == (cfg.crop, cfg.crop)
        assert set(case.heatmaps) == set(case.probabilities) == set(models)
