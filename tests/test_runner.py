"""The runner executes real jupytext notebooks headlessly and fails loudly."""
import json
import re

import nbformat
import pytest

from paperkit.config import ConfigError, get_profile
from paperkit.orchestration import cli, runner

GOOD = '''# %% tags=["parameters"]
profile = "smoke"
data_root = ""
overrides = {}

# %%
from paperkit.notebook import setup
cfg, paths = setup(profile, data_root, overrides)
(paths.root / "k.txt").write_text(str(cfg.k))
'''

BAD = GOOD + '''
# %%
x = 1

# %%
raise ValueError("deliberate failure in cell four")
'''


@pytest.fixture
def notebooks(tmp_path):
    d = tmp_path / "notebooks"
    d.mkdir()
    (d / "01_good.py").write_text(GOOD)
    (d / "02_bad.py").write_text(BAD)
    (d / "helper.py").write_text("# not a numbered notebook\n")
    return d


def test_lists_numbered_notebooks_in_order(notebooks):
    assert [p.name for p in runner.list_notebooks(notebooks)] == ["01_good.py", "02_bad.py"]


@pytest.mark.parametrize(
    "only, start, expected",
    [((), None, ["01_good", "02_bad"]), (("2",), None, ["02_bad"]), ((), "02", ["02_bad"]),
     (("01_good",), None, ["01_good"])],
)
def test_select(notebooks, only, start, expected):
    nbs = runner.list_notebooks(notebooks)
    assert [p.stem for p in runner.select_notebooks(nbs, only, start)] == expected


def test_select_unknown_names_notebooks(notebooks):
    with pytest.raises(ConfigError, match="no notebook matches '09'.*01_good"):
        runner.select_notebooks(runner.list_notebooks(notebooks), ["09"])


