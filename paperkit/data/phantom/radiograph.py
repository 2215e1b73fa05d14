"""Parameters, batch rendering and compositing of the phantom radiographs; the finding gallery figure."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from paperkit.data.labels import NIH_CLASSES
from paperkit.data.phantom.findings import FINDINGS
from paperkit.data.phantom.scene import N_UNIFORMS, TEXTURE_TILES, Anatomy, Scene, per_image, soft_step

MIN_SIZE, MAX_SIZE = 32, 512
DEVICE_TUBE, DEVICE_LINE, DEVICE_ECG = 1, 2, 4
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
    return {  # the draw order is part of the benchmark: append new parameters at the end
        "labels": labels,
        "severity": np.clip(np.asarray(severity, np.float32), 0, 1) * labels,
        "view_ap": np.asarray(view_ap, bool),
        "devices": np.asarray(devices, np.int64),
        "f_u": u(len(NIH_CLASSES), N_UNIFORMS),  # each finding's own uniforms
        "thorax": 0.93 + 0.10 * u(),  # thorax half-width scale
        "lung_h": 0.92 + 0.14 * u(),  # lung height scale
        "ctr": 0.44 + 0.025 * rng.standard_normal(n).astype(np.float32),  # normal cardiothoracic ratio
        "rot": np.deg2rad(3.0) * rng.standard_normal(n).astype(np.float32),  # film rotation (radians)
        "shift": 0.04 * (u(2) - 0.5),  # film centring (x, y)
        "zoom": 0.95 + 0.10 * u(),  # field of view scale
        "dome": 0.04 * (u(2) - 0.5),  # diaphragm height of each side
        "bubble": u() < 0.7,  # gastric bubble: the normal look-alike of a hernia
        "gain": 0.85 + 0.30 * u(),  # exposure: grey = (gain * attenuation + offset) ** gamma
        "offset": -0.05 + 0.12 * u(),
        "gamma": 0.8 + 0.45 * u(),
        "noise_sd": 0.006 + 0.025 * u(),  # quantum noise
        "tex": rng.integers(0, TEXTURE_TILES, (n, 4)),  # texture tile per slot (vessel, patch, retic, -)
        "flip": u(4) < 0.5,  # mirror each slot's tile
        "marker": u() < 0.5,  # side marker: "L" top right, else "R" top left
        "dev_u": u(6),  # device positions
    }


def take(params: dict[str, np.ndarray], index: slice | np.ndarray) -> dict[str, np.ndarray]:
    """Rows ``index`` of every parameter array (a batch for :func:`render`)."""
    return {k: v[index] for k, v in params.items()}


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------
def render(
    p: dict[str, np.ndarray], size: int, noise_seed: int | tuple
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
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
    step = max(1, 2**17 // (size * size))
    parts = [_render_subbatch(take(p, slice(i, i + step)), size, rng) for i in range(0, len(p["labels"]), step)]
    images = np.concatenate([im for im, _ in parts])
    masks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in NIH_CLASSES:
        found = [(part[name][0] + k * step, part[name][1]) for k, (_, part) in enumerate(parts) if name in part]
        if found:
            masks[name] = (np.concatenate([r for r, _ in found]), np.concatenate([m for _, m in found]))
    return images, masks


def _render_subbatch(p: dict[str, np.ndarray], size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """:func:`render` of one sub-batch, pixel noise drawn from ``rng``."""
    scene = Scene.build(p, size)
    masks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, renderer in FINDINGS.items():
        cases = scene.cases(name)
        if cases is not None:
            masks[name] = (cases.rows, renderer(scene, cases))
    # exposure curve and quantum noise turn attenuation into grey levels
    img = per_image(p["gain"]) * _attenuation(scene) + per_image(p["offset"])
    img += per_image(p["noise_sd"]) * rng.standard_normal(img.shape, dtype=np.float32)
    img = np.clip(img, 0, 1) ** per_image(p["gamma"])
    out = (img * 255 + 0.5).astype(np.uint8)
    _markers(out, p["marker"])
    return out, masks


def _attenuation(scene: Scene) -> np.ndarray:
    """Soft tissue + bone - lung air (with the findings' layers) + devices, per pixel."""
    s, a, p = scene, scene.anatomy, scene.params
    X, Y, eps = s.X, s.Y, s.eps
    A = 0.55 * s.body
    A = (
        A
        - 0.40 * s.lung * s.air
        + 0.16 * s.lung * s.vessels * s.vessel_gain
        + s.lung_opacity * s.lung
        + s.unmasked_density
    )
    A += 0.10 * s.abdomen  # denser abdomen below the domes
    # gastric bubble under the left dome: a normal air pocket (look-alike of hernia)
    bx, by = 0.55 * a.lung_cx[1] + 0.05, a.dome_base[1] + 0.03
    A -= (
        0.18
        * per_image(p["bubble"])
        * soft_step(1 - ((X - bx) / 0.09) ** 2 - ((Y - by) / 0.05) ** 2, 0.3)
        * soft_step(by + 0.01 - Y, eps)
    )
    A += _bones(X, Y, a, eps) + _devices(p, X, Y, s.size)
    return A


def _bones(X, Y, a: Anatomy, eps: float) -> np.ndarray:
    """Ribs (curved periodic bands), clavicles and spine."""
    lateral = np.abs(X)
    phase = (Y - 0.45 * lateral**2 + 0.9) / 0.16
    ribs = (
        np.clip(np.cos(2 * np.pi * phase), 0, 1) ** 3
        * soft_step(a.thorax_rx + 0.05 - lateral, 0.1)
        * soft_step(0.55 - Y, 0.2)
        * soft_step(Y + 0.85, 0.1)
    )
    clavicle_y = -0.70 + 0.18 * (lateral - 0.1)
    clavicles = (
        soft_step(0.035 - np.abs(Y - clavicle_y), eps) * soft_step(lateral - 0.08, eps) * soft_step(0.72 - lateral, 0.1)
    )
    spine = soft_step(0.065 - np.abs(X), eps)
    return 0.10 * ribs + 0.22 * clavicles + 0.12 * spine


def _segment_distance(X, Y, ax, ay, bx, by) -> np.ndarray:
    """Distance of every pixel to the segment a-b (a, b per image)."""
    dx, dy = bx - ax, by - ay
    t = np.clip(((X - ax) * dx + (Y - ay) * dy) / (dx * dx + dy * dy + 1e-9), 0, 1)
    return np.hypot(X - ax - t * dx, Y - ay - t * dy)


def _devices(p: dict[str, np.ndarray], X, Y, size: int) -> np.ndarray:
    """Support devices (confounders): endotracheal tube, central line, ECG leads."""
    out = np.zeros_like(X)
    w = max(0.008, 1.2 / size)
    du = p["dev_u"]
    dev = p["devices"]
    r = np.flatnonzero(dev & DEVICE_TUBE)
    if r.size:
        tip = per_image(-0.45 + 0.15 * du[r, 0])
        top = per_image(np.full(r.size, 0.01, np.float32))
        d = _segment_distance(X[r], Y[r], top, top - 1.21, top + per_image(0.02 * du[r, 1]), tip)
        out[r] += 0.35 * (np.abs(d - w) < w)
    r = np.flatnonzero(dev & DEVICE_LINE)
    if r.size:
        sx = per_image(np.where(du[r, 2] < 0.5, -1.0, 1.0))
        one = np.ones_like(sx)  # per-row [k, 1, 1] points: from a shoulder along the clavicle into the SVC
        pts = [
            (0.75 * sx, -0.72 * one),
            (0.3 * sx, -0.62 * one),
            (0.03 * one, -0.3 * one),
            (0.05 * one, per_image(-0.1 + 0.2 * du[r, 3])),
        ]
        d = np.minimum.reduce([_segment_distance(X[r], Y[r], *pts[i], *pts[i + 1]) for i in range(3)])
        out[r] += 0.4 * (d < w)
    r = np.flatnonzero(dev & DEVICE_ECG)
    if r.size:
        for cx, cy in ((-0.55, -0.9), (0.55, -0.9), (0.6, 0.55)):
            d = np.hypot(X[r] - cx - 0.1 * per_image(du[r, 4] - 0.5), Y[r] - cy - 0.1 * per_image(du[r, 5] - 0.5))
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
        img[i, y0 : y0 + h, x0 : x0 + w][bitmap] = 245


# --------------------------------------------------------------------------------------------
# teaching figure
# --------------------------------------------------------------------------------------------
def plot_finding_gallery(out_path: str | Path, size: int = 128, seed: int = 0) -> Path:
    """Draw one row per finding: a mild and a severe example, each with its mask outline.

    Builds a ``Figure`` on its own Agg canvas: matplotlib's global backend (a notebook's inline
    one, say) is left alone.

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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = len(NIH_CLASSES)
    labels = np.zeros((2 * k, k), bool)
    severity = np.zeros((2 * k, k), np.float32)
    for i in range(k):
        labels[2 * i : 2 * i + 2, i] = True
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
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    return out_path
