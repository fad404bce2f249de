"""The import graph: the front end never reaches into the backends, and backend packages import in one direction."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDGE = {"r1dsl/cli.py"}  # where the front end and the backends are wired together (the catalogue is built)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, inside a function?) for every import statement of a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module, in_function))
                found.extend((f"{child.module}.{a.name}", in_function) for a in child.names)
            elif isinstance(child, ast.Call) and getattr(child.func, "attr", getattr(child.func, "id", "")) == "import_module":
                if child.args and isinstance(child.args[0], ast.Constant) and isinstance(child.args[0].value, str):
                    found.append((child.args[0].value, in_function))
                elif child.args and isinstance(child.args[0], ast.JoinedStr):
                    head = child.args[0].values[0]
                    if isinstance(head, ast.Constant):
                        found.append((str(head.value).rstrip("."), in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def test_the_front_end_never_imports_the_backends_except_at_the_edge():
    bad = []
    for path in files("r1dsl"):
        rel = str(path.relative_to(ROOT))
        for module, in_function in imports(path):
            if module == "backends" or module.startswith("backends."):
                if in_function or rel not in EDGE:
                    bad.append(f"{rel}: {module}{' (inside a function)' if in_function else ''}")
    assert bad == []


def cycles_of(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle a depth-first walk of the graph meets, as `a -> b -> a`."""
    cycles: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def package_of(module: str) -> str | None:
    """backends.grpo.step -> backends.grpo; backends.models -> backends.models."""
    parts = module.split(".")
    if parts[0] != "backends" or len(parts) < 2:
        return None
    candidate = ROOT / "backends" / parts[1]
    return f"backends.{parts[1]}" if candidate.is_dir() or candidate.with_suffix(".py").exists() else None


def test_backend_packages_have_no_import_cycle():
    graph: dict[str, set[str]] = {}
    for path in files("backends"):
        rel = path.relative_to(ROOT).with_suffix("")
        here = package_of(".".join(rel.parts)) or "backends"
        for module, _ in imports(path):
            there = package_of(module)
            if there and there != here and here != "backends":
                graph.setdefault(here, set()).add(there)
    assert cycles_of(graph) == []


def _module_cycles(package: str) -> list[str]:
    """Import cycles between the modules of a package, imports inside functions included (a lazy import
    hides a cycle from Python, not from a reader)."""
    graph: dict[str, set[str]] = {}
    names = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in files(package)}
    for path in files(package):
        here = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for module, _ in imports(path):
            if module in names and module != here and not here.startswith(module + "."):
                graph.setdefault(here, set()).add(module)
    return cycles_of(graph)


def test_front_end_modules_read_alone():
    """No module of the front end imports one that imports it (the parser's layers: scan -> lalr -> transform ->
    syntax_errors -> parser; parser.py and syntax_errors.py used to import each other)."""
    assert _module_cycles("r1dsl") == []
