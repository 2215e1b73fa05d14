"""``python -m paperkit summarize``: what a dataset root holds, from its metadata alone.

Images need not be present: listed images missing on disk are counted, not fatal.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from paperkit.data.datasets import SPLITS, DataError, XrayDataset

log = logging.getLogger(__name__)


def _value_counts(column: np.ndarray) -> dict[str, int]:
    return {
        "1": int((column == 1).sum()),
        "0": int((column == 0).sum()),
        "-1": int((column == -1).sum()),
        "blank": int(np.isnan(column).sum()),
    }


def summarize(
    dataset: str,
    root: str | Path,
    split: str = "official",
    labeler: str = "chexpert",
    frontal_only: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Counts of a dataset root as a JSON-able dict (images, patients, labels, splits, missing).

    For NIH with ``split="official"`` and no official lists in ``root``, the seeded patient-wise
    70/10/20 split is shown instead and the ``notes`` say so.
    """
    notes: list[str] = []
    ds: XrayDataset
    if dataset == "nih":
        from paperkit.data.nih import load_nih

        if split == "official" and not (Path(root) / "train_val_list.txt").is_file():
            notes.append("official train_val_list.txt absent: split sizes are the seeded patient-wise 70/10/20")
            split = "patient70_10_20"
        ds = load_nih(root, split=split, seed=seed, missing="keep")
    elif dataset == "chexpert":
        from paperkit.data.chexpert import load_chexpert

        ds = load_chexpert(root, frontal_only=frontal_only, seed=seed, missing="keep")
    elif dataset == "mimic":
        from paperkit.data.mimic import load_mimic

        ds = load_mimic(root, labeler=labeler, frontal_only=frontal_only, missing="keep")
    else:
        raise ValueError(f"dataset must be nih, chexpert or mimic, got {dataset!r}")
    if dataset == "nih":
        labels: dict[str, Any] = {c: int(ds.labels[:, j].sum()) for j, c in enumerate(ds.classes)}
    else:
        labels = {c: _value_counts(ds.labels[:, j]) for j, c in enumerate(ds.classes)}
    clean_rows = 0 if ds.clean_labels is None else int((~np.isnan(ds.clean_labels)).any(axis=1).sum())
    return {
        "dataset": dataset,
        "root": str(ds.root),
        "split_rule": split if dataset == "nih" else "official" if dataset == "mimic" else "train.csv/valid.csv",
        "views": "frontal" if frontal_only or dataset == "nih" else "all",
        "images": len(ds),
        "patients": int(len(np.unique(ds.patient_ids))),
        "studies": int(len(np.unique(ds.study_ids))),
        "labels": labels,
        "splits": {s: int(len(ds.indices(s))) for s in SPLITS},
        "rows_with_clean_labels": clean_rows,
        "missing_on_disk": len(ds.missing),
        "missing_examples": list(ds.missing[:5]),
        "notes": notes,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as aligned plain text."""
    lines = [
        f"{summary['dataset']} at {summary['root']} ({summary['views']} views, split: {summary['split_rule']})",
        f"  images {summary['images']:,}   patients {summary['patients']:,}   studies {summary['studies']:,}",
        "  splits " + "   ".join(f"{k} {v:,}" for k, v in summary["splits"].items()),
        f"  rows with clean labels {summary['rows_with_clean_labels']:,}",
        f"  listed images missing on disk {summary['missing_on_disk']:,}"
        + (f" (e.g. {', '.join(summary['missing_examples'])})" if summary["missing_examples"] else ""),
        "  labels" + ("  (positives)" if summary["dataset"] == "nih" else "  (1 / 0 / -1 / blank)"),
    ]
    for name, counts in summary["labels"].items():
        shown = f"{counts:,}" if isinstance(counts, int) else " / ".join(f"{v:,}" for v in counts.values())
        lines.append(f"    {name:28s} {shown}")
    lines += [f"  note: {note}" for note in summary["notes"]]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=("nih", "chexpert", "mimic"))
    parser.add_argument("--root", required=True, help="the dataset's root folder")
    parser.add_argument(
        "--split", default="official", choices=("official", "patient70_10_20", "lists"), help="NIH only"
    )
    parser.add_argument("--labeler", default="chexpert", choices=("chexpert", "negbio"), help="MIMIC only")
    parser.add_argument("--all-views", action="store_true", help="CheXpert/MIMIC: count lateral views too")
    parser.add_argument("--seed", type=int, default=0, help="seed of the patient draws")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def main(args: argparse.Namespace) -> int:
    try:
        summary = summarize(args.dataset, args.root, args.split, args.labeler, not args.all_views, args.seed)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
