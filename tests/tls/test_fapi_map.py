"""The map to the certification suite's FAPI-CIBA modules is complete and true: every module
is mirrored by a test whose docstring names it and whose markers carry the module's
requirement IDs; docs/fapi-ciba.md shows the same table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ciba_harness.checks._fapi import CERTIFICATION_MODULES, certification_map_markdown
from ciba_harness.core._requirements import catalogue

REPO = Path(__file__).resolve().parents[2]
SUITES = sorted((REPO / "conformance").glob("test_fapi_ciba*.py"))


def _tests() -> dict[str, tuple[str, set[str]]]:
    """test name -> (docstring with line-broken names joined, requirement IDs of markers)."""
    found: dict[str, tuple[str, set[str]]] = {}
    for node in [n for suite in SUITES for n in ast.parse(suite.read_text()).body]:
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
            continue
        doc = re.sub(r"-\s*\n\s*", "-", ast.get_docstring(node) or "")
        ids: set[str] = set()
        for decorator in node.decorator_list:
            if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                    and decorator.func.attr == "requirement"):
                ids |= {a.value for a in decorator.args if isinstance(a, ast.Constant)}
        found[node.name] = (doc, ids)
    return found


def test_every_module_is_mirrored() -> None:
    tests = _tests()
    for module in CERTIFICATION_MODULES:
        names = [n.strip() for n in module.test.split(",")]
        assert all(n in tests for n in names), f"{module.name}: no test {module.test}"
        for name in names:
            doc = tests[name][0]
            assert re.search(rf"{re.escape(module.name)}(?![\w-])", doc), (
                f"{name} does not say it mirrors {module.name}")
        ids = set().union(*(tests[n][1] for n in names))
        assert set(module.requirements) <= ids, (module.name, set(module.requirements) - ids)


def test_module_names_and_requirements_are_sane() -> None:
    names = [m.name for m in CERTIFICATION_MODULES]
    assert len(names) == len(set(names)) == 43
    assert all(n.startswith("fapi-ciba-id1") for n in names)
    known = set(catalogue())
    assert all(r in known for m in CERTIFICATION_MODULES for r in m.requirements)


def test_every_test_names_what_it_mirrors_or_its_fapi_row() -> None:
    for name, (doc, ids) in _tests().items():
        mirrors = "mirrors" in doc.lower() and "fapi-ciba-id1" in doc
        assert mirrors or any(i.startswith("FAPI-CIBA") for i in ids), name


def test_docs_table_is_in_sync() -> None:
    doc = (REPO / "docs" / "fapi-ciba.md").read_text()
    assert certification_map_markdown() in doc, (
        "regenerate: python -c 'from ciba_harness.checks._fapi import certification_map_markdown as m;"
        " print(m())'")
