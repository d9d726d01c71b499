"""The check registry and runner: `@check`, `CHECKS`, `CheckRunner`.

A check is a plain function registered with `@check(...)`. It returns None when the condition
holds and raises a `CheckFailure` subclass when it does not. It never decides its severity:
the caller does, through `CheckRunner` (a FAILURE stops the test; a WARNING is recorded and
the test goes on, unless the run is strict).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ParamSpec

from ciba_harness.core._errors import CheckFailure, Severity, hide_check_failure_frames

__tracebackhide__ = hide_check_failure_frames  # pytest: check failures show the test's line

__all__ = ["check", "CHECKS", "CheckInfo", "CheckOutcome", "CheckRunner"]

P = ParamSpec("P")


@dataclass(frozen=True)
class CheckInfo:
    name: str
    requirement: str | None
    title: str
    function: Callable[..., None]


CHECKS: dict[str, CheckInfo] = {}


def check(
    requirement: str | None = None, *, title: str | None = None
) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Register a check. `requirement` is the default ID; generic checks take one per call."""

    def register(function: Callable[P, None]) -> Callable[P, None]:
        name = function.__name__
        known = CHECKS.get(name)
        # A module imported again (pytester, importlib.reload) re-registers its own checks.
        if known is not None and (known.function.__module__, known.function.__qualname__) != (
            function.__module__,
            function.__qualname__,
        ):
            raise ValueError(f"check {name!r} registered twice")
        doc = (function.__doc__ or name).strip().splitlines()[0]
        CHECKS[name] = CheckInfo(name, requirement, title or doc, function)
        return function

    return register


@dataclass(frozen=True)
class CheckOutcome:
    """What happened to one check call: for reports and per-requirement verdicts."""

    check: str
    requirement: str
    severity: Severity
    passed: bool
    message: str = ""
    failure: CheckFailure | None = field(default=None, compare=False)


class CheckRunner:
    """Runs checks with a severity chosen at the call site and records every outcome.

    `runner(check, *args, **kwargs)` runs at FAILURE; `runner.at(severity, check, ...)` at
    another severity. Both are typed with the check's own parameters (ParamSpec), so mypy
    checks every call's arguments against the check.

    `mandatory`: requirement IDs whose WARNING-level checks count as failures anyway (the
    rules of a profile: e.g. under FAPI-CIBA, acr for acr_values is a MUST, FAPI-CIBA-09)."""

    def __init__(self, *, strict: bool = False, mandatory: Collection[str] = ()) -> None:
        self.strict = strict
        self.mandatory = frozenset(mandatory)
        self.outcomes: list[CheckOutcome] = []

    def __call__(
        self, check_function: Callable[P, None], /, *args: P.args, **kwargs: P.kwargs
    ) -> bool:
        """Run one check at FAILURE. Returns True when it held; raises when it failed.

        A `severity=` keyword is still honoured at run time for untyped callers written
        before `at` existed; typed code uses `at` (mypy refuses the keyword here)."""
        severity = kwargs.pop("severity", Severity.FAILURE)
        if not isinstance(severity, Severity):
            raise TypeError(f"severity must be a Severity, not {severity!r}")
        return self.run(severity, check_function, args, kwargs)

    def at(
        self,
        severity: Severity,
        check_function: Callable[P, None],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> bool:
        """Run one check at `severity`. Returns True when it held; False when it failed below
        FAILURE (recorded); raises when it failed as a FAILURE."""
        return self.run(severity, check_function, args, kwargs)

    def failure(
        self, check_function: Callable[P, None], /, *args: P.args, **kwargs: P.kwargs
    ) -> CheckFailure | None:
        """Run a check for its verdict as data: recorded at INFO (never raised, never
        escalated); returns the CheckFailure, or None when the check held."""
        return self._execute(Severity.INFO, check_function, args, kwargs)

    def run(
        self,
        severity: Severity,
        check_function: Callable[..., None],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> bool:
        """The untyped core of `__call__` and `at` (for callers that hold args as data)."""
        return self._execute(severity, check_function, args, kwargs) is None

    def _execute(
        self,
        severity: Severity,
        check_function: Callable[..., None],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> CheckFailure | None:
        info = CHECKS.get(check_function.__name__)
        default_requirement = info.requirement if info else None
        requirement = str(kwargs.get("requirement") or default_requirement or "unspecified")
        try:
            check_function(*args, **kwargs)
        except CheckFailure as failure:
            escalate = self.strict or failure.requirement in self.mandatory
            effective = (
                Severity.FAILURE if escalate and severity is Severity.WARNING else severity
            )
            failure.severity = effective
            self.record(
                CheckOutcome(
                    check_function.__name__,
                    failure.requirement,
                    effective,
                    False,
                    failure.title,
                    failure,
                )
            )
            if effective is Severity.FAILURE:
                raise
            return failure
        self.record(CheckOutcome(check_function.__name__, requirement, severity, True))
        return None

    def record(self, outcome: CheckOutcome) -> None:
        """Keep one outcome (a front-end that reports elsewhere may override this)."""
        self.outcomes.append(outcome)

    def warnings(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.passed and o.severity is Severity.WARNING]
