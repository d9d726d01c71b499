"""The package's layers (docs/architecture.md): imports run one way, no module cycle, and the
sans-I/O core loads no transport, server or test library."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ciba_harness"

#: layer -> the layers its modules may import (itself included); "package" is the lazy façade
#: (`__version__`), which front-ends may read
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "checks": {"core", "checks"},
    "client": {"core", "checks", "client"},
    "reports": {"core", "checks", "reports"},
    "strategies": {"core", "checks", "strategies"},
    "provider": {"provider"},
    "hostile": {"core", "provider", "hostile"},
    "load": {"core", "checks", "client", "reports", "provider", "load", "package"},
    "pytest_plugin": {"core", "checks", "client", "reports", "strategies", "provider",
                      "pytest_plugin", "package"},
    "rp": {"core", "checks", "client", "reports", "pytest_plugin", "provider", "rp", "package"},
    "cli": {"core", "checks", "client", "reports", "strategies", "provider", "pytest_plugin",
            "load", "rp", "hostile", "cli", "package"},
    "package": {"core", "checks", "client", "package"},
}
#: installed libraries that do I/O (or are a test framework)
HEAVY = {"httpx", "httpcore", "h11", "anyio", "uvicorn", "starlette", "locust", "gevent",
         "geventhttpclient", "pytest", "hypothesis"}
#: everything that does I/O, the standard library's modules included, and the layers that must
#: not import it
IO_LIBRARIES = HEAVY | {"socket", "ssl", "asyncio", "subprocess", "threading"}
NO_IO_LAYERS = {"core": IO_LIBRARIES, "checks": IO_LIBRARIES - {"threading"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    return parts[1] if parts[1] != "__main__" else "cli"


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path) -> Iterator[tuple[str, bool]]:
    """(imported module, at run time?) for every import in the file, nested ones included."""
    tree = ast.parse(path.read_text("utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if _type_checking_block(node):
            typing_only.update(id(inner) for inner in ast.walk(node))
    is_package = path.name == "__init__.py"
    own = module_name(path).split(".")
    base = own if is_package else own[:-1]
    for node in ast.walk(tree):
        runtime = id(node) not in typing_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, runtime
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                target = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                submodule = (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py")
                package = PACKAGE.parent / candidate.replace(".", "/") / "__init__.py"
                yield (candidate if submodule.exists() or package.exists() else target), runtime


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_imports_run_one_way() -> None:
    wrong = []
    for module, path in package_modules().items():
        layer = layer_of(module)
        for imported, _ in imports_of(path):
            if imported.split(".")[0] != "ciba_harness":
                continue
            if layer == "package" and imported.startswith("ciba_harness."):
                continue  # the façade's TYPE_CHECKING imports and lazy table name every layer
            if layer_of(imported) not in ALLOWED[layer]:
                wrong.append(f"{module} ({layer}) imports {imported} ({layer_of(imported)})")
    assert not wrong, "\n".join(wrong)


def test_core_and_checks_import_no_io_library() -> None:
    wrong = []
    for module, path in package_modules().items():
        forbidden = NO_IO_LAYERS.get(layer_of(module), set())
        for imported, _ in imports_of(path):
            if imported.split(".")[0] in forbidden:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    modules = package_modules()
    graph = {
        module: {imported for imported, runtime in imports_of(path)
                 if runtime and imported in modules and imported != module}
        for module, path in modules.items()
    }
    assert not _cycles(graph)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


LOADED = """
import importlib, json, sys, threading
for name in sys.argv[1:]:
    importlib.import_module(name)
roots = {m.split(".")[0] for m in sys.modules}
print(json.dumps({"roots": sorted(roots), "threads": threading.active_count()}))
"""


def _loaded_by(*modules: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", LOADED, *modules], capture_output=True,
                         text=True, check=True, timeout=120)
    return dict(json.loads(out.stdout))




def test_importing_the_package_and_its_core_loads_no_io_library() -> None:
    core = [m for m in package_modules() if layer_of(m) in {"core", "checks"}]
    loaded = _loaded_by("ciba_harness", *core)
    assert HEAVY.isdisjoint(loaded["roots"]), sorted(HEAVY & set(loaded["roots"]))  # type: ignore[arg-type]
    assert loaded["threads"] == 1


@pytest.mark.parametrize("module", ["ciba_harness.load._shapes", "ciba_harness.client._drivers"])
def test_load_processes_do_not_load_the_pytest_transport_or_server(module: str) -> None:
    loaded = set(_loaded_by(module)["roots"])  # type: ignore[call-overload]
    assert loaded.isdisjoint({"httpx", "httpcore", "uvicorn", "starlette", "pytest"}), loaded


def test_a_name_of_the_facade_loads_on_first_use() -> None:
    loaded = set(_loaded_by("ciba_harness")["roots"])  # type: ignore[call-overload]
    assert "httpx" not in loaded
    out = subprocess.run(
        [sys.executable, "-c", "import sys, ciba_harness as c; c.CibaClient; "
         "print('httpx' in sys.modules, sorted(set(c.__all__) - set(dir(c))))"],
        capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split(maxsplit=1) == ["True", "[]\n"]


def test_the_facade_lists_each_public_name_once_in_step() -> None:
    tree = ast.parse((PACKAGE / "__init__.py").read_text("utf-8"))
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if _type_checking_block(node):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom):
                    typed.update({a.asname or a.name: inner.module or "" for a in inner.names})
    assigned = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    exports = ast.literal_eval(assigned["_EXPORTS"])
    listed = ast.literal_eval(assigned["__all__"])
    assert typed == exports
    assert sorted(listed) == sorted(exports) and len(listed) == len(set(listed))


def test_every_public_name_resolves_to_its_module() -> None:
    script = ("import ciba_harness as c, importlib; missing = [n for n, m in c._EXPORTS.items() "
              "if getattr(importlib.import_module(m), n) is not getattr(c, n)]; print(missing)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_the_suites_use_only_the_public_api() -> None:
    """The package façade and the Hypothesis front-end's curated `strategies` package."""
    suites = PACKAGE.parents[1] / "conformance"
    private = []
    for path in sorted(suites.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
            public = module in {"ciba_harness", "ciba_harness.strategies"}
            if module.startswith("ciba_harness") and not public:
                private.append(f"{path.name}: from {node.module} import ...")
    assert not private, "\n".join(private)
