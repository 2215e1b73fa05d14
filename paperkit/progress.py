"""Progress of long steps: a bar for whoever watches, a status file for ``run_all.sh``.

Inside a notebook that ``run_all.sh`` executes, nobody sees the kernel's output until the notebook
ends, so bars there would only bloat the executed copy. The runner therefore sets
:data:`STATUS_ENV` to a JSON file that the kernel inherits; :class:`Tracker` then shows no bar and
instead writes the active task's status there (atomically, at most every :data:`MIN_INTERVAL_S`),
and the runner's :class:`LiveStatus` reads it and prints one line. Elsewhere (JupyterLab, a
terminal) :class:`Tracker` shows a tqdm bar: a widget where ipywidgets is installed, text otherwise.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

from paperkit.artifacts import write_text

#: Set by the runner to the status file the kernel writes; unset = interactive (show bars).
STATUS_ENV = "PAPERKIT_PROGRESS"
#: Seconds between two writes of the status file (a training step can take milliseconds).
MIN_INTERVAL_S = 1.0


def status_path() -> Path | None:
    """The status file this process reports to, or ``None`` when someone watches its output."""
    value = os.environ.get(STATUS_ENV, "")
    return Path(value) if value else None


def format_seconds(seconds: float) -> str:
    """``75`` -> ``"1m15s"``, ``3700`` -> ``"1h01m"``, ``8.2`` -> ``"8s"``."""
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def in_kernel() -> bool:
    """True inside a Jupyter kernel (papermill included), where rich output renders."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def _bar_class() -> Callable[..., Any]:
    """tqdm's widget bar in a kernel with ipywidgets, else its text bar (stdout in a kernel, whose
    stderr renders as a red block). Chosen here, not by ``tqdm.auto``, which warns on import in a
    kernel without ipywidgets."""
    from tqdm.std import tqdm as text_bar

    if not in_kernel():
        return text_bar
    try:
        import ipywidgets  # noqa: F401  (tqdm.notebook needs it)
        from tqdm.notebook import tqdm as widget_bar

        return widget_bar
    except ImportError:
        return lambda *args, **kwargs: text_bar(*args, file=sys.stdout, **kwargs)


@dataclass
class Tracker:
    """Progress of one stage (e.g. an epoch) of one task (e.g. a training run).

    Parameters
    ----------
    task
        What runs, e.g. ``"B-densenet_tiny-s0-e3855a7f (nih-seed20261202)"``; the runner prints a line when it changes.
    stage
        Where in the task, e.g. ``"epoch 3/6"``.
    total
        Units in this stage (steps, images).
    unit
        Name of what ``rate`` counts per second (``"img"``).
    per_unit
        ``rate`` units per counted unit (images per training step).
    after
        Units the task still has after this stage (later epochs), for its ETA.
    show
        Show a bar when nobody reads the status file (interactive use).
    initial
        Units already done (a resumed cache).
    ends_task
        Closing it ends the task, so the runner stops showing it (an image cache, a render); a training
        run's epochs leave that to the loop (:func:`finish_task` after the last epoch).
    """

    task: str
    stage: str
    total: int
    unit: str = "img"
    per_unit: int = 1
    after: int = 0
    show: bool = True
    initial: int = 0
    ends_task: bool = True

    def __post_init__(self) -> None:
        self.done = self.initial
        self._counted = 0  # units done here, for the rate (a resumed cache's first rows cost nothing)
        self._t0 = time.perf_counter()
        self._written = 0.0
        self._path = status_path()
        self._bar = None
        if self._path is None and self.show:
            self._bar = _bar_class()(total=self.total, initial=self.initial, leave=False,
                                     desc=f"{self.task} {self.stage}".strip(),
                                     unit="it" if self.per_unit != 1 else self.unit)
        self._publish(force=True)

    def update(self, n: int = 1, **postfix: str) -> None:
        """Count ``n`` more units; ``postfix`` (e.g. loss terms) goes on the bar."""
        self.done += n
        self._counted += n
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
        self._publish()

    def rate(self) -> float:
        """``unit`` per second so far in this stage."""
        elapsed = time.perf_counter() - self._t0
        return self._counted * self.per_unit / elapsed if elapsed > 0 and self._counted else 0.0

    def eta(self) -> float | None:
        """Seconds until the task ends, at this stage's pace (``None`` before the first unit)."""
        elapsed = time.perf_counter() - self._t0
        if not self._counted or elapsed <= 0:
            return None
        return (self.total - self.done + self.after) * elapsed / self._counted

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._publish(force=True)
        if self.ends_task and self._path is not None:
            publish(self._path, {"task": None})

    def _publish(self, force: bool = False) -> None:
        if self._path is None:
            return
        now = time.monotonic()
        if not force and now - self._written < MIN_INTERVAL_S:
            return
        self._written = now
        publish(self._path, {"task": self.task, "stage": self.stage, "done": self.done, "total": self.total,
                             "rate": round(self.rate(), 1), "unit": self.unit, "eta_s": self.eta()})


