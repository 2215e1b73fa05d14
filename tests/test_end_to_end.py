"""Every notebook, end to end, on the smoke profile (``smoke_run`` in conftest.py): the tables and
figures exist and hold valid values, and a run killed in the middle of a training notebook resumes
to the same tables."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

TABLES = {
    "table1_nih_auc.csv": 14 + 1,  # rows per model: 14 findings + Mean
    "table2_chexpert_auc.csv": 5 + 1,
    "table3_ensembles.csv": None,
    "ablation_k_sweep.csv": None,
    "ablation_uncertain_policies.csv": None,
    "ablation_teaching.csv": None,
    "ablation_teachers.csv": None,
    "ablation_faithful_vs_efficient.csv": None,
    "ablation_noise_lambda_grid.csv": None,
    "verdict.csv": None,
    "verdict_best_epoch.csv": None,
    "seed_spread_nih.csv": None,
    "seed_spread_best_epoch_chexpert.csv": None,
    "ensembles_noise_cost.csv": None,
    "ensembles_gain_by_labels.csv": None,
    "headline_gain_nih.csv": None,
    "headline_gain_chexpert.csv": None,
    "localisation_masks.csv": None,
}
AUC_COLUMNS = ("ours", "ours_mean_auc", "paper", "paper_mean_auc", "reference_mean_auc", "model_mean_auc")
FIGURES = ("fig1_label_distribution", "fig3_roc_chexpert", "fig4_k_sweep_gain", "fig5_heatmaps_b_vs_target",
           "teach_loss_terms", "teach_memorisation", "teach_noise_lambda_grid")


@pytest.mark.parametrize("name, rows_per_model", TABLES.items())
def test_tables_exist_with_valid_values(smoke_run, name, rows_per_model):
    table = pd.read_csv(smoke_run / "tables" / name)
    assert len(table) > 0
    for stem_ext in (".md", ".tex"):
        assert (smoke_run / "tables" / name.replace(".csv", stem_ext)).stat().st_size > 0
    if rows_per_model:
        assert set(table["model"]) >= {"B", "B+MODL", "B+KNNS", "B+MODL+KNNS"}
        assert (table.groupby("model").size() == rows_per_model).all()
    for column in [c for c in table.columns if c in AUC_COLUMNS]:
        values = table[column].dropna()
        assert ((values >= 0) & (values <= 100)).all(), column
    for gain, low, high in (("gain", "gain_ci_low", "gain_ci_high"), ("gain", "ci_low", "ci_high"),
                            ("gain_over_ref", "gain_ci_low", "gain_ci_high")):
        if {gain, low, high} <= set(table.columns):  # verdict and the noise grid name their CI ci_low/ci_high
            rows = table.dropna(subset=[gain])
            assert ((rows[low] <= rows[gain] + 1e-9) & (rows[gain] <= rows[high] + 1e-9)).all(), name


def test_reference_table_shows_the_ensemble_headroom(smoke_run):
    headroom = pd.read_csv(smoke_run / "tables" / "references_ensemble_headroom.csv", index_col="layout")
    assert sorted(headroom.index) == ["chexpert", "nih"]
    for column in ("ensemble", "mean_single", "best_single", "target_arch_single"):
        assert headroom[column].between(0, 100).all(), column
    assert (headroom["best_single"] >= headroom["mean_single"]).all()
    ci = headroom[["over_target_arch_ci_low", "over_target_arch", "over_target_arch_ci_high"]].to_numpy()
    assert (ci[:, 0] <= ci[:, 1] + 1e-9).all() and (ci[:, 1] <= ci[:, 2] + 1e-9).all()


@pytest.mark.parametrize("stem", FIGURES)
def test_figures_exist(smoke_run, stem):
    """The run wrote each figure as a PNG that decodes to a drawing (not a blank canvas) and a PDF. What each
    figure shows (panels, labels, series, legends) is checked on its Figure in test_figures.py."""
    from PIL import Image

    png, pdf = (smoke_run / "figures" / f"{stem}{ext}" for ext in (".png", ".pdf"))
    with Image.open(png) as image:
        assert image.format == "PNG" and min(image.size) > 100, image.size
        assert len(image.convert("L").getcolors()) > 2, f"{png} is blank"  # L: at most 256 grey levels
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000


def test_report_index_links_every_table(smoke_run):
    text = (smoke_run / "REPORT.md").read_text()
    for name in TABLES:
        assert name.replace(".csv", "") in text
    executed = sorted(p.stem for p in (smoke_run / "executed").glob("*.ipynb"))
    assert executed == sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.py"))


# --- a killed run resumes and ends with the same tables ------------------------------------------

#: Notebooks whose cells train models (a kill inside them must resume mid-run).
TRAINING_NOTEBOOKS = ("02_reference_training", "05_target_training")
#: Table columns that are measured wall-clock times or throughputs (they differ between any two runs).
TIMING_COLUMN = re.compile(r"seconds|time|img/s|images_per_s|img_per_s|(^|_)s$")


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process (``ps`` on Linux and macOS)."""
    out = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,stat="], capture_output=True, text=True, check=True).stdout
    return {int(pid): (int(ppid), stat) for pid, ppid, stat in (line.split()[:3] for line in out.splitlines())}


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``. The runner's Jupyter kernel runs in a session of its own
    (jupyter_client starts it with ``start_new_session``), so killing the runner's process group
    alone would leave the kernel training, and writing, until it notices its parent is gone."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in _process_table().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _kill_everything(proc: subprocess.Popen) -> None:
    """SIGKILL the runner's process group and every process below it (the kernel too); wait until
    none of them runs any more (a zombie writes nothing). No deadline: a process that outlives SIGKILL
    is a hang, reported by pytest-timeout with this loop's stack."""
    victims = _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    while [p for p in victims if not _process_table().get(p, (0, "Z"))[1].startswith("Z")]:
        time.sleep(0.1)


