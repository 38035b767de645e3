"""Summarise the package's own import graph: modules per folder, which folders import which.

    python benchmarks/import_graph.py [PACKAGE_DIR]      # default: univar_eval next to this script

Reads the source with ``ast`` (nothing is imported, so it runs on any checkout, e.g. an old
commit in a ``git worktree``). An edge is "module A imports module B of the package";
imports inside functions are counted apart (``lazy``). Prints: modules per folder, the
number of edges and lazy imports, the depth of the module graph (longest import chain), the cycles
(strongly connected groups and simple cycles, imports inside functions included: a lazy import is still a
dependency), the imports that go against the layer order :data:`LAYERS`, and the folder-to-folder edges.

The layers, lowest first; a module imports only its own layer or lower (``tests/test_layers.py`` asserts it):
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter, defaultdict
from pathlib import Path

#: The package's layers, lowest first. ``(top)``: the package's own modules (errors, settings, resources, the
#: discovery hook). Folders in one layer may import each other (the methods build on the lm-eval coupling).
LAYERS: list[tuple[str, ...]] = [
    ("(top)",),
    ("storage",),
    ("pipeline",),
    ("stats",),
    ("harness", "hvae", "valuelex", "demo"),
    ("runs",),
    ("reports",),
    ("cli",),
]
LAYER_OF = {folder: i for i, layer in enumerate(LAYERS) for folder in layer}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(name: str, modules: set[str]) -> str | None:
    """The package module that ``import name`` loads (a symbol's module for ``from x import symbol``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(path: Path, mod: str, package: str, modules: set[str]) -> list[tuple[str, bool]]:
    """(imported package module, lazy) for every import statement of the package in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out = []

    def visit(node, lazy: bool):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.split(".")[0] == package:
                        out.append((resolve(a.name, modules), lazy))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                if base.split(".")[0] != package:
                    continue
                for a in child.names:
                    target = resolve(f"{base}.{a.name}", modules) or resolve(base, modules)
                    out.append((target, lazy))
            visit(child, inner)

    visit(tree, False)
    return [(t, lazy) for t, lazy in out if t and t != mod]


def folder_of(mod: str, packages: set[str]) -> str:
    """The folder a module sits in, below the package: ``stats`` for ``univar_eval.stats.distance``,
    ``(top)`` for the package's own top-level modules."""
    folder = mod if mod in packages else mod.rpartition(".")[0]
    return folder.partition(".")[2] or "(top)"


def depth(graph: dict[str, set[str]]) -> tuple[int, list[list[str]]]:
    """Longest chain of modules (edges counted in modules) and the cycles found on the way."""
    memo: dict[str, int] = {}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(m: str, stack: list[str]) -> int:
        if state.get(m) == 1:
            cycles.append(stack[stack.index(m) :] + [m])
            return 0
        if m in memo:
            return memo[m]
        state[m] = 1
        best = 1 + max((walk(n, stack + [n]) for n in graph.get(m, ())), default=0)
        state[m] = 2
        memo[m] = best
        return best

    return max((walk(m, [m]) for m in graph), default=0), cycles


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or not (Tarjan); only groups of two or more."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def simple_cycles(graph: dict[str, set[str]], limit: int = 1000) -> list[list[str]]:
    """Simple cycles (each once, starting at its smallest module), up to ``limit``."""
    out: list[list[str]] = []
    nodes = sorted(graph)
    for start in nodes:
        stack = [(start, [start])]
        while stack and len(out) < limit:
            v, path = stack.pop()
            for w in sorted(graph.get(v, ())):
                if w == start:
                    out.append(path + [start])
                elif w > start and w not in path:
                    stack.append((w, path + [w]))
    return out


def layer_violations(edges, packages: set[str]) -> list[str]:
    """``module -> imported module`` for every import of a higher layer (or of a folder missing from LAYERS)."""
    bad = []
    for a, b in sorted(edges):
        fa, fb = folder_of(a, packages), folder_of(b, packages)
        if fa not in LAYER_OF or fb not in LAYER_OF or LAYER_OF[fb] > LAYER_OF[fa]:
            bad.append(f"{a} -> {b}")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("package_dir", nargs="?", default=str(Path(__file__).resolve().parents[1] / "univar_eval"))
    args = ap.parse_args(argv)
    root = Path(args.package_dir).resolve()
    package = root.name
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    packages = {m for m, p in files.items() if p.name == "__init__.py"}
    graph: dict[str, set[str]] = defaultdict(set)
    edges: set[tuple[str, str]] = set()
    lazy: set[tuple[str, str]] = set()
    n_lazy_statements = 0
    for mod, path in files.items():
        graph.setdefault(mod, set())
        for target, is_lazy in imports_of(path, mod, package, modules):
            if is_lazy:
                n_lazy_statements += 1
                lazy.add((mod, target))
            else:
                graph[mod].add(target)
                edges.add((mod, target))
    all_edges = edges | lazy
    per_folder = Counter(folder_of(m, packages) for m in modules)
    folder_edges: Counter = Counter()
    for a, b in all_edges:
        fa, fb = folder_of(a, packages), folder_of(b, packages)
        if fa != fb:
            folder_edges[(fa, fb)] += 1
    longest, cycles = depth(graph)
    full: dict[str, set[str]] = defaultdict(set, {m: set(t) for m, t in graph.items()})
    for a, b in lazy:
        full[a].add(b)
    longest_all, _ = depth(full)
    groups = strongly_connected(full)
    cycles = simple_cycles(full)
    against = layer_violations(all_edges, packages)

    print(f"package {package} ({root})")
    print(
        f"{len(modules)} modules in {len(per_folder)} folders; {len(all_edges)} import edges between them "
        f"({len(edges)} at module level, {len(lazy - edges)} only inside functions); "
        f"{n_lazy_statements} imports of the package inside functions; "
        f"longest import chain {longest} modules ({longest_all} counting imports inside functions)"
    )
    print(f"cycles, imports inside functions included: {len(groups)} groups, {len(cycles)} simple cycles")
    for c in cycles[:5]:
        print("  cycle: " + " -> ".join(c))
    print("layers, lowest first: " + " < ".join("/".join(layer) for layer in LAYERS))
    print(f"imports against the layer order: {len(against)}")
    for line in against[:20]:
        print("  " + line)
    print("\nmodules per folder")
    for folder, n in sorted(per_folder.items()):
        print(f"  {folder:<10} {n:>3}")
    print("\nfolder -> folder (number of module edges)")
    if not folder_edges:
        print("  (one folder: no edges between folders)")
    by_source: dict[str, list[str]] = defaultdict(list)
    for (fa, fb), n in sorted(folder_edges.items()):
        by_source[fa].append(f"{fb} ({n})")
    for fa in sorted(by_source):
        print(f"  {fa:<10} -> {', '.join(by_source[fa])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
