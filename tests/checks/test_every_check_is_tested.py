"""Every check registered by the harness (ciba_harness.checks, and the fuzz judging of
ciba_harness.strategies) has unit cases: at least one input it holds on and one it breaks on,
in tests/checks/test_check_cases.py or in tests/core/test_core_checks.py. A new check without
cases fails here. (The client plan's checks, ciba_harness.rp, have tests/rp/test_client_checks.py.)"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import ciba_harness.checks
import ciba_harness.strategies._judging
from ciba_harness.checks import CHECKS

TESTS = Path(__file__).resolve().parents[1]


def _tables() -> list[tuple[list[Any], list[Any]]]:
    if str(TESTS / "core") not in sys.path:
        sys.path.insert(0, str(TESTS / "core"))  # test_core_checks imports core_helpers
    modules = [importlib.import_module("test_check_cases"), importlib.import_module("test_core_checks")]
    return [(module.GOOD, module.BAD) for module in modules]


HARNESS_PACKAGES = (ciba_harness.checks.__name__ + ".", ciba_harness.strategies._judging.__name__)


def harness_checks() -> set[str]:
    return {
        name
        for name, info in CHECKS.items()
        if info.function.__module__.startswith(HARNESS_PACKAGES)
    }


def test_every_registered_check_holds_and_breaks_in_a_case() -> None:
    holds: set[str] = set()
    breaks: set[str] = set()
    for good, bad in _tables():
        holds |= {case[0].__name__ for case in good}
        breaks |= {case[0].__name__ for case in bad}
    registered = harness_checks()
    assert registered - holds == set(), "registered checks without a passing case"
    assert registered - breaks == set(), "registered checks without a failing case"


def test_the_cases_name_only_registered_checks() -> None:
    registered = harness_checks()
    for good, bad in _tables():
        named = {case[0].__name__ for case in [*good, *bad]}
        assert named <= registered, named - registered


def test_every_checks_module_registers_something() -> None:
    modules = {info.function.__module__ for name, info in CHECKS.items() if name in harness_checks()}
    assert {
        "ciba_harness.checks._responses",
        "ciba_harness.checks._backchannel",
        "ciba_harness.checks._delivery",
        "ciba_harness.checks._fapi",
        "ciba_harness.checks._idtoken",
        "ciba_harness.strategies._judging",
    } <= modules
