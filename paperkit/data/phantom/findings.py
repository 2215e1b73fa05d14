"""The 14 NIH findings as renderers ``(scene, cases) -> masks``, registered in :data:`FINDINGS`.

A renderer draws its finding on ``cases.rows`` of the :class:`~paperkit.data.phantom.scene.Scene`
by adding to (or multiplying) the scene's layers in place, and returns the ``[k, S, S]`` bool
ground-truth masks of those rows. ``sev`` is the severity ``[k, 1, 1]``; ``u0`` ... ``u5`` are the
finding's own uniforms (``cases.u[:, i]``). Some signs live in the anatomy instead (see
:class:`~paperkit.data.phantom.scene.Anatomy`): the raised dome of atelectasis and fibrosis, the
enlarged heart of cardiomegaly, the tall lungs and flat domes of emphysema.

Every expression is written exactly as when the embedded benchmark was fixed: regrouping a product
or reordering the renderers changes floating-point rounding, hence the benchmark's bytes
(``tests/test_phantom.py::test_rendering_is_pinned`` guards this).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from paperkit.data.labels import NIH_CLASSES
from paperkit.data.phantom.scene import Cases, Scene, ellipse, per_image, pick_side, soft_step, texture_bank

Renderer = Callable[[Scene, Cases], np.ndarray]


def atelectasis(scene: Scene, cases: Cases) -> np.ndarray:
    """Atelectasis: plate-like or wedge basal opacity (volume loss: its dome is raised in Anatomy)."""
    # u0 side, u1 lateral position, u2 plate (0) .. wedge (1), u3 angle, u4 height
    sev, u, x, y, rows = cases.severity, cases.u, cases.x, cases.y, cases.rows
    cx, cy = scene.anatomy.lung_point(rows, pick_side(u[:, 0]), 0.7 * (u[:, 1] - 0.5), 0.35 + 0.25 * u[:, 4])
    angle = per_image((u[:, 3] - 0.5) * 0.6)
    along = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    across = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
    half_thickness = (0.015 + 0.04 * sev) * (1 + 1.5 * per_image(u[:, 2]))
    shape = soft_step(1 - (along / (0.12 + 0.10 * sev)) ** 2 - (across / half_thickness) ** 2, 0.6)
    scene.lung_opacity[rows] += (0.10 + 0.25 * sev) * shape
    return shape * scene.lung[rows] > 0.25


def cardiomegaly(scene: Scene, cases: Cases) -> np.ndarray:
    """Cardiomegaly: enlarged heart shadow, CTR 0.52-0.68 (drawn by Anatomy); the mask is the heart."""
    a, rows = scene.anatomy, cases.rows
    return ellipse(cases.x, cases.y, a.heart_cx[rows], a.heart_cy[rows], a.heart_rx[rows], a.heart_ry[rows]) < 1


def effusion(scene: Scene, cases: Cases) -> np.ndarray:
    """Effusion: basal fluid density with a lateral meniscus that blunts the costophrenic angle."""
    # u0 side: < 0.4 image left, < 0.8 image right, else both
    sev, u, x, y, rows = cases.severity, cases.u, cases.x, cases.y, cases.rows
    a, eps = scene.anatomy, scene.eps
    region = np.zeros_like(x)
    height = 0.06 + 0.30 * sev
    for side, on in ((0, (u[:, 0] < 0.4) | (u[:, 0] >= 0.8)), (1, u[:, 0] >= 0.4)):
        cx, base = a.lung_cx[side][rows], a.dome_base[side][rows]
        lateral = np.clip((x - cx) / a.lung_rx[rows] * (1 if side else -1), 0, 1)
        surface = base - height - 0.6 * height * lateral ** 2  # meniscus: fluid climbs the lateral wall
        inside = soft_step(
            1.15 - ((x - cx) / a.lung_rx[rows]) ** 2 - ((y - a.lung_cy[rows]) / (a.lung_ry[rows] + 0.1)) ** 2, 0.2
        )
        region = np.maximum(
            region, per_image(on) * soft_step(y - surface, 2 * eps) * inside * soft_step(base + 0.06 - y, eps)
        )
    fluid = region * (0.55 + 0.45 * sev)  # fluid replaces lung air with soft-tissue density
    scene.air[rows] *= 1 - fluid
    scene.vessel_gain[rows] *= 1 - fluid
    return region * scene.lung[rows] > 0.5


def infiltration(scene: Scene, cases: Cases) -> np.ndarray:
    """Infiltration: patchy, ill-defined opacity, sometimes bilateral."""
    # u0 side, u1/u2 position, u3 bilateral (< 0.35), u4 extent
    sev, u, x, y, rows = cases.severity, cases.u, cases.x, cases.y, cases.rows
    shape = np.zeros_like(x)
    side = pick_side(u[:, 0])
    for lung_side, on in ((side, np.ones(len(rows), bool)), (1 - side, u[:, 3] < 0.35)):
        cx, cy = scene.anatomy.lung_point(rows, lung_side, 1.0 * (u[:, 1] - 0.5), 1.1 * (u[:, 2] - 0.4))
        r = 0.14 + 0.10 * sev + 0.05 * per_image(u[:, 4])
        shape = np.maximum(shape, per_image(on) * np.exp(-ellipse(x, y, cx, cy, r, r)))
    shape = shape * soft_step(scene.patch[rows] + 0.2, 1.2)  # patchy, ill-defined
    scene.lung_opacity[rows] += (0.10 + 0.20 * sev) * shape
    return shape * scene.lung[rows] > 0.3


def _round_opacity(scene: Scene, cases: Cases, radius, amplitude, lobulated: bool) -> np.ndarray:
    """A round (optionally lobulated) opacity in one lung; mask = its disc inside the lung."""
    # u0 side, u1/u2 position, u4 lobulation phase
    u, x, y, rows = cases.u, cases.x, cases.y, cases.rows
    cx, cy = scene.anatomy.lung_point(rows, pick_side(u[:, 0]), 1.1 * (u[:, 1] - 0.5), 1.2 * (u[:, 2] - 0.45))
    dx, dy = x - cx, y - cy
    contour = radius
    if lobulated:
        contour = radius * (1 + 0.12 * np.sin(5 * np.arctan2(dy, dx) + per_image(6.28 * u[:, 4])))
    shape = soft_step(contour - np.hypot(dx, dy), 0.02)
    scene.lung_opacity[rows] += amplitude * shape
    return (shape > 0.5) & (scene.lung[rows] > 0.2)


def mass(scene: Scene, cases: Cases) -> np.ndarray:
    """Mass: lobulated round opacity, radius 0.075-0.17 (> 3 cm)."""
    # u3 size jitter (position: _round_opacity)
    sev, u = cases.severity, cases.u
    radius = 0.075 + 0.095 * (0.7 * sev + 0.3 * per_image(u[:, 3]))
    return _round_opacity(scene, cases, radius, 0.14 + 0.24 * sev, True)


def nodule(scene: Scene, cases: Cases) -> np.ndarray:
    """Nodule: smooth round opacity, radius 0.025-0.085 (< 3 cm; overlaps Mass at the cut)."""
    # u3 size jitter (position: _round_opacity)
    sev, u = cases.severity, cases.u
    radius = np.maximum(0.025 + 0.06 * (0.5 * sev + 0.5 * per_image(u[:, 3])), 1.5 / scene.size)
    return _round_opacity(scene, cases, radius, 0.12 + 0.30 * sev, False)


def pneumonia(scene: Scene, cases: Cases) -> np.ndarray:
    """Pneumonia: lobar/segmental airspace opacity, sharply bounded above by a fissure."""
    # u0 side, u1 lobe (upper / middle / lower), u2 lateral position, u3 extent
    sev, u, x, y, rows = cases.severity, cases.u, cases.x, cases.y, cases.rows
    a = scene.anatomy
    lobe = np.minimum((u[:, 1] * 3).astype(int), 2)
    fy = np.array([-0.45, 0.15, 0.55], np.float32)[lobe]
    cx, cy = a.lung_point(rows, pick_side(u[:, 0]), 0.6 * (u[:, 2] - 0.5), fy)
    rx, ry = 0.6 * a.lung_rx[rows] * (0.7 + 0.4 * sev), 0.16 + 0.08 * per_image(u[:, 3]) + 0.06 * sev
    fissure = cy - 0.6 * ry  # middle/lower lobes: sharp upper border at a fissure
    shape = np.exp(-ellipse(x, y, cx, cy, rx, ry) * 1.5) * np.where(
        per_image(lobe) > 0, soft_step(y - fissure, scene.eps), 1.0
    )
    shape = shape * (0.75 + 0.25 * np.clip(scene.patch[rows], -1, 1))
    scene.lung_opacity[rows] += (0.12 + 0.24 * sev) * shape
    return shape * scene.lung[rows] > 0.3


def pneumothorax(scene: Scene, cases: Cases) -> np.ndarray:
    """Pneumothorax: apical-lateral lucency without lung markings, bounded by a visceral pleural line."""
    # u0 side
    sev, u, x, y, rows = cases.severity, cases.u, cases.x, cases.y, cases.rows
    a = scene.anatomy
    side = pick_side(u[:, 0])
    outward = per_image(np.where(side == 0, -1.0, 1.0))
    lung_cx = a.lung_cx_of(side, rows)
    collapse = 0.06 + 0.24 * sev  # how far the lung has collapsed (fraction of its radius)
    cx = lung_cx - outward * 0.6 * collapse * a.lung_rx[rows]
    cy = a.lung_cy[rows] + 0.5 * collapse * a.lung_ry[rows]
    e = ellipse(x, y, cx, cy, a.lung_rx[rows] * (1 - collapse), a.lung_ry[rows] * (1 - 0.8 * collapse))
    hemithorax = soft_step(1 - ellipse(x, y, lung_cx, a.lung_cy[rows], a.lung_rx[rows], a.lung_ry[rows]), 0.1)
    region = soft_step(e - 1, 0.05) * hemithorax * scene.lung[rows]
    scene.air[rows] *= 1 + (0.15 + 0.25 * sev) * region
    scene.vessel_gain[rows] *= 1 - region  # no lung markings beyond the pleural line
    line = (
        soft_step(0.5 * max(0.012, 1.5 / scene.size) - np.abs(np.sqrt(e) - 1) * a.lung_rx[rows], scene.eps * 0.5)
        * hemithorax
    )
    scene.lung_opacity[rows] += (0.10 + 0.15 * sev) * line
    return region > 0.5


def consolidation(scene: Scene, cases: Cases) -> np.ndarray:
    """Consolidation: dense homogeneous opacity crossed by air bronchograms (dark branching lines)."""
    # u0 side, u1/u2 position, u3 extent, u4 bronchogram phase
    sev, u, x, y, rows = cases.severity, cases.u, cases.x, cases.y, cases.rows
    a = scene.anatomy
    cx, cy = a.lung_point(rows, pick_side(u[:, 0]), 0.7 * (u[:, 1] - 0.5), 1.2 * (u[:, 2] - 0.4))
    r = 0.10 + 0.08 * sev + 0.05 * per_image(u[:, 3])
    shape = soft_step(1 - ellipse(x, y, cx, cy, r * 1.2, r) + 0.15 * scene.patch[rows], 0.5)
    hilum_x = np.where(cx < 0, 0.45 * a.lung_cx[0][rows], 0.45 * a.lung_cx[1][rows])
    angle = np.arctan2(y + 0.02, x - hilum_x)
    bronchi = (np.abs(np.sin(9 * angle + per_image(6.28 * u[:, 4]))) < 0.18) * (np.hypot(x - hilum_x, y + 0.02) > 0.08)
    amplitude = 0.22 + 0.26 * sev
    scene.lung_opacity[rows] += amplitude * shape * (1 - 0.55 * bronchi)
    return shape * scene.lung[rows] > 0.5


def edema(scene: Scene, cases: Cases) -> np.ndarray:
    """Edema: bilateral perihilar haze ("bat wing"), basal Kerley B lines, congested vessels."""
    sev, x, y, rows = cases.severity, cases.x, cases.y, cases.rows
    a = scene.anatomy
    sd = 0.17 + 0.08 * sev
    haze = np.maximum(
        np.exp(-ellipse(x, y, 0.5 * a.lung_cx[0][rows], -0.02, sd * 1.1, sd * 1.3)),
        np.exp(-ellipse(x, y, 0.5 * a.lung_cx[1][rows], -0.02, sd * 1.1, sd * 1.3)),
    )
    haze = haze * (0.7 + 0.3 * np.clip(scene.patch[rows], -1, 1))
    periphery = np.maximum(
        soft_step(np.abs(x - a.lung_cx[0][rows]) - 0.55 * a.lung_rx[rows], 0.05) * (x < 0),
        soft_step(np.abs(x - a.lung_cx[1][rows]) - 0.55 * a.lung_rx[rows], 0.05) * (x > 0),
    )
    kerley = (np.cos(2 * np.pi * y / 0.045) > 0.85) * periphery * soft_step(y - 0.2, 0.05)
    scene.lung_opacity[rows] += (0.10 + 0.22 * sev) * haze + 0.12 * sev * kerley
    scene.vessel_gain[rows] *= 1 + 0.5 * sev  # vascular congestion
    return haze * scene.lung[rows] > 0.45


def emphysema(scene: Scene, cases: Cases) -> np.ndarray:
    """Emphysema: hyperlucent tall lungs, flat domes, sparse vessels (all set in Scene.build/Anatomy)."""
    return scene.lung[cases.rows] > 0.5


def fibrosis(scene: Scene, cases: Cases) -> np.ndarray:
    """Fibrosis: reticular basal-peripheral pattern (the mild volume loss is in Anatomy)."""
    sev, x, y, rows = cases.severity, cases.x, cases.y, cases.rows
    a = scene.anatomy
    reticulum = texture_bank(scene.size, "retic")[scene.params["tex"][rows, 2]]
    lines = np.clip(1 - 3.0 * np.abs(reticulum), 0, 1)
    lateral = np.minimum(np.abs(x - a.lung_cx[0][rows]), np.abs(x - a.lung_cx[1][rows])) / a.lung_rx[rows]
    region = soft_step(y - (0.30 - 0.35 * sev), 0.25) * soft_step(lateral - 0.2, 0.4)
    scene.lung_opacity[rows] += (0.12 + 0.22 * sev) * lines * region
    return region * scene.lung[rows] > 0.5


def pleural_thickening(scene: Scene, cases: Cases) -> np.ndarray:
    """Pleural thickening: smooth pleural band, as an apical cap or along the lateral chest wall."""
    # u0 side, u1 apical cap (< 0.5) or lateral wall
    sev, u, x, y, rows = cases.severity, cases.u, cases.x, cases.y, cases.rows
    a = scene.anatomy
    side = pick_side(u[:, 0])
    lung_cx = a.lung_cx_of(side, rows)
    e = np.sqrt(ellipse(x, y, lung_cx, a.lung_cy[rows], a.lung_rx[rows], a.lung_ry[rows]))
    thickness = 0.06 + 0.10 * sev
    band = soft_step(e - (1 - thickness), 0.03) * soft_step(1.02 - e, 0.03)
    apical = per_image(u[:, 1] < 0.5)
    outward = per_image(np.where(side == 0, -1.0, 1.0))
    cap = soft_step(a.lung_cy[rows] - 0.45 * a.lung_ry[rows] - y, 0.1)
    wall = soft_step(outward * (x - lung_cx) - 0.4 * a.lung_rx[rows], 0.1)
    region = band * (apical * cap + (1 - apical) * wall * soft_step(0.5 - y, 0.1))
    scene.lung_opacity[rows] += (0.20 + 0.25 * sev) * region
    return region > 0.5


def hernia(scene: Scene, cases: Cases) -> np.ndarray:
    """Hernia: retrocardiac air-fluid level above the diaphragm (cf. the normal gastric bubble)."""
    # u0 x jitter, u1 air-fluid level height
    sev, u, x, y, rows = cases.severity, cases.u, cases.x, cases.y, cases.rows
    a = scene.anatomy
    r = 0.07 + 0.07 * sev
    cx = per_image(0.06 + 0.08 * (u[:, 0] - 0.5))
    cy = np.minimum(a.dome_base[0][rows], a.dome_base[1][rows]) - 0.15 - r * 0.3
    disc = soft_step(r - np.hypot(x - cx, y - cy), 0.015)
    level = cy + r * per_image(0.4 * (u[:, 1] - 0.5))
    gas = disc * soft_step(level - y, scene.eps)
    scene.unmasked_density[rows] += -(0.20 + 0.20 * sev) * gas + 0.06 * disc
    return disc > 0.5


FINDINGS: dict[str, Renderer] = {  # NIH class order: the order the layers are painted in
    "Atelectasis": atelectasis,
    "Cardiomegaly": cardiomegaly,
    "Effusion": effusion,
    "Infiltration": infiltration,
    "Mass": mass,
    "Nodule": nodule,
    "Pneumonia": pneumonia,
    "Pneumothorax": pneumothorax,
    "Consolidation": consolidation,
    "Edema": edema,
    "Emphysema": emphysema,
    "Fibrosis": fibrosis,
    "Pleural_Thickening": pleural_thickening,
    "Hernia": hernia,
}
if tuple(FINDINGS) != NIH_CLASSES:
    raise ImportError("phantom FINDINGS must list the NIH classes in NIH_CLASSES order")
