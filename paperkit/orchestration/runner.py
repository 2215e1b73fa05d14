"""Execute the numbered notebooks of a profile headlessly with papermill (what ``run_all.sh`` calls).

Notebooks are jupytext ``py:percent`` files: :func:`jupytext.read` turns each into a notebook and
papermill executes it with the profile's parameters, the kernel and the working directory given
explicitly. Executed copies go to ``results/<profile>/executed/`` and, as the jupytext pair of the
source (``notebooks/NN_*.ipynb``, see :func:`paperkit.orchestration.notebook_exec.paired_copy`), beside it,
so that opening the ``.py`` in JupyterLab shows the last run's outputs. Re-running is cheap because every expensive step
inside a notebook is skipped when its manifest matches (see :mod:`paperkit.artifacts`);
``--force`` makes those steps redo their work.

While a notebook runs, its kernel reports the active training run to a status file
(:mod:`paperkit.progress`) and :class:`~paperkit.progress.LiveStatus` shows it on one line, with
an estimate of the time left from the previous run's per-notebook times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from paperkit import progress as live
from paperkit.artifacts import FORCE_ENV, write_json
from paperkit.config import PROFILE_HELP, ConfigError, Profile, resolve
from paperkit.orchestration.notebook_exec import NotebookFailed, execute, kernel_name
from paperkit.paths import RunPaths, notebooks_dir

if TYPE_CHECKING:
    from paperkit.orchestration.preflight import PreflightReport


@dataclass(frozen=True)
class NotebookRun:
    name: str
    seconds: float
    output: Path


def list_notebooks(directory: Path | None = None) -> list[Path]:
    """The numbered notebooks (``01_*.py`` ... ``08_*.py``) of ``directory`` (default :func:`notebooks_dir`) in run
    order."""
    return sorted(p for p in (directory or notebooks_dir()).glob("[0-9][0-9]_*.py"))


def select_notebooks(notebooks: Sequence[Path], only: Sequence[str] = (), start: str | None = None) -> list[Path]:
    """Subset by ``only`` (numbers or name prefixes, e.g. ``"03"``) or from ``start`` onwards.

    Raises
    ------
    ConfigError
        If a selector matches no notebook.
    """

    def matches(path: Path, key: str) -> bool:
        return path.stem == key or path.stem.startswith(key.zfill(2) if key.isdigit() else key)

    for key in [*only, *([start] if start else [])]:
        if not any(matches(p, key) for p in notebooks):
            names = ", ".join(p.stem for p in notebooks)
            raise ConfigError(f"no notebook matches {key!r}; notebooks are: {names}")
    chosen = list(notebooks)
    if start:
        first = next(i for i, p in enumerate(chosen) if matches(p, start))
        chosen = chosen[first:]
    if only:
        chosen = [p for p in chosen if any(matches(p, k) for k in only)]
    return chosen


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``["k=5", "seeds=0,1"]`` -> ``{"k": "5", "seeds": "0,1"}`` (typed later by the profile)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {pair!r} is not key=value (e.g. -p lambda_modl=0.3)")
        out[key.strip()] = value.strip()
    return out


def check_profile(profile: Profile, echo=print) -> "PreflightReport":
    """Fail fast, before any notebook runs: the data root, then the preflight (:mod:`paperkit.orchestration.preflight`).

    The preflight takes seconds: it lists the dataset's images against its metadata, checks the
    device, the free disk and the pretrained weights (:func:`paperkit.orchestration.weights.check_pretrained`: an
    offline machine asked for ``pretrained=imagenet`` fails here rather than inside the first
    training), prints its summary block with ``echo`` and raises one line per problem.

    Raises
    ------
    ConfigError
        Naming the problem(s), one a line.
    """
    from paperkit.orchestration.preflight import run_preflight

    if profile.needs_data_root:
        if not profile.data_root:
            raise ConfigError(
                f"profile {profile.name!r} reads a real dataset: pass --data-root /path/to/{profile.dataset}"
            )
        if not Path(profile.data_root).is_dir():
            raise ConfigError(f"--data-root {profile.data_root!r} does not exist or is not a folder")
    report = run_preflight(profile)
    echo(report.summary(), flush=True)
    if report.problems:
        raise ConfigError("\n".join(report.problems))
    return report


def show_plan(
    profile: Profile, report: "PreflightReport", *, probe: bool = True, redo: bool = False, echo=print
) -> None:
    """Print the plan's total before running and write ``results/<profile>/plan.json`` (see
    :mod:`paperkit.pipeline.plan`).

    ``redo`` (``--force``): every run counts as still to do. A probe that fails (out of memory, a driver
    error) costs the estimate, never the run.
    """
    from paperkit.pipeline import plan as planning

    try:
        plan = planning.make_plan(profile, probe_requested=probe, counted=report.sizes, redo=redo, echo=echo)
    except Exception as err:  # noqa: BLE001 - an estimate is not worth stopping a run for
        echo(f"plan: throughput probe failed ({type(err).__name__}: {err}); no time estimate", flush=True)
        plan = planning.build_plan(profile, counted=report.sizes, redo=redo, probe_note=f"probe failed: {err}")
    path = planning.write_plan(plan, RunPaths.for_profile(profile))
    echo(
        f"{planning.summary_line(plan)}\n  every run: {path} (or python -m paperkit plan --profile {profile.name} ...)",
        flush=True,
    )


def _fmt(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def remaining_estimate(
    previous: Mapping[str, float], names: Sequence[str], current: int
) -> Callable[[float], float | None]:
    """``elapsed -> seconds left`` for the whole call while ``names[current]`` runs, from the
    previous run's time of each notebook (``run_log.json``); ``None`` when one is unknown."""
    if any(name not in previous for name in names[current:]):
        return lambda elapsed: None
    later = sum(previous[name] for name in names[current + 1 :])
    return lambda elapsed: later + max(previous[names[current]] - elapsed, 0.0)


