"""Artifacts prove themselves: a finished step's file that no longer matches its manifest is named, and
that step alone is redone, with the same results as before."""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from paperkit.artifacts import ArtifactDamagedWarning, Step, damaged_files, read_manifest
from paperkit.config import resolve
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment as ex
from paperkit.training.checkpoint import load_checkpoint, save_checkpoint


def _finished_step(tmp_path: Path) -> tuple[Step, Path]:
    step = Step(tmp_path / "step", {"k": 1})
    out = step.start()
    (out / "values.bin").write_bytes(bytes(range(200)))
    (out / "sub").mkdir()
    (out / "sub" / "later.txt").write_text("written after the step, by another one")
    step.finish({"n": 1})
    return step, out / "values.bin"


def test_manifest_records_every_file_of_the_step(tmp_path):
    step, data = _finished_step(tmp_path)
    files = read_manifest(step.out_dir)["files"]
    assert list(files) == ["values.bin"] and files["values.bin"]["bytes"] == 200
    assert step.done


@pytest.mark.parametrize("damage", ["truncate", "same size, other bytes", "delete"])
def test_damaged_file_is_named_and_the_step_redone(tmp_path, damage):
    step, data = _finished_step(tmp_path)
    if damage == "truncate":
        data.write_bytes(data.read_bytes()[:50])
    elif damage == "same size, other bytes":
        data.write_bytes(bytes(200))
        os.utime(data, ns=(0, 0))  # a time the manifest cannot hold: the bytes are rehashed
    else:
        data.unlink()
    with pytest.warns(ArtifactDamagedWarning, match=re.escape(str(data))):
        assert not Step(step.out_dir, {"k": 1}).done
    # nothing of the damaged output is left to resume from; later sub-folders are not the step's
    assert not data.exists() and read_manifest(step.out_dir) is None
    assert (step.out_dir / "sub" / "later.txt").is_file()


def test_a_copy_with_new_times_but_the_same_bytes_is_trusted(tmp_path):
    step, data = _finished_step(tmp_path)
    os.utime(data, ns=(10**18, 10**18))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ArtifactDamagedWarning)
        assert step.done
    assert damaged_files(step.out_dir, read_manifest(step.out_dir)) == []


# --- the pipeline: each kind of artifact truncated, the same results back ---------------------------

def _chain(cfg, paths):
    """Notebooks 01-05 in miniature: cache, a reference, soft labels, pools, the target; its test predictions."""
    prep = ex.prepare(cfg, paths, "nih")
    refs = ex.train_references(cfg, paths, prep)
    soft = ex.soft_labels(cfg, paths, prep, refs)
    pools = ex.pools(cfg, paths, prep, soft, cfg.k)
    target = ex.train_run(cfg, paths, prep, cfg.target_arch, 0, "B+MODL+KNNS", soft=soft, pools=pools)
    files = {
        "image cache": prep.images.out_dir / "images.npy",
        "reference checkpoint": next(iter(refs.values())).run_dir / "best.pt",
        "soft labels": paths.soft_labels / soft.folder / "soft_labels.npz",
        "pools": paths.pools / pools.folder / "pools.npz",
        "target checkpoint": target.run_dir / "best.pt",
    }
    outputs = {"soft": soft.values, "pools": pools.index,
               "test probabilities": ex.probabilities(cfg, target, prep, prep.rows("test"))}
    return files, outputs


def _finish_times(paths: RunPaths) -> dict[str, float]:
    return {str(m.parent.relative_to(paths.root)): read_manifest(m.parent)["finished_at"]
            for m in paths.root.rglob("manifest.json") if "predictions" not in m.parts}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PAPERKIT_RESULTS", str(tmp_path_factory.mktemp("integrity")))
    cfg = resolve("smoke", {"n_images": 120, "epochs": 1, "layouts": "nih", "seeds": "0"})
    paths = RunPaths.for_profile(cfg)
    files, outputs = _chain(cfg, paths)
    yield cfg, paths, files, outputs
    mp.undo()


@pytest.mark.parametrize("kind", ["image cache", "reference checkpoint", "soft labels", "pools", "target checkpoint"])
def test_truncated_artifact_is_rebuilt_alone_with_identical_results(pipeline, kind):
    cfg, paths, files, outputs = pipeline
    before = _finish_times(paths)
    damaged = files[kind]
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    with pytest.warns(ArtifactDamagedWarning, match=re.escape(str(damaged))):
        _, again = _chain(cfg, paths)
    for name, value in outputs.items():
        np.testing.assert_array_equal(again[name], value, err_msg=f"{name} changed after rebuilding the {kind}")
    after = _finish_times(paths)
    redone = sorted(step for step in before if after.get(step) != before[step])
    assert redone == [str(damaged.parent.relative_to(paths.root))]


def test_unreadable_checkpoint_error_names_the_file(tmp_path):
    path = tmp_path / "best.pt"
    save_checkpoint(path, {"epoch": 3, "weights": np.zeros(4, dtype=np.float32)})
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(RuntimeError, match=re.escape(str(path))):
        load_checkpoint(path)
