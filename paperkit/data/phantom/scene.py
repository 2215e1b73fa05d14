"""What every finding renderer works on: soft-edge math, texture tiles, per-image anatomy, the :class:`Scene`.

Units are normalised image coordinates (``[-1, 1]`` across the film). Per-image quantities of a
sub-batch of ``n`` images are ``[n, 1, 1]`` arrays so that they broadcast against ``[n, S, S]``
pixel grids.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from paperkit.data.labels import NIH_CLASSES

CLASS_INDEX = {name: i for i, name in enumerate(NIH_CLASSES)}  # finding -> column of labels/severity/f_u
N_UNIFORMS = 6  # per-finding uniforms: each renderer documents how it uses them
TEXTURE_TILES = 24  # tiles per texture bank; sample_params draws which tile each image uses


def soft_step(d: np.ndarray, width: float) -> np.ndarray:
    """Soft edge: 0 for ``d <= -width/2``, 1 for ``d >= width/2``, linear between (cheaper than a sigmoid)."""
    t = d * np.float32(1.0 / width)
    t += np.float32(0.5)
    return np.clip(t, 0.0, 1.0, out=t)


def per_image(a: np.ndarray) -> np.ndarray:
    """Per-image scalars ``[n]`` -> float32 ``[n, 1, 1]`` (broadcasts against ``[n, S, S]`` grids)."""
    return np.asarray(a, np.float32)[:, None, None]


def ellipse(X, Y, cx, cy, rx, ry) -> np.ndarray:
    """Squared elliptical radius around ``(cx, cy)``: ``< 1`` inside the ellipse of radii ``rx, ry``."""
    return ((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2


def pick_side(u: np.ndarray) -> np.ndarray:
    """A uniform -> lung side (0 = image left = patient's right, 1 = image right)."""
    return (u < 0.5).astype(int)


@lru_cache(maxsize=8)
def texture_bank(size: int, kind: str) -> np.ndarray:
    """Fixed bank of unit-variance band-limited noise tiles ``[K, size, size]`` (same for every seed)."""
    bands = {"vessel": (3.0, 9.0), "patch": (1.0, 3.5), "retic": (10.0, 22.0)}  # cycles per image width
    lo, hi = bands[kind]
    rng = np.random.default_rng(20210202 + size + len(kind))
    f = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.rfftfreq(size)[None, :] ** 2) * size
    hi = min(hi, size / 3)
    filt = ((f >= lo) & (f <= hi)).astype(np.float32)
    noise = rng.standard_normal((TEXTURE_TILES, size, size), dtype=np.float32)
    tiles = np.fft.irfft2(np.fft.rfft2(noise) * filt, s=(size, size)).astype(np.float32)
    tiles /= tiles.std(axis=(1, 2), keepdims=True)
    return tiles


def texture(params: dict[str, np.ndarray], size: int, kind: str, slot: int) -> np.ndarray:
    """One bank tile per image, mirrored at random (``slot`` picks the ``tex``/``flip`` column)."""
    t = texture_bank(size, kind)[params["tex"][:, slot]]
    return np.where(params["flip"][:, slot, None, None], t[:, :, ::-1], t)


