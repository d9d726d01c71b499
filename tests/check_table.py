"""The shape of a check's unit-test table, and the two assertions every table runs: a check
returns None on its good cases and raises the named failure, for the named requirement, on
its bad ones (tests/core/test_core_checks.py, tests/checks/test_check_cases.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from ciba_harness import CheckFailure

#: (check, positional arguments, keyword arguments)
Case = tuple[Callable[..., None], tuple[Any, ...], dict[str, Any]]
#: (check, positional arguments, keyword arguments, failure class, requirement)
BadCase = tuple[Callable[..., None], tuple[Any, ...], dict[str, Any], type[CheckFailure], str]


def case_ids(cases: Sequence[tuple[Any, ...]]) -> list[str]:
    return [f"{case[0].__name__}-{index}" for index, case in enumerate(cases)]


def assert_holds(case: Case) -> None:
    function, args, kwargs = case
    assert function(*args, **kwargs) is None


def assert_breaks(case: BadCase) -> None:
    function, args, kwargs, failure_class, requirement = case
    with pytest.raises(CheckFailure) as info:
        function(*args, **kwargs)
    assert type(info.value) is failure_class, info.value
    assert info.value.requirement == requirement
    assert str(info.value).startswith(f"[{requirement}] ")
