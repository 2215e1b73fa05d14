"""Live progress: the kernel's status file, the runner's one line, and the time left."""
from __future__ import annotations

import io
import json

import pytest

from paperkit import progress
from paperkit.orchestration.runner import remaining_estimate


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tracker_reports_to_the_status_file_without_a_bar(tmp_path, monkeypatch, capsys):
    status = tmp_path / "progress.json"
    monkeypatch.setenv(progress.STATUS_ENV, str(status))
    bar = progress.Tracker("ref-densenet_tiny-s0 (nih)", "epoch 2/3", total=4, per_unit=32, after=4, ends_task=False)
    bar.update(2)
    bar.close()  # close always writes, whatever the interval
    got = json.loads(status.read_text())
    assert got["task"] == "ref-densenet_tiny-s0 (nih)" and got["stage"] == "epoch 2/3"
    assert got["done"] == 2 and got["total"] == 4 and got["rate"] > 0 and got["eta_s"] > 0
    assert capsys.readouterr().err == ""  # no bar: nobody would see it
    progress.finish_task()
    assert progress.describe(progress.read_status(status)) == ""


def test_a_finished_cache_or_render_is_no_longer_shown(tmp_path, monkeypatch):
    """A one-stage task ends when its tracker closes: the runner's next line says the notebook runs,
    not the last image cache that finished minutes ago."""
    status = tmp_path / "progress.json"
    monkeypatch.setenv(progress.STATUS_ENV, str(status))
    with progress.Tracker("cache nih-64px", "", total=3) as bar:
        bar.update(3)
        assert progress.describe(progress.read_status(status)).startswith("cache nih-64px")
    assert progress.describe(progress.read_status(status)) == ""


def test_describe_names_run_rate_and_eta():
    line = progress.describe({"task": "B-s0 (nih)", "stage": "epoch 3/6", "rate": 340.4, "unit": "img", "eta_s": 70})
    assert line == "B-s0 (nih) epoch 3/6 · 340 img/s · ETA 1m10s"
    assert progress.describe({"task": "cache nih-32px", "stage": "", "done": 5, "total": 9}) == "cache nih-32px 5/9"


@pytest.mark.parametrize("seconds, text", [(8.2, "8s"), (75, "1m15s"), (3700, "1h01m")])
def test_format_seconds(seconds, text):
    assert progress.format_seconds(seconds) == text


def _write(path, task):
    path.write_text(json.dumps({"task": task, "stage": "epoch 1/2", "rate": 10.0, "eta_s": 5}))


def test_log_gets_a_line_per_new_run_not_per_poll(tmp_path):
    """Not a terminal: a line when the active run changes, none for polls that see the same run."""
    status, out = tmp_path / "progress.json", io.StringIO()
    live = progress.LiveStatus(status, "[2/8] 02", lambda elapsed: 600.0, stream=out, min_gap_s=0)
    for task in ("ref-a-s0 (nih)", "ref-a-s0 (nih)", "ref-a-s0 (nih)", "ref-b-s0 (nih)"):
        _write(status, task)
        live.tick()
    lines = out.getvalue().splitlines()
    assert lines == ["  [2/8] 02 · ref-a-s0 (nih) epoch 1/2 · 10 img/s · ETA 5s · all done in ~10m00s",
                     "  [2/8] 02 · ref-b-s0 (nih) epoch 1/2 · 10 img/s · ETA 5s · all done in ~10m00s"]


def test_terminal_line_is_rewritten_in_place(tmp_path):
    status, out = tmp_path / "progress.json", Terminal()
    live = progress.LiveStatus(status, "[1/8] 01", lambda elapsed: None, stream=out)
    live.tick()  # no status yet: the notebook and its time
    _write(status, "ref-a-s0 (nih)")
    live.tick()
    text = out.getvalue()
    assert "\n" not in text and text.count("\r") == 2
    assert text.split("\r")[-1].rstrip() == "[1/8] 01 · ref-a-s0 (nih) epoch 1/2 · 10 img/s · ETA 5s"


def test_remaining_time_from_the_previous_run():
    previous = {"01": 30.0, "02": 300.0, "03": 20.0}
    left = remaining_estimate(previous, ["01", "02", "03"], 1)
    assert left(100.0) == 220.0 and left(400.0) == 20.0  # overrunning: the rest still counts
    assert remaining_estimate({"01": 30.0}, ["01", "02"], 0)(0.0) is None  # 02 never ran: unknown
