"""The plan lists every training run of a profile, estimates its time, and matches the notebooks
(the smoke end-to-end run's checkpoints/ folders are checked in test_end_to_end.py)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from paperkit.artifacts import Step
from paperkit.config import PAPER_REFERENCES, PROFILES, REAL_ABLATION_REFERENCES, get_profile, resolve, trained_archs
from paperkit.orchestration import cli
from paperkit.paths import RunPaths
from paperkit.pipeline import plan
from paperkit.pipeline.specs import extra_draw_profile


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_profile_has_a_plan(name):
    cfg = get_profile(name)
    runs = plan.planned_runs(cfg)
    folders = [r.folder for r in runs]
    assert runs and len(folders) == len(set(folders))
    assert {r.arch for r in runs} <= set(trained_archs(cfg))
    assert {r.notebook for r in runs} <= {"02", "05", "06", "07", "09"}  # 08 reuses runs
    assert all(r.epochs == cfg.epochs and 0 < r.train_fraction <= 1 for r in runs)
    assert set(plan.data_sizes(cfg, RunPaths.for_profile(cfg))) == {r.dataset_key for r in runs}  # sized, no more


@pytest.mark.parametrize("name", list(PROFILES))
def test_plan_verb_prints_runs_and_a_total(name, capsys):
    assert cli.main(["plan", "--profile", name, "--no-probe"]) == 0
    out = capsys.readouterr().out
    n_runs = len(plan.planned_runs(get_profile(name)))
    assert f"total: {n_runs} training runs (0 finished)" in out
    assert "no probe (--no-probe)" in out
    if get_profile(name).needs_data_root:
        assert "no --data-root: image counts of the full public" in out


def test_real_data_profiles_state_their_run_count_and_skip_benchmark_ablations():
    for name in ("nih", "chexpert"):
        cfg = get_profile(name)
        runs = plan.planned_runs(cfg)
        assert f"{len(runs)} training runs" in cfg.notes
        assert not {"noise x λ grid"} & {r.purpose for r in runs} and not any(r.monitored for r in runs)
        oof = {r.arch for r in runs if "-oof" in r.name}
        assert oof == set(REAL_ABLATION_REFERENCES) <= set(cfg.reference_archs)
    assert len(plan.planned_runs(get_profile("nih"))) == 23  # B on seed 0 is the DenseNet-121 reference
    assert len(plan.planned_runs(get_profile("chexpert"))) == 26  # + the U-Zeros, U-Ignore, LSR baselines


def test_paper_scale_plans_without_a_gpu_use_the_readme_rates():
    cfg = get_profile("nih")
    result = plan.make_plan(cfg, probe_requested=False)
    assert result.rates.device == "one H200 (nominal)" and "README" in result.rates.source
    assert all(r.seconds and r.seconds > 0 for r in result.runs)
    refs = {r.arch: r.seconds for r in result.runs if r.purpose == "reference"}
    assert refs["nasnetalarge"] > refs["densenet121"] * 2  # 1,924 vs 5,358 img/s
    caches = [s for s in result.steps if s.what.startswith("cache")]
    assert caches and all(s.seconds is None for s in caches)  # decoding a user's files is not estimated
    assert "1 item(s) without an estimate" in plan.summary_line(result)


def test_gpu_profile_is_the_papers_networks_at_its_resolution():
    cfg = get_profile("gpu")
    assert (cfg.render_size, cfg.resize, cfg.crop) == (256, 256, 224)
    assert cfg.reference_archs == PAPER_REFERENCES and cfg.target_arch == "densenet121"
    assert cfg.pretrained == "none" and cfg.dataset == "benchmark" and cfg.device == "cuda"
    assert resolve("gpu", {"pretrained": "imagenet"}).pretrained == "imagenet"


def test_gpu_plan_matches_the_h200_measurement():
    """Without a probe, the gpu plan's NIH references take what they took on an H200 (README, 2026-12-04:
    310 s of training steps for the six, first epochs included) to within 15 %."""
    result = plan.make_plan(get_profile("gpu"), probe_requested=False)
    assert result.rates.device == "one H200 (nominal)"
    references = [r for r in result.runs if r.notebook == "02" and r.dataset_key.startswith("nih")]
    assert len(references) == 6
    assert sum(r.train_seconds for r in references) == pytest.approx(310, rel=0.15)
    warmed = [r for r in result.runs if r.notebook == "05" and r.arch == "densenet121"]
    assert warmed[0].train_seconds > warmed[1].train_seconds  # the first run of an architecture in a kernel warms up
    render = [s for s in result.steps if s.what.startswith("render")]
    assert render and all(s.seconds is None for s in render)  # no probe: no rendering rate


def test_profiles_verb_lists_gpu(capsys):
    assert cli.main(["profiles"]) == 0
    assert any(line.startswith("gpu ") for line in capsys.readouterr().out.splitlines())


def test_estimate_arithmetic():
    size = plan.DataSize(n_train=1000, n_val=100, n_test=200, source="test")
    rates = plan.Rates("dev", "test", train={"a": 100.0}, infer={"a": 500.0}, faithful_k=9, faithful_ratio=2.8)
    run = plan.PlannedRun("05", "headline", "nih", "nih", "B-s0", "a", "B", 0, epochs=2)
    steps, rest = plan.estimate(run, size, rates, batch_size=32)
    assert steps == pytest.approx(2 * 992 / 100) and rest == pytest.approx(2 * 100 / 500)  # 31 full batches
    faithful = plan.PlannedRun("05", "x", "nih", "nih", "n", "a", "B+KNNS", 0, 2, "faithful", 3)
    assert plan.estimate(faithful, size, rates, 32)[0] == pytest.approx(steps * (1 + 1.8 * 3 / 9))
    efficient = plan.PlannedRun("05", "x", "nih", "nih", "n", "a", "B+KNNS", 0, 2, "efficient", 9, monitored=True)
    steps_e, rest_e = plan.estimate(efficient, size, rates, 32)
    assert steps_e == pytest.approx(steps * plan.EFFICIENT_FACTOR)
    assert rest_e == pytest.approx(rest + 1000 / 500 + 2 * 1200 / 500)  # bank warm start, monitor
    assert plan.estimate(run, size, plan.Rates("dev", "none"), 32) is None


@pytest.mark.parametrize("seconds, workers, wall", [
    ([3.0, 1.0, 1.0, 1.0], 1, 6.0),
    ([3.0, 1.0, 1.0, 1.0], 2, 3.0),
    ([1.0, 1.0, 3.0], 2, 4.0),  # handed out in order, not longest first
    ([2.0], 4, 2.0),
    ([], 2, 0.0),
])
def test_makespan_hands_jobs_out_in_order(seconds, workers, wall):
    assert plan.makespan(seconds, workers) == pytest.approx(wall)


def test_cpu_workers_train_each_group_of_runs_at_once():
    cfg = get_profile("smoke")
    rates = plan.Rates("cpu", "test", train={a: 10.0 for a in trained_archs(cfg)},  # runs that outlast a pool's start
                       infer={a: 40.0 for a in trained_archs(cfg)}, faithful_k=3, faithful_ratio=2.0,
                       render=100.0, decode=1000.0)
    one = plan.build_plan(cfg, rates=rates, redo=True)
    two = plan.build_plan(dataclasses.replace(cfg, workers=2), rates=rates, redo=True)
    assert (one.workers, two.workers) == (1, 2)
    assert one.total_seconds == pytest.approx(sum(i.seconds for i in one.remaining))
    groups = {}
    for run in two.runs:
        groups.setdefault((run.pool,) if run.pool else (run.notebook, run.purpose, run.dataset_key), []).append(
            run.seconds)
    steps = sum(s.seconds for s in two.steps)
    pools = sum(len(g) > 1 for g in groups.values())
    expected = steps + sum(plan.makespan(g, 2) for g in groups.values()) + pools * plan.WORKER_START_S
    assert two.total_seconds == pytest.approx(expected) and two.total_seconds < one.total_seconds
    nominal = dataclasses.replace(rates, device="one H200 (nominal)")
    assert plan.build_plan(dataclasses.replace(cfg, workers=2), rates=nominal, redo=True).workers == 1


def test_sections_trained_in_one_pool_list_both_layouts_in_turn():
    cfg = get_profile("cpu")
    runs = plan.planned_runs(cfg)
    references = [r for r in runs if r.purpose == "reference"]
    assert {r.pool for r in references} == {"02 reference"}
    # the notebook hands out each architecture's two layouts side by side (experiment.train_grouped)
    assert [(r.arch, r.layout) for r in references] == [
        (arch, layout) for arch in cfg.reference_archs for layout in ("nih", "chexpert")]
    for purpose in ("headline", "clean-label ceiling"):
        pooled = [r for r in runs if r.purpose == purpose]
        assert {r.pool for r in pooled} == {f"05 {purpose}"} and {r.layout for r in pooled} == {"nih", "chexpert"}


def test_finished_runs_are_marked_and_not_counted(tmp_path):
    cfg = get_profile("smoke")
    paths = RunPaths.for_profile(cfg)
    first = plan.planned_runs(cfg)[0]
    step = Step(paths.run_dir(first.folder), {"x": 1})
    step.start()
    step.finish()
    rates = plan.Rates("dev", "test", train={a: 1000.0 for a in trained_archs(cfg)},
                       infer={a: 4000.0 for a in trained_archs(cfg)}, faithful_k=3, faithful_ratio=2.0,
                       render=100.0, decode=1000.0)
    result = plan.build_plan(cfg, paths, rates=rates)
    assert result.runs[0].finished and not any(r.finished for r in result.runs[1:])
    assert result.total_seconds == pytest.approx(sum(i.seconds for i in result.remaining))
    assert result.runs[0] not in result.remaining and len(result.remaining) == len(result.runs) - 1 + len(result.steps)
    assert not any(r.finished for r in plan.build_plan(cfg, paths, rates=rates, redo=True).runs)
    saved = json.loads(plan.write_plan(result, paths).read_text())
    assert saved["total_seconds"] == pytest.approx(result.total_seconds) and len(saved["runs"]) == len(result.runs)


def test_probe_measures_the_smoke_networks_on_the_cpu(capsys):
    cfg = get_profile("smoke")
    result = plan.make_plan(cfg, echo=print)
    assert result.rates.device == "cpu" and result.rates.source.startswith("measured here (cpu")
    assert set(result.rates.train) == set(trained_archs(cfg)) and min(result.rates.train.values()) > 0
    # a measured rate, not its size: timings on a loaded 2-core machine are noise (bench/ compares speeds)
    assert result.rates.faithful_ratio > 0 and result.rates.render > 0 and result.rates.decode > 0
    assert result.total_seconds is not None and result.total_seconds > 0
    assert "probe densenet_tiny: train" in capsys.readouterr().out


def test_paper_networks_are_not_probed_on_a_cpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    device, why = plan.probe_device(get_profile("nih"), PAPER_REFERENCES)
    assert device is None and "nasnetalarge: 84.8M parameters" in why
    assert plan.probe_device(get_profile("gpu"), PAPER_REFERENCES) == (None, "device=cuda but torch sees no CUDA GPU")


def test_report_shows_the_estimate_beside_the_measured_time(tmp_path):
    cfg = get_profile("smoke")
    paths = RunPaths.for_profile(cfg)
    assert plan.plan_vs_measured(paths) is None
    rates = plan.Rates("dev", "test", train={a: 1000.0 for a in trained_archs(cfg)},
                       infer={a: 4000.0 for a in trained_archs(cfg)}, faithful_k=3, faithful_ratio=2.0)
    result = plan.build_plan(cfg, paths, rates=rates)
    plan.write_plan(result, paths)
    assert "no planned run has finished training since" in plan.plan_vs_measured(paths)
    run = result.runs[0]
    paths.run_dir(run.folder).mkdir(parents=True)
    (paths.run_dir(run.folder) / "metrics.csv").write_text(
        "epoch,train_s\n" + "".join(f"{e + 1},{run.train_seconds / run.epochs:.6f}\n" for e in range(run.epochs)))
    line = plan.plan_vs_measured(paths)
    assert "(1.00x the estimate)" in line and "training steps of the 1 runs" in line


def test_probe_stops_at_its_budget():
    """On a loaded machine the probe gives up rather than holding the run back; the plan says so."""
    cfg = get_profile("smoke")
    rates = plan.probe(cfg, "cpu", trained_archs(cfg), total_budget_s=0.0)
    assert rates.train == {} and rates.render is None
    assert (
        "probe stopped after its 0 s budget: no rate for efficientnet_tiny, byobnet_tiny, densenet_tiny"
        in rates.source
    )
    result = plan.build_plan(cfg, rates=rates)
    assert all(r.seconds is None for r in result.runs) and "no time estimate" in plan.summary_line(result)


def test_a_two_network_method_costs_two_steps():
    size = plan.DataSize(n_train=1000, n_val=100, n_test=200, source="test")
    rates = plan.Rates("dev", "test", train={"a": 100.0}, infer={"a": 500.0}, faithful_k=9, faithful_ratio=2.8)
    one = plan.PlannedRun("09", "lab", "nih", "nih", "B-s0", "a", "B", 0, epochs=2)
    pair = dataclasses.replace(one, changes=(("method", "coteaching"),))
    assert plan.estimate(pair, size, rates, 32)[0] == pytest.approx(2 * plan.estimate(one, size, rates, 32)[0])


@pytest.mark.parametrize("extra", [0, 60])
def test_the_second_test_draw_is_a_data_step_of_06(extra):
    cfg = resolve("smoke", {"extra_test_images": extra})
    steps = [s for s in plan.build_plan(cfg, None).steps if "second test draw" in s.what]
    keys = {f"benchmark/{layout}-seed{extra_draw_profile(cfg).benchmark_seed}" for layout in cfg.layouts}
    assert {s.folder for s in steps} == (keys if extra else set())
    assert all(s.notebook == "06" and s.what.startswith(f"render {extra} ") for s in steps)


def test_cpu_story_leaves_the_teaching_runs_to_teach_and_the_extra_seeds_to_verdict():
    """The cpu profile's runs are part of each profile that shares its folder; faithful KNNS and 07's
    clean-label references are teach's, seeds 3-9 of the headline and ceiling the verdict profile's."""
    folders = {name: {r.folder for r in plan.planned_runs(get_profile(name))} for name in ("cpu", "teach", "verdict")}
    purposes = {name: {r.purpose for r in plan.planned_runs(get_profile(name))} for name in ("cpu", "teach")}
    assert folders["cpu"] < folders["teach"] and folders["cpu"] < folders["verdict"]
    assert {"faithful vs efficient", "clean-label references"} <= purposes["teach"] - purposes["cpu"]
    extra = [r for r in plan.planned_runs(get_profile("verdict")) if r.folder not in folders["cpu"]]
    assert len(extra) == 7 * 3 * 2  # seeds 3-9: B, B+MODL+KNNS and the ceiling on both layouts
    assert {r.purpose for r in extra} == {"headline", "clean-label ceiling"}
