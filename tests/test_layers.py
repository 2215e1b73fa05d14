"""The package's design, guarded: layers import only downward and no module imports itself round a cycle.

Imports are read with ``ast`` (inside functions too; ``if TYPE_CHECKING:`` blocks excluded, since they
never run), so an import hidden in a function cannot reintroduce a cycle or an upward dependency.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "paperkit"

#: Lowest first. A module may import from its own layer and those before it, never from a later one.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("paperkit", "paperkit.config", "paperkit.overrides", "paperkit.paths", "paperkit.artifacts",
                    "paperkit.runtime", "paperkit.progress")),
    ("data", ("paperkit.data",)),
    ("models", ("paperkit.models",)),
    ("evaluation", ("paperkit.evaluation",)),
    ("method", ("paperkit.method",)),
    ("training", ("paperkit.training",)),
    ("pipeline", ("paperkit.pipeline",)),
    ("orchestration", ("paperkit.orchestration",)),
    ("notebooks' entry points", ("paperkit.notebook", "paperkit.__main__")),
)
TOP_LEVEL_LIMIT = 12


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            exact = prefix == "paperkit"
            if (module == prefix if exact else module == prefix or module.startswith(prefix + ".")) and len(
                prefix
            ) > best_len:
                best, best_len = i, len(prefix)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {Path(__file__).name}")
    return best


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(n.lineno for n in ast.walk(sub) if hasattr(n, "lineno"))
    return lines


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package's modules ``path`` imports (the longest module name each import resolves to)."""
    name, tree = module_name(path), ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target != "paperkit":
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: imported_modules(p, set(files)) for m, p in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first repeated last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for dep in sorted(graph.get(m, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_only_downward():
    upward = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]})"
        for m, deps in sorted(import_graph().items())
        for dep in sorted(deps)
        if layer_of(dep) > layer_of(m)
    ]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_top_level_stays_small():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= TOP_LEVEL_LIMIT, f"{len(modules)} modules at paperkit/'s top level: {modules}"


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"a2"}, "a2": {"b"}, "b": {"a2"}}, ["a2", "b", "a2"]),
    ],
)
def test_find_cycle_finds_what_is_there(graph, cycle):
    assert find_cycle(graph) == cycle


def test_imports_inside_functions_count(tmp_path, monkeypatch):
    pkg = tmp_path / "paperkit"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "config.py").write_text("def f():\n    from paperkit.sub import thing\n")
    (pkg / "sub" / "thing.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from paperkit import config\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    graph = import_graph()
    assert graph["paperkit.config"] == {"paperkit.sub", "paperkit.sub.thing"} and graph["paperkit.sub.thing"] == set()