class Anatomy:
    """Per-image anatomy of a sub-batch (``[n, 1, 1]`` arrays), already adjusted by the findings.

    Each lung is an ellipse (centre ``lung_cx[side], lung_cy``, radii ``lung_rx, lung_ry``) cut
    below by its diaphragm dome; side 0 is the image left (patient's right). The heart is an
    ellipse whose width is the cardiothoracic ratio ``ctr`` times the thorax width.
    """

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        labels, severity, uniforms = params["labels"], params["severity"], params["f_u"]
        n = len(labels)
        sev = lambda name: severity[:, CLASS_INDEX[name]]  # noqa: E731
        emph = sev("Emphysema")
        self.thorax_rx = per_image(0.80 * params["thorax"])  # inner thorax half-width
        self.lung_ry = per_image(0.66 * params["lung_h"] + 0.07 * emph)  # emphysema: taller lungs
        self.lung_cy = per_image(np.full(n, -0.08, np.float32))
        base = np.stack([0.60 + params["dome"][:, 0] - 0.03, 0.60 + params["dome"][:, 1]], 1) + 0.08 * emph[:, None]
        dome_h = np.full((n, 2), 0.17, np.float32) * (1 - 0.8 * emph[:, None])  # emphysema: flat domes
        # volume loss raises the diaphragm on the atelectatic side; fibrosis on both
        atel_side = pick_side(uniforms[:, CLASS_INDEX["Atelectasis"], 0])
        base[np.arange(n), atel_side] -= 0.07 * sev("Atelectasis")
        base -= 0.04 * sev("Fibrosis")[:, None]
        self.dome_base = [per_image(base[:, 0]), per_image(base[:, 1])]  # y of each dome's lateral foot
        self.dome_height = [per_image(dome_h[:, 0]), per_image(dome_h[:, 1])]
        self.lung_cx = [-0.5 * self.thorax_rx, 0.5 * self.thorax_rx]
        self.lung_rx = 0.36 * self.thorax_rx
        # heart: AP films magnify it; cardiomegaly sets CTR 0.52-0.68
        cardio = CLASS_INDEX["Cardiomegaly"]
        ctr = (
            params["ctr"]
            + 0.04 * params["view_ap"]
            + (0.08 + 0.16 * sev("Cardiomegaly") - (params["ctr"] - 0.44)) * labels[:, cardio]
        )
        heart_width = per_image(ctr) * 2 * self.thorax_rx
        self.ctr = ctr  # cardiothoracic ratio [n]
        self.heart_rx, self.heart_cx = 0.5 * heart_width, 0.12 * heart_width
        self.heart_cy = (self.dome_base[0] + self.dome_base[1]) / 2 - 0.30
        self.heart_ry = 0.27 + 0.25 * (self.heart_rx - 0.35)

    def hemithorax(self, X, Y, side: int) -> np.ndarray:
        """Ellipse coordinate of a lung field without its diaphragm cut (``< 1`` inside)."""
        return ((X - self.lung_cx[side]) / self.lung_rx) ** 2 + ((Y - self.lung_cy) / self.lung_ry) ** 2

    def dome_y(self, X, side: int) -> np.ndarray:
        """Height of the diaphragm dome of ``side`` under every pixel column."""
        return self.dome_base[side] - self.dome_height[side] * np.clip(
            1 - ((X - self.lung_cx[side]) / self.lung_rx) ** 2, 0, 1
        )

    def lung_cx_of(self, side: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Centre x of lung ``side[i]`` of image ``rows[i]`` (``[k, 1, 1]``)."""
        return np.where(per_image(side) == 0, self.lung_cx[0][rows], self.lung_cx[1][rows])

    def lung_point(self, rows: np.ndarray, side: np.ndarray, fx, fy) -> tuple[np.ndarray, np.ndarray]:
        """A point of lung ``side`` at fractions ``(fx, fy)`` of its radii from its centre, per row."""
        cx = self.lung_cx_of(side, rows)
        return cx + per_image(fx) * self.lung_rx[rows], self.lung_cy[rows] + per_image(fy) * self.lung_ry[rows]


@dataclass(frozen=True)
class Cases:
    """The images of a sub-batch that have one finding, with that finding's own draws."""

    rows: np.ndarray  # [k] indices into the sub-batch
    severity: np.ndarray  # [k, 1, 1] in (0, 1]: sets size *and* contrast
    u: np.ndarray  # [k, N_UNIFORMS] the finding's uniforms (the renderer's comment says which does what)
    x: np.ndarray  # [k, S, S] Scene.X of these images
    y: np.ndarray  # [k, S, S] Scene.Y of these images


@dataclass(frozen=True)
class Scene:
    """Everything the finding renderers see of one sub-batch of ``n`` images at ``size`` px.

    Contract: the scene owns the four *layers* (``air`` ... ``unmasked_density``); a renderer adds
    to (or multiplies) them **in place** on its rows only, and returns its finding's boolean masks.
    Renderers run in :data:`~paperkit.data.phantom.findings.FINDINGS` order (NIH class order), which
    fixes the floating-point order of the in-place sums: changing it changes the benchmark's bytes.
    """

    params: dict[str, np.ndarray]  # the sub-batch's rendering parameters (see sample_params)
    anatomy: Anatomy
    size: int  # pixels per side
    eps: float  # width of a sharp edge in normalised units (~3 px, at least 0.02)
    # conventional coordinate grids [n, S, S]: where each pixel lies in the patient's frame after the
    # film's rotation, shift and zoom; x grows to the image right (patient's left), y downwards
    X: np.ndarray
    Y: np.ndarray
    body: np.ndarray  # soft-tissue silhouette of the trunk, in [0, 1]
    lung: np.ndarray  # lung fields in [0, 1] (heart, mediastinum and below the domes cut out)
    abdomen: np.ndarray  # below the higher diaphragm dome, in [0, 1]
    vessels: np.ndarray  # vascular markings (ridges of noise, denser towards the hila), before vessel_gain
    patch: np.ndarray  # low-frequency unit-variance noise that makes airspace opacities patchy
    # layers findings paint (composited by radiograph._attenuation):
    air: np.ndarray  # lung air lucency multiplier: > 1 hyperlucent (emphysema, pneumothorax), < 1 fluid
    vessel_gain: np.ndarray  # visibility multiplier of vascular markings: 0 beyond a pleural line, > 1 congested
    lung_opacity: np.ndarray  # extra attenuation inside the lungs (weighted by `lung` at composition)
    unmasked_density: np.ndarray  # extra attenuation anywhere, not weighted by `lung` (hernia)

    @classmethod
    def build(cls, params: dict[str, np.ndarray], size: int) -> Scene:
        """Coordinate grids, anatomy masks and blank layers of a sub-batch (no finding drawn yet)."""
        anatomy = a = Anatomy(params)
        grid = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
        cos, sin, zoom = per_image(np.cos(params["rot"])), per_image(np.sin(params["rot"])), per_image(params["zoom"])
        x0, y0 = grid[None, None, :], grid[None, :, None]
        X = (cos * x0 - sin * y0) * zoom + per_image(params["shift"][:, 0])
        Y = (sin * x0 + cos * y0) * zoom + per_image(params["shift"][:, 1])
        eps = max(0.02, 3.0 / size)

        body = soft_step(1 - (X / (a.thorax_rx + 0.14)) ** 2, 0.15)
        domes = [a.dome_y(X, side) for side in (0, 1)]
        lung = np.maximum(
            *(soft_step(1 - a.hemithorax(X, Y, side), 6 * eps) * soft_step(domes[side] - Y, eps) for side in (0, 1))
        )
        abdomen = soft_step(Y - np.minimum(*domes), eps)
        heart = soft_step(1 - ((X - a.heart_cx) / a.heart_rx) ** 2 - ((Y - a.heart_cy) / a.heart_ry) ** 2, 4 * eps)
        mediastinum = soft_step(0.09 - np.abs(X - 0.01), eps) * soft_step(a.heart_cy - Y, 0.2)
        lung = lung * (1 - heart) * (1 - mediastinum)

        emph = params["severity"][:, CLASS_INDEX["Emphysema"]]  # hyperlucent lungs, sparse vessels
        air = np.ones_like(X)
        air *= per_image(1 + 0.35 * emph)
        vessel_gain = np.ones_like(X)
        vessel_gain *= per_image(1 - 0.55 * emph)
        hila = np.minimum(np.hypot(X - 0.45 * a.lung_cx[0], Y + 0.02), np.hypot(X - 0.45 * a.lung_cx[1], Y + 0.02))
        vessels = np.clip(1 - 2.2 * np.abs(texture(params, size, "vessel", 0)), 0, 1) ** 2 * np.exp(-hila / 0.45)
        return cls(
            params=params,
            anatomy=anatomy,
            size=size,
            eps=eps,
            X=X,
            Y=Y,
            body=body,
            lung=lung,
            abdomen=abdomen,
            vessels=vessels,
            patch=texture(params, size, "patch", 1),
            air=air,
            vessel_gain=vessel_gain,
            lung_opacity=np.zeros_like(X),
            unmasked_density=np.zeros_like(X),
        )

    def cases(self, name: str) -> Cases | None:
        """The rows that have finding ``name`` and their draws, or None if no image has it."""
        column = CLASS_INDEX[name]
        rows = np.flatnonzero(self.params["labels"][:, column])
        if not rows.size:
            return None
        return Cases(
            rows,
            per_image(self.params["severity"][rows, column]),
            self.params["f_u"][rows, column],
            self.X[rows],
            self.Y[rows],
        )
