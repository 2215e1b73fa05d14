"""Independent runs in worker processes give the same models as one after the other."""
from __future__ import annotations

import os

import pandas as pd
import pytest
import torch

from paperkit.config import resolve
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment as ex
from paperkit.training.checkpoint import load_checkpoint
from paperkit.training.workers import resolve_workers, run_parallel, threads_per_worker


@pytest.mark.parametrize("workers, cores, expected", [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 16, 8)])
def test_threads_per_worker(workers: int, cores: int, expected: int) -> None:
    assert threads_per_worker(workers, cores) == expected


def test_run_parallel_keeps_job_order() -> None:
    assert run_parallel(abs, [-3, 2, -1], workers=2) == [3, 2, 1]


@pytest.mark.parametrize("workers, devices, device_type, visible, expected", [
    (0, "all", "cuda", 4, (4, (0, 1, 2, 3))),  # auto: one run per visible GPU
    (0, "ALL", "cuda", 1, (1, (0,))),
    (0, "1,3", "cuda", 4, (2, (1, 3))),  # auto: one run per chosen GPU
    (0, " 3 ", "cuda", 4, (1, (3,))),
    (6, "0,1", "cuda", 2, (6, (0, 1))),  # more runs than GPUs: shared round-robin
    (0, "all", "cpu", 0, (1, ())),  # the CPU keeps one run unless asked for more
    (2, "all", "cpu", 4, (2, ())),
])
def test_resolve_workers(workers: int, devices: str, device_type: str, visible: int,
                         expected: tuple[int, tuple[int, ...]]) -> None:
    assert resolve_workers(workers, devices, device_type, visible) == expected


@pytest.mark.parametrize("devices, device_type, visible, message", [
    ("2", "cuda", 2, "GPU 2 not visible; torch sees 2"),
    ("0,5,7", "cuda", 4, "GPU 5, 7 not visible"),
    ("0,0", "cuda", 2, "distinct GPU indices"),
    ("gpu0", "cuda", 2, "distinct GPU indices"),
    ("", "cuda", 2, "distinct GPU indices"),
    ("0", "cpu", 0, "names GPUs but the runs train on the cpu"),
    ("all", "cuda", 0, "torch sees no GPU"),
])
def test_resolve_workers_rejects(devices: str, device_type: str, visible: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_workers(0, devices, device_type, visible)


@pytest.mark.parametrize("parent, gpus, expected", [
    ("4,5,6,7", (3,), "7"),  # a GPU other than the parent's: a worker that sees only that one
    ("4,5,6,7", (0,), "4,5,6,7"),  # the parent's own first GPU: no worker process
    (None, (2,), "2"),
])
def test_one_worker_sees_only_its_gpu(monkeypatch, parent: str | None, gpus: tuple[int, ...], expected: str) -> None:
    if parent is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", parent)
    assert run_parallel(os.getenv, ["CUDA_VISIBLE_DEVICES"], workers=1, gpus=gpus) == [expected]


def test_two_workers_share_out_the_chosen_gpus(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    seen = run_parallel(os.getenv, ["CUDA_VISIBLE_DEVICES"] * 4, workers=2, gpus=(1, 3))
    assert set(seen) <= {"5", "7"} and len(seen) == 4


def test_two_workers_train_the_same_references_as_one(tmp_path, monkeypatch) -> None:
    trained = {}
    for workers in (1, 2):
        monkeypatch.setenv("PAPERKIT_RESULTS", str(tmp_path / f"w{workers}"))
        cfg = resolve("smoke", {"n_images": 120, "epochs": 1, "layouts": "nih", "workers": workers})
        paths = RunPaths.for_profile(cfg)
        prep = ex.prepare(cfg, paths, "nih")
        trained[workers] = ex.train_references(cfg, paths, prep)
    assert list(trained[1]) == list(trained[2]) == list(resolve("smoke").reference_archs)
    for arch, one in trained[1].items():
        two = trained[2][arch]
        a, b = (load_checkpoint(r.run_dir / "last.pt")["model"] for r in (one, two))
        # a worker's one thread sums in another order than two threads, and training amplifies the
        # rounding (7e-5 in a BN bias after 5 steps here): the same models, not the same bits
        for k in a:
            torch.testing.assert_close(a[k].float(), b[k].float(), rtol=0, atol=1e-3, msg=lambda m: f"{arch} {k}: {m}")
        timing = ["train_s", "train_cpu_s", "img_per_s"]
        pd.testing.assert_frame_equal(one.history.drop(columns=timing), two.history.drop(columns=timing),
                                      check_exact=False, atol=1e-3, rtol=0)


@pytest.mark.parametrize("groups, expected", [
    ({"nih": ["a", "b", "c"], "chexpert": ["d"]}, [("nih", 0), ("chexpert", 0), ("nih", 1), ("nih", 2)]),
    ({"nih": [], "chexpert": ["d", "e"]}, [("chexpert", 0), ("chexpert", 1)]),
    ({}, []),
])
def test_taken_in_turn(groups, expected) -> None:
    assert ex.taken_in_turn(groups) == expected


def test_train_grouped_trains_every_group_in_one_call_and_returns_each_group_in_order(monkeypatch) -> None:
    calls = []

    def train_runs(cfg, paths, requests):
        calls.append(list(requests))
        return [f"run of {r}" for r in requests]

    monkeypatch.setattr(ex, "train_runs", train_runs)
    out = ex.train_grouped(None, None, {"nih": ["b0", "t0", "b1"], "chexpert": ["b0'", "t0'"]})
    assert calls == [["b0", "b0'", "t0", "t0'", "b1"]]
    assert out == {"nih": ["run of b0", "run of t0", "run of b1"], "chexpert": ["run of b0'", "run of t0'"]}