def test_executes_parametrised_notebook(notebooks):
    profile = get_profile("smoke")
    [run] = runner.run_notebooks(
        profile, {"k": 5}, [notebooks / "01_good.py"], kernel="python3", echo=lambda *a, **k: None
    )
    executed = nbformat.read(run.output, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'overrides = {"k": 5}' in injected[0].source
    from paperkit.paths import RunPaths

    paths = RunPaths.for_profile("smoke")
    assert (paths.root / "k.txt").read_text() == "5"
    assert "01_good" in json.loads(paths.run_log.read_text())["notebooks"]


def test_executed_copy_names_its_kernel_and_pairs_with_the_source(notebooks):
    """The executed copy records the kernel (JupyterLab then does not ask for one), and the same
    outputs sit beside the source as its jupytext pair: the source's cells exactly (no injected
    parameters cell), so jupytext opens the pair although the ``.ipynb`` is newer."""
    import jupytext

    source = notebooks / "01_good.py"
    [run] = runner.run_notebooks(get_profile("smoke"), {"k": 5}, [source], kernel="python3", echo=lambda *a, **k: None)
    executed = nbformat.read(run.output, as_version=4)
    assert executed.metadata.kernelspec == {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    paired = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert [c.source for c in paired.cells] == [c.source for c in jupytext.read(source).cells]
    assert jupytext.writes(paired, "py:percent") == jupytext.writes(jupytext.read(source), "py:percent")
    setup_cell = paired.cells[-1]
    assert "profile 'smoke'" in "".join(o.get("text", "") for o in setup_cell.outputs)


def test_kernel_transport_warning_stays_out_of_the_output(notebooks, capfd):
    """ipykernel's "running over TCP without encryption" line (on the kernel's stderr, which the
    runner's is) does not reach the output: the kernel's sockets are encrypted."""
    runner.run_notebooks(
        get_profile("smoke"), {}, [notebooks / "01_good.py"], kernel="python3", echo=lambda *a, **k: None
    )
    assert "without encryption" not in capfd.readouterr().err


def test_force_renders_the_benchmark_again(notebooks, monkeypatch):
    """``--force`` redoes the benchmark although its folder holds the previous draw."""
    from paperkit.artifacts import FORCE_ENV, read_manifest
    from paperkit.data.benchmark import generate_benchmark
    from paperkit.paths import RunPaths

    monkeypatch.setenv(FORCE_ENV, "0")  # restored after the test: run_notebooks sets it for this process
    folder = RunPaths.for_profile("smoke").benchmark / "nih"
    render = 'generate_benchmark(paths.benchmark / "nih", "nih", 10, 32, workers=1, progress=False)'
    generate_benchmark(folder, "nih", 10, 32, workers=1, progress=False)
    before = read_manifest(folder)["finished_at"]
    (notebooks / "03_bench.py").write_text(
        f"{GOOD}\n# %%\nfrom paperkit.data.benchmark import generate_benchmark\n{render}\n"
    )
    runner.run_notebooks(
        get_profile("smoke"), {}, [notebooks / "03_bench.py"], force=True, kernel="python3", echo=lambda *a, **k: None
    )
    assert read_manifest(folder)["finished_at"] > before


def test_failing_cell_is_named_and_executed_copy_kept(notebooks):
    with pytest.raises(runner.NotebookFailed, match=r"02_bad.py failed in cell \d+.*ValueError: deliberate failure"):
        runner.run_notebooks(
            get_profile("smoke"), {}, [notebooks / "02_bad.py"], kernel="python3", echo=lambda *a, **k: None
        )
    from paperkit.paths import RunPaths

    kept = RunPaths.for_profile("smoke").executed / "02_bad.ipynb"
    assert "deliberate failure" in kept.read_text()
    paired = nbformat.read(notebooks / "02_bad.ipynb", as_version=4)  # beside the source, without the red banner
    assert [o.ename for c in paired.cells for o in c.get("outputs", []) if o.output_type == "error"] == ["ValueError"]
    assert not any("papermill-error-cell-tag" in c.metadata.get("tags", []) for c in paired.cells)


def test_failing_notebook_exits_non_zero_naming_it(notebooks, monkeypatch, capsys):
    """``run_all.sh`` (``python -m paperkit run``): the notebooks before the failing one finish, the
    failing one keeps its executed copy with the error, and the exit status is non-zero with a
    message naming the notebook, the cell and that copy."""
    real = runner.list_notebooks
    monkeypatch.setattr(runner, "list_notebooks", lambda: real(notebooks))
    assert cli.main(["run", "--profile", "smoke", "--kernel", "python3"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"error: 02_bad.py failed in cell \d+ .*ValueError: deliberate failure in cell four", err), err
    from paperkit.paths import RunPaths

    paths = RunPaths.for_profile("smoke")
    kept = paths.executed / "02_bad.ipynb"
    assert str(kept) in err
    errors = [
        o
        for c in nbformat.read(kept, as_version=4).cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert [(o.ename, o.evalue) for o in errors] == [("ValueError", "deliberate failure in cell four")]
    assert list(json.loads(paths.run_log.read_text())["notebooks"]) == ["01_good"]


def test_only_run_rewrites_the_report_from_disk(notebooks, monkeypatch):
    """``--only 02`` re-indexes REPORT.md: tables written since, and the wall time summed over the log."""
    from paperkit.paths import RunPaths

    paths = RunPaths.for_profile("smoke")
    paths.tables.mkdir(parents=True)
    (paths.tables / "ablation_k_sweep.md").write_text("**ablation_k_sweep**: K sweep\n")
    paths.report.write_text("stale\n")
    paths.run_log.write_text(json.dumps({"notebooks": {"01_good": {"seconds": 100.0}}}))

    def fake_execute(notebook, output, parameters, kernel, progress=False):
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("{}")

    real = runner.list_notebooks
    monkeypatch.setattr(runner, "list_notebooks", lambda: real(notebooks))
    monkeypatch.setattr(runner, "execute", fake_execute)
    assert cli.main(["run", "--profile", "smoke", "--only", "02", "--kernel", "python3", "-p", "epochs=3"]) == 0
    text = paths.report.read_text()
    assert "stale" not in text and "### ablation_k_sweep" in text
    assert "| `epochs` | 3 (override) | 10 |" in text  # the run's resolved profile
    seconds = sum(e["seconds"] for e in json.loads(paths.run_log.read_text())["notebooks"].values())
    assert seconds >= 100.0 and "wall time: 0:01:40" in text
    assert "the last runner call finished: 02_bad" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--profile", "tpu"], "unknown profile 'tpu'"),
        (["run", "--profile", "smoke", "-p", "lamda_modl=0.3"], "unknown parameter 'lamda_modl'"),
        (["run", "--profile", "smoke", "-p", "k=nine"], "'k' must be an integer"),
        (["run", "--profile", "smoke", "-p", "k"], "not key=value"),
        (["run", "--profile", "nih"], "pass --data-root"),
        (["run", "--profile", "nih", "--data-root", "/no/such/dir"], "does not exist"),
        (["run", "--profile", "smoke", "--only", "99"], "no notebook matches '99'"),
    ],
)
def test_bad_input_fails_fast_with_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_help_lists_verbs(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "run" in out and "phantom" in out


def test_preflight_and_plan_come_before_any_notebook(notebooks, monkeypatch, capsys):
    """The preflight block, then the plan's total (and plan.json), then the notebooks."""
    from paperkit.paths import RunPaths

    real = runner.list_notebooks
    monkeypatch.setattr(runner, "list_notebooks", lambda: real(notebooks))
    monkeypatch.setattr(
        runner, "execute", lambda notebook, output, *a, **k: output.parent.mkdir(parents=True, exist_ok=True)
    )
    assert cli.main(["run", "--profile", "smoke", "--only", "01", "--kernel", "python3", "--no-probe"]) == 0
    out = capsys.readouterr().out
    order = [out.index(marker) for marker in ("preflight: profile 'smoke'", "total: ", "paperkit: profile 'smoke'")]
    assert order == sorted(order)
    saved = json.loads((RunPaths.for_profile("smoke").root / "plan.json").read_text())
    assert saved["profile"] == "smoke" and saved["runs"] and saved["probe_note"].startswith("no probe (--no-probe)")
