"""How a reproduced table is written: :class:`ReportTable` (a tidy CSV view and a display view as
Markdown and LaTeX), the number formats every table shares, and :func:`write_table`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from paperkit.artifacts import write_text


@dataclass(frozen=True)
class ReportTable:
    """One reproduced table: a tidy numeric frame (CSV) and the display frame (Markdown, LaTeX)."""

    stem: str
    caption: str
    tidy: pd.DataFrame
    display: pd.DataFrame
    notes: tuple[str, ...] = ()

    def to_markdown(self) -> str:
        """Caption, a pipe table of :attr:`display` and the notes as a list."""
        index_names = [n or "" for n in self.display.index.names]
        header = [*index_names, *map(str, self.display.columns)]
        lines = [f"**{self.stem}**: {self.caption}", "", _md_row(header), _md_row(["---"] * len(header))]
        for key, row in self.display.iterrows():
            keys = key if isinstance(key, tuple) else (key,)
            lines.append(_md_row([*map(str, keys), *map(str, row.tolist())]))
        lines += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines).rstrip() + "\n"

    def to_latex(self) -> str:
        """A booktabs ``table`` of :attr:`display` (needs ``\\usepackage{booktabs}``)."""
        styler = self.display.style.format(escape="latex").format_index(escape="latex", axis=0)
        styler = styler.format_index(escape="latex", axis=1)
        body = styler.to_latex(
            hrules=True,
            caption=_latex_escape(self.caption + (" " + " ".join(self.notes) if self.notes else "")),
            label=f"tab:{self.stem}",
            position_float="centering",
        )
        return body.replace("±", r"$\pm$")


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(a, b)
    return text


# ------------------------------------------------------------------------------------------------
# Formatting helpers (AUC is shown in %, as in the paper)
# ------------------------------------------------------------------------------------------------
def _pct(x: float, signed: bool = False) -> str:
    if x is None or pd.isna(x):
        return "n/a"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def _number(x: float) -> str:
    """A value already in % (the paper's, or a measured extra column), or "-"."""
    return "-" if pd.isna(x) else f"{x:.2f}"


def _ci(lo: float, hi: float, signed: bool = False) -> str:
    if pd.isna(lo) or pd.isna(hi):
        return ""
    return f" [{_pct(lo, signed)}, {_pct(hi, signed)}]"


def _p(p: float) -> str:
    if pd.isna(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def images_note(images: dict[str, str]) -> tuple[str, ...]:
    """A table note naming the test images scored on each layout (``{layout: words}``); none when unnamed."""
    if not any(images.values()):
        return ()
    return ("Test images: " + "; ".join(f"{layout}: {words}" for layout, words in images.items()) + ".",)


def write_table(table: ReportTable, out_dir: str | Path) -> list[Path]:
    """Write ``<stem>.csv`` (tidy), ``<stem>.md`` and ``<stem>.tex`` (display) atomically."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{table.stem}.{ext}" for ext in ("csv", "md", "tex")]
    write_text(paths[0], table.tidy.to_csv(index=False))
    write_text(paths[1], table.to_markdown())
    write_text(paths[2], table.to_latex())
    return paths
