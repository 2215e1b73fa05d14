"""Stored bootstrap evaluations (paperkit.evaluation.comparison_cache): equal to fresh ones, keyed by every input."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from paperkit.evaluation import comparison_cache
from paperkit.evaluation.comparison_cache import cached_compare_models, cached_headline_gain
from paperkit.evaluation.metrics import NotEvaluableWarning, compare_models
from paperkit.evaluation.verdict import ScoredImages, headline_gain

CLASSES = ("a", "b", "c")
pytestmark = pytest.mark.filterwarnings(
    "ignore::paperkit.evaluation.metrics.NotEvaluableWarning"
)  # class c is n/a on purpose


def inputs(seed: int = 0, n: int = 60):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, (n, len(CLASSES))).astype(float)
    y[:5, 1] = np.nan
    y[:, 2] = 0.0  # no positive: n/a, with its warning
    scores = {
        "B": rng.random((n, len(CLASSES))).astype(np.float32),
        "B+MODL": rng.random((n, len(CLASSES))).astype(np.float32),
    }
    patients = np.array([f"p{i // 2}" for i in range(n)])
    return y, scores, patients


def assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a.auc, b.auc)
    pd.testing.assert_frame_equal(a.diff, b.diff)
    assert (a.classes, a.models, a.reference, a.na_classes, a.n_images, a.n_patients, a.n_boot, a.seed, a.level) == (
        b.classes,
        b.models,
        b.reference,
        b.na_classes,
        b.n_images,
        b.n_patients,
        b.n_boot,
        b.seed,
        b.level,
    )


def call(folder, y, scores, patients, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cached_compare_models(folder, y, scores, patients, CLASSES, n_boot=kw.pop("n_boot", 40), **kw)
    return result, [str(w.message) for w in caught if issubclass(w.category, NotEvaluableWarning)]


@pytest.mark.parametrize("reference", ["B", None])
def test_stored_evaluation_equals_fresh_one_and_warns_alike(tmp_path, reference):
    y, scores, patients = inputs()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh = compare_models(y, scores, patients, CLASSES, reference=reference, n_boot=40)
    fresh_warnings = [str(w.message) for w in caught if issubclass(w.category, NotEvaluableWarning)]
    first, w1 = call(tmp_path, y, scores, patients, reference=reference)
    [stored] = list(tmp_path.glob("*.pkl"))
    stamp = stored.stat().st_mtime_ns
    again, w2 = call(tmp_path, y, scores, patients, reference=reference)
    assert_same(first, fresh)
    assert_same(again, fresh)
    assert stored.stat().st_mtime_ns == stamp  # loaded, not recomputed
    assert w1 == w2 == fresh_warnings and len(fresh_warnings) == 1


def _scores_changed(y, s, p):
    s = dict(s)
    s["B"] = s["B"].copy()
    s["B"][0, 0] += 0.01
    return y, s, p


@pytest.mark.parametrize(
    "change",
    [
        lambda y, s, p: _scores_changed(y, s, p),
        lambda y, s, p: (y, {"B": s["B"], "other name": s["B+MODL"]}, p),  # renamed model
        lambda y, s, p: (y, dict(reversed(list(s.items()))), p),  # other order (the tables' row order)
        lambda y, s, p: (np.where(np.arange(len(y))[:, None] == 3, 1 - np.nan_to_num(y), y), s, p),  # labels
        lambda y, s, p: (y, s, np.array([f"p{i // 3}" for i in range(len(p))])),  # patients
    ],
)
def test_any_changed_input_is_a_new_entry(tmp_path, change):
    y, scores, patients = inputs()
    call(tmp_path, y, scores, patients)
    y2, s2, p2 = change(y, scores, patients)
    got, _ = call(tmp_path, y2, s2, p2)
    assert_same(got, compare_models(y2, s2, p2, CLASSES, n_boot=40))
    assert len(list(tmp_path.glob("*.pkl"))) == 2


@pytest.mark.parametrize("kw", [{"n_boot": 41}, {"seed": 1}, {"level": 0.9}])
def test_other_bootstrap_settings_are_a_new_entry(tmp_path, kw):
    y, scores, patients = inputs()
    call(tmp_path, y, scores, patients)
    got, _ = call(tmp_path, y, scores, patients, **dict(kw))
    assert_same(got, compare_models(y, scores, patients, CLASSES, **{"n_boot": 40, **kw}))
    assert len(list(tmp_path.glob("*.pkl"))) == 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[:50]),  # truncated
        lambda path: path.write_bytes(b"garbage"),
        lambda path: path.write_bytes(__import__("pickle").dumps({"not": "a result"})),
    ],
)
def test_a_damaged_file_is_recomputed_and_replaced(tmp_path, damage):
    y, scores, patients = inputs()
    fresh, _ = call(tmp_path, y, scores, patients)
    [stored] = list(tmp_path.glob("*.pkl"))
    damage(stored)
    got, _ = call(tmp_path, y, scores, patients)
    assert_same(got, fresh)
    again, _ = call(tmp_path, y, scores, patients)
    assert_same(again, fresh)
    assert stored.stat().st_size > 100  # a good one replaced the damaged one


def test_stored_headline_gain_equals_fresh_one_and_is_keyed_by_its_inputs(tmp_path, monkeypatch):
    """The verdict's seeds x patients bootstrap, stored: the same result, computed once; other scores
    or fewer resamples are new entries."""
    rng = np.random.default_rng(3)
    n = 60
    y = (rng.random((n, 2)) < 0.4).astype(float)
    test = ScoredImages("nih", "toy test images", y, np.array([f"p{i // 2}" for i in range(n)]), ("a", "b"),
                        np.array([0, 1]))
    probs = {s: {m: np.clip(y + rng.normal(0, 0.6 + 0.1 * k, y.shape), 0, 1) for k, m in enumerate(("B", "M"))}
             for s in (0, 1)}
    fresh = headline_gain(test, probs, 30, model="M")
    stored = cached_headline_gain(tmp_path, test, probs, 30, model="M")
    assert (stored.gain, stored.ci_low, stored.ci_high, stored.images) == (fresh.gain, fresh.ci_low, fresh.ci_high,
                                                                           "toy test images")
    assert len(list(tmp_path.glob("gain-*.pkl"))) == 1
    with monkeypatch.context() as patched:
        patched.setattr(comparison_cache, "headline_gain", lambda *a, **k: pytest.fail("a stored gain was recomputed"))
        again = cached_headline_gain(tmp_path, test, probs, 30, model="M")
    assert (again.gain, again.ci_low, again.ci_high) == (fresh.gain, fresh.ci_low, fresh.ci_high)
    cached_headline_gain(tmp_path, test, probs, 20, model="M")
    cached_headline_gain(tmp_path, test, {s: {"B": p["M"], "M": p["B"]} for s, p in probs.items()}, 30, model="M")
    assert len(list(tmp_path.glob("gain-*.pkl"))) == 3
