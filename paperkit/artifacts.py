"""Atomic writes and content-hashed manifests, so every expensive step resumes and redoes only what changed.

A *step* (a dataset build, one model's training, soft labels, a pool) owns a directory. When it
finishes it writes ``manifest.json`` holding a hash of its configuration and of the manifests of
the steps it read. A rerun whose hash matches is skipped; a change anywhere upstream changes the
hash of every dependant, so exactly the affected steps are redone.

The manifest also records the size, modification time and sha256 of every file the step left in its
directory, so its outputs prove themselves: a file truncated (a partial copy, a full disk) or
rewritten since is named in a warning, and that step alone is redone (its hash, and so its
dependants, stay the same). Files whose size and modification time still match are trusted
without rehashing, as ``git status`` trusts its index, so a check costs a ``stat`` per file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

MANIFEST = "manifest.json"
#: When set (by ``run_all.sh --force``) to a UNIX time, manifests written before it count as stale,
#: so every step is redone once in that run and a killed forced run still resumes.
FORCE_ENV = "PAPERKIT_FORCE_SINCE"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success rename it onto ``path``.

    Works for files and directories. If the body raises (or the process dies), ``path`` keeps
    its previous content and the temporary is removed (or left with a ``.tmp-`` name that no
    reader looks at).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent)) / path.name
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            old = path.with_name(f".old-{path.name}-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot hash or serialise {type(obj).__name__}: {obj!r}")


def fingerprint(config: Mapping[str, Any], inputs: Sequence[str | os.PathLike] = ()) -> str:
    """Hash of a step's configuration and of the manifests of the steps it depends on.

    Parameters
    ----------
    config
        JSON-able settings that determine the step's output.
    inputs
        Directories of upstream steps (their ``manifest.json`` hash is folded in) or plain files
        (their bytes are hashed).

    Raises
    ------
    FileNotFoundError
        If an input has not been produced yet.
    """
    h = hashlib.sha256()
    h.update(json.dumps(config, sort_keys=True, default=_json_default).encode())
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            manifest = read_manifest(item)
            if manifest is None:
                raise FileNotFoundError(f"input step {item} has no {MANIFEST}: run it first")
            h.update(manifest["hash"].encode())
        elif item.is_file():
            with open(item, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        else:
            raise FileNotFoundError(f"input {item} does not exist: run the step that makes it first")
    return h.hexdigest()[:16]


def read_manifest(step_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The step's manifest, or ``None`` if it never finished."""
    path = Path(step_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


class ArtifactDamagedWarning(UserWarning):
    """A finished step's file no longer matches its manifest; the step is redone."""


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_files(out_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``{name: {"bytes", "mtime_ns", "sha256"}}`` of every file directly in ``out_dir`` but the manifest.

    Sub-folders are left out: they are steps of their own (stored predictions) or many small files.
    """
    out = {}
    for path in sorted(Path(out_dir).iterdir()):
        if path.is_file() and path.name != MANIFEST and not path.name.startswith("."):
            st = path.stat()
            out[path.name] = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_sha256(path)}
    return out


def damaged_files(out_dir: str | os.PathLike, manifest: Mapping[str, Any]) -> list[str]:
    """One line per file ``manifest`` records that is missing, resized or rewritten with other bytes.

    A file with the recorded size and modification time is trusted; one whose time changed (a copy,
    a touch) is rehashed and passes if its bytes are the recorded ones. Manifests written before
    files were recorded check nothing.
    """
    problems = []
    for name, rec in manifest.get("files", {}).items():
        path = Path(out_dir) / name
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        st = path.stat()
        if st.st_size != rec["bytes"]:
            problems.append(f"{path} has {st.st_size} bytes, its manifest records {rec['bytes']}")
        elif st.st_mtime_ns != rec["mtime_ns"] and file_sha256(path) != rec["sha256"]:
            problems.append(f"{path} has other bytes than its manifest records (sha256 differs)")
    return problems


class Step:
    """One resumable, content-hashed unit of work writing into ``out_dir``.

    Examples
    --------
    >>> step = Step(out_dir, config={"k": 9}, inputs=[soft_label_dir])   # doctest: +SKIP
    >>> if not step.done:
    ...     compute_and_write(out_dir)
    ...     step.finish({"n": 123})
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        config: Mapping[str, Any],
        inputs: Sequence[str | os.PathLike] = (),
    ) -> None:
        self.out_dir = Path(out_dir)
        self.config = dict(config)
        self.inputs = [str(p) for p in inputs]
        self.hash = fingerprint(self.config, inputs)

    @property
    def done(self) -> bool:
        """True when a manifest with the same hash exists and every file it records is intact.

        A damaged file (see :func:`damaged_files`) is named in an :class:`ArtifactDamagedWarning`,
        and the step's recorded files and manifest are removed, so nothing resumes from them and
        the step is redone from its start.
        """
        manifest = read_manifest(self.out_dir)
        if manifest is None or manifest.get("hash") != self.hash:
            return False
        force_since = float(os.environ.get(FORCE_ENV, 0) or 0)
        if manifest.get("finished_at", 0.0) < force_since:
            return False
        damaged = damaged_files(self.out_dir, manifest)
        if damaged:
            warnings.warn(f"{'; '.join(damaged)}: redoing the step in {self.out_dir}", ArtifactDamagedWarning,
                          stacklevel=2)
            for name in [MANIFEST, *manifest.get("files", {})]:
                (self.out_dir / name).unlink(missing_ok=True)
        return not damaged

    def start(self) -> Path:
        """Invalidate any previous output's manifest and return ``out_dir`` (created)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / MANIFEST).unlink(missing_ok=True)
        return self.out_dir

    def finish(self, summary: Mapping[str, Any] | None = None) -> None:
        """Record completion: the manifest is written last, atomically."""
        write_json(
            self.out_dir / MANIFEST,
            {
                "hash": self.hash,
                "config": self.config,
                "inputs": self.inputs,
                "summary": dict(summary or {}),
                "files": record_files(self.out_dir),
                "finished_at": time.time(),
            },
        )
