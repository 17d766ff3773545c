"""The Qt-free layers never import Qt (DESIGN.md: data flows disk/DB -> core -> UI)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "cryodesk"
QT_FREE = ("base", "db", "io", "kernels", "core", "jobs", "cache", "demo")
QT_IMPORT = re.compile(r"^\s*(from|import)\s+(PySide6|pyqtgraph|shiboken6)\b", re.MULTILINE)


def test_no_qt_imports_in_source():
    offenders = [str(p.relative_to(ROOT)) for d in QT_FREE if (ROOT / d).is_dir()
                 for p in (ROOT / d).rglob("*.py") if QT_IMPORT.search(p.read_text())]
    assert offenders == []


def test_importing_the_qt_free_layers_loads_no_qt():
    mods = [f"cryodesk.{d}" for d in QT_FREE if (ROOT / d).is_dir()]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in mods)
            + "import cryodesk.core.registry as r; r.all_types()\n"
            + "bad=[m for m in sys.modules if m.split('.')[0] in ('PySide6','pyqtgraph','shiboken6')]\n"
            + "print(bad); sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), i.e. import cycles."""
    adj = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in adj:
        if root in index:
            continue
        work = [(root, iter(adj[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in adj:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(adj[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles_not_even_through_imports_inside_functions():
    grimp = __import__("grimp")
    graph = grimp.build_graph("cryodesk", cache_dir=None)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    class Graph:  # a -> b -> c -> a, and d alone
        modules = {"a", "b", "c", "d"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, m):
            return self.edges.get(m, set())

    assert _cycles(Graph()) == [["a", "b", "c"]]
