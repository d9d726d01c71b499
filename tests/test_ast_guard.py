"""The plugin serialises `ast.parse` (pytest_plugin/_ast_guard.py): on an interpreter where
threads parsing at once can fail with "AST constructor recursion depth mismatch", the same
concurrent parsing through the guard never does."""

from __future__ import annotations

import ast
import gc
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ciba_harness.pytest_plugin._ast_guard import serialise_ast_parsing

pytest_plugins = ["pytester"]

NESTED = "x = " + "[" * 60 + "]" * 60


class _CyclicWithFinalizer:
    """Garbage the collector must finalise: Python code run mid-parse, a thread switch point."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        pass


@pytest.fixture
def switch_often() -> Iterator[None]:
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(10, 5, 5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)


def parse_concurrently(
    parse: Callable[[str], Any], *, seconds: float, stop_at_error: bool, threads: int = 3,
) -> tuple[list[str], int]:
    """Parse NESTED from `threads` threads for `seconds`; (SystemError messages, parses)."""
    errors: list[str] = []
    count = [0]
    deadline = time.monotonic() + seconds

    def work() -> None:
        while time.monotonic() < deadline and not (stop_at_error and errors):
            _CyclicWithFinalizer(), _CyclicWithFinalizer()
            try:
                parse(NESTED)
            except SystemError as exc:
                errors.append(str(exc))
            count[0] += 1

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors, count[0]


def test_concurrent_parses_through_the_guard_never_fail(switch_often: None) -> None:
    unguarded = getattr(ast.parse, "__wrapped__", ast.parse)
    errors, _ = parse_concurrently(unguarded, seconds=5, stop_at_error=True)
    if not errors:
        pytest.skip("this interpreter did not mix up concurrent parses in 5 s")
    assert "recursion depth mismatch" in errors[0]
    serialise_ast_parsing()
    assert ast.parse is not unguarded
    errors, parses = parse_concurrently(ast.parse, seconds=2, stop_at_error=False)
    assert errors == [] and parses > 10


def test_the_plugin_installs_the_guard(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import ast\n"
        "def test_guarded():\n"
        "    assert getattr(ast.parse, '_ciba_serialised', False)\n"
        "    assert ast.parse('x = 1').body\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:locust")
    result.assert_outcomes(passed=1)


def test_installing_twice_wraps_once() -> None:
    serialise_ast_parsing()
    first = ast.parse
    serialise_ast_parsing()
    assert ast.parse is first
