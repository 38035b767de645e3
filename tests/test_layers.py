"""The package's folders follow the flow questionnaire -> task -> answers -> translation -> encoder ->
distribution -> stats -> reports/cli: the statistics never import the reporting layer or the CLI, and no
folder imports the CLI. Read from the source with ``benchmarks/import_graph.py`` (``ast``, nothing imported).
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


def folder_edges() -> set[tuple[str, str, str, str]]:
    """(folder, module, imported folder, imported module) for every import of the package, lazy ones included."""
    g = _graph_module()
    root = ROOT / "univar_eval"
    files = {g.module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    packages = {m for m, p in files.items() if p.name == "__init__.py"}
    return {(g.folder_of(m, packages), m, g.folder_of(t, packages), t)
            for m, p in files.items() for t, _ in g.imports_of(p, m, "univar_eval", modules)}


def test_stats_imports_neither_reports_nor_cli():
    edges = folder_edges()
    assert any(fa == "stats" and fb == "pipeline" for fa, _, fb, _ in edges)  # the reader sees stats' imports
    upward = sorted(f"{m} -> {t}" for fa, m, fb, t in edges if fa == "stats" and fb in ("reports", "cli"))
    assert upward == []


def test_only_the_cli_imports_the_cli():
    edges = folder_edges()
    assert any(fa == "cli" and fb == "reports" for fa, _, fb, _ in edges)
    assert sorted(f"{m} -> {t}" for fa, m, fb, t in edges if fb == "cli" and fa != "cli") == []