@contextlib.contextmanager
def kernel_environment(status: Path) -> Iterator[None]:
    """What the kernels inherit while the runner runs: the status file to report progress to,
    and no ``MPLBACKEND`` (a shell's ``Agg`` would replace the kernel's inline backend, and
    ``plt.show()`` would leave no figure in the executed notebook)."""
    saved = {key: os.environ.get(key) for key in (live.STATUS_ENV, "MPLBACKEND")}
    os.environ[live.STATUS_ENV] = str(status)
    os.environ.pop("MPLBACKEND", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        status.unlink(missing_ok=True)


def run_notebooks(
    profile: Profile,
    overrides: Mapping[str, Any],
    notebooks: Sequence[Path],
    *,
    force: bool = False,
    kernel: str | None = None,
    progress: bool = False,
    status: bool = False,
    echo=print,
) -> list[NotebookRun]:
    """Execute ``notebooks`` in order for ``profile``; stop at the first failure; re-index ``REPORT.md``.

    ``status`` shows the kernel's active training run on one line while each notebook runs
    (:class:`~paperkit.progress.LiveStatus`); ``progress`` is papermill's per-cell bar.

    Returns
    -------
    list of NotebookRun
        Name, wall time and executed copy of each notebook run.
    """
    from paperkit.orchestration.report_index import describe_hardware, git_commit, write_report_index

    paths = RunPaths.for_profile(profile)
    kernel = kernel or kernel_name()
    parameters = {"profile": profile.name, "data_root": profile.data_root, "overrides": dict(overrides)}
    if force:  # the kernels inherit this: steps finished before now are redone
        os.environ[FORCE_ENV] = str(time.time())
    runs: list[NotebookRun] = []
    log = _read_log(paths.run_log)
    previous = {name: entry["seconds"] for name, entry in log["notebooks"].items()}
    names = [nb.stem for nb in notebooks]
    paths.root.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    try:
        for i, nb in enumerate(notebooks, 1):
            echo(f"[{i}/{len(notebooks)}] {nb.stem} ...", flush=True)
            output = paths.executed / f"{nb.stem}.ipynb"
            t0 = time.perf_counter()
            watch = (
                live.LiveStatus(
                    paths.progress, f"[{i}/{len(notebooks)}] {nb.stem[:2]}", remaining_estimate(previous, names, i - 1)
                )
                if status
                else contextlib.nullcontext()
            )
            try:
                with kernel_environment(paths.progress), watch:
                    execute(nb, output, parameters, kernel, progress)
            finally:
                seconds = time.perf_counter() - t0
            runs.append(NotebookRun(nb.stem, seconds, output))
            log["notebooks"][nb.stem] = {"seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
            log.update(parameters=parameters, commit=git_commit(), hardware=describe_hardware())
            write_json(paths.run_log, log)
            echo(
                f"[{i}/{len(notebooks)}] {nb.stem} done in {_fmt(seconds)} "
                f"(elapsed {_fmt(time.perf_counter() - t_all)})",
                flush=True,
            )
    finally:
        # Re-index after every call, failed or partial (--only, --from) included, so REPORT.md
        # always lists what is on disk. The results on disk come from each notebook's latest run,
        # so their cost is the sum of those runs' times in the log.
        wall = sum(entry["seconds"] for entry in log["notebooks"].values())
        ran = ", ".join(r.name for r in runs) or "none"
        write_report_index(
            paths,
            profile,
            profile.dataset,
            profile.seeds,
            wall,
            log.get("hardware"),
            commit=log.get("commit"),
            notes=[
                f"wall time: the sum of each notebook's latest run ({paths.run_log.name}); "
                f"the last runner call finished: {ran}"
            ],
        )
    return runs


def _read_log(path: Path) -> dict[str, Any]:
    if path.is_file():
        try:
            log = json.loads(path.read_text())
            log.setdefault("notebooks", {})
            return log
        except json.JSONDecodeError:
            pass
    return {"notebooks": {}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu", help=PROFILE_HELP)
    parser.add_argument("--data-root", default="", help="your dataset root (nih/chexpert profiles)")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile field, e.g. -p lambda_modl=0.3 -p seeds=0,1,2",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NB",
        help="run only these notebooks (number or name prefix); repeatable",
    )
    parser.add_argument("--from", dest="start", metavar="NB", help="run from this notebook onwards")
    parser.add_argument("--force", action="store_true", help="redo every step even when its manifest matches")
    parser.add_argument("--kernel", default=None, help="Jupyter kernel (default: paperkit, else python3)")
    parser.add_argument("--no-probe", action="store_true", help="skip the throughput probe behind the time estimate")


def main(args: argparse.Namespace) -> int:
    try:
        overrides = parse_overrides(args.param)
        if args.data_root:
            overrides["data_root"] = str(Path(args.data_root).expanduser().resolve())
        profile = resolve(args.profile, overrides)
        notebooks = select_notebooks(list_notebooks(), args.only, args.start)
        report = check_profile(profile)
    except ConfigError as err:
        for line in str(err).splitlines():  # the preflight reports one problem a line
            print(f"error: {line}", file=sys.stderr)
        return 2
    show_plan(profile, report, probe=not args.no_probe, redo=args.force)
    typed = {k: getattr(profile, k) for k in overrides}
    typed = json.loads(json.dumps(typed))  # tuples -> lists, as papermill serialises them
    paths = RunPaths.for_profile(profile)
    print(f"paperkit: profile {profile.name!r}, {len(notebooks)} notebook(s), results in {paths.root}")
    t0 = time.perf_counter()
    try:
        runs = run_notebooks(profile, typed, notebooks, force=args.force, kernel=args.kernel, status=True)
    except NotebookFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    total = time.perf_counter() - t0
    print("\nper-notebook wall time:")
    for run in runs:
        print(f"  {run.name:28s} {_fmt(run.seconds):>8s}")
    print(f"  {'total':28s} {_fmt(total):>8s}")
    index = paths.report
    print(f"\nresults index: {index if index.is_file() else paths.root}")
    return 0
