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
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "-uno"], capture_output=True, text=True, check=True)
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
    departures from the paper (:func:`paperkit.deviations.deviations`). Tables
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
    from paperkit.config import PROFILES
    from paperkit.deviations import deviations, markdown_table
    from paperkit.plan import plan_vs_measured

    name = profile if isinstance(profile, str) else profile.name
    profile_notes = "" if isinstance(profile, str) else profile.notes
    resolved = PROFILES.get(name) if isinstance(profile, str) else profile
    root = paths.root
    lines = [f"# Results: profile `{name}`", ""]
    verdict = paths.tables / "verdict.md"
    if verdict.is_file():
        body = verdict.read_text(encoding="utf-8").strip().splitlines()
        if body and body[0].startswith("#"):  # its own heading would repeat "## Verdict"
            body = body[1:]
        links = [f"[{ext}]({verdict.with_suffix('.' + ext).relative_to(root).as_posix()})"
                 for ext in ("csv", "tex") if verdict.with_suffix("." + ext).is_file()]
        lines += ["## Verdict", "", "\n".join(body).strip(), ""] + ([f"({', '.join(links)})", ""] if links else [])
    lines += ["## Deviations from the paper", ""]
    if resolved is None:
        lines += [f"(profile `{name}` is not a named profile: pass the Profile to list its departures)", ""]
    else:
        if isinstance(profile, str):
            lines += ["The named profile's values; overrides of this run are not known here.", ""]
        lines += [markdown_table(deviations(resolved)), ""]
    lines += [
        "## Run",
        "",
        f"- profile: `{name}`" + (f" ({profile_notes})" if profile_notes else ""),
        f"- dataset: {dataset}",
        f"- training seeds: {', '.join(map(str, seeds))}",
        f"- git commit: `{commit or git_commit()}`",
        f"- wall time: {_duration(wall_time)}",
        f"- hardware: {hardware or describe_hardware()}",
        f"- written: {_dt.datetime.now().isoformat(timespec='seconds')}",
        *[f"- {n}" for n in notes],
        *[f"- {line}" for line in [plan_vs_measured(paths)] if line],  # the estimate beside the measured time
        "",
        "## Tables",
        "",
    ]
    tables = sorted(paths.tables.glob("*.md"), key=lambda p: (not p.stem.startswith("table"), p.stem)) if paths.tables.is_dir() else []
    tables = [md for md in tables if md != verdict]
    if not tables:
        lines += ["(none written)", ""]
    for md in tables:
        links = [f"[{ext}]({md.with_suffix('.' + ext).relative_to(root).as_posix()})" for ext in ("md", "csv", "tex") if md.with_suffix("." + ext).is_file()]
        lines += [f"### {md.stem} ({', '.join(links)})", "", md.read_text(encoding="utf-8").rstrip(), ""]
    lines += ["## Figures", ""]
    figures = sorted(paths.figures.glob("*.png")) if paths.figures.is_dir() else []
    if not figures:
        lines += ["(none written)", ""]
    for png in figures:
        pdf = png.with_suffix(".pdf")
        pdf_link = f" ([pdf]({pdf.relative_to(root).as_posix()}))" if pdf.is_file() else ""
        lines += [f"### {png.stem}{pdf_link}", "", f"![{png.stem}]({png.relative_to(root).as_posix()})", ""]
    notebooks = sorted(paths.executed.glob("*.ipynb")) if paths.executed.is_dir() else []
    if notebooks:
        lines += ["## Executed notebooks", "", *[f"- [{nb.name}]({nb.relative_to(root).as_posix()})" for nb in notebooks], ""]
    write_text(paths.report, "\n".join(lines))
    return paths.report
