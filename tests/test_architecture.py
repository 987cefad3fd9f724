"""The package's layers run one way and its modules form no import circle.

Layers, bottom to top (the same order as detectron2's own packages):

* ``fasttcm_ops``, ``fasttcm.config``, ``fasttcm.utils``, ``fasttcm.structures``: the bottom;
* ``fasttcm.data`` and ``fasttcm.modeling``: side by side, neither imports the other;
* ``fasttcm.solver`` over modeling; ``fasttcm.evaluation`` over data (not modeling);
* ``fasttcm.engine`` (and the package root, which only registers) over everything;
* ``fasttcm.deploy`` (ONNX export, onnxruntime backend) over engine;
* ``fasttcm.api`` (the predictor API: ``fasttcm.TextSpotter`` and friends) over everything; the
  package root serves its names lazily.

Every import is checked, at module level and inside functions, from the source text (nothing is
imported, so a hidden edge cannot escape through an import that happens to fail).
"""

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "projects" / "FastTCM"

BOTTOM = {"fasttcm_ops", "fasttcm.config", "fasttcm.utils", "fasttcm.structures"}
ALLOWED: Dict[str, Set[str]] = {
    "bottom": {"bottom"},
    "fasttcm.data": {"bottom", "fasttcm.data"},
    "fasttcm.modeling": {"bottom", "fasttcm.modeling"},
    "fasttcm.solver": {"bottom", "fasttcm.modeling", "fasttcm.solver"},
    "fasttcm.evaluation": {"bottom", "fasttcm.data", "fasttcm.evaluation"},
    "fasttcm.engine": {
        "bottom",
        "fasttcm.data",
        "fasttcm.modeling",
        "fasttcm.solver",
        "fasttcm.evaluation",
        "fasttcm.engine",
    },
    "fasttcm.deploy": {
        "bottom",
        "fasttcm.data",
        "fasttcm.modeling",
        "fasttcm.solver",
        "fasttcm.evaluation",
        "fasttcm.engine",
        "fasttcm.deploy",
    },
    "fasttcm.api": {
        "bottom",
        "fasttcm.data",
        "fasttcm.modeling",
        "fasttcm.solver",
        "fasttcm.evaluation",
        "fasttcm.engine",
        "fasttcm.deploy",
        "fasttcm.api",
    },
}


def _modules() -> Dict[str, Path]:
    modules = {}
    for package in ("fasttcm", "fasttcm_ops"):
        for path in sorted((PACKAGE_ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(PACKAGE_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _layer(module: str) -> str:
    for bottom in BOTTOM:
        if module == bottom or module.startswith(bottom + "."):
            return "bottom"
    parts = module.split(".")
    if parts[0] == "fasttcm" and len(parts) > 1 and f"fasttcm.{parts[1]}" in ALLOWED:
        return f"fasttcm.{parts[1]}"
    return "root"  # the package root `fasttcm` itself: registration only


def _imports(modules: Dict[str, Path]) -> List[Tuple[str, str, int, bool]]:
    """(importer, imported module, line, inside a function) for every in-project import."""
    edges = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module
                names = []
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    names.append(candidate if candidate in modules else target)
            else:
                continue
            for name in names:
                while name and name not in modules and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in modules:
                    edges.append((module, name, node.lineno, id(node) not in top_level))
    return edges


def test_import_scanner_sees_relative_absolute_and_local_imports():
    modules = _modules()
    edges = _imports(modules)
    assert len(modules) > 100
    pairs = {(a, b) for a, b, _, _ in edges}
    # a relative import inside a package and an absolute import of the ops package
    assert ("fasttcm.modeling.backbone.fpn", "fasttcm.modeling.tcm.backbone") in pairs
    assert any(b.startswith("fasttcm_ops") for a, b in pairs if a.startswith("fasttcm."))


def test_layers_run_one_way():
    violations = []
    for importer, imported, line, local in _imports(_modules()):
        src, dst = _layer(importer), _layer(imported)
        if src == "root":
            continue
        if dst not in ALLOWED[src] and not (dst == "bottom" and "bottom" in ALLOWED[src]):
            where = "function-local" if local else "module-level"
            violations.append(f"{importer}:{line} ({src}) imports {imported} ({dst}), {where}")
    assert not violations, "imports that run against the layers:\n" + "\n".join(violations)


def test_no_import_circles():
    modules = _modules()
    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    for importer, imported, _, _ in _imports(modules):
        if importer != imported:
            graph[importer].add(imported)
    # Tarjan's strongly connected components: any component with two or more modules is a circle.
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    circles: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_architecture_doc_names_only_files_that_exist():
    """Every ``name.py`` the architecture guide mentions exists (package, tools, tests, dev)."""
    import re

    doc = (PACKAGE_ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    repo = PACKAGE_ROOT.parents[1]
    existing = {
        path.name
        for folder in (PACKAGE_ROOT / "fasttcm", repo / "tools", repo / "tests", repo / "dev")
        for path in folder.rglob("*.py")
    }
    named = set(re.findall(r"`(?:[\w/]*/)?(\w+\.py)`", doc))
    assert named, "the guide names no module"
    assert named <= existing, f"ARCHITECTURE.md names missing modules: {sorted(named - existing)}"
