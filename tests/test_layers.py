"""The package's layers, lowest first (``benchmarks/import_graph.LAYERS``): (top) < storage < pipeline < stats <
harness/hvae/valuelex/demo < runs < reports < cli. A module imports only its own layer or lower, imports inside
functions included, and no modules import each other in a cycle. Read from the source with
``benchmarks/import_graph.py`` (``ast``, nothing imported).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _graph_module():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "benchmarks" / "import_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _edges():
    g = _graph_module()
    root = ROOT / "univar_eval"
    files = {g.module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    packages = {m for m, p in files.items() if p.name == "__init__.py"}
    edges = {(m, t) for m, p in files.items() for t, _ in g.imports_of(p, m, "univar_eval", modules)}
    return g, files, packages, edges


def test_every_folder_has_a_layer():
    g, files, packages, _ = _edges()
    assert {g.folder_of(m, packages) for m in files} == set(g.LAYER_OF)


def test_no_import_goes_up_the_layers_lazy_ones_included():
    g, _, packages, edges = _edges()
    assert any(m.endswith("cli.bank") and t.endswith("storage.hub") for m, t in edges)  # lazy imports are read
    assert g.layer_violations(edges, packages) == []


def test_the_layer_check_sees_an_upward_import():
    g, _, packages, _ = _edges()
    assert g.layer_violations({("univar_eval.storage.bank", "univar_eval.reports.gate")}, packages) == [
        "univar_eval.storage.bank -> univar_eval.reports.gate"
    ]


def test_no_import_cycles_lazy_imports_included():
    g, _, _, edges = _edges()
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    assert g.strongly_connected(graph) == []
    assert g.strongly_connected({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