def _current_notebook(log: str) -> str | None:
    """The notebook the runner has started and not finished, from its progress lines."""
    started = re.findall(r"^\[\d+/\d+\] (\S+) \.\.\.$", log, flags=re.M)
    finished = set(re.findall(r"^\[\d+/\d+\] (\S+) done in ", log, flags=re.M))
    return started[-1] if started and started[-1] not in finished else None


def _runs_in_progress(root: Path) -> list[Path]:
    """Training runs with a checkpoint but no manifest: stopped between two epochs, to be resumed."""
    return sorted(
        p.parent for p in (root / "checkpoints").glob("*/*/last.pt") if not (p.parent / "manifest.json").exists()
    )


def _is_temporary(path: Path, root: Path) -> bool:
    """Inside a ``.tmp-`` / ``.old-`` sibling of ``paperkit.artifacts.atomic_path`` (no reader looks there)."""
    return any(part.startswith((".tmp-", ".old-")) for part in path.relative_to(root).parts)


def _assert_nothing_half_written(root: Path) -> None:
    """Every file a rerun trusts is complete: manifests parse, checkpoints load, finished runs hold
    their files. Leftovers of interrupted atomic writes carry temporary names that nothing reads."""
    from paperkit.training.checkpoint import load_checkpoint

    for manifest in root.rglob("manifest.json"):
        if _is_temporary(manifest, root):
            continue
        assert "hash" in json.loads(manifest.read_text()), manifest
        if manifest.parent.parent.parent.name == "checkpoints":  # a finished training run
            for name in ("best.pt", "last.pt", "metrics.csv"):
                assert (manifest.parent / name).is_file(), manifest.parent / name
            epochs = json.loads(manifest.read_text())["summary"]["epochs"]
            assert len(pd.read_csv(manifest.parent / "metrics.csv")) == epochs, manifest.parent
    for checkpoint in root.rglob("*.pt"):
        if not _is_temporary(checkpoint, root):
            assert "model" in load_checkpoint(checkpoint), checkpoint
    json.loads((root / "run_log.json").read_text())


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in table.columns if TIMING_COLUMN.search(str(c))])


