"""The embedded benchmark: phantom radiographs with known clean labels, written in the official layouts.

``python -m paperkit phantom --out DIR --layout nih|chexpert --n-images N --size PX --seed S --noise X``

Cases follow NIH's real statistics (:mod:`paperkit.data.nih_stats`): label combinations (so
prevalence and co-occurrence are NIH's), images per patient (a follow-up keeps the previous
image's findings as often as in NIH), age, sex and view. Training labels are report-mined noisy
labels (:mod:`paperkit.data.noise`); the clean truth is written beside them.

NIH layout (``DIR/``): ``images/<id>.png``, ``Data_Entry_2017_v2020.csv`` (official header, *noisy*
``Finding Labels``), ``train_val_list.txt`` / ``test_list.txt`` (patient-disjoint, ~20 % test),
``BBox_List_2017.csv`` (official header; test images, the 8 boxed findings, NIH's spelling
"Infiltrate"; pixel coordinates of the rendered image, tight around the mask),
``clean_labels.csv`` (``Image Index`` + 14 clean 0/1 columns), ``google2019_nih-chest-xray-labels.csv``
(clean truth of the test images in Google's relabel format), ``masks/<stem>.npz``.

CheXpert layout (``DIR/``): ``CheXpert-v1.0-small/train.csv`` (noisy: 1, 0, -1, blank),
``valid.csv`` (clean 0/1: the test set), ``train_clean.csv`` (clean 0/1 truth of the training rows;
not an official file), images ``CheXpert-v1.0-small/{train,valid}/patientNNNNN/studyK/view1_frontal.jpg``,
masks at ``DIR/masks/{train,valid}/patientNNNNN/studyK/view1_frontal.npz``. NIH findings map to
CheXpert observations by :data:`CHEXPERT_MAP` (a parent is positive when any child is; "No Finding"
when no NIH finding; "Support Devices" from the rendered devices; "Fracture" is never rendered).
"""
from __future__ import annotations

import argparse
import io
import os
import struct
import sys
import time
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from PIL import Image

from paperkit.artifacts import Step, atomic_path, read_manifest
from paperkit.data import noise as noise_model
from paperkit.data import phantom
from paperkit.data.labels import CHEXPERT_CLASSES, NIH_CLASSES
from paperkit.data.nih_stats import load_stats

LAYOUTS = ("nih", "chexpert")
CHUNK = 64  # images per work unit; fixed so output does not depend on the number of workers
TEST_FRACTION = 0.2
SEVERITY_BETA = (1.4, 1.6)
NIH_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
              "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")
BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
#: NIH findings that have boxes in NIH's BBox_List_2017.csv, with its spelling.
BBOX_NAMES = {"Atelectasis": "Atelectasis", "Cardiomegaly": "Cardiomegaly", "Effusion": "Effusion",
              "Infiltration": "Infiltrate", "Mass": "Mass", "Nodule": "Nodule",
              "Pneumonia": "Pneumonia", "Pneumothorax": "Pneumothorax"}
GOOGLE_FINDINGS = {"Fracture": (), "Pneumothorax": ("Pneumothorax",),
                   "Airspace opacity": ("Atelectasis", "Consolidation", "Edema", "Infiltration", "Pneumonia"),
                   "Nodule or mass": ("Mass", "Nodule")}
