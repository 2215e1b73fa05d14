"""The preflight stops a run in seconds, before any notebook, naming every problem and its fix."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
from helpers import ROWS, write_chexpert, write_nih, xrv_data

from paperkit.config import resolve
from paperkit.data.datasets import DataError
from paperkit.orchestration import cli, preflight
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment as ex

REPO = Path(__file__).resolve().parent.parent
ENTRY = "Data_Entry_2017_v2020.csv"
Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def roomy_disk(monkeypatch):
    """Plenty of free disk, so that tests of other checks do not depend on this machine's."""
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: Usage(10**15, 0, 10**15))


@pytest.fixture
def sample_root(shared_dir, tmp_path) -> Path:
    """NIH's full Data_Entry (112,120 rows, from torchxrayvision) beside links to the 621 shared real images."""
    sample = shared_dir / "data" / "nih-sample-256"
    if not (sample / "images").is_dir():
        pytest.skip(f"{sample} is absent (621 real NIH images with their Data_Entry rows; see its README)")
    root = tmp_path / "nih"
    (root / "images").mkdir(parents=True)
    (root / f"{ENTRY}.gz").symlink_to(xrv_data() / f"{ENTRY}.gz")
    for image in (sample / "images").iterdir():
        (root / "images" / image.name).symlink_to(image)
    return root


def _offline_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "torch"),
               PAPERKIT_RESULTS=str(tmp_path / "results"), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return env


def test_nih_root_missing_most_images_stops_before_any_notebook(sample_root, tmp_path):
    """run_all.sh --profile nih on the real Data_Entry with a few hundred of its images: exit 2, the
    missing count and `-p missing=skip` named, no notebook started (the time it takes is measured
    in the closing notes, not here: machines differ)."""
    found = len(list((sample_root / "images").iterdir()))
    proc = subprocess.run(
        [sys.executable, "-m", "paperkit", "run", "--profile", "nih", "--data-root", str(sample_root)],
        cwd=REPO,
        env=_offline_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in errors), proc.stderr
    missing = [line for line in errors if "missing on disk" in line]
    assert len(missing) == 1 and f"{112_120 - found:,} of 112,120 images" in missing[0], proc.stderr
    assert "-p missing=skip" in missing[0] and f"train on the {found:,} found" in missing[0]
    assert f"images   {found:,} of 112,120 found" in proc.stdout  # the summary block comes first
    assert "paperkit: profile" not in proc.stdout and not (tmp_path / "results" / "nih" / "executed").exists()


