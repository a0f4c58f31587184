"""The shipped library's import graph: models/retrolab has no import cycle and never imports
models/studies (experiments import the library, never the reverse). Imports are read with `ast`,
so nothing is executed and function-level imports count too."""

import ast
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1]
LIBRARY = MODELS / "retrolab"


def imported_modules(path: Path, package: str) -> set[str]:
    """Absolute dotted names of every module `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    own = f"{package}.{path.stem}" if path.stem != "__init__" else package
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own.split(".")[: -node.level] if path.stem != "__init__" else own.split(".")[: len(own.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            # `from retrolab import model` imports the module retrolab.model.
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def library_graph() -> dict[str, set[str]]:
    modules = {f"retrolab.{p.stem}" if p.stem != "__init__" else "retrolab": p for p in LIBRARY.glob("*.py")}
    return {name: {m for m in imported_modules(path, "retrolab") if m in modules and m != name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_library_never_imports_the_studies():
    offenders = {
        path.name: sorted(m for m in imported_modules(path, "retrolab") if m == "studies" or m.startswith("studies."))
        for path in LIBRARY.glob("*.py")
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_the_library_has_no_import_cycle():
    assert find_cycle(library_graph()) is None


def test_the_cycle_finder_finds_a_cycle():
    # The check above is only as good as this: a two-module and a three-module cycle are found.
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_relative_imports_resolve_to_library_modules(tmp_path):
    pkg = tmp_path / "retrolab"
    pkg.mkdir()
    (pkg / "train.py").write_text("from .model import GPT\nfrom . import data\nimport studies.compare\n")
    names = imported_modules(pkg / "train.py", "retrolab")
    assert {"retrolab.model", "retrolab.data", "studies.compare"} <= names
