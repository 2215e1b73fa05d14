"""The results index ``results/<profile>/REPORT.md``: verdict, deviations, run facts, every table and figure."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from paperkit.artifacts import write_text
from paperkit.paths import REPO_ROOT, RunPaths

if TYPE_CHECKING:
    from paperkit.config import Profile


# ------------------------------------------------------------------------------------------------
# The results index
# ------------------------------------------------------------------------------------------------
def git_commit(repo: Path = REPO_ROOT) -> str:
    """Short commit of ``repo`` with ``+dirty`` when tracked files differ, or ``unknown``."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "-uno"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def describe_hardware() -> str:
    """CPU count, platform and GPU (if torch sees one), for the report header."""
    text = f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", GPU: {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return text


def _duration(seconds: float) -> str:
    return str(_dt.timedelta(seconds=round(seconds)))


def write_report_index(
    paths: RunPaths,
    profile: "Profile | str",
    dataset: str,
    seeds: Sequence[int],
    wall_time: float,
    hardware: str | None = None,
    *,
    commit: str | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write ``results/<profile>/REPORT.md`` linking every table and figure present.

    The verdict (``paths.tables/verdict.md``, when written) opens the report, then the profile's
    departures from the paper (:func:`paperkit.pipeline.deviations.deviations`). Tables
    (``paths.tables/*.md``) are linked with their CSV/TeX siblings and inlined; figures
    (``paths.figures/*.png``) are embedded with a link to their PDF; executed notebooks are listed.

    Parameters
    ----------
    paths
        The run's layout; the folders are scanned, so the index lists exactly what exists.
    profile
        The run's resolved profile (its name, notes and departures are shown), or a profile name
        (a named profile's departures are shown without the run's overrides).
    dataset
        Which data the run used (``benchmark``, ``nih``, ...).
    seeds
        Training seeds.
    wall_time
        Seconds the run took.
    hardware
        Description of the machine; detected when ``None``.
    commit
        Code version; ``git rev-parse`` of the checkout when ``None``.
    notes
        Extra lines for the header.
    """
    name = profile if isinstance(profile, str) else profile.name
    profile_notes = "" if isinstance(profile, str) else profile.notes
    verdict = paths.tables / "verdict.md"
    run_facts = [
        f"- profile: `{name}`" + (f" ({profile_notes})" if profile_notes else ""),
        f"- dataset: {dataset}",
        f"- training seeds: {', '.join(map(str, seeds))}",
        f"- git commit: `{commit or git_commit()}`",
        f"- wall time: {_duration(wall_time)}",
        f"- hardware: {hardware or describe_hardware()}",
        f"- written: {_dt.datetime.now().isoformat(timespec='seconds')}",
        *[f"- {n}" for n in notes],
    ]
    lines = [
        f"# Results: profile `{name}`",
        "",
        *_verdict_section(verdict, paths.root),
        *_deviations_section(profile),
        *_run_section(paths, run_facts),
        *_tables_section(paths, verdict),
        *_figures_section(paths),
        *_notebooks_section(paths),
    ]
    write_text(paths.report, "\n".join(lines))
    return paths.report


def _links(file: Path, root: Path, extensions: Sequence[str]) -> list[str]:
    """Markdown links, relative to ``root``, to the siblings of ``file`` with these extensions that exist."""
    return [
        f"[{ext}]({file.with_suffix('.' + ext).relative_to(root).as_posix()})"
        for ext in extensions
        if file.with_suffix("." + ext).is_file()
    ]


def _verdict_section(verdict: Path, root: Path) -> list[str]:
    """The verdict table inlined under "## Verdict", or nothing when it was not written."""
    if not verdict.is_file():
        return []
    body = verdict.read_text(encoding="utf-8").strip().splitlines()
    if body and body[0].startswith("#"):  # its own heading would repeat "## Verdict"
        body = body[1:]
    links = _links(verdict, root, ("csv", "tex"))
    return ["## Verdict", "", "\n".join(body).strip(), ""] + ([f"({', '.join(links)})", ""] if links else [])


def _deviations_section(profile: "Profile | str") -> list[str]:
    """The profile's departures from the paper; a name only gives the named profile's values."""
    from paperkit.config import PROFILES
    from paperkit.pipeline.deviations import deviations, markdown_table

    name = profile if isinstance(profile, str) else profile.name
    resolved = PROFILES.get(name) if isinstance(profile, str) else profile
    lines = ["## Deviations from the paper", ""]
    if resolved is None:
        return lines + [f"(profile `{name}` is not a named profile: pass the Profile to list its departures)", ""]
    if isinstance(profile, str):
        lines += ["The named profile's values; overrides of this run are not known here.", ""]
    return lines + [markdown_table(deviations(resolved)), ""]


def _run_section(paths: RunPaths, facts: Sequence[str]) -> list[str]:
    """The run's facts as a list, with the planned time beside the measured one when a plan exists."""
    from paperkit.pipeline.plan import plan_vs_measured

    estimate = plan_vs_measured(paths)
    return ["## Run", "", *facts, *([f"- {estimate}"] if estimate else []), ""]


def _tables_section(paths: RunPaths, verdict: Path) -> list[str]:
    """Every table but the verdict, the paper's tables first, inlined with links to its CSV/TeX."""
    tables = (
        sorted(paths.tables.glob("*.md"), key=lambda p: (not p.stem.startswith("table"), p.stem))
        if paths.tables.is_dir()
        else []
    )
    tables = [md for md in tables if md != verdict]
    lines = ["## Tables", ""]
    if not tables:
        lines += ["(none written)", ""]
    for md in tables:
        links = _links(md, paths.root, ("md", "csv", "tex"))
        lines += [f"### {md.stem} ({', '.join(links)})", "", md.read_text(encoding="utf-8").rstrip(), ""]
    return lines


def _figures_section(paths: RunPaths) -> list[str]:
    """Every PNG figure embedded, with a link to its PDF when there is one."""
    figures = sorted(paths.figures.glob("*.png")) if paths.figures.is_dir() else []
    lines = ["## Figures", ""]
    if not figures:
        lines += ["(none written)", ""]
    for png in figures:
        pdf = png.with_suffix(".pdf")
        pdf_link = f" ([pdf]({pdf.relative_to(paths.root).as_posix()}))" if pdf.is_file() else ""
        lines += [f"### {png.stem}{pdf_link}", "", f"![{png.stem}]({png.relative_to(paths.root).as_posix()})", ""]
    return lines


def _notebooks_section(paths: RunPaths) -> list[str]:
    """Links to the executed notebooks, or nothing when none was run."""
    notebooks = sorted(paths.executed.glob("*.ipynb")) if paths.executed.is_dir() else []
    if not notebooks:
        return []
    return [
        "## Executed notebooks",
        "",
        *[f"- [{nb.name}]({nb.relative_to(paths.root).as_posix()})" for nb in notebooks],
        "",
    ]
