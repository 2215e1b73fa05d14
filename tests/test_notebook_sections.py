"""Each section of a notebook runs alone after the setup cells (pure parsing: nothing is executed).

A *section* is a ``# %% [markdown]`` cell whose text starts with ``## `` plus the code cells up to the
next such heading; the cells before the first section are the *setup* (parameters, imports,
``setup(...)``), shared by every section. A reader who runs one section in JupyterLab after the setup
must get that section's result from its own inputs, so:

* no top-level name is assigned in more than one section, nor in a section and the setup
  (assignments, augmented and annotated assignments, ``for`` targets, ``with ... as`` names, walrus
  targets, ``def``/``class`` names, ``except ... as`` names; imports may repeat; names bound inside a
  function, lambda or comprehension stay there);
* a section reads only names of the setup, its own names and builtins: a name another section
  assigned is a hidden input.

Every notebook is guarded.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))

#: Names IPython puts in every kernel's namespace.
IPYTHON_NAMES = {"display", "get_ipython", "In", "Out"}
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True)
class Section:
    title: str  # "setup", or the heading's text
    line: int  # where it starts in the file (1-based)
    tree: ast.Module  # its code cells, parsed with the file's line numbers


def split_sections(source: str) -> list[Section]:
    """The setup and each ``## `` section of a jupytext percent notebook, each parsed with ``ast``."""
    lines = source.splitlines(keepends=True)
    starts, titles = [0], ["setup"]
    for i, line in enumerate(lines):
        text = lines[i + 1].rstrip("\n") if i + 1 < len(lines) else ""
        if line.startswith("# %% [markdown]") and text.startswith("# ## "):
            starts.append(i)
            titles.append(text[len("# ## "):].strip())
    sections = []
    for title, start, end in zip(titles, starts, [*starts[1:], len(lines)]):
        code = "\n" * start + "".join(lines[start:end])  # padded: line numbers stay the file's
        sections.append(Section(title, start + 1, ast.parse(code)))
    return sections


def top_level_names(tree: ast.AST) -> dict[str, int]:
    """The names a section binds in the module's namespace, with the first line binding each (imports excepted)."""
    found: dict[str, int] = {}

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.setdefault(node.name, node.lineno)
            for child in [*node.decorator_list, *getattr(node, "bases", [])]:
                visit(child)
            return
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, COMPREHENSIONS):  # its loop variables stay inside; a walrus there leaks out
            for sub in ast.walk(node):
                if isinstance(sub, ast.NamedExpr):
                    found.setdefault(sub.target.id, sub.lineno)
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.setdefault(node.id, node.lineno)
        if isinstance(node, ast.ExceptHandler) and node.name:
            found.setdefault(node.name, node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imported_names(tree: ast.AST) -> set[str]:
    return {
        (alias.asname or alias.name.split(".")[0])
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }


def bound_anywhere(tree: ast.AST) -> set[str]:
    """Every name the code binds at any depth: a read of one of these is not a read of another section's."""
    names = imported_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def shared_assignments(source: str) -> list[str]:
    """``name (line n in 'A', line m in 'B')`` for each top-level name bound in two or more sections
    (the setup counts as one: a section that rebinds a setup name changes it for every later section)."""
    where: dict[str, list[tuple[str, int]]] = {}
    for section in split_sections(source):
        for name, line in top_level_names(section.tree).items():
            where.setdefault(name, []).append((section.title, line))
    return [
        f"{name} ({', '.join(f'line {line} in {title!r}' for title, line in places)})"
        for name, places in sorted(where.items())
        if len(places) > 1
    ]


def reads_across(source: str) -> list[str]:
    """``name (line n in 'A')`` for each name a section reads that neither it, the setup nor Python binds."""
    setup, *sections = split_sections(source)
    known = bound_anywhere(setup.tree) | set(dir(builtins)) | IPYTHON_NAMES
    problems = []
    for section in sections:
        own = bound_anywhere(section.tree)
        reads = sorted(
            (node.lineno, node.id)
            for node in ast.walk(section.tree)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in own | known
        )
        problems += [f"{name} (line {line} in {section.title!r})" for line, name in reads]
    return problems


def test_notebooks_and_sections_are_found():
    assert "06_ablations.py" in {p.name for p in SOURCES} and len(SOURCES) == 9
    titles = [s.title for s in split_sections((NOTEBOOKS / "06_ablations.py").read_text())]
    assert titles[0] == "setup" and len(titles) > 10
    assert titles[1].startswith("The four variants")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_no_top_level_name_is_assigned_in_two_sections(path: Path):
    shared = shared_assignments(path.read_text())
    assert not shared, f"{path.name}: top-level names assigned in more than one section: " + "; ".join(shared)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_sections_read_only_the_setup_and_their_own_names(path: Path):
    hidden = reads_across(path.read_text())
    assert not hidden, f"{path.name}: sections read names another section assigned: " + "; ".join(hidden)


EXAMPLE = '''\
# %% tags=["parameters"]
profile = "cpu"

# %%
import os
cfg = {"seed": 0}

# %% [markdown]
# ## One

# %%
import os
layout = "nih"
rows = [r for r in range(3)]
with open(os.devnull) as handle:
    pass

# %% [markdown]
# Not a heading: still section one.

# %%
for seed in range(2):
    print(layout, seed)

# %% [markdown]
# ## Two

# %%
def helper(x):
    y = x
    return y

print(rows, cfg, helper(1), [z for z in range(2)])
for layout in ["chexpert"]:
    cfg = None
'''


def test_the_checks_see_what_they_guard():
    titles = [s.title for s in split_sections(EXAMPLE)]
    assert titles == ["setup", "One", "Two"]
    assert set(top_level_names(split_sections(EXAMPLE)[1].tree)) == {"layout", "rows", "handle", "seed"}
    assert shared_assignments(EXAMPLE) == [
        "cfg (line 6 in 'setup', line 35 in 'Two')",
        "layout (line 13 in 'One', line 34 in 'Two')",
    ]
    assert reads_across(EXAMPLE) == ["rows (line 33 in 'Two')"]
