"""The import graph of the stage packages and scripts: stages point down, never up, and no module imports itself back.

The packages are stages (docs/architecture.md): ``common`` (runtime, atomic I/O, the run folder's schema)
under everything, importing nothing of the project, then ``tasks`` and ``agents`` (stage 0), then ``rewards``,
then ``analysis``, then ``suites`` and ``experiments``. ``scripts`` (one-off measurements, not installed) is
checked too, as a level above them all: a script may import any stage, no stage may import a script.
A module may import its own package and the ones below it. The check
walks the AST of every module, function-level imports included (a lazy import is still a dependency: it
only moves the failure to run time), and also refuses import cycles between modules, which make the
import order matter and the packages impossible to test or reuse one at a time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: stage of each package; a package may import packages of its own stage or lower
#: ``common`` sits below stage 0: every stage may import it, it imports none of them
LEVELS = {
    "common": -1,
    "tasks": 0,
    "agents": 0,
    "rewards": 1,
    "analysis": 2,
    "suites": 3,
    "experiments": 3,
    "scripts": 4,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in LEVELS for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """Project modules that ``path`` imports anywhere in its body (``from a import b`` -> ``a.b`` when b is
    a module). An import of ``a.b.c`` counts as ``a.b.c`` only: a parent package's ``__init__`` does not
    turn every import into a cycle."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        out |= {t for t in targets if t.split(".")[0] in LEVELS}
    return out


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(path, name, set(modules)) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{src} imports {dst}"
        for src, dsts in graph.items()
        for dst in dsts
        if LEVELS[dst.split(".")[0]] > LEVELS[src.split(".")[0]]
    )


def test_the_walk_sees_every_package_and_function_level_imports():
    graph = import_graph()
    assert {name.split(".")[0] for name in graph} == set(LEVELS)
    # suites.launch imports the submitit launcher inside a function only: the walk must still see it
    assert "suites.submitit_launcher" in graph["suites.launch"]
    assert "rewards.models.store" in graph["rewards.video_reward"]
    assert "analysis.scores" in graph["suites.run"]
    assert "common.runtime" in graph["agents.drqv2"]


def test_common_imports_nothing_of_the_project():
    """Every stage may use ``common``, so it may use none of them: one import of ``tasks`` there would
    make the whole project a cycle away from its bottom stage."""
    graph = import_graph()
    assert {name for name in graph if name.startswith("common")} >= {"common.io", "common.runtime"}
    assert {
        f"{src} imports {dst}"
        for src, dsts in graph.items()
        if src.startswith("common")
        for dst in dsts
        if not dst.startswith("common")
    } == set()


def test_no_package_imports_a_later_stage():
    assert upward(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(
    "graph, expect_cycle, expect_up",
    [
        ({"suites.a": {"suites.b"}, "suites.b": {"suites.a"}}, [["suites.a", "suites.b"]], []),
        ({"analysis.f": {"suites.scores"}, "suites.scores": set()}, [], ["analysis.f imports suites.scores"]),
        ({"rewards.x": {"common.io"}, "common.io": set()}, [], []),
        ({"common.io": {"tasks.registry"}, "tasks.registry": set()}, [], ["common.io imports tasks.registry"]),
    ],
)
def test_the_checks_catch_what_they_are_for(graph, expect_cycle, expect_up):
    assert cycles(graph) == expect_cycle
    assert upward(graph) == expect_up


# ------------------------------------------------------------------------------ function-local imports
#: what a function-local import must carry on its first line: why it is not at the top of the module
LOCAL_REASON = "# local import:"


def unexplained_local_imports(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: statement`` of every import inside a function whose first line has no ``# local import:``
    comment. An import belongs at the top of its module; it stays in a function only for a reason that line
    states (an optional dependency, keeping a package torch-free at import, a heavy import only one
    command needs)."""
    lines = source.splitlines()
    found = []
    for fn in ast.walk(ast.parse(source, filename)):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and LOCAL_REASON not in lines[node.lineno - 1]:
                    found.append(f"{filename}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return sorted(set(found))


def test_every_function_local_import_says_why_it_is_local():
    files = [p for pkg in [*LEVELS, "tests"] for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 100
    found = [hit for p in files for hit in unexplained_local_imports(p.read_text(), str(p.relative_to(ROOT)))]
    assert found == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import os\n\ndef f():\n    return os.sep\n", 0),
        ("def f():\n    import os\n    return os.sep\n", 1),
        ("def f():\n    def g():\n        from os import path\n        return path\n    return g\n", 1),
        ("def f():\n    import torch  # local import: an optional dependency\n    return torch\n", 0),
        ("def f():\n    import torch  # torch is heavy\n    return torch\n", 1),
    ],
)
def test_the_local_import_count_catches_what_it_is_for(source, expected):
    assert len(unexplained_local_imports(source)) == expected
