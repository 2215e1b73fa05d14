"""What the notebooks call: :func:`setup` (first code cell), :func:`show_figure` and :func:`show_table`.

``setup`` resolves and validates the parameters, seeds, and, inside a kernel, makes warnings
readable: each distinct warning is shown once as ``Category: message``, without the source line
Python adds, and repeats are counted in one line after the cell (:class:`WarningDigest`).
``show_figure`` is the one way a notebook shows a figure: it saves it (PNG and PDF, for the
report) and puts the PNG in the notebook's output, whatever matplotlib backend the kernel has.
"""
from __future__ import annotations

import os
import random
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from paperkit.config import Profile, resolve
from paperkit.paths import REPO_ROOT, RunPaths, results_root
from paperkit.pipeline.deviations import deviations, markdown_list
from paperkit.progress import in_kernel

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from paperkit.evaluation.report import ReportTable

#: The run paths of the last :func:`setup`, where :func:`show_figure` saves figures.
_current: RunPaths | None = None


def setup(profile: str, data_root: str = "", overrides: Mapping[str, Any] | None = None,
          seed: int = 0, notebook: str = "") -> tuple[Profile, RunPaths]:
    """Resolve the notebook's parameters cell into a validated profile and its paths.

    Unknown keys or wrong types raise :class:`paperkit.config.ConfigError` here, before any
    work, because papermill only warns about parameters a notebook does not declare.
    ``notebook`` (e.g. ``"05"``) limits the printed departures from the paper to those that
    concern it; empty prints all of them.
    """
    global _current
    if in_kernel():
        DIGEST.install()
    changes = dict(overrides or {})
    if data_root:
        changes["data_root"] = str(Path(data_root).expanduser().resolve())
    cfg = resolve(profile, changes)
    paths = RunPaths.for_profile(cfg)
    paths.root.mkdir(parents=True, exist_ok=True)
    _current = paths
    random.seed(seed)
    np.random.seed(seed)
    import torch

    torch.manual_seed(seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    changed = ", ".join(f"{k}={v!r}" for k, v in changes.items()) or "none"
    print(f"profile {cfg.name!r} ({cfg.dataset}); overrides: {changed}; results: {display_path(paths.root)}")
    if cfg.notes:
        print(f"note: {cfg.notes}")
    show_deviations(cfg, notebook)
    return cfg, paths


def display_path(path: str | os.PathLike) -> str:
    """``path`` as a reader should see it, without this machine's folders.

    ``results/cpu/figures/x.png`` inside the repository; ``<results>/cpu/figures/x.png`` under a
    results root moved elsewhere (``PAPERKIT_RESULTS``); else the path unchanged.
    """
    path = Path(path).resolve()
    if path.is_relative_to(REPO_ROOT):
        return path.relative_to(REPO_ROOT).as_posix()
    if path.is_relative_to(results_root()):
        return f"<results>/{path.relative_to(results_root()).as_posix()}"
    return str(path)


def show_figure(figure: "Figure | str | os.PathLike | Sequence[str | os.PathLike]", name: str = "") -> None:
    """Save and show a figure: the one call behind every figure of the notebooks.

    Parameters
    ----------
    figure
        A matplotlib figure (``plt.subplots()``'s or ``ax.figure``), saved as ``<name>.png`` and
        ``.pdf`` under the run's ``figures/`` and closed; or the files a :mod:`paperkit.evaluation.figures`
        function already wrote (its PNG is shown).
    name
        File stem for a matplotlib figure, e.g. ``"nb02_validation_auc_nih"``; required for one.

    Returns nothing, so a cell that ends with it echoes no list of paths; a caption line names the
    files relative to the results folder.
    """
    from matplotlib.figure import Figure

    if isinstance(figure, Figure):
        if not name:
            raise ValueError("show_figure(fig, name): a matplotlib figure needs a file name, e.g. 'nb01_prevalence'")
        if _current is None:
            raise RuntimeError("show_figure: call paperkit.notebook.setup(...) first; it sets the figures folder")
        from paperkit.evaluation.figures import save_figure

        files = save_figure(figure, _current.figures, name)
        if "matplotlib.pyplot" in sys.modules:  # a pyplot figure would be drawn again at the cell's end
            sys.modules["matplotlib.pyplot"].close(figure)
    else:
        files = [Path(figure)] if isinstance(figure, (str, os.PathLike)) else [Path(f) for f in figure]
    pngs = [f for f in files if f.suffix == ".png"]
    if not pngs:
        raise ValueError(f"show_figure: no .png among {[str(f) for f in files]}")
    others = [f.suffix for f in files if f != pngs[0]]
    caption = f"figure: {display_path(pngs[0])}" + (f" (also {', '.join(others)})" if others else "")
    if in_kernel():
        from IPython.display import Image, display

        display(Image(data=pngs[0].read_bytes(), format="png"))
    print(caption)


def show_table(table: "ReportTable") -> None:
    """Save a report table under the run's ``tables/`` (CSV, Markdown, LaTeX) and show it with its caption and notes."""
    if _current is None:
        raise RuntimeError("show_table: call paperkit.notebook.setup(...) first; it sets the tables folder")
    from paperkit.evaluation.report import write_table

    write_table(table, _current.tables)
    if in_kernel():
        from IPython.display import Markdown, display

        display(Markdown(f"**{table.caption}**"), table.display, Markdown("\n".join(f"- {n}" for n in table.notes)))
    else:
        print(table.caption, table.display, *table.notes, sep="\n")


def show_deviations(cfg: Profile, notebook: str = "") -> None:
    """Print ``cfg``'s departures from the paper for ``notebook``: Markdown in a kernel, text otherwise."""
    scope = f"notebook {notebook}" if notebook else "this run"
    heading = f"**Departures from the paper ({scope}, profile `{cfg.name}`):**"
    text = f"{heading}\n\n{markdown_list(deviations(cfg, notebook))}"
    if in_kernel():
        from IPython.display import Markdown, display

        display(Markdown(text))
    else:
        print(text)


class WarningDigest:
    """Each distinct warning once, as one line; repeats counted after the cell.

    Python prints a warning with the source line that raised it, and prints it again whenever a
    warnings filter changes (any ``catch_warnings`` block resets its "already shown" registry),
    so a notebook scoring many models on one test split showed the same warning dozens of times.
    """

    def __init__(self) -> None:
        self.repeats: dict[str, int] = {}
        self.marks = ""  # one empty file per warning shown, shared with forked workers

    def install(self) -> None:
        """Take over ``warnings.showwarning`` and count repeats after each cell (once per kernel)."""
        warnings.showwarning = self.show
        if not self.marks:
            import atexit
            import shutil
            import tempfile

            from IPython import get_ipython

            self.marks = tempfile.mkdtemp(prefix="paperkit-warnings-")
            atexit.register(shutil.rmtree, self.marks, True)
            get_ipython().events.register("post_run_cell", self.flush)

    def show(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        text = f"{category.__name__}: {message}"
        if not self._first_time(text):
            self.repeats[text] = self.repeats.get(text, 0) + 1
            return
        origin = _package_of(filename)
        print(f"{text}" + (f"  [from {origin}]" if origin else ""), file=sys.stderr)

    def _first_time(self, text: str) -> bool:
        """Whether no process of this kernel has shown ``text`` yet: a library's worker processes
        (cleanlab's) inherit this digest but not what it sees after the fork, so the record is a
        file created atomically (``O_EXCL``), not a set in memory."""
        import hashlib

        if not self.marks:
            return True
        mark = os.path.join(self.marks, hashlib.sha1(text.encode()).hexdigest())
        try:
            os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            return False
        except OSError:  # the folder is gone (or was never made): show it rather than lose it
            return True

    def flush(self, *_: Any) -> None:
        """After a cell: one line for the warnings it repeated (shown in full earlier)."""
        if not self.repeats:
            return
        counts = "; ".join(f"{text[:60]}{'...' if len(text) > 60 else ''} x{n}" for text, n in self.repeats.items())
        print(f"(repeated, shown in full once above: {counts})", file=sys.stderr)
        self.repeats.clear()


def _package_of(filename: str) -> str:
    """The installed package a warning comes from (``cleanlab``), ``""`` for paperkit and notebooks."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1:]
        return rest[0].removesuffix(".py") if rest and rest[0] != "paperkit" else ""
    return ""


DIGEST = WarningDigest()
