"""Label vocabularies and their orders (one place, so every table lists findings the same way)."""
from __future__ import annotations

#: NIH ChestX-ray14 findings in the order of the paper's Table 1.
NIH_CLASSES: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)

#: Short column names the paper's Table 1 uses, same order.
NIH_SHORT: tuple[str, ...] = (
    "Atel.", "Card.", "Effu.", "Infi.", "Mass", "Nod.", "Pne.1", "Pne.2",
    "Cos.", "Ede.", "Emp.", "Fibr.", "P.T.", "Hern",
)

#: The 14 CheXpert observations in the order of the CSV columns.
CHEXPERT_CLASSES: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

#: The five CheXpert competition tasks (the paper's Table 2 order).
CHEXPERT_TASKS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Pleural Effusion",
)

NO_FINDING = "No Finding"