@pytest.mark.timeout(3600)  # a smoke run before the kill and one after, plus the reference run if not yet made
def test_killed_run_resumes_to_identical_tables(smoke_run, tmp_path):
    """Kill ``run_all.sh`` (SIGKILL, whole process tree) in the middle of a training notebook while a
    model is between epochs, rerun it: the run resumes from its checkpoint and every table equals the
    uninterrupted run's, measured timings aside."""
    from paperkit.training.checkpoint import load_checkpoint

    results = tmp_path / "results"
    root = results / "smoke"
    env = {**os.environ, "PAPERKIT_RESULTS": str(results)}
    env.pop("PAPERKIT_FORCE_SINCE", None)
    # run_all.sh checks the environment, then execs exactly this command (so killing it kills this)
    command = [sys.executable, "-m", "paperkit", "run", "--profile", "smoke"]
    log_path = tmp_path / "killed_run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while True:  # until a run is between epochs, or the run ends; a hang is pytest-timeout's (above)
            text = log_path.read_text()
            if _current_notebook(text) in TRAINING_NOTEBOOKS and _runs_in_progress(root):
                break
            assert proc.poll() is None, (
                f"the run ended (rc {proc.returncode}) before it could be killed:\n{text[-3000:]}"
            )
            time.sleep(0.05)  # an epoch of the smoke profile can take well under a second
    finally:
        _kill_everything(proc)
    killed_in = _current_notebook(log_path.read_text())

    interrupted = _runs_in_progress(root)
    assert interrupted, "the kill was meant to land between two epochs of a training run"
    _assert_nothing_half_written(root)
    # the epochs done before the kill: resuming must keep them, not train them again
    kept = {run: pd.DataFrame(load_checkpoint(run / "last.pt")["history"]) for run in interrupted}
    print(
        f"killed in {killed_in}: "
        + ", ".join(f"{r.parent.name}/{r.name} after epoch {len(h)}" for r, h in kept.items())
    )

    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _assert_nothing_half_written(root)
    for run, before in kept.items():
        after = pd.read_csv(run / "metrics.csv")
        assert len(after) == json.loads((run / "manifest.json").read_text())["summary"]["epochs"]
        # a retrained epoch would have another wall time: equal times mean the epochs were resumed
        assert list(after["train_s"][: len(before)]) == list(before["train_s"]), f"{run} did not resume ({killed_in})"

    reference = sorted(p.name for p in (smoke_run / "tables").glob("*.csv"))
    assert sorted(p.name for p in (root / "tables").glob("*.csv")) == reference
    for name in reference:
        expected = _comparable(pd.read_csv(smoke_run / "tables" / name))
        got = _comparable(pd.read_csv(root / "tables" / name))
        # exact: training on CPU is deterministic (torch.use_deterministic_algorithms) and a
        # checkpoint holds every generator's state, so a resumed model is bit for bit the same
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=f"{name} (killed in {killed_in})")


def test_plan_lists_exactly_the_runs_trained(smoke_run):
    """The plan (paperkit.pipeline.plan) and the runner's plan.json name the very run folders the notebooks created."""
    from paperkit.config import get_profile
    from paperkit.pipeline.plan import planned_runs

    trained = {
        p.relative_to(smoke_run / "checkpoints").as_posix()
        for p in (smoke_run / "checkpoints").glob("*/*")
        if p.is_dir()
    }
    planned = {r.folder for r in planned_runs(get_profile("smoke"))}
    assert trained == planned, (
        f"trained, not planned: {sorted(trained - planned)}; planned, not trained: {sorted(planned - trained)}"
    )
    saved = json.loads((smoke_run / "plan.json").read_text())
    assert {r["folder"] for r in saved["runs"]} == planned
    assert saved["rates"]["device"] == "cpu" and saved["total_seconds"] > 0
    assert "- plan (plan.json): " in (smoke_run / "REPORT.md").read_text()


def test_verdict_scores_the_second_draw_at_the_last_epoch(smoke_run):
    """The smoke profile's verdict scores its test split and its second draw, each run at its last epoch
    (the default score_epoch); the other reading is written beside it."""
    verdict = pd.read_csv(smoke_run / "tables" / "verdict.csv")
    assert verdict["images"].str.contains("second draw").all()
    assert "last epoch" in (smoke_run / "tables" / "verdict.md").read_text()
    assert "epoch validation chose" in (smoke_run / "tables" / "verdict_best_epoch.md").read_text()
