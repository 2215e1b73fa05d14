"""NIH ChestX-ray14 metadata statistics, packaged so the benchmark needs no download at run time.

``nih_stats.json`` is derived once from ``Data_Entry_2017_v2020.csv(.gz)`` (112,120 rows; bundled
with torchxrayvision) by :func:`derive_stats`; regenerate it with::

    python -m paperkit.data.nih_stats --from PATH/Data_Entry_2017_v2020.csv.gz

It holds the label-combination frequencies (so prevalence *and* co-occurrence are NIH's), the
images-per-patient histogram, how often a follow-up repeats the previous image's labels, and the
age, sex and view distributions (view split by "No Finding" vs any finding: sick patients are
more often filmed AP).
"""
from __future__ import annotations

import argparse
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paperkit.data.labels import NIH_CLASSES

STATS_PATH = Path(__file__).with_name("nih_stats.json")
_REQUIRED = ("Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age",
             "Patient Gender", "View Position")
AGE_EDGES = list(range(0, 105, 5))


def canonical_combo(finding_labels: str) -> str:
    """NIH ``Finding Labels`` cell -> findings in :data:`NIH_CLASSES` order joined by ``|`` ("" = none).

    Raises
    ------
    ValueError
        On a finding name that is not one of the 14 NIH classes.
    """
    names = [n for n in str(finding_labels).split("|") if n and n != "No Finding"]
    unknown = sorted(set(names) - set(NIH_CLASSES))
    if unknown:
        raise ValueError(f"unknown NIH finding(s) {unknown} in 'Finding Labels' value {finding_labels!r}")
    return "|".join(c for c in NIH_CLASSES if c in names)


def derive_stats(data_entry_csv: str | os.PathLike) -> dict[str, Any]:
    """Derive the benchmark's sampling statistics from NIH's ``Data_Entry`` file.

    Parameters
    ----------
    data_entry_csv
        Path to ``Data_Entry_2017_v2020.csv`` (optionally ``.gz``).

    Returns
    -------
    dict
        JSON-able: ``combos`` ([combo, count] pairs, most frequent first), ``images_per_patient``
        ([n, patients] pairs), ``keep_labels`` (P(follow-up has the previous image's labels)),
        ``age`` (``edges``/``counts``), ``sex`` and ``view`` counts (``view`` keyed by
        ``no_finding`` / ``finding``), ``n_images``, ``n_patients``.

    Raises
    ------
    ValueError
        If a required column is missing (the message names the file and column).
    """
    df = pd.read_csv(data_entry_csv)
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{data_entry_csv}: missing column(s) {missing}; is this NIH's Data_Entry file?")
    df["combo"] = df["Finding Labels"].map(canonical_combo)
    combos = df["combo"].value_counts()
    combos = sorted(combos.items(), key=lambda kv: (-kv[1], kv[0]))
    per_patient = df.groupby("Patient ID").size().value_counts().sort_index()
    ordered = df.sort_values(["Patient ID", "Follow-up #"])
    same_patient = ordered["Patient ID"].to_numpy()[1:] == ordered["Patient ID"].to_numpy()[:-1]
    same_combo = ordered["combo"].to_numpy()[1:] == ordered["combo"].to_numpy()[:-1]
    ages = np.clip(df["Patient Age"].to_numpy(), 0, AGE_EDGES[-1] - 1)
    age_counts, _ = np.histogram(ages, bins=AGE_EDGES)
    finding = np.where(df["combo"] == "", "no_finding", "finding")
    view = pd.crosstab(finding, df["View Position"])
    return {
        "source": Path(data_entry_csv).name,
        "classes": list(NIH_CLASSES),
        "n_images": int(len(df)),
        "n_patients": int(df["Patient ID"].nunique()),
        "combos": [[k, int(v)] for k, v in combos],
        "images_per_patient": [[int(k), int(v)] for k, v in per_patient.items()],
        "keep_labels": round(float(same_combo[same_patient].mean()), 6),
        "age": {"edges": AGE_EDGES, "counts": [int(c) for c in age_counts]},
        "sex": {str(k): int(v) for k, v in df["Patient Gender"].value_counts().sort_index().items()},
        "view": {row: {str(c): int(view.loc[row, c]) for c in view.columns} for row in view.index},
    }


@lru_cache(maxsize=1)
def load_stats() -> dict[str, Any]:
    """The packaged statistics (``paperkit/data/nih_stats.json``)."""
    return json.loads(STATS_PATH.read_text())


def write_stats(stats: dict[str, Any], path: str | os.PathLike = STATS_PATH) -> None:
    """Write ``stats`` as compact, stable JSON (so the file diffs cleanly)."""
    from paperkit.artifacts import write_text

    write_text(path, json.dumps(stats, sort_keys=True, separators=(",", ":")) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paperkit.data.nih_stats", description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="Data_Entry_2017_v2020.csv(.gz)")
    parser.add_argument("--out", default=str(STATS_PATH), help="output JSON (default: the packaged file)")
    args = parser.parse_args(argv)
    if not Path(args.source).is_file():
        parser.error(f"--from {args.source}: no such file")
    stats = derive_stats(args.source)
    write_stats(stats, args.out)
    print(
        f"wrote {args.out}: {stats['n_images']} images, {stats['n_patients']} patients, {len(stats['combos'])} combos"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
