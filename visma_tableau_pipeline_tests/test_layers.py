"""The package's folders form layers: each depends only on folders below it, never in a circle.

Every import in the package counts, lazy ones inside functions and type-checking ones included:
a cycle between folders hidden in a function is still a cycle a reader has to untangle. A
top-level module (settings.py, pipeline.py, ...) is a unit of its own.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import visma_tableau_pipeline

PACKAGE = Path(visma_tableau_pipeline.__file__).parent
NAME = PACKAGE.name


def _unit(module: str) -> str:
    """The folder (or top-level module) a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<package>"


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == NAME:  # `from visma_tableau_pipeline import x`
                names.update(f"{NAME}.{alias.name}" for alias in node.names)
            elif node.module.startswith(NAME + "."):
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith(NAME + "."))
    return names


def folder_graph() -> dict[str, dict[str, set[str]]]:
    """unit -> the units it imports -> the files that import them."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        unit = _unit(".".join(relative.parts))
        graph[unit]  # every unit is a node, even one that imports nothing
        for imported in _imported(ast.parse(path.read_text(), str(path))):
            target = _unit(imported)
            if target != unit:
                graph[unit][target].add(str(path.relative_to(PACKAGE)))
    return graph


def test_no_folder_imports_a_folder_that_imports_it_back() -> None:
    graph = folder_graph()
    try:
        order = list(TopologicalSorter({unit: set(deps) for unit, deps in graph.items()}).static_order())
    except CycleError as error:
        cycle = error.args[1]
        steps = [
            f"{a} -> {b} (in {', '.join(sorted(graph[a][b]))})" for a, b in itertools.pairwise(cycle)
        ]
        raise AssertionError("import cycle between folders:\n  " + "\n  ".join(steps)) from None
    # the lowest layers first: nothing of the project's own below the state store
    assert order.index("state") < order.index("settings") < order.index("visma") < order.index("marts")
    assert order.index("tableau") < order.index("delivery") < order.index("pipeline") < order.index("defs")


def test_the_walk_sees_the_imports_it_judges() -> None:
    """The walk finds the imports it must judge (it would pass vacuously on an empty graph)."""
    graph = folder_graph()
    assert "settings" in graph["visma"] and "state" in graph["settings"]
    assert "marts" in graph["delivery"] and "tableau" in graph["delivery"]