def publish(path: Path, status: Mapping[str, Any]) -> None:
    """Write ``status`` (plus the time) to ``path`` atomically; never fail the work over it."""
    try:
        write_text(path, json.dumps({**status, "time": time.time()}))
    except OSError:
        pass  # a full or vanished results folder must not stop a training run


def finish_task() -> None:
    """Mark the reported task as ended (the runner then shows the notebook alone)."""
    path = status_path()
    if path is not None:
        publish(path, {"task": None})


def read_status(path: Path) -> dict[str, Any]:
    """The last status written to ``path``; ``{}`` when there is none (or a write raced the read)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def describe(status: Mapping[str, Any]) -> str:
    """``"B-densenet_tiny-s0-e3855a7f (nih-seed20261202) epoch 3/6 · 340 img/s · ETA 1m10s"``; ``""`` when no
    task runs."""
    if not status.get("task"):
        return ""
    parts = [f"{status['task']} {status.get('stage', '')}".strip()]
    if not status.get("stage") and status.get("total"):  # e.g. an image cache: how far it is
        parts[0] += f" {status.get('done', 0)}/{status['total']}"
    if status.get("rate"):
        parts.append(f"{status['rate']:.0f} {status.get('unit', 'img')}/s")
    if status.get("eta_s") is not None:
        parts.append(f"ETA {format_seconds(status['eta_s'])}")
    return " · ".join(parts)


class LiveStatus:
    """The runner's view of the notebook that runs: one line, from the kernel's status file.

    On a terminal the line is rewritten in place every ``interval`` seconds. Otherwise (a log
    file) a line is printed when the active task changes and at most every ``quiet_s`` seconds,
    so a long run's log stays readable.

    Parameters
    ----------
    path
        The status file (the runner exports it as :data:`STATUS_ENV`).
    prefix
        Start of every line, e.g. ``"[2/8] 02"``.
    remaining
        ``elapsed seconds -> estimated seconds left for the whole run`` or ``None`` if unknown.
    """

    def __init__(
        self,
        path: Path,
        prefix: str,
        remaining: Callable[[float], float | None],
        stream: TextIO | None = None,
        interval: float = 0.5,
        quiet_s: float = 60.0,
        min_gap_s: float = 5.0,
    ) -> None:
        self.path, self.prefix, self.remaining = path, prefix, remaining
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval, self.quiet_s, self.min_gap_s = interval, quiet_s, min_gap_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="paperkit-live-status", daemon=True)
        self._t0 = time.perf_counter()
        self._last_task: str | None = None
        self._last_print = time.monotonic()  # the runner has just printed the notebook's start line
        self._width = 0

    def __enter__(self) -> "LiveStatus":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.tty and self._width:  # leave a clean line for the runner's next message
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()

    def line(self, status: Mapping[str, Any], elapsed: float) -> str:
        """The line shown for ``status`` after ``elapsed`` seconds in this notebook."""
        parts = [self.prefix, describe(status) or f"running {format_seconds(elapsed)}"]
        left = self.remaining(elapsed)
        if left is not None:
            parts.append(f"all done in ~{format_seconds(left)}")
        return " · ".join(p for p in parts if p)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        """Read the status once and show it (the thread's body; tests call it directly)."""
        status = read_status(self.path)
        elapsed = time.perf_counter() - self._t0
        text = self.line(status, elapsed)
        if self.tty:
            text = text[: max(20, _terminal_width() - 1)]
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            task, now = status.get("task"), time.monotonic()
            changed = bool(task) and task != self._last_task
            # a new task prints at once unless one just did (short runs would flood the log);
            # otherwise one line a minute says the run is alive
            wait = self.min_gap_s if changed else self.quiet_s
            if now - self._last_print < wait:
                return
            if task:
                self._last_task = task
            self._last_print = now
            self.stream.write("  " + text + "\n")
        self.stream.flush()


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns
