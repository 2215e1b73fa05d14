"""Writing the benchmark in the official NIH and CheXpert layouts: metadata and label files (noisy
training labels, clean truth beside them), boxes, Google-format relabels, and where masks are kept."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paperkit.data.benchmark.cases import Draw
from paperkit.data.benchmark.images import render_all
from paperkit.data.labels import CHEXPERT_CLASSES, NIH_CLASSES

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


def _fmt(values: np.ndarray) -> list[str]:
    """CheXpert CSV cells: ``1.0``, ``0.0``, ``-1.0`` or blank."""
    return ["" if np.isnan(v) else f"{v:.1f}" for v in values]


def write_nih_layout(root: Path, draw: Draw, size: int, seed: int, workers: int, progress: bool) -> dict[str, Any]:
    """Render the images into ``root/images`` and write NIH's files; returns the number of boxes written."""
    cases, test, noisy = draw.cases, draw.test, draw.noisy
    ids = [f"{p:08d}_{f:03d}.png" for p, f in zip(cases["patient"], cases["follow_up"])]
    params = cases["params"]
    boxes = render_all(params, size, seed, [str(root / "images" / i) for i in ids],
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


def write_chexpert_layout(root: Path, draw: Draw, size: int, seed: int, workers: int, progress: bool) -> dict[str, Any]:
    """Render the images under ``root/CheXpert-v1.0-small`` and write its CSVs (test images form
    ``valid.csv``); returns the uncertain and blank fractions of the training labels."""
    cases, test, noisy, blank = draw.cases, draw.test, draw.noisy, draw.blank
    top = "CheXpert-v1.0-small"
    rel = [f"{top}/{'valid' if t else 'train'}/patient{p:05d}/study{f + 1}/view1_frontal.jpg"
           for p, f, t in zip(cases["patient"], cases["follow_up"], test)]
    render_all(cases["params"], size, seed, [str(root / r) for r in rel],
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
    return {
        "uncertain_fraction": float(np.mean(mined[~test] == -1)),
        "blank_fraction": float(np.isnan(mined[~test]).mean()),
    }
