"""The plan as text and as ``plan.json``, and the plan beside the measured training time for REPORT.md."""
from __future__ import annotations

import json
from pathlib import Path

from paperkit.artifacts import write_json
from paperkit.paths import RunPaths
from paperkit.pipeline.plan.build import NOT_INCLUDED, Plan

#: The plan's file beside REPORT.md.
PLAN_FILE = "plan.json"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_plan(plan: Plan, *, every_run: bool = True) -> str:
    """The plan as text: one line per run (and data step), then the total."""
    lines = [f"plan: profile {plan.profile!r}"]
    for key, size in plan.sizes.items():
        lines.append(f"  data {key}: {size.n_train:,} train / {size.n_val:,} validation / {size.n_test:,} test "
                     f"images ({size.source})")
    rates = plan.rates
    lines.append(f"  rates: {rates.source if rates else 'none'}" + (f"; {plan.probe_note}" if plan.probe_note else ""))
    if every_run:
        width = max([len(r.folder) for r in plan.runs] + [len(s.folder) for s in plan.steps] + [25])
        lines.append(f"  {'nb':3s} {'purpose':22s} {'run folder (checkpoints/)':{width}s} {'arch':20s} {'ep':>3s} "
                     f"{'KNNS':13s} {'estimate':>9s}")
        for run in plan.runs:
            knns = f"{run.knns_mode} K={run.k}" if run.knns_mode else "-"
            done = "finished" if run.finished else format_seconds(run.seconds)
            lines.append(f"  {run.notebook:3s} {run.purpose:22s} {run.folder:{width}s} {run.arch:20s} {run.epochs:3d} "
                         f"{knns:13s} {done:>9s}")
        for step in plan.steps:
            done = "finished" if step.finished else format_seconds(step.seconds)
            lines.append(f"  {step.notebook:3s} {'data':22s} {step.folder:{width}s} {step.what:35s} {done:>9s}")
    lines.append(summary_line(plan))
    return "\n".join(lines)


def summary_line(plan: Plan) -> str:
    """``total: N training runs (M finished), estimated H:MM:SS left on DEVICE`` and what it leaves out."""
    finished = sum(r.finished for r in plan.runs)
    text = f"total: {len(plan.runs)} training runs ({finished} finished), "
    if not plan.remaining:
        return text + "nothing left to do"
    unknown = sum(item.seconds is None for item in plan.remaining)
    if plan.rates is None or unknown == len(plan.remaining):
        return text + f"no time estimate ({plan.probe_note or 'no rates'})"
    text += f"estimated {format_seconds(plan.known_seconds)} left on {plan.rates.device}"
    if plan.workers > 1:
        text += f" ({plan.workers} runs at once)"
    if unknown:
        text += f" plus {unknown} item(s) without an estimate"
    return text + f"; not included: {NOT_INCLUDED}"


def write_plan(plan: Plan, paths: RunPaths) -> Path:
    """``results/<profile>/plan.json`` (atomic), for REPORT.md to show the estimate beside the measured time."""
    out = paths.root / PLAN_FILE
    write_json(out, plan.to_dict())
    return out


def plan_vs_measured(paths: RunPaths) -> str | None:
    """One line for REPORT.md: the plan's estimate of the training steps beside the measured training time
    (``metrics.csv`` ``train_s``) of the runs trained since the plan was written; ``None`` without a plan."""
    import pandas as pd

    try:
        saved = json.loads((paths.root / PLAN_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    estimated = measured = 0.0
    compared = 0
    for run in saved.get("runs", []):
        metrics = paths.run_dir(run["folder"]) / "metrics.csv"
        if run.get("finished") or run.get("train_seconds") is None or not metrics.is_file():
            continue
        history = pd.read_csv(metrics)
        if "train_s" not in history or len(history) < run["epochs"]:
            continue  # not finished (or another schedule): no like-for-like time
        estimated += run["train_seconds"]
        measured += float(history["train_s"].sum())
        compared += 1
    device = (saved.get("rates") or {}).get("device", "no rates")
    head = f"plan ({PLAN_FILE}): {len(saved.get('runs', []))} training runs, estimated " \
           f"{format_seconds(saved.get('total_seconds'))} on {device}"
    if not compared or not estimated:
        return f"{head}; no planned run has finished training since"
    return (f"{head}; training steps of the {compared} runs trained since: estimated {format_seconds(estimated)}, "
            f"measured {format_seconds(measured)} ({measured / estimated:.2f}x the estimate)")
