"""Vectorised renderer of synthetic frontal chest radiographs with the 14 NIH findings and their masks.

Geometry lives in normalised coordinates ``x, y`` in ``[-1, 1]`` (image left = patient's right,
``y`` grows downwards), so one description renders at any size from 32 to 512 px. An image is an
*attenuation* map (soft tissue + bone - lung air + findings) turned into grey levels by a per-image
exposure curve, plus quantum noise. Everything is computed for a batch at once with numpy; a
finding is drawn only on the images that have it.

Every random choice is an input: :func:`sample_params` draws all per-image parameters from one
generator, and :func:`render` is a pure function of them (its pixel noise comes from a seed), so the
same seed gives the same bytes however the images are split between worker processes.

Findings (severity ``s`` in (0, 1] sets size *and* contrast; faint ones are genuinely hard):

==================  ==================================================================
Atelectasis         plate/wedge basal opacity, ipsilateral diaphragm raised (volume loss)
Cardiomegaly        cardiothoracic ratio 0.52-0.68 (normal PA ~0.44, AP ~0.48: overlap)
Effusion            basal opacity with a lateral meniscus, blunted costophrenic angle
Infiltration        patchy ill-defined opacity, sometimes bilateral
Mass                lobulated opacity, radius 0.075-0.17 (>3 cm)
Nodule              round opacity, radius 0.025-0.085 (<3 cm; overlaps Mass at the cut)
Pneumonia           lobar/segmental airspace opacity bounded by a fissure
Pneumothorax        apical-lateral lucency without lung markings, visceral pleural line
Consolidation       dense homogeneous opacity with air bronchograms
Edema               bilateral perihilar haze ("bat wing") and basal septal (Kerley B) lines
Emphysema           hyperlucent, taller lungs, flattened diaphragm, sparse vessels
Fibrosis            reticular basal-peripheral pattern, mild volume loss
Pleural_Thickening  smooth pleural band (apical cap or lateral wall)
Hernia              retrocardiac air-fluid level above the diaphragm (cf. the normal gastric bubble)
==================  ==================================================================
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from paperkit.data.labels import NIH_CLASSES

F = {name: i for i, name in enumerate(NIH_CLASSES)}
N_UNIFORMS = 6  # per-finding uniforms: each finding documents how it uses them
MIN_SIZE, MAX_SIZE = 32, 512
DEVICE_TUBE, DEVICE_LINE, DEVICE_ECG = 1, 2, 4
_BANK_TILES = 24
_MARKERS = {  # 5x3 bitmaps of the side marker letters
    "R": np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0], [1, 0, 1], [1, 0, 1]], bool),
    "L": np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 1, 1]], bool),
}


def check_size(size: int) -> int:
    """Validate an image size (pixels); raise ``ValueError`` naming the allowed range."""
    if not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"image size must be an integer in [{MIN_SIZE}, {MAX_SIZE}] px, got {size!r}")
    return int(size)


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------
def sample_params(
    rng: np.random.Generator,
    labels: np.ndarray,
    severity: np.ndarray,
    view_ap: np.ndarray,
    devices: np.ndarray,
) -> dict[str, np.ndarray]:
    """Draw every per-image rendering parameter.

    Parameters
    ----------
    rng
        The only source of randomness.
    labels
        ``[N, 14]`` bool, clean findings in :data:`NIH_CLASSES` order.
    severity
        ``[N, 14]`` float in [0, 1]; used where ``labels`` is true.
    view_ap
        ``[N]`` bool, True for an AP film (magnified heart, more devices).
    devices
        ``[N]`` int bit mask of support devices (1 tube, 2 central line, 4 ECG leads).

    Returns
    -------
    dict of arrays, each with first dimension ``N``.
    """
    labels = np.asarray(labels, bool)
    n = len(labels)
    if labels.shape != (n, len(NIH_CLASSES)) or np.shape(severity) != labels.shape:
        raise ValueError(f"labels and severity must both be [N, {len(NIH_CLASSES)}], got "
                         f"{labels.shape} and {np.shape(severity)}")
    u = lambda *shape: rng.random((n, *shape), dtype=np.float32)  # noqa: E731
    return {
        "labels": labels,
        "severity": np.clip(np.asarray(severity, np.float32), 0, 1) * labels,
        "view_ap": np.asarray(view_ap, bool),
        "devices": np.asarray(devices, np.int64),
        "f_u": u(len(NIH_CLASSES), N_UNIFORMS),
        "thorax": 0.93 + 0.10 * u(),  # thorax half-width scale
        "lung_h": 0.92 + 0.14 * u(),  # lung height scale
        "ctr": 0.44 + 0.025 * rng.standard_normal(n).astype(np.float32),  # normal cardiothoracic ratio
        "rot": np.deg2rad(3.0) * rng.standard_normal(n).astype(np.float32),
        "shift": 0.04 * (u(2) - 0.5),
        "zoom": 0.95 + 0.10 * u(),
        "dome": 0.04 * (u(2) - 0.5),
        "bubble": u() < 0.7,  # gastric bubble: the normal look-alike of a hernia
        "gain": 0.85 + 0.30 * u(),
        "offset": -0.05 + 0.12 * u(),
        "gamma": 0.8 + 0.45 * u(),
        "noise_sd": 0.006 + 0.025 * u(),
        "tex": rng.integers(0, _BANK_TILES, (n, 4)),
        "flip": u(4) < 0.5,
        "marker": u() < 0.5,
        "dev_u": u(6),
    }


def take(params: dict[str, np.ndarray], index: slice | np.ndarray) -> dict[str, np.ndarray]:
    """Rows ``index`` of every parameter array (a batch for :func:`render`)."""
    return {k: v[index] for k, v in params.items()}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _sm(d: np.ndarray, eps: float) -> np.ndarray:
    """Soft step: 0 for ``d <= -eps/2``, 1 for ``d >= eps/2`` (cheaper than a sigmoid)."""
    t = d * np.float32(1.0 / eps)
    t += np.float32(0.5)
    return np.clip(t, 0.0, 1.0, out=t)


def _c(a: np.ndarray) -> np.ndarray:
    """Per-image scalar -> broadcastable ``[n, 1, 1]``."""
    return np.asarray(a, np.float32)[:, None, None]


@lru_cache(maxsize=8)
def _bank(size: int, kind: str) -> np.ndarray:
    """Fixed bank of unit-variance band-limited noise tiles ``[K, size, size]`` (same for every seed)."""
    bands = {"vessel": (3.0, 9.0), "patch": (1.0, 3.5), "retic": (10.0, 22.0)}  # cycles per image width
    lo, hi = bands[kind]
    rng = np.random.default_rng(20210202 + size + len(kind))
    f = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.rfftfreq(size)[None, :] ** 2) * size
    hi = min(hi, size / 3)
    filt = ((f >= lo) & (f <= hi)).astype(np.float32)
    noise = rng.standard_normal((_BANK_TILES, size, size), dtype=np.float32)
    tiles = np.fft.irfft2(np.fft.rfft2(noise) * filt, s=(size, size)).astype(np.float32)
    tiles /= tiles.std(axis=(1, 2), keepdims=True)
    return tiles


def _tile(p: dict[str, np.ndarray], size: int, kind: str, slot: int) -> np.ndarray:
    """One bank tile per image, mirrored at random (slot picks which tex/flip column)."""
    t = _bank(size, kind)[p["tex"][:, slot]]
    return np.where(p["flip"][:, slot, None, None], t[:, :, ::-1], t)


def _segment_dist(X, Y, ax, ay, bx, by) -> np.ndarray:
    """Distance of every pixel to the segment a-b (a, b per image)."""
    dx, dy = bx - ax, by - ay
    t = np.clip(((X - ax) * dx + (Y - ay) * dy) / (dx * dx + dy * dy + 1e-9), 0, 1)
    return np.hypot(X - ax - t * dx, Y - ay - t * dy)


# --------------------------------------------------------------------------------------------
# renderer
# --------------------------------------------------------------------------------------------
class _Geom:
    """Per-image anatomy of a batch (arrays ``[n, 1, 1]``), already adjusted by findings."""

    def __init__(self, p: dict[str, np.ndarray]) -> None:
        lab, sev, u = p["labels"], p["severity"], p["f_u"]
        n = len(lab)
        s = lambda name: sev[:, F[name]]  # noqa: E731
        emph = s("Emphysema")
        self.T = _c(0.80 * p["thorax"])  # inner thorax half-width
        # lungs: side 0 = image left (patient right), side 1 = image right
        self.lry = _c(0.66 * p["lung_h"] + 0.07 * emph)
        self.lcy = _c(np.full(n, -0.08, np.float32))
        base = np.stack([0.60 + p["dome"][:, 0] - 0.03, 0.60 + p["dome"][:, 1]], 1) + 0.08 * emph[:, None]
        dome_h = np.full((n, 2), 0.17, np.float32) * (1 - 0.8 * emph[:, None])
        # volume loss raises the diaphragm on the atelectatic side; fibrosis on both
        atel_side = (u[:, F["Atelectasis"], 0] < 0.5).astype(int)
        base[np.arange(n), atel_side] -= 0.07 * s("Atelectasis")
        base -= 0.04 * s("Fibrosis")[:, None]
        self.base = [_c(base[:, 0]), _c(base[:, 1])]
        self.dome_h = [_c(dome_h[:, 0]), _c(dome_h[:, 1])]
        self.lcx = [-0.5 * self.T, 0.5 * self.T]
        self.lrx = 0.36 * self.T
        # heart: AP films magnify it; cardiomegaly sets CTR 0.52-0.68
        ctr = p["ctr"] + 0.04 * p["view_ap"] + (0.08 + 0.16 * s("Cardiomegaly") - (p["ctr"] - 0.44)) * lab[:, F["Cardiomegaly"]]
        W = _c(ctr) * 2 * self.T
        self.ctr = ctr
        self.hrx, self.hcx = 0.5 * W, 0.12 * W
        self.hcy = (self.base[0] + self.base[1]) / 2 - 0.30
        self.hry = 0.27 + 0.25 * (self.hrx - 0.35)

    def hemithorax(self, X, Y, side: int) -> np.ndarray:
        """Ellipse coordinate of a lung field without its diaphragm cut (``< 1`` inside)."""
        return ((X - self.lcx[side]) / self.lrx) ** 2 + ((Y - self.lcy) / self.lry) ** 2

    def dome_y(self, X, side: int) -> np.ndarray:
        return self.base[side] - self.dome_h[side] * np.clip(1 - ((X - self.lcx[side]) / self.lrx) ** 2, 0, 1)


def render(p: dict[str, np.ndarray], size: int, noise_seed: int | tuple) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Render a batch of radiographs.

    Parameters
    ----------
    p
        Parameters of the batch (see :func:`sample_params`, :func:`take`).
    size
        Output width and height in pixels (32-512).
    noise_seed
        Seed of the batch's pixel noise (anything ``numpy.random.default_rng`` takes).

    Returns
    -------
    images
        ``[n, size, size]`` uint8.
    masks
        finding name -> ``(rows, masks)``: the batch rows that have the finding and their
        ``[k, size, size]`` bool ground-truth masks.
    """
    size = check_size(size)
    rng = np.random.default_rng(noise_seed)
    # sub-batches of ~2**17 pixels keep every temporary in cache (3-4x faster at 256 px); the
    # sub-batch size depends on ``size`` only, so the noise stream is the same for any caller
    step = max(1, 2 ** 17 // (size * size))
    parts = [_render(take(p, slice(i, i + step)), size, rng) for i in range(0, len(p["labels"]), step)]
    images = np.concatenate([im for im, _ in parts])
    masks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in NIH_CLASSES:
        found = [(rows + k * step, m) for k, (_, ms) in enumerate(parts) if name in ms for rows, m in [ms[name]]]
        if found:
            masks[name] = (np.concatenate([r for r, _ in found]), np.concatenate([m for _, m in found]))
    return images, masks


def _render(p: dict[str, np.ndarray], size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """:func:`render` of one sub-batch, pixel noise drawn from ``rng``."""
    g = _Geom(p)
    base = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    cos, sin, zoom = _c(np.cos(p["rot"])), _c(np.sin(p["rot"])), _c(p["zoom"])
    x0, y0 = base[None, None, :], base[None, :, None]
    X = (cos * x0 - sin * y0) * zoom + _c(p["shift"][:, 0])
    Y = (sin * x0 + cos * y0) * zoom + _c(p["shift"][:, 1])
    eps = max(0.02, 3.0 / size)

    body = _sm(1 - (X / (g.T + 0.14)) ** 2, 0.15)
    A = 0.55 * body
    domes = [g.dome_y(X, side) for side in (0, 1)]
    lung = np.maximum(*(_sm(1 - g.hemithorax(X, Y, side), 6 * eps) * _sm(domes[side] - Y, eps) for side in (0, 1)))
    abdomen = _sm(Y - np.minimum(*domes), eps)
    heart = _sm(1 - ((X - g.hcx) / g.hrx) ** 2 - ((Y - g.hcy) / g.hry) ** 2, 4 * eps)
    mediast = _sm(0.09 - np.abs(X - 0.01), eps) * _sm(g.hcy - Y, 0.2)
    lung = lung * (1 - heart) * (1 - mediast)
    air = np.ones_like(X)  # per-pixel multipliers findings may change
    vessel_gain = np.ones_like(X)

    emph = p["severity"][:, F["Emphysema"]]
    air *= _c(1 + 0.35 * emph)
    vessel_gain *= _c(1 - 0.55 * emph)

    # vascular markings: ridges of band-limited noise, denser towards the hila
    hil = np.minimum(np.hypot(X - 0.45 * g.lcx[0], Y + 0.02), np.hypot(X - 0.45 * g.lcx[1], Y + 0.02))
    vessels = np.clip(1 - 2.2 * np.abs(_tile(p, size, "vessel", 0)), 0, 1) ** 2 * np.exp(-hil / 0.45)

    opac = np.zeros_like(X)  # lung opacities (weighted by the lung field)
    direct = np.zeros_like(X)  # densities outside the lung field (fluid, hernia)
    masks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    patch = _tile(p, size, "patch", 1)
    for name in NIH_CLASSES:
        rows = np.flatnonzero(p["labels"][:, F[name]])
        if rows.size:
            masks[name] = (rows, _FINDINGS[name](rows, p, g, X, Y, lung, patch, air, vessel_gain, opac, direct, size, eps))

    A = A - 0.40 * lung * air + 0.16 * lung * vessels * vessel_gain + opac * lung + direct
    A += 0.10 * abdomen  # denser abdomen below the domes
    # gastric bubble under the left dome: a normal air pocket (look-alike of hernia)
    bub = p["bubble"]
    bx, by = 0.55 * g.lcx[1] + 0.05, g.base[1] + 0.03
    A -= 0.18 * _c(bub) * _sm(1 - ((X - bx) / 0.09) ** 2 - ((Y - by) / 0.05) ** 2, 0.3) * _sm(by + 0.01 - Y, eps)
    A += _bones(X, Y, g, eps) + _devices(p, X, Y, size)

    img = _c(p["gain"]) * A + _c(p["offset"])
    img += _c(p["noise_sd"]) * rng.standard_normal(img.shape, dtype=np.float32)
    img = np.clip(img, 0, 1) ** _c(p["gamma"])
    out = (img * 255 + 0.5).astype(np.uint8)
    _markers(out, p["marker"])
    return out, masks


def _bones(X, Y, g: _Geom, eps: float) -> np.ndarray:
    """Ribs (curved periodic bands), clavicles and spine."""
    lateral = np.abs(X)
    phase = (Y - 0.45 * lateral ** 2 + 0.9) / 0.16
    ribs = np.clip(np.cos(2 * np.pi * phase), 0, 1) ** 3 * _sm(g.T + 0.05 - lateral, 0.1) * _sm(0.55 - Y, 0.2) * _sm(Y + 0.85, 0.1)
    clav_y = -0.70 + 0.18 * (lateral - 0.1)
    clav = _sm(0.035 - np.abs(Y - clav_y), eps) * _sm(lateral - 0.08, eps) * _sm(0.72 - lateral, 0.1)
    spine = _sm(0.065 - np.abs(X), eps)
    return 0.10 * ribs + 0.22 * clav + 0.12 * spine


def _devices(p: dict[str, np.ndarray], X, Y, size: int) -> np.ndarray:
    """Support devices (confounders): endotracheal tube, central line, ECG leads."""
    out = np.zeros_like(X)
    w = max(0.008, 1.2 / size)
    du = p["dev_u"]
    dev = p["devices"]
    r = np.flatnonzero(dev & DEVICE_TUBE)
    if r.size:
        tip = _c(-0.45 + 0.15 * du[r, 0])
        top = _c(np.full(r.size, 0.01, np.float32))
        d = _segment_dist(X[r], Y[r], top, top - 1.21, top + _c(0.02 * du[r, 1]), tip)
        out[r] += 0.35 * (np.abs(d - w) < w)
    r = np.flatnonzero(dev & DEVICE_LINE)
    if r.size:
        sx = _c(np.where(du[r, 2] < 0.5, -1.0, 1.0))
        one = np.ones_like(sx)  # per-row [k, 1, 1] points: from a shoulder along the clavicle into the SVC
        pts = [(0.75 * sx, -0.72 * one), (0.3 * sx, -0.62 * one), (0.03 * one, -0.3 * one), (0.05 * one, _c(-0.1 + 0.2 * du[r, 3]))]
        d = np.minimum.reduce([_segment_dist(X[r], Y[r], *pts[i], *pts[i + 1]) for i in range(3)])
        out[r] += 0.4 * (d < w)
    r = np.flatnonzero(dev & DEVICE_ECG)
    if r.size:
        for cx, cy in ((-0.55, -0.9), (0.55, -0.9), (0.6, 0.55)):
            d = np.hypot(X[r] - cx - 0.1 * _c(du[r, 4] - 0.5), Y[r] - cy - 0.1 * _c(du[r, 5] - 0.5))
            out[r] += 0.5 * (d < max(0.03, 2.0 / size))
    return out


def _markers(img: np.ndarray, right_side: np.ndarray) -> None:
    """Burn the side marker ("L" top right or "R" top left) into uint8 images, in place."""
    size = img.shape[-1]
    scale = max(1, size // 64)
    for i, letter in enumerate(np.where(right_side, "L", "R")):
        bitmap = np.kron(_MARKERS[letter], np.ones((scale, scale), bool))
        h, w = bitmap.shape
        y0, x0 = 2 * scale, (size - w - 2 * scale) if letter == "L" else 2 * scale
        img[i, y0:y0 + h, x0:x0 + w][bitmap] = 245


# --------------------------------------------------------------------------------------------
# findings: each adds to `opac` (or changes `air` / `vessel_gain`) on its rows and returns masks
# --------------------------------------------------------------------------------------------
def _setup(rows, p, X, Y, name):
    """Severity ``[k,1,1]``, uniforms ``[k,6]`` and coordinates of the rows with finding ``name``."""
    return _c(p["severity"][rows, F[name]]), p["f_u"][rows, F[name]], X[rows], Y[rows]


def _side(u: np.ndarray) -> np.ndarray:
    return (u < 0.5).astype(int)


def _lung_point(g: _Geom, rows, side, fx, fy):
    """A point inside lung ``side`` at fractions (fx, fy) of its radii, per row."""
    lcx = np.where(_c(side) == 0, g.lcx[0][rows], g.lcx[1][rows])
    return lcx + _c(fx) * g.lrx[rows], g.lcy[rows] + _c(fy) * g.lry[rows]


def _blob(X, Y, cx, cy, rx, ry):
    return ((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2


def _atelectasis(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    # u0 side, u1 lateral position, u2 plate (0) .. wedge (1), u3 angle, u4 height
    s, u, x, y = _setup(rows, p, X, Y, "Atelectasis")
    cx, cy = _lung_point(g, rows, _side(u[:, 0]), 0.7 * (u[:, 1] - 0.5), 0.35 + 0.25 * u[:, 4])
    th = _c((u[:, 3] - 0.5) * 0.6)
    along = (x - cx) * np.cos(th) + (y - cy) * np.sin(th)
    across = -(x - cx) * np.sin(th) + (y - cy) * np.cos(th)
    half_t = (0.015 + 0.04 * s) * (1 + 1.5 * _c(u[:, 2]))
    shape = _sm(1 - (along / (0.12 + 0.10 * s)) ** 2 - (across / half_t) ** 2, 0.6)
    opac[rows] += (0.10 + 0.25 * s) * shape
    return shape * lung[rows] > 0.25


def _cardiomegaly(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    x, y = X[rows], Y[rows]
    return ((x - g.hcx[rows]) / g.hrx[rows]) ** 2 + ((y - g.hcy[rows]) / g.hry[rows]) ** 2 < 1


def _effusion(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    # u0 side: <0.4 right, <0.8 left, else both
    s, u, x, y = _setup(rows, p, X, Y, "Effusion")
    region = np.zeros_like(x)
    h = 0.06 + 0.30 * s
    for side, on in ((0, (u[:, 0] < 0.4) | (u[:, 0] >= 0.8)), (1, u[:, 0] >= 0.4)):
        lcx, base = g.lcx[side][rows], g.base[side][rows]
        lat = np.clip((x - lcx) / g.lrx[rows] * (1 if side else -1), 0, 1)
        surface = base - h - 0.6 * h * lat ** 2  # meniscus: fluid climbs the lateral wall
        inside = _sm(1.15 - ((x - lcx) / g.lrx[rows]) ** 2 - ((y - g.lcy[rows]) / (g.lry[rows] + 0.1)) ** 2, 0.2)
        region = np.maximum(region, _c(on) * _sm(y - surface, 2 * eps) * inside * _sm(base + 0.06 - y, eps))
    fluid = region * (0.55 + 0.45 * s)  # fluid replaces lung air with soft-tissue density
    air[rows] *= 1 - fluid
    vg[rows] *= 1 - fluid
    return region * lung[rows] > 0.5


def _infiltration(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    # u0 side, u1/u2 position, u3 bilateral (<0.35), u4 extent
    s, u, x, y = _setup(rows, p, X, Y, "Infiltration")
    shape = np.zeros_like(x)
    side = _side(u[:, 0])
    for k, sd in enumerate((side, 1 - side)):
        on = np.ones(len(rows), bool) if k == 0 else u[:, 3] < 0.35
        cx, cy = _lung_point(g, rows, sd, 1.0 * (u[:, 1] - 0.5), 1.1 * (u[:, 2] - 0.4))
        r = 0.14 + 0.10 * s + 0.05 * _c(u[:, 4])
        shape = np.maximum(shape, _c(on) * np.exp(-_blob(x, y, cx, cy, r, r)))
    shape = shape * _sm(patch[rows] + 0.2, 1.2)  # patchy, ill-defined
    opac[rows] += (0.10 + 0.20 * s) * shape
    return shape * lung[rows] > 0.3


def _round(rows, p, g, X, Y, lung, opac, name, r, amp, lobes):
    s, u, x, y = _setup(rows, p, X, Y, name)
    cx, cy = _lung_point(g, rows, _side(u[:, 0]), 1.1 * (u[:, 1] - 0.5), 1.2 * (u[:, 2] - 0.45))
    dx, dy = x - cx, y - cy
    rr = r
    if lobes:  # lobulated contour
        rr = r * (1 + 0.12 * np.sin(5 * np.arctan2(dy, dx) + _c(6.28 * u[:, 4])))
    shape = _sm(rr - np.hypot(dx, dy), 0.02)
    opac[rows] += amp * shape
    return (shape > 0.5) & (lung[rows] > 0.2)


def _mass(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    # u0 side, u1/u2 position, u3 size jitter, u4 lobulation phase
    s, u = _c(p["severity"][rows, F["Mass"]]), p["f_u"][rows, F["Mass"]]
    r = 0.075 + 0.095 * (0.7 * s + 0.3 * _c(u[:, 3]))
    return _round(rows, p, g, X, Y, lung, opac, "Mass", r, 0.14 + 0.24 * s, True)


def _nodule(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    # u0 side, u1/u2 position, u3 size jitter
    s, u = _c(p["severity"][rows, F["Nodule"]]), p["f_u"][rows, F["Nodule"]]
    r = np.maximum(0.025 + 0.06 * (0.5 * s + 0.5 * _c(u[:, 3])), 1.5 / size)
    return _round(rows, p, g, X, Y, lung, opac, "Nodule", r, 0.12 + 0.30 * s, False)


def _pneumonia(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    # u0 side, u1 lobe (upper / middle / lower), u2 lateral position, u3 extent
    s, u, x, y = _setup(rows, p, X, Y, "Pneumonia")
    lobe = np.minimum((u[:, 1] * 3).astype(int), 2)
    fy = np.array([-0.45, 0.15, 0.55], np.float32)[lobe]
    cx, cy = _lung_point(g, rows, _side(u[:, 0]), 0.6 * (u[:, 2] - 0.5), fy)
    rx, ry = 0.6 * g.lrx[rows] * (0.7 + 0.4 * s), 0.16 + 0.08 * _c(u[:, 3]) + 0.06 * s
    fissure = cy - 0.6 * ry  # middle/lower lobes: sharp upper border at a fissure
    shape = np.exp(-_blob(x, y, cx, cy, rx, ry) * 1.5) * np.where(_c(lobe) > 0, _sm(y - fissure, eps), 1.0)
    shape = shape * (0.75 + 0.25 * np.clip(patch[rows], -1, 1))
    opac[rows] += (0.12 + 0.24 * s) * shape
    return shape * lung[rows] > 0.3


def _pneumothorax(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    # u0 side
    s, u, x, y = _setup(rows, p, X, Y, "Pneumothorax")
    side = _side(u[:, 0])
    sgn = _c(np.where(side == 0, -1.0, 1.0))
    lcx = np.where(_c(side) == 0, g.lcx[0][rows], g.lcx[1][rows])
    d = 0.06 + 0.24 * s  # how far the lung has collapsed (fraction of its radius)
    cx = lcx - sgn * 0.6 * d * g.lrx[rows]
    cy = g.lcy[rows] + 0.5 * d * g.lry[rows]
    e = _blob(x, y, cx, cy, g.lrx[rows] * (1 - d), g.lry[rows] * (1 - 0.8 * d))
    hemi = _sm(1 - _blob(x, y, lcx, g.lcy[rows], g.lrx[rows], g.lry[rows]), 0.1)
    region = _sm(e - 1, 0.05) * hemi * lung[rows]
    air[rows] *= 1 + (0.15 + 0.25 * s) * region
    vg[rows] *= 1 - region  # no lung markings beyond the pleural line
    line = _sm(0.5 * max(0.012, 1.5 / size) - np.abs(np.sqrt(e) - 1) * g.lrx[rows], eps * 0.5) * hemi
    opac[rows] += (0.10 + 0.15 * s) * line
    return region > 0.5


def _consolidation(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    # u0 side, u1/u2 position, u3 extent, u4 bronchogram phase
    s, u, x, y = _setup(rows, p, X, Y, "Consolidation")
    cx, cy = _lung_point(g, rows, _side(u[:, 0]), 0.7 * (u[:, 1] - 0.5), 1.2 * (u[:, 2] - 0.4))
    r = 0.10 + 0.08 * s + 0.05 * _c(u[:, 3])
    shape = _sm(1 - _blob(x, y, cx, cy, r * 1.2, r) + 0.15 * patch[rows], 0.5)
    hx = np.where(cx < 0, 0.45 * g.lcx[0][rows], 0.45 * g.lcx[1][rows])
    ang = np.arctan2(y + 0.02, x - hx)
    bronch = (np.abs(np.sin(9 * ang + _c(6.28 * u[:, 4]))) < 0.18) * (np.hypot(x - hx, y + 0.02) > 0.08)
    amp = 0.22 + 0.26 * s
    opac[rows] += amp * shape * (1 - 0.55 * bronch)  # air bronchograms: dark branching lines
    return shape * lung[rows] > 0.5


def _edema(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    s, u, x, y = _setup(rows, p, X, Y, "Edema")
    sd = 0.17 + 0.08 * s
    haze = np.maximum(np.exp(-_blob(x, y, 0.5 * g.lcx[0][rows], -0.02, sd * 1.1, sd * 1.3)),
                      np.exp(-_blob(x, y, 0.5 * g.lcx[1][rows], -0.02, sd * 1.1, sd * 1.3)))
    haze = haze * (0.7 + 0.3 * np.clip(patch[rows], -1, 1))
    periph = np.maximum(_sm(np.abs(x - g.lcx[0][rows]) - 0.55 * g.lrx[rows], 0.05) * (x < 0),
                        _sm(np.abs(x - g.lcx[1][rows]) - 0.55 * g.lrx[rows], 0.05) * (x > 0))
    kerley = (np.cos(2 * np.pi * y / 0.045) > 0.85) * periph * _sm(y - 0.2, 0.05)
    opac[rows] += (0.10 + 0.22 * s) * haze + 0.12 * s * kerley
    vg[rows] *= 1 + 0.5 * s  # vascular congestion
    return haze * lung[rows] > 0.45


def _emphysema(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    return lung[rows] > 0.5  # the signs are in the anatomy (_Geom) and air/vessel multipliers


def _fibrosis(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    s, u, x, y = _setup(rows, p, X, Y, "Fibrosis")
    retic = _bank(size, "retic")[p["tex"][rows, 2]]
    lines = np.clip(1 - 3.0 * np.abs(retic), 0, 1)
    lat = np.minimum(np.abs(x - g.lcx[0][rows]), np.abs(x - g.lcx[1][rows])) / g.lrx[rows]
    region = _sm(y - (0.30 - 0.35 * s), 0.25) * _sm(lat - 0.2, 0.4)
    opac[rows] += (0.12 + 0.22 * s) * lines * region
    return region * lung[rows] > 0.5


def _pleural_thickening(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    # u0 side, u1 apical cap (<0.5) or lateral wall
    s, u, x, y = _setup(rows, p, X, Y, "Pleural_Thickening")
    side = _side(u[:, 0])
    lcx = np.where(_c(side) == 0, g.lcx[0][rows], g.lcx[1][rows])
    e = np.sqrt(_blob(x, y, lcx, g.lcy[rows], g.lrx[rows], g.lry[rows]))
    t = 0.06 + 0.10 * s
    band = _sm(e - (1 - t), 0.03) * _sm(1.02 - e, 0.03)
    apical = _c(u[:, 1] < 0.5)
    sgn = _c(np.where(side == 0, -1.0, 1.0))
    where = apical * _sm(g.lcy[rows] - 0.45 * g.lry[rows] - y, 0.1) + (1 - apical) * _sm(sgn * (x - lcx) - 0.4 * g.lrx[rows], 0.1) * _sm(0.5 - y, 0.1)
    region = band * where
    opac[rows] += (0.20 + 0.25 * s) * region
    return region > 0.5


def _hernia(rows, p, g, X, Y, lung, patch, air, vg, opac, direct, size, eps):
    # u0 x jitter, u1 air-fluid level height
    s, u, x, y = _setup(rows, p, X, Y, "Hernia")
    r = 0.07 + 0.07 * s
    cx = _c(0.06 + 0.08 * (u[:, 0] - 0.5))
    cy = np.minimum(g.base[0][rows], g.base[1][rows]) - 0.15 - r * 0.3
    disc = _sm(r - np.hypot(x - cx, y - cy), 0.015)
    level = cy + r * _c(0.4 * (u[:, 1] - 0.5))
    gas = disc * _sm(level - y, eps)
    air_term = -(0.20 + 0.20 * s) * gas + 0.06 * disc
    direct[rows] += air_term
    return disc > 0.5


_FINDINGS = {
    "Atelectasis": _atelectasis, "Cardiomegaly": _cardiomegaly, "Effusion": _effusion,
    "Infiltration": _infiltration, "Mass": _mass, "Nodule": _nodule, "Pneumonia": _pneumonia,
    "Pneumothorax": _pneumothorax, "Consolidation": _consolidation, "Edema": _edema,
    "Emphysema": _emphysema, "Fibrosis": _fibrosis, "Pleural_Thickening": _pleural_thickening,
    "Hernia": _hernia,
}


# --------------------------------------------------------------------------------------------
# teaching figure
# --------------------------------------------------------------------------------------------
def plot_finding_gallery(out_path: str | Path, size: int = 128, seed: int = 0) -> Path:
    """Draw one row per finding: a mild and a severe example, each with its mask outline.

    Parameters
    ----------
    out_path
        Image file to write (any matplotlib format).
    size
        Render size in pixels.
    seed
        Seed of the examples.

    Returns
    -------
    Path of the written figure.
    """
    # a Figure on the Agg canvas, not pyplot: switching pyplot to Agg here would leave a notebook
    # that calls this without figures for every later plt.show()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from paperkit.artifacts import atomic_path

    k = len(NIH_CLASSES)
    labels = np.zeros((2 * k, k), bool)
    severity = np.zeros((2 * k, k), np.float32)
    for i in range(k):
        labels[2 * i: 2 * i + 2, i] = True
        severity[2 * i, i], severity[2 * i + 1, i] = 0.25, 0.95
    rng = np.random.default_rng(seed)
    params = sample_params(rng, labels, severity, np.zeros(2 * k, bool), np.zeros(2 * k, int))
    images, masks = render(params, size, seed)
    fig = Figure(figsize=(4, 2 * k))
    FigureCanvasAgg(fig)
    axes = fig.subplots(k, 2)
    for i, name in enumerate(NIH_CLASSES):
        rows, m = masks[name]
        for j in range(2):
            ax = axes[i, j]
            ax.imshow(images[2 * i + j], cmap="gray", vmin=0, vmax=255)
            ax.contour(m[list(rows).index(2 * i + j)], levels=[0.5], colors="yellow", linewidths=0.7)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{name} ({'mild' if j == 0 else 'severe'})", fontsize=7)
    fig.tight_layout()
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=110, format=out_path.suffix.lstrip(".") or "png")
    return out_path
