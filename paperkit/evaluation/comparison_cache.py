""":func:`paperkit.evaluation.metrics.compare_models` remembered: a rerun loads the bootstrap instead of redoing it.

``compare_models`` is a pure function of its arguments (the bootstrap is seeded), so its result is
stored under ``<folder>/<key>.pkl`` where the key hashes every argument (labels, each model's name
and scores in order, patient ids, classes, reference, n_boot, seed, level) together with the source
of the code that computes it (``evaluate.py``, ``stats.py``) and the numpy, pandas and scikit-learn
versions. Files are written atomically; one that does not load as the result of these arguments is
recomputed and replaced. A stored result re-emits the :class:`~paperkit.evaluation.metrics.NotEvaluableWarning`
the computation would have.
"""
from __future__ import annotations

import functools
import hashlib
import json
import pickle
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import sklearn

from paperkit.artifacts import atomic_path
from paperkit.evaluation.metrics import MEAN, ComparisonResult, _warn_not_evaluable, compare_models


@functools.lru_cache(maxsize=1)
def _code() -> str:
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in ("metrics.py", "stats.py"):
        h.update((root / name).read_bytes())
    return h.hexdigest()


def _add_array(h: "hashlib._Hash", values: np.ndarray) -> None:
    a = np.asarray(values)
    if a.dtype.kind in "OUS":  # ids: hash the text (object arrays' bytes are pointers), keep the kind
        h.update(json.dumps([a.dtype.kind, a.shape, [str(v) for v in a.ravel()]]).encode())
        return
    a = np.ascontiguousarray(a)
    h.update(json.dumps([a.dtype.str, a.shape]).encode())
    h.update(a.tobytes())


def comparison_key(y_true: np.ndarray, scores: Mapping[str, np.ndarray], patient_ids: Sequence[str] | np.ndarray,
                   classes: Sequence[str], reference: str | None, n_boot: int, seed: int, level: float) -> str:
    """Hash of every argument of ``compare_models`` and of the code and libraries that compute it."""
    h = hashlib.sha256(json.dumps({
        "classes": list(classes), "models": list(scores), "reference": reference, "n_boot": int(n_boot),
        "seed": int(seed), "level": float(level), "code": _code(),
        "versions": [np.__version__, pd.__version__, sklearn.__version__],
    }, sort_keys=True).encode())
    _add_array(h, y_true)
    _add_array(h, np.asarray(patient_ids))
    for values in scores.values():
        _add_array(h, values)
    return h.hexdigest()[:24]


def _load(
    path: Path, models: tuple[str, ...], classes: tuple[str, ...], n_boot: int, seed: int
) -> ComparisonResult | None:
    try:
        with open(path, "rb") as f:
            result = pickle.load(f)
    except Exception:  # missing, truncated or garbage: recompute  # noqa: BLE001
        return None
    if not isinstance(result, ComparisonResult) or (result.models, result.classes, result.n_boot, result.seed) != (
        models,
        classes,
        n_boot,
        seed,
    ):
        return None
    return result


def cached_compare_models(
    folder: str | Path,
    y_true: np.ndarray,
    scores: Mapping[str, np.ndarray],
    patient_ids: Sequence[str] | np.ndarray,
    classes: Sequence[str],
    reference: str | None = "B",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> ComparisonResult:
    """:func:`~paperkit.evaluation.metrics.compare_models`, stored in ``folder`` and loaded when the arguments recur."""
    classes = tuple(classes)
    path = Path(folder) / f"{comparison_key(y_true, scores, patient_ids, classes, reference, n_boot, seed, level)}.pkl"
    result = _load(path, tuple(scores), classes, int(n_boot), int(seed))
    if result is not None:
        first = result.auc[(result.auc["model"] == result.models[0]) & (result.auc["class"] != MEAN)]
        _warn_not_evaluable(first, stacklevel=3)  # what compare_models would have said
        return result
    result = compare_models(
        y_true, scores, patient_ids, classes, reference=reference, n_boot=n_boot, seed=seed, level=level
    )
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError:  # a read-only results folder still evaluates, it only cannot remember
        pass
    return result
