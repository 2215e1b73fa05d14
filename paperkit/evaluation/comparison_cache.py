""":func:`paperkit.evaluation.metrics.compare_models` and the verdict's seeds x patients bootstrap
(:func:`paperkit.evaluation.verdict.headline_gain`) remembered: a rerun loads the bootstrap instead of redoing it.

Both are pure functions of their arguments (the bootstraps are seeded), so a result is stored under
``<folder>/<key>.pkl`` where the key hashes every argument (labels, each model's name and scores in
order, patient ids, classes and every setting) together with the source of the code that computes
it and the numpy, pandas and scikit-learn versions. Files are written atomically; one that does not
load as the result of these arguments is recomputed and replaced. A stored comparison re-emits the
:class:`~paperkit.evaluation.metrics.NotEvaluableWarning` the computation would have.
"""
from __future__ import annotations

import functools
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import sklearn

from paperkit.artifacts import atomic_path
from paperkit.evaluation.metrics import MEAN, ComparisonResult, _warn_not_evaluable, compare_models
from paperkit.evaluation.verdict import ScoredImages, SeedMeanGain, headline_gain

#: The source files behind each kind of stored result.
_COMPARISON_CODE = ("metrics.py", "stats.py")
_GAIN_CODE = ("metrics.py", "stats.py", "verdict.py")


@functools.lru_cache(maxsize=2)
def _code(names: tuple[str, ...] = _COMPARISON_CODE) -> str:
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in names:
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


def _key(settings: Mapping[str, Any], code: tuple[str, ...], y_true: np.ndarray,
         scores: Mapping[str, np.ndarray], patient_ids: Sequence[str] | np.ndarray) -> str:
    h = hashlib.sha256(json.dumps({
        **settings, "models": list(scores), "code": _code(code),
        "versions": [np.__version__, pd.__version__, sklearn.__version__],
    }, sort_keys=True).encode())
    _add_array(h, y_true)
    _add_array(h, np.asarray(patient_ids))
    for values in scores.values():
        _add_array(h, values)
    return h.hexdigest()[:24]


def comparison_key(y_true: np.ndarray, scores: Mapping[str, np.ndarray], patient_ids: Sequence[str] | np.ndarray,
                   classes: Sequence[str], reference: str | None, n_boot: int, seed: int, level: float) -> str:
    """Hash of every argument of ``compare_models`` and of the code and libraries that compute it."""
    settings = {"classes": list(classes), "reference": reference, "n_boot": int(n_boot), "seed": int(seed),
                "level": float(level)}
    return _key(settings, _COMPARISON_CODE, y_true, scores, patient_ids)


def _read(path: Path) -> Any:
    """The object pickled at ``path``, or ``None`` when it is missing, truncated or garbage."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # noqa: BLE001
        return None


def _store(path: Path, result: Any) -> None:
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError:  # a read-only results folder still evaluates, it only cannot remember
        pass


def _load(
    path: Path, models: tuple[str, ...], classes: tuple[str, ...], n_boot: int, seed: int
) -> ComparisonResult | None:
    result = _read(path)
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
    _store(path, result)
    return result


def cached_headline_gain(
    folder: str | Path,
    test: ScoredImages,
    probs: Mapping[int, Mapping[str, np.ndarray]],
    n_boot: int,
    model: str = "B+MODL+KNNS",
    ceiling: str | None = None,
) -> SeedMeanGain:
    """:func:`~paperkit.evaluation.verdict.headline_gain`, stored in ``folder`` and loaded when the arguments
    recur (the seeds x patients bootstrap of ~5,000 test images and 9 runs takes ~10 s on 2 cores)."""
    settings = {"kind": "headline_gain", "name": test.name, "layout": test.layout, "classes": list(test.eval_classes),
                "columns": [int(c) for c in test.eval_columns], "model": model, "ceiling": ceiling,
                "n_boot": int(n_boot)}
    flat = {f"{s}|{m}": p for s, by_model in probs.items() for m, p in by_model.items()}
    path = Path(folder) / f"gain-{_key(settings, _GAIN_CODE, test.labels, flat, test.patient_ids)}.pkl"
    result = _read(path)
    if isinstance(result, SeedMeanGain) and result.n_boot == n_boot and result.images == test.name:
        return result
    result = headline_gain(test, probs, n_boot, model=model, ceiling=ceiling)
    _store(path, result)
    return result
