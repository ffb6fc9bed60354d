"""Structure: no import circle (function-local imports count), no private name imported across modules,
the notebook uses only public names."""

from __future__ import annotations

import ast
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("fennec", "archi2vec")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def _imports(tree: ast.AST, modules: dict[str, Path], this: str) -> list[tuple[str, list[str]]]:
    """(imported module, imported names) of every import statement, local ones included."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.split(".")[0] in PACKAGES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in PACKAGES:
                names = [a.name for a in node.names]
                subs = [f"{node.module}.{n}" for n in names if f"{node.module}.{n}" in modules]
                out += [(node.module, [n for n in names if f"{node.module}.{n}" not in modules])]
                out += [(s, []) for s in subs]
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = {m for m, _ in _imports(ast.parse(path.read_text()), modules, name) if m in modules and m != name}
        # importing a package runs its __init__: that is not a dependency of the package on its children
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    return graph


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycle.extend(stack[stack.index(dep):] + [node, dep] if dep in stack else [node, dep])
                return True
            if state.get(dep) is None and visit(dep, stack + [dep]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and visit(start, [start]):
            break
    assert not cycle, " -> ".join(cycle)


def test_no_private_name_imported_across_modules():
    modules = _modules()
    bad = []
    for name, path in modules.items():
        for mod, names in _imports(ast.parse(path.read_text()), modules, name):
            private_module = any(part.startswith("_") and part not in ("__init__", "__main__")
                                 for part in mod.split(".")[1:])
            shared_parent = mod.rsplit(".", 1)[0] in (name.rsplit(".", 1)[0], name)  # a package's own parts
            if private_module and not shared_parent and mod not in ("fennec._torch_compat", "fennec._optional",
                                                                    "archi2vec._torch_compat"):
                bad.append(f"{name} imports private module {mod}")
            bad += [f"{name} imports {mod}.{n}" for n in names
                    if n.startswith("_") and not n.startswith("__") and mod != name]
    assert not bad, "\n".join(bad)


def test_notebook_uses_public_names_only():
    nb = json.loads((REPO / "notebooks" / "walkthrough.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    tree = ast.parse("\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fennec"):
            assert not any(p.startswith("_") for p in node.module.split(".")), node.module
            assert not any(a.name.startswith("_") for a in node.names), node.module
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "fennec":
            assert not node.attr.startswith("_") or node.attr in ("__version__", "__file__"), node.attr
