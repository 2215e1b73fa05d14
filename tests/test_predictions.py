"""Stored predictions (paperkit.training.predictions via experiment.probabilities): equal to fresh ones, never stale."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from paperkit.config import resolve
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment as ex
from paperkit.runtime import pick_device
from paperkit.training import predictions
from paperkit.training.inference import predict


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PAPERKIT_RESULTS", str(tmp_path_factory.mktemp("predictions")))
    mp.delenv("PAPERKIT_FORCE_SINCE", raising=False)
    cfg = resolve("smoke", {"n_images": 120, "epochs": 1, "reference_archs": "efficientnet_tiny", "layouts": "nih"})
    paths = RunPaths.for_profile(cfg.name)
    prep = ex.prepare(cfg, paths, "nih")
    run = ex.train_run(cfg, paths, prep, "efficientnet_tiny", 0)
    yield cfg, paths, prep, run
    mp.undo()


def fresh(cfg, run, prep, rows) -> np.ndarray:
    """What probabilities computed before it stored anything."""
    return predict(ex.load_model(run.run_dir), prep.images, rows, cfg.crop, batch_size=ex.PREDICT_BATCH,
                   device=pick_device(cfg.device, 0))


def stored(run) -> list:
    return sorted((run.run_dir / predictions.FOLDER).glob("*.npy"))


@pytest.mark.parametrize("split", ["test", "val", "all"])
@pytest.mark.parametrize("as_path", [False, True])
def test_stored_predictions_equal_fresh_ones_exactly(tiny, split, as_path):
    cfg, _, prep, run = tiny
    rows = np.arange(len(prep.dataset)) if split == "all" else prep.rows(split)
    result = run.run_dir if as_path else run
    first = ex.probabilities(cfg, result, prep, rows)
    files = stored(run)
    stamps = [f.stat().st_mtime_ns for f in files]
    again = ex.probabilities(cfg, result, prep, rows)
    np.testing.assert_array_equal(first, fresh(cfg, run, prep, rows))
    np.testing.assert_array_equal(again, first)
    assert again.dtype == np.float32 and again.shape == (len(rows), len(prep.classes))
    assert stored(run) == files and [f.stat().st_mtime_ns for f in files] == stamps  # loaded, not rewritten


def test_a_cached_call_never_loads_the_model(tiny, monkeypatch):
    cfg, _, prep, run = tiny
    rows = prep.rows("test")
    expected = ex.probabilities(cfg, run.run_dir, prep, rows)
    monkeypatch.setattr(ex, "load_model", lambda *a, **k: pytest.fail("a stored prediction loaded the model"))
    np.testing.assert_array_equal(ex.probabilities(cfg, run.run_dir, prep, rows), expected)


@pytest.mark.parametrize("rows_of", [
    lambda prep: prep.rows("test")[::-1],  # same rows, other order
    lambda prep: prep.rows("test")[:-1],  # one row fewer
    lambda prep: prep.rows("val"),
])
def test_different_rows_get_their_own_entry(tiny, rows_of):
    cfg, _, prep, run = tiny
    test, rows = prep.rows("test"), rows_of(prep)
    probs = {name: ex.probabilities(cfg, run, prep, r) for name, r in (("test", test), ("rows", rows))}
    entries = {_entry(cfg, run, prep, test), _entry(cfg, run, prep, rows)}
    assert len(entries) == 2 and entries <= {f.name for f in stored(run)}
    for name, r in (("test", test), ("rows", rows)):  # each entry holds its own rows' predictions
        np.testing.assert_array_equal(ex.probabilities(cfg, run, prep, r), fresh(cfg, run, prep, r))
        np.testing.assert_array_equal(probs[name], fresh(cfg, run, prep, r))


def test_other_crop_gets_its_own_entry(tiny):
    cfg, _, prep, run = tiny
    rows = prep.rows("test")
    ex.probabilities(cfg, run, prep, rows)
    before = set(stored(run))
    other = resolve("smoke", {"n_images": 120, "epochs": 1, "reference_archs": "efficientnet_tiny",
                              "layouts": "nih", "crop": cfg.crop - 4})
    probs = ex.probabilities(other, run, prep, rows)
    np.testing.assert_array_equal(probs, fresh(other, run, prep, rows))
    assert len(set(stored(run)) - before) == 1


@pytest.mark.parametrize("damage", [
    lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]),  # truncated
    lambda path: path.write_bytes(b"not an npy file"),
    lambda path: path.write_bytes(b""),
    lambda path: np.save(path, np.zeros((3, 2), np.float32)),  # wrong shape
    lambda path: np.save(path, np.load(path).astype(np.float64)),  # wrong dtype
    lambda path: np.save(path, np.full_like(np.load(path), np.nan)),  # not probabilities
])
def test_a_damaged_file_is_recomputed_and_replaced(tiny, damage):
    cfg, _, prep, run = tiny
    rows = prep.rows("test")
    expected = ex.probabilities(cfg, run, prep, rows)
    [path] = [f for f in stored(run) if f.name == _entry(cfg, run, prep, rows)]
    damage(path)
    np.testing.assert_array_equal(ex.probabilities(cfg, run, prep, rows), expected)
    np.testing.assert_array_equal(predictions.load(path, expected.shape), expected)  # replaced by a good one


def _entry(cfg, run, prep, rows) -> str:
    device = pick_device(cfg.device, 0)
    run_id = predictions.run_identity(run.run_dir, run.best_epoch)
    query = predictions.query_identity(prep.images, rows, cfg.crop, ex.PREDICT_BATCH, device)
    return f"{run_id}-{query}.npy"


def test_a_retrained_run_recomputes(tiny, monkeypatch):
    """A new manifest (a retraining; here the same checkpoint re-finished) is a new key: the old file
    is not read, and is removed once the new one is written."""
    cfg, paths, prep, run = tiny
    rows = prep.rows("test")
    ex.probabilities(cfg, run, prep, rows)
    old = set(stored(run))
    # poison the old entries: were they reused, the result would be zeros
    for f in old:
        np.save(f, np.zeros((len(rows), len(prep.classes)), np.float32))
    manifest = run.run_dir / "manifest.json"
    content = json.loads(manifest.read_text())
    content["finished_at"] += 1.0  # what a retraining's manifest differs in at the least: a later finish
    manifest.write_text(json.dumps(content))
    probs = ex.probabilities(cfg, run, prep, rows)
    np.testing.assert_array_equal(probs, fresh(cfg, run, prep, rows))
    assert probs.any()
    assert not old & set(stored(run)) and len(stored(run)) == 1


def test_a_new_checkpoint_under_the_same_manifest_recomputes(tiny):
    cfg, _, prep, run = tiny
    rows = prep.rows("test")
    ex.probabilities(cfg, run, prep, rows)
    for f in stored(run):
        np.save(f, np.zeros((len(rows), len(prep.classes)), np.float32))
    best = run.run_dir / "best.pt"
    best.write_bytes(best.read_bytes())  # a new mtime: another checkpoint as far as the key knows
    assert ex.probabilities(cfg, run, prep, rows).any()


def test_retraining_for_real_never_reuses_old_predictions(tiny, monkeypatch):
    """--force: the run trains again (a new manifest), its predictions are those of the new model."""
    cfg, paths, prep, _ = tiny
    run = ex.train_run(cfg, paths, prep, "efficientnet_tiny", 1)  # its own run: the module's stays as it is
    rows = prep.rows("test")
    ex.probabilities(cfg, run, prep, rows)
    for f in stored(run):  # training is deterministic on the CPU: only poisoned files tell reuse apart
        np.save(f, np.zeros((len(rows), len(prep.classes)), np.float32))
    finished = json.loads((run.run_dir / "manifest.json").read_text())["finished_at"]
    # --force started just after this run finished (set, not read off the clock: no two reads can tie)
    monkeypatch.setenv("PAPERKIT_FORCE_SINCE", repr(math.nextafter(finished, math.inf)))
    again = ex.train_run(cfg, paths, prep, "efficientnet_tiny", 1)
    assert not again.skipped
    probs = ex.probabilities(cfg, again, prep, rows)
    np.testing.assert_array_equal(probs, fresh(cfg, again, prep, rows))
    assert probs.any()


def test_unfinished_runs_are_not_cached(tiny, tmp_path):
    cfg, _, prep, run = tiny
    assert predictions.run_identity(tmp_path) is None
    assert predictions.run_identity(run.run_dir, best_epoch=run.best_epoch + 1) is None  # model of another training
    assert predictions.run_identity(run.run_dir, best_epoch=run.best_epoch) is not None


def test_last_epoch_predictions_are_stored_apart_from_the_chosen_epochs(tiny, monkeypatch):
    """``last.pt``'s probabilities have their own folder: storing them keeps the chosen epoch's files,
    and a second call loads them without loading the model."""
    cfg, _, prep, run = tiny
    rows = prep.rows("test")
    ex.probabilities(cfg, run, prep, rows)
    best_files = stored(run)
    expected = predict(ex.load_model(run.run_dir, "last"), prep.images, rows, cfg.crop, batch_size=ex.PREDICT_BATCH,
                       device=pick_device(cfg.device, 0))
    np.testing.assert_array_equal(ex.last_epoch_probabilities(cfg, run, prep, rows), expected)
    assert stored(run) == best_files and len(list((run.run_dir / predictions.FOLDER / "last").glob("*.npy"))) == 1
    monkeypatch.setattr(ex, "load_model", lambda *a, **k: pytest.fail("a stored prediction loaded the model"))
    np.testing.assert_array_equal(ex.last_epoch_probabilities(cfg, run, prep, rows), expected)
