"""List the import cycles among this repository's modules (issue 31).

Counts every import grimp sees: module level, inside functions and under TYPE_CHECKING.
Prints each strongly connected group of modules with the imports that hold it together;
exits 1 when there is one. Usage: .venv/bin/python scripts/import_cycles.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

PACKAGES = ("core", "carvalue_gui", "training", "benchmarks", "tests")


def cycles(graph) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & graph.modules) for m in modules}

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1 or node in edges[node]:
                        groups.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return groups


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    groups = cycles(graph)
    for group in groups:
        print(f"cycle of {len(group)} modules:")
        members = set(group)
        for module in group:
            for other in sorted(graph.find_modules_directly_imported_by(module) & members):
                lines = graph.get_import_details(importer=module, imported=other)
                where = ", ".join(str(d["line_number"]) for d in lines)
                print(f"  {module} -> {other} (line {where})")
    outside = sorted(
        m for m in graph.modules
        if not m.startswith("tests") and graph.find_modules_directly_imported_by(m) & {
            t for t in graph.modules if t == "tests" or t.startswith("tests.")
        }
    )
    for module in outside:
        print(f"imports tests: {module}")
    if not groups and not outside:
        print("no import cycle; nothing outside tests imports tests")
    return 1 if groups or outside else 0


if __name__ == "__main__":
    raise SystemExit(main())