#: CheXpert observation -> NIH findings it is positive for ("No Finding" and "Support Devices" are special).
CHEXPERT_MAP: dict[str, tuple[str, ...]] = {
    "No Finding": (),
    "Enlarged Cardiomediastinum": ("Cardiomegaly",),
    "Cardiomegaly": ("Cardiomegaly",),
    "Lung Opacity": ("Atelectasis", "Infiltration", "Pneumonia", "Consolidation", "Edema", "Fibrosis"),
    "Lung Lesion": ("Mass", "Nodule"),
    "Edema": ("Edema",),
    "Consolidation": ("Consolidation",),
    "Pneumonia": ("Pneumonia",),
    "Atelectasis": ("Atelectasis",),
    "Pneumothorax": ("Pneumothorax",),
    "Pleural Effusion": ("Effusion",),
    "Pleural Other": ("Pleural_Thickening",),
    "Fracture": (),
    "Support Devices": (),
}


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------
def sample_cases(n_images: int, rng: np.random.Generator, stats: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Draw patients, follow-ups, clean labels, severities, demographics, views and devices.

    Parameters
    ----------
    n_images
        Number of images.
    rng
        Source of randomness.
    stats
        NIH statistics (default: the packaged :func:`~paperkit.data.nih_stats.load_stats`).

    Returns
    -------
    dict of ``[N]`` / ``[N, 14]`` arrays: ``patient`` (1-based), ``follow_up``, ``labels``,
    ``severity``, ``age``, ``male``, ``view_ap``, ``devices``.
    """
    stats = stats or load_stats()
    # patients: NIH's images-per-patient histogram, capped so that one patient cannot dominate
    k, cnt = np.array(stats["images_per_patient"]).T
    cap = max(2, n_images // 50)
    per_patient = np.minimum(rng.choice(k, size=n_images, p=cnt / cnt.sum()), cap)
    ends = np.cumsum(per_patient)
    n_pat = int(np.searchsorted(ends, n_images) + 1)
    per_patient = per_patient[:n_pat]
    per_patient[-1] -= ends[n_pat - 1] - n_images
    patient = np.repeat(np.arange(1, n_pat + 1), per_patient)
    first = np.r_[True, patient[1:] != patient[:-1]]
    follow_up = np.arange(n_images) - np.flatnonzero(first).repeat(per_patient)

    # labels: a follow-up keeps the previous image's combination with NIH's probability, else
    # draws afresh (a Markov chain whose stationary law is NIH's combination frequencies)
    names = [c for c, _ in stats["combos"]]
    freq = np.array([v for _, v in stats["combos"]], float)
    draw = rng.choice(len(names), size=n_images, p=freq / freq.sum())
    keep = (rng.random(n_images) < stats["keep_labels"]) & ~first
    run_start = np.maximum.accumulate(np.where(keep, 0, np.arange(n_images)))
    combo_table = np.array([[c in name.split("|") for c in NIH_CLASSES] for name in names])
    labels = combo_table[draw[run_start]]
    sev = rng.beta(*SEVERITY_BETA, size=(n_images, len(NIH_CLASSES)))
    severity = np.clip(sev[run_start] + 0.08 * rng.standard_normal(sev.shape) * keep[:, None], 0.05, 1)
    severity = (severity * labels).astype(np.float32)

    edges, counts = np.array(stats["age"]["edges"]), np.array(stats["age"]["counts"], float)
    b = rng.choice(len(counts), size=n_pat, p=counts / counts.sum())
    age0 = edges[b] + rng.integers(0, edges[1] - edges[0], n_pat)
    age = age0[patient - 1] + follow_up // 8
    p_male = stats["sex"]["M"] / (stats["sex"]["M"] + stats["sex"]["F"])
    male = (rng.random(n_pat) < p_male)[patient - 1]
    p_ap = {k: v["AP"] / (v["AP"] + v["PA"]) for k, v in stats["view"].items()}
    view_ap = rng.random(n_images) < np.where(labels.any(1), p_ap["finding"], p_ap["no_finding"])
    # support devices: mostly on AP (portable, ICU) films; a confounder, not a finding
    has_dev = rng.random(n_images) < np.where(view_ap, 0.45, 0.08)
    bits = (rng.random((n_images, 3)) < (0.4, 0.7, 0.5)) * (phantom.DEVICE_TUBE, phantom.DEVICE_LINE, phantom.DEVICE_ECG)
    bits = bits.sum(1)
    devices = np.where(has_dev, np.where(bits == 0, phantom.DEVICE_LINE, bits), 0)
    return {"patient": patient, "follow_up": follow_up, "labels": labels, "severity": severity,
            "age": age, "male": male, "view_ap": view_ap, "devices": devices}


def split_patients(patient: np.ndarray, rng: np.random.Generator, test_fraction: float = TEST_FRACTION) -> np.ndarray:
    """Bool ``[N]``: True for test images; whole patients go to test until ``test_fraction`` of images."""
    ids, counts = np.unique(patient, return_counts=True)
    order = rng.permutation(len(ids))
    take = np.cumsum(counts[order]) <= max(1, round(test_fraction * len(patient)))
    take[0] = True  # at least one test patient
    return np.isin(patient, ids[order][take])


def chexpert_values(nih: np.ndarray, devices: np.ndarray, blank: np.ndarray) -> np.ndarray:
    """Map per-NIH-finding values ``[N, 14]`` (1, 0, -1, NaN) to the 14 CheXpert columns.

    A column takes the strongest value of its NIH children (1 > -1 > 0 > blank). "No Finding" is
    1 when no finding is positive or uncertain; "Support Devices" is 1 where a device is rendered.
    Otherwise these two and "Fracture" are 0, or blank where ``blank`` ``[N, 3]`` says so.
    """
    rank = np.select([nih == 1, nih == -1, nih == 0], [3, 2, 1], 0)  # blank ranks 0
    value = np.array([np.nan, 0.0, -1.0, 1.0], np.float32)
    negative = np.where(blank, np.nan, 0.0)
    out = np.empty((len(nih), len(CHEXPERT_CLASSES)), np.float32)
    for j, col in enumerate(CHEXPERT_CLASSES):
        children = [NIH_CLASSES.index(c) for c in CHEXPERT_MAP[col]]
        if children:
            out[:, j] = value[rank[:, children].max(1)]
        elif col == "No Finding":
            out[:, j] = np.where(rank.max(1) >= 2, negative[:, 0], 1.0)
        elif col == "Support Devices":
            out[:, j] = np.where(devices > 0, 1.0, negative[:, 2])
        else:  # Fracture: never rendered
            out[:, j] = negative[:, 1]
    return out


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, so the same masks give the same bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=1)


def png_bytes(image: np.ndarray, level: int = 1) -> bytes:
    """Encode a uint8 grey image as PNG (filter "Sub" on every row, zlib ``level``).

    Written by hand because PIL's adaptive row filtering costs as much as rendering a 256-px image;
    any PNG reader (PIL included) decodes the result.
    """
    h, w = image.shape
    rows = np.empty((h, w + 1), np.uint8)
    rows[:, 0] = 1  # filter type Sub: each byte minus its left neighbour (mod 256)
    rows[:, 1] = image[:, 0]
    rows[:, 2:] = np.diff(image, axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + chunk(b"IEND", b""))


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box ``(x, y, w, h)`` in pixels around a mask, or None if it is empty."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def _render_chunk(job: tuple) -> list[tuple[int, str, tuple[int, int, int, int]]]:
    """Render and write one chunk; return ``(row, finding, box)`` for every non-empty mask."""
    start, params, size, seed, image_paths, mask_paths = job
    images, masks = phantom.render(params, size, (seed, start))
    per_image: list[dict[str, np.ndarray]] = [{} for _ in image_paths]
    boxes = []
    for name, (rows, m) in masks.items():
        for r, mk in zip(rows, m):
            per_image[r][name] = mk.astype(np.uint8)
            box = mask_box(mk)
            if box is not None:
                boxes.append((start + int(r), name, box))
    for img, ip, mp, mk in zip(images, image_paths, mask_paths, per_image):
        if ip.endswith(".png"):
            Path(ip).write_bytes(png_bytes(img))
        else:
            Image.fromarray(img).save(ip, quality=95)
        write_npz(mp, mk)
    return boxes


def _render_all(params, size, seed, image_paths, mask_paths, workers, progress, label: str = "") -> list:
    """Render every image (in fixed chunks, on ``workers`` processes) with a progress bar."""
    from paperkit.progress import Tracker

    for p in {os.path.dirname(q) for q in (*image_paths, *mask_paths)}:
        os.makedirs(p, exist_ok=True)
    n = len(image_paths)
    jobs = ((s, phantom.take(params, slice(s, s + CHUNK)), size, seed, image_paths[s:s + CHUNK],
             mask_paths[s:s + CHUNK]) for s in range(0, n, CHUNK))
    boxes: list = []
    with Tracker(f"phantom {label} {size}px".replace("  ", " "), "", n, show=progress) as bar:
        if workers <= 1:
            results: Iterable = map(_render_chunk, jobs)
            for res in results:
                boxes += res
                bar.update(min(CHUNK, n - bar.done))
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as ex:
                for res in ex.map(_render_chunk, jobs):
                    boxes += res
                    bar.update(min(CHUNK, n - bar.done))
    return boxes


def _fmt(values: np.ndarray) -> list[str]:
    """CheXpert CSV cells: ``1.0``, ``0.0``, ``-1.0`` or blank."""
    return ["" if np.isnan(v) else f"{v:.1f}" for v in values]


def _write_nih(root: Path, cases, test, noisy, size, seed, workers, progress) -> dict[str, Any]:
    ids = [f"{p:08d}_{f:03d}.png" for p, f in zip(cases["patient"], cases["follow_up"])]
    params = cases["params"]
    boxes = _render_all(params, size, seed, [str(root / "images" / i) for i in ids],
                        [str(root / "masks" / i.replace(".png", ".npz")) for i in ids], workers, progress, root.name)
    spacing = 0.143 * 2500 / size  # keep the physical field of view of a real film
    finding = ["|".join(sorted(c for c, on in zip(NIH_CLASSES, row) if on)) or "No Finding" for row in noisy.reported]
    lines = [NIH_HEADER] + [
        f"{i},{f},{fu},{p},{a},{'M' if m else 'F'},{'AP' if ap else 'PA'},{size},{size},{spacing:.6g},{spacing:.6g}"
        for i, f, fu, p, a, m, ap in zip(ids, finding, cases["follow_up"], cases["patient"], cases["age"],
                                         cases["male"], cases["view_ap"])]
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    (root / "train_val_list.txt").write_text("".join(f"{i}\n" for i, t in zip(ids, test) if not t))
    (root / "test_list.txt").write_text("".join(f"{i}\n" for i, t in zip(ids, test) if t))
    rows = [f"{ids[r]},{BBOX_NAMES[name]},{x},{y},{w},{h}" for r, name, (x, y, w, h) in sorted(boxes)
            if test[r] and name in BBOX_NAMES]
    (root / "BBox_List_2017.csv").write_text("\n".join([BBOX_HEADER, *rows]) + "\n")
    clean = pd.DataFrame(cases["labels"].astype(int), columns=NIH_CLASSES)
    clean.insert(0, "Image Index", ids)
    clean.to_csv(root / "clean_labels.csv", index=False)
    google = [NIH_HEADER + ",Fracture,Pneumothorax,Airspace opacity,Nodule or mass,Set Id"]
    for k in np.flatnonzero(test):
        flags = ["YES" if any(cases["labels"][k, NIH_CLASSES.index(c)] for c in children) else "NO"
                 for children in GOOGLE_FINDINGS.values()]
        google.append(f"{lines[k + 1]},{','.join(flags)},test")
    (root / "google2019_nih-chest-xray-labels.csv").write_text("\n".join(google) + "\n")
    return {"n_boxes": len(rows)}


def mask_file(image: Path) -> Path | None:
    """Where the benchmark keeps the lesion masks of ``image`` (either layout); ``None`` for a path
    that is not a benchmark image."""
    parts = image.parts
    if "CheXpert-v1.0-small" in parts:  # DIR/CheXpert-v1.0-small/<split>/... -> DIR/masks/<split>/...
        at = parts.index("CheXpert-v1.0-small")
        return Path(*parts[:at], "masks", *parts[at + 1 :]).with_suffix(".npz")
    if image.parent.name == "images":  # DIR/images/<id>.png -> DIR/masks/<id>.npz
        return image.parent.parent / "masks" / f"{image.stem}.npz"
    return None


def _write_chexpert(root: Path, cases, test, noisy, size, seed, workers, progress, blank) -> dict[str, Any]:
    top = "CheXpert-v1.0-small"
    rel = [f"{top}/{'valid' if t else 'train'}/patient{p:05d}/study{f + 1}/view1_frontal.jpg"
           for p, f, t in zip(cases["patient"], cases["follow_up"], test)]
    _render_all(cases["params"], size, seed, [str(root / r) for r in rel],
                [str(root / "masks" / r[len(top) + 1:].replace(".jpg", ".npz")) for r in rel], workers, progress,
                root.name)
    clean_nih = cases["labels"].astype(np.float32)
    clean = chexpert_values(clean_nih, cases["devices"], np.zeros_like(blank))
    mined = chexpert_values(noisy.chexpert, cases["devices"], blank)
    meta = pd.DataFrame({"Path": rel, "Sex": np.where(cases["male"], "Male", "Female"), "Age": cases["age"],
                         "Frontal/Lateral": "Frontal", "AP/PA": np.where(cases["view_ap"], "AP", "PA")})

    def table(values: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
        df = meta[rows].reset_index(drop=True)
        for j, col in enumerate(CHEXPERT_CLASSES):
            df[col] = _fmt(values[rows, j])
        return df

    table(mined, ~test).to_csv(root / top / "train.csv", index=False)
    table(clean, ~test).to_csv(root / top / "train_clean.csv", index=False)
    table(clean, test).to_csv(root / top / "valid.csv", index=False)
    return {"uncertain_fraction": float(np.mean(mined[~test] == -1)), "blank_fraction": float(np.isnan(mined[~test]).mean())}


def _rounded(x: float) -> float | None:
    """JSON-safe rate: None where undefined (NaN would not compare equal after a reload)."""
    return None if np.isnan(x) else round(float(x), 4)


def generate_benchmark(
    out_dir: str | os.PathLike,
    layout: str = "nih",
    n_images: int = 6000,
    size: int = 256,
    seed: int = 0,
    noise: float = 1.0,
    workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate the embedded benchmark in ``out_dir`` (see the module docstring for the files).

    Parameters
    ----------
    out_dir
        Layout root; built in a temporary sibling and renamed into place.
    layout
        ``"nih"`` or ``"chexpert"``.
    n_images
        Number of images (at least 10).
    size
        Image size in pixels (32-512).
    seed
        Seed of everything: the same settings give the same bytes.
    noise
        Report-mining noise scale (0 = noisy labels equal the clean ones, 1 = measured rates).
    workers
        Rendering processes (the output does not depend on it).
    overwrite
        Replace a non-empty ``out_dir`` built with other settings.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    Summary dict (also stored in ``out_dir/manifest.json``).

    Raises
    ------
    ValueError
        On a bad argument (the message names it).
    FileExistsError
        If ``out_dir`` is non-empty, not this very benchmark, and ``overwrite`` is false.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not isinstance(n_images, (int, np.integer)) or n_images < 10:
        raise ValueError(f"n_images must be an integer >= 10, got {n_images!r}")
    phantom.check_size(size)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")
    out_dir = Path(out_dir)
    config = {"layout": layout, "n_images": int(n_images), "size": int(size), "seed": int(seed),
              "noise": float(noise), "version": 2}  # 2: noise structure (3, 2, 1), see paperkit.data.noise
    step = Step(out_dir, config)
    if step.done:
        return read_manifest(out_dir)["summary"]
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; pass --overwrite (overwrite=True) to replace it")
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 0])
    cases = sample_cases(n_images, rng)
    test = split_patients(cases["patient"], rng)
    noisy = noise_model.apply_noise(cases["labels"], cases["severity"], rng, noise,
                                     cases["view_ap"] | (cases["devices"] > 0))
    blank = rng.random((n_images, 3)) < min(1.0, noise * noise_model.NoiseConfig().p_blank)
    cases["params"] = phantom.sample_params(rng, cases["labels"], cases["severity"], cases["view_ap"], cases["devices"])
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if layout == "nih":
            extra = _write_nih(tmp, cases, test, noisy, size, seed, workers, progress)
        else:
            (tmp / "CheXpert-v1.0-small").mkdir()
            extra = _write_chexpert(tmp, cases, test, noisy, size, seed, workers, progress, blank)
    seconds = time.perf_counter() - t0
    rates = noise_model.label_rates(cases["labels"], noisy.reported)
    summary = {
        **config, **extra,
        "n_patients": int(cases["patient"].max()),
        "n_train": int((~test).sum()), "n_test": int(test.sum()),
        "prevalence_clean": dict(zip(NIH_CLASSES, cases["labels"].mean(0).round(5).tolist())),
        "prevalence_noisy": dict(zip(NIH_CLASSES, noisy.reported.mean(0).round(5).tolist())),
        "noisy_ppv": {k: _rounded(v["ppv"]) for k, v in rates.items()},
        "noisy_sensitivity": {k: _rounded(v["sensitivity"]) for k, v in rates.items()},
        "seconds": round(seconds, 2),
    }
    step.finish(summary)
    return summary


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="layout root to create")
    parser.add_argument("--layout", choices=LAYOUTS, default="nih")
    parser.add_argument("--n-images", type=int, default=6000)
    parser.add_argument("--size", type=int, default=256, help="image size in px (32-512)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=1.0, help="0 = clean labels, 1 = measured NIH rates")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


def main(args: argparse.Namespace) -> int:
    try:
        summary = generate_benchmark(args.out, args.layout, args.n_images, args.size, args.seed, args.noise,
                                     workers=args.workers, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.out}: {summary['n_images']} images ({summary['n_train']} train, {summary['n_test']} test, "
          f"{summary['n_patients']} patients) in {summary['seconds']} s")
    return 0
