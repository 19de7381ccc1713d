"""The import graph of tfphys and export has no cycle, counting imports inside functions.

``lint-imports`` (the contracts in pyproject.toml) checks which packages may import which; this
test checks the module graph itself: an import moved into a function to dodge a circular import
at load time is still a cycle here.
"""

from __future__ import annotations

import configparser
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def _graph() -> tuple[grimp.ImportGraph, dict[str, set[str]]]:
    graph = grimp.build_graph("tfphys", "export", include_external_packages=False, cache_dir=None)
    return graph, {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def _cycles(adj: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = 0
    for root in sorted(adj):
        if root in index:
            continue
        work = [(root, iter(sorted(adj[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(adj[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in adj[node]:
                        found.append(sorted(component))
    return found


def _describe(graph, component: list[str]) -> str:
    """One cycle through the component, each arrow with the importing file's line numbers."""
    first = component[0]
    members = set(component)
    nxt = sorted(m for m in graph.find_modules_directly_imported_by(first) if m in members)[0]
    back = graph.find_shortest_chain(importer=nxt, imported=first) or (nxt, first)
    chain = (first, *back)
    arrows = []
    for a, b in zip(chain, chain[1:]):
        lines = sorted(d["line_number"] for d in graph.get_import_details(importer=a, imported=b))
        arrows.append(f"{a} -> {b} (l.{', '.join(map(str, lines))})")
    return "\n    ".join(arrows)


def test_module_import_graph_is_acyclic():
    graph, adj = _graph()
    assert {"tfphys", "tfphys.registry", "export.exporter"} <= set(adj)  # the graph is the real one
    assert "tfphys.registry" in adj["tfphys.training"]
    components = _cycles(adj)
    message = "\n".join(f"import cycle among {', '.join(c)}:\n    {_describe(graph, c)}" for c in components)
    if components:
        print(message, file=sys.stderr)
    assert not components, message


def test_cycle_finder_sees_a_cycle_and_names_it():
    adj = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(adj) == [["a", "b", "c"], ["e"]]


def test_import_contracts_name_every_builtin_family():
    """The layers contract of pyproject.toml keeps its family list in step with setup.cfg."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    declared = {line.split("=")[0].strip() for line in
                setup["options.entry_points"]["tfphys.families"].strip().splitlines()}
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c.get("containers") == ["tfphys"])
    assert {name.strip() for name in layers["layers"][0].split("|")} == declared
    forbidden = next(c for c in contracts if c["type"] == "forbidden")
    assert set(forbidden["forbidden_modules"]) == {f"tfphys.{name}" for name in declared}
