"""Rewrite src/ciba_harness/__init__.py from its `_EXPORTS` table: the TYPE_CHECKING imports
and `__all__` follow it. `python tools/facade.py NAME=MODULE ...` adds names first."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

FACADE = Path(__file__).resolve().parents[1] / "src" / "ciba_harness" / "__init__.py"


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's order inside one import: CONSTANTS, Classes, functions."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name.lower()


def render(source: str, exports: dict[str, str]) -> str:
    by_module: dict[str, list[str]] = {}
    for name, module in exports.items():
        by_module.setdefault(module, []).append(name)
    imports = []
    for module in sorted(by_module):
        names = sorted(by_module[module], key=_isort_key)
        line = f"    from {module} import {', '.join(names)}"
        if len(line) <= 100:
            imports.append(line)
        else:
            imports += [f"    from {module} import (", *(f"        {n}," for n in names), "    )"]
    table = "".join(f'    "{n}": "{m}",\n' for m in sorted(by_module) for n in sorted(by_module[m]))
    listed = "".join(f'    "{n}",\n' for n in sorted(exports))
    head = source[: source.index("if TYPE_CHECKING:")]
    middle = source[source.index('__version__ = "'): source.index("_EXPORTS = {")]
    return (f"{head}if TYPE_CHECKING:\n" + "\n".join(imports) + "\n\n" + middle
            + "_EXPORTS = {\n" + table + "}\n\n__all__ = [\n" + listed + "]\n\n"
            "__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())\n")


def main(arguments: list[str]) -> None:
    source = FACADE.read_text("utf-8")
    tree = ast.parse(source)
    exports = next(ast.literal_eval(node.value) for node in tree.body
                   if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", "") == "_EXPORTS")
    for argument in arguments:
        name, _, module = argument.partition("=")
        exports[name] = module
    FACADE.write_text(render(source, exports), "utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