def test_missing_skip_passes_on_that_root(sample_root, tmp_path, roomy_disk, capsys):
    cfg = resolve("nih", {"data_root": str(sample_root), "missing": "skip", "pretrained": "none"})
    report = preflight.run_preflight(cfg)
    assert report.problems == []
    (count,) = report.data
    assert (
        count.found
        == len(list((sample_root / "images").iterdir()))
        == count.size.n_train + count.size.n_val + count.size.n_test
    )
    assert any("missing images skipped" in n for n in report.notes)
    # the same through the command line, without training: the plan counts the images found
    assert (
        cli.main(
            [
                "plan",
                "--profile",
                "nih",
                "--data-root",
                str(sample_root),
                "-p",
                "missing=skip",
                "-p",
                "pretrained=none",
                "--no-probe",
                "--total",
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert f"{count.found:,} of 112,120 found" in out.out and "total: 23 training runs" in out.out
    assert "missing" not in out.err


def test_missing_images_of_a_small_root(tmp_path, roomy_disk):
    root = write_nih(tmp_path / "nih")
    for name, _, _ in ROWS[-3:]:  # test patients: the other splits stay whole under missing=skip
        (root / "images" / name).unlink()
    cfg = resolve("nih", {"data_root": str(root), "pretrained": "none", "split": "official", "batch_size": 2})
    (problem,) = preflight.run_preflight(cfg).problems
    assert problem.startswith(f"nih: 3 of {len(ROWS)} images listed in {ENTRY} are missing on disk")
    assert f"first: {ROWS[-3][0]}" in problem and "-p missing=skip" in problem
    assert preflight.run_preflight(resolve(cfg, {"missing": "skip"})).problems == []


def test_no_image_at_all_is_a_problem_even_when_skipping(tmp_path, roomy_disk):
    root = write_nih(tmp_path / "nih")
    shutil.rmtree(root / "images")
    cfg = resolve("nih", {"data_root": str(root), "pretrained": "none", "split": "official", "missing": "skip"})
    (problem,) = preflight.run_preflight(cfg).problems
    assert f"none of the {len(ROWS)} images" in problem and "no images/ or images_0NN/images/ folder" in problem


def test_root_without_metadata_names_the_files(tmp_path, roomy_disk):
    cfg = resolve("nih", {"data_root": str(tmp_path), "pretrained": "none"})
    (problem,) = preflight.run_preflight(cfg).problems
    assert problem.startswith("nih: ") and "Data_Entry_2017_v2020.csv" in problem


def test_chexpert_counts_frontal_views_and_missing_files(tmp_path, roomy_disk):
    root = write_chexpert(tmp_path)
    missing = root / "train" / "patient00001" / "study1" / "view1_frontal.jpg"
    missing.unlink()
    cfg = resolve("chexpert", {"data_root": str(tmp_path), "pretrained": "none", "batch_size": 2, "val_fraction": 0.34})
    report = preflight.run_preflight(cfg)
    (count,) = report.data
    assert (count.expected, count.found) == (6 + 4, 9)  # 6 frontal train views, 4 frontal valid views
    (problem,) = report.problems
    assert "1 of 10 images listed in CheXpert-v1.0-small/train.csv and valid.csv, frontal views" in problem
    assert "-p missing=skip" in problem


def test_cuda_requested_without_a_gpu(monkeypatch, roomy_disk):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    report = preflight.run_preflight(resolve("smoke", {"device": "cuda"}))
    (problem,) = report.problems
    assert problem.startswith("device=cuda but torch") and "-p device=cpu" in problem
    assert preflight.run_preflight(resolve("smoke")).problems == []


@pytest.mark.parametrize(
    "cuda, overrides, device_line, problem",
    [
        (True, {}, "cuda: Fake GPU (4 visible); independent runs: 4 at once on GPU 0, 1, 2, 3", None),
        (True, {"devices": "1,3"}, "; independent runs: 2 at once on GPU 1, 3", None),
        (True, {"devices": "0", "workers": 3}, "; independent runs: 3 at once on GPU 0", None),
        (True, {"devices": "4"}, "cuda: Fake GPU (4 visible)", "devices=4: GPU 4 not visible; torch sees 4"),
        (False, {}, "cpu (torch sees no CUDA GPU); independent runs: 1 at once", None),
        (False, {"devices": "0"}, "cpu (torch sees no CUDA GPU)", "devices=0 names GPUs but the runs train on the cpu"),
    ],
)
def test_device_line_names_the_runs_at_once(monkeypatch, roomy_disk, cuda, overrides, device_line, problem):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4 if cuda else 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU")
    report = preflight.run_preflight(resolve("smoke", overrides))
    assert device_line in report.device
    assert [line[: len(problem)] for line in report.problems] == [problem] if problem else report.problems == []


def test_disk_too_small(monkeypatch):
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: Usage(10**6, 0, 1000))
    (problem,) = preflight.run_preflight(resolve("smoke")).problems
    assert problem.startswith("disk: about") and "0.0 MB free" in problem and "PAPERKIT_RESULTS" in problem


def test_disk_estimate_counts_what_is_not_written_yet():
    cfg = resolve("gpu")
    paths = RunPaths.for_profile(cfg)
    sizes = {"nih-seed20261202": preflight.DataSize(2160, 240, 600, "test")}
    parts = preflight.disk_parts(resolve(cfg, {"layouts": "nih"}), paths, sizes)
    assert parts["image cache"] == 3000 * 256 * 256 and parts["benchmark images"] == 3000 * 256 * 256
    runs = preflight.planned_runs(resolve(cfg, {"layouts": "nih"}))
    assert parts["checkpoints"] == sum(preflight.parameter_count(r.arch) * 24 for r in runs)
    assert preflight.parameter_count("nasnetalarge") == 84_800_000  # from models.MODEL_INFO


def test_summary_block_names_dataset_device_disk_weights(roomy_disk):
    text = preflight.run_preflight(resolve("smoke")).summary()
    lines = text.splitlines()
    assert lines[0] == "preflight: profile 'smoke'"
    assert [line.split()[0] for line in lines[1:5]] == ["dataset", "device", "disk", "weights"]
    assert "embedded benchmark (nih + chexpert layouts), 240 images each at 64 px" in text


def test_missing_reaches_the_loader(tmp_path):
    root = write_nih(tmp_path / "nih")
    (root / "images" / ROWS[0][0]).unlink()
    cfg = resolve("nih", {"data_root": str(root), "split": "official"})
    paths = RunPaths.for_profile(cfg)
    with pytest.raises(DataError, match="1 image.*-p missing=skip"):
        ex.prepare(cfg, paths, "nih")
    prep = ex.prepare(resolve(cfg, {"missing": "skip"}), paths, "nih")
    assert len(prep.dataset) == len(ROWS) - 1 and prep.dataset.missing == (ROWS[0][0],)
