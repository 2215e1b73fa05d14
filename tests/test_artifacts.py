import json

import pytest

from paperkit.artifacts import FORCE_ENV, Step, atomic_path, fingerprint, read_manifest, write_json, write_text


def test_atomic_write_replaces_file(tmp_path):
    target = tmp_path / "a.txt"
    write_text(target, "old")
    write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporaries left behind


def test_interrupted_write_keeps_old_artifact(tmp_path):
    target = tmp_path / "table.csv"
    write_text(target, "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half-writ")
            raise KeyboardInterrupt  # a kill in the middle of the write
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_atomic_directory(tmp_path):
    target = tmp_path / "cache"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "x").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "x").write_text("2")
            raise RuntimeError
    assert (target / "x").read_text() == "1"


def _run(step_dir, config, inputs=(), log=None):
    step = Step(step_dir, config, inputs)
    if not step.done:
        step.start()
        (step_dir / "out.json").write_text(json.dumps(config))
        step.finish({"n": 1})
        if log is not None:
            log.append(step_dir.name)
    return step


def test_manifest_skips_when_unchanged_and_redoes_dependants(tmp_path):
    up, down, log = tmp_path / "soft_labels", tmp_path / "pools", []
    _run(up, {"refs": ["a", "b"]}, log=log)
    _run(down, {"k": 9}, [up], log=log)
    assert log == ["soft_labels", "pools"]
    _run(up, {"refs": ["a", "b"]}, log=log)
    _run(down, {"k": 9}, [up], log=log)
    assert log == ["soft_labels", "pools"]  # nothing redone
    _run(down, {"k": 5}, [up], log=log)
    assert log[-1] == "pools"  # own config changed
    _run(up, {"refs": ["a", "b", "c"]}, log=log)
    _run(down, {"k": 5}, [up], log=log)
    assert log[-2:] == ["soft_labels", "pools"]  # upstream changed -> dependant redone


def test_unfinished_step_is_not_done(tmp_path):
    step = Step(tmp_path / "s", {"a": 1})
    step.start()
    assert not step.done and read_manifest(tmp_path / "s") is None


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run it first"):
        fingerprint({}, [tmp_path])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fingerprint({}, [tmp_path / "nope"])


def test_force_redoes_steps_finished_before_it(tmp_path, monkeypatch):
    """The times are set, not waited for: the step finished at 1e9 s (2001), the forced run started at 1.5e9 s."""
    log = []
    _run(tmp_path / "s", {"a": 1}, log=log)
    manifest = read_manifest(tmp_path / "s")
    write_json(tmp_path / "s" / "manifest.json", {**manifest, "finished_at": 1.0e9})
    assert _run(tmp_path / "s", {"a": 1}, log=log).done and log == ["s"]  # no force: resumes
    monkeypatch.setenv(FORCE_ENV, str(1.5e9))  # what `run_all.sh --force` sets at its start: a UNIX time
    _run(tmp_path / "s", {"a": 1}, log=log)
    assert log == ["s", "s"]
    assert read_manifest(tmp_path / "s")["finished_at"] > 1.5e9  # redone now, under the real clock
    _run(tmp_path / "s", {"a": 1}, log=log)  # finished after the force time: resumes
    assert log == ["s", "s"]


def test_write_json_roundtrip(tmp_path):
    write_json(tmp_path / "m.json", {"b": (1, 2), "a": tmp_path})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": str(tmp_path), "b": [1, 2]}
