"""pytest plugin of the fuzz suites (conformance/test_fuzz.py, conformance/test_state_machine.py).

Registered by ciba_harness.pytest_plugin and the checkout's root conftest.py
(`pytest_plugins`), not as an entry point of its own: it adds the
options `--ciba-fuzz-profile`, `--ciba-fuzz-examples`, `--ciba-fuzz-seconds`, the `fuzz`
marker and the session fixture `ciba_fuzz`. Hypothesis is imported only when the fixture is
first used, and its settings profiles (`ciba-quick`, `ciba-ci`, `ciba-thorough`) are applied
to the fuzz tests explicitly, never loaded globally.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from hypothesis import settings as Settings

__all__ = ["PROFILES", "Budget", "CibaFuzz", "FuzzProfile", "default_profile_name"]


@dataclass(frozen=True)
class FuzzProfile:
    """Budgets of one fuzz profile: examples and seconds, for both kinds of test."""

    name: str
    description: str
    max_examples: int  # stateless: examples per property
    seconds: float  # stateless: stop generating new examples after this long, per property
    machine_examples: int  # stateful: programs (sequences of steps)
    machine_steps: int  # stateful: at most this many steps per program
    machine_seconds: float  # stateful: seconds programs may sleep for expiry (+ 1/4 for intervals)
    machine_shrink_sleep: float  # stateful: seconds replays may sleep while shrinking a failure
    derandomize: bool
    database: bool  # keep failing examples in .hypothesis/ (never in git)


PROFILES: Mapping[str, FuzzProfile] = {
    p.name: p
    for p in (
        FuzzProfile(
            name="ciba-quick",
            description="local runs: random, example database on, about 10 s",
            max_examples=300,
            seconds=10.0,
            machine_examples=60,
            machine_steps=12,
            machine_seconds=10.0,
            machine_shrink_sleep=30.0,
            derandomize=False,
            database=True,
        ),
        FuzzProfile(
            name="ciba-ci",
            description="CI: derandomized, no example database, about 10 s",
            max_examples=300,
            seconds=8.0,
            machine_examples=50,
            machine_steps=10,
            machine_seconds=7.0,
            machine_shrink_sleep=30.0,
            derandomize=True,
            database=False,
        ),
        FuzzProfile(
            name="ciba-thorough",
            description="vendors' nightly runs: random, many examples, minutes",
            max_examples=5000,
            seconds=600.0,
            machine_examples=1000,
            machine_steps=40,
            machine_seconds=300.0,
            machine_shrink_sleep=600.0,
            derandomize=False,
            database=True,
        ),
    )
}
_CI_OFF = {"", "0", "false", "no", "off"}


def default_profile_name(environ: Mapping[str, str] | None = None) -> str:
    """`ciba-ci` when the CI variable is set (to anything but a false value), else `ciba-quick`."""
    env = os.environ if environ is None else environ
    return "ciba-ci" if env.get("CI", "").strip().lower() not in _CI_OFF else "ciba-quick"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ciba", "CIBA conformance (ciba-harness)")
    group.addoption(
        "--ciba-fuzz-profile",
        choices=sorted(PROFILES),
        default=None,
        help="budget of the fuzz tests (default: ciba-ci when $CI is set, else ciba-quick)",
    )
    group.addoption(
        "--ciba-fuzz-examples",
        type=int,
        metavar="N",
        default=None,
        help="override the profile's examples per fuzz property",
    )
    group.addoption(
        "--ciba-fuzz-seconds",
        type=float,
        metavar="S",
        default=None,
        help="override the profile's time budget per stateless fuzz property (the state "
        "machine's sleep budget stays the profile's)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fuzz: generated (Hypothesis) test; deselect with -m 'not fuzz'"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """The fuzz tests apply @given inside the test, so Hypothesis' own plugin does not see
    them as Hypothesis tests: collect their statistics here, where it would, so that
    `--hypothesis-show-statistics` shows them (one block per property the test ran)."""
    if "ciba_fuzz" not in getattr(item, "fixturenames", ()):
        return (yield)
    from hypothesis.statistics import collector, describe_statistics

    blocks: list[str] = []

    def note_statistics(stats: dict[str, object]) -> None:
        stats["nodeid"] = item.nodeid
        blocks.append(describe_statistics(stats))  # type: ignore[arg-type]
        item.hypothesis_statistics = "\n".join(blocks)  # type: ignore[attr-defined]

    with collector.with_value(note_statistics):  # type: ignore[arg-type]
        return (yield)


def selected_profile(config: pytest.Config) -> FuzzProfile:
    profile = PROFILES[config.getoption("ciba_fuzz_profile") or default_profile_name()]
    examples = config.getoption("ciba_fuzz_examples")
    seconds = config.getoption("ciba_fuzz_seconds")
    if examples is not None:
        profile = replace(profile, max_examples=max(1, examples))
    if seconds is not None:
        profile = replace(profile, seconds=max(0.0, seconds))
    return profile


def pytest_report_header(config: pytest.Config) -> str:
    p = selected_profile(config)
    order = "derandomized" if p.derandomize else "random"
    return (
        f"ciba fuzz profile: {p.name} ({order}, {p.max_examples} examples or {p.seconds:g} s per "
        f"property; {p.machine_examples} programs of <= {p.machine_steps} steps)"
    )


class Budget:
    """Time budgets of one fuzz test, and the failure to fall back on.

    `exhausted()` turns True `seconds` after its first call, so the caller can skip the
    remaining examples (return early: an `assume()` on the clock would make Hypothesis see
    the same example valid once and invalid later, a Flaky error). Once an example has
    failed (`watch()` saw an exception) the budget never runs out again: shrinking the
    failure to a minimal example is never cut short by it.

    `shrink_sleep` bounds how long replays may sleep once a failure is being shrunk (the
    state machine sleeps for intervals and expiry); `may_sleep()` says whether they still may.
    """

    def __init__(self, seconds: float, *, shrink_sleep: float = float("inf")) -> None:
        self.seconds = seconds
        self.shrink_sleep = shrink_sleep
        self.started: float | None = None
        self.failing = False
        self.failed_at: float | None = None
        self.skipped = 0
        self.fallback: BaseException | None = None
        self._fallback_size = float("inf")
        self._fallback_note = ""

    def exhausted(self) -> bool:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        if self.failing or now - self.started <= self.seconds:
            return False
        self.skipped += 1
        return True

    def may_sleep(self) -> bool:
        """While shrinking: whether replays may still sleep (within `shrink_sleep`)."""
        return self.failed_at is None or time.monotonic() - self.failed_at <= self.shrink_sleep

    def offer(self, error: BaseException, size: float = float("inf"), note: str = "") -> None:
        """Keep `error` as the failure to report if Hypothesis cannot replay its own: the
        smallest one (by `size`, e.g. steps of a program), the first among equals."""
        self.failing = True
        if self.failed_at is None:
            self.failed_at = time.monotonic()
        if self.fallback is None or size < self._fallback_size:
            self.fallback, self._fallback_size, self._fallback_note = error, size, note

    @contextmanager
    def watch(self) -> Iterator[None]:
        try:
            yield
        except BaseException as error:
            self.offer(error)
            raise

    def run(self, function: Callable[[], object]) -> None:
        """Run a Hypothesis test. A failure Hypothesis cannot replay (the provider's answer
        depends on timing, or sleeping was cut off while shrinking) is reported as the
        smallest failure seen rather than as Hypothesis' Flaky error, so it keeps its
        requirement and reproducer."""
        from hypothesis.errors import Flaky

        try:
            function()
        except Flaky as flaky:
            fallback = self.fallback
            if not isinstance(fallback, AssertionError):
                raise
            fallback.add_note(
                "Hypothesis could not replay this failure (it depends on timing), so it is "
                "shown as the smallest failing example seen." + self._fallback_note
            )
            raise fallback from flaky


@dataclass(frozen=True)
class CibaFuzz:
    """The session's fuzz profile as Hypothesis settings and budgets."""

    profile: FuzzProfile

    @property
    def settings(self) -> Settings:
        """Settings of the stateless properties (use as a decorator under @given)."""
        from hypothesis import settings

        register_hypothesis_profiles()
        return settings(settings.get_profile(self.profile.name), max_examples=self.profile.max_examples)

    @property
    def machine_settings(self) -> Settings:
        """Settings of the state machine (for run_state_machine_as_test)."""
        from hypothesis import settings

        register_hypothesis_profiles()
        return settings(
            settings.get_profile(self.profile.name),
            max_examples=self.profile.machine_examples,
            stateful_step_count=self.profile.machine_steps,
        )

    def budget(self) -> Budget:
        """The time budget of one stateless property."""
        return Budget(self.profile.seconds)

    def machine_budget(self) -> Budget:
        """The sleep budget of the state machine (generation, then shrinking)."""
        return Budget(self.profile.machine_seconds, shrink_sleep=self.profile.machine_shrink_sleep)


_registered = False


def register_hypothesis_profiles() -> None:
    """Register `ciba-quick`, `ciba-ci` and `ciba-thorough` with Hypothesis (idempotent)."""
    global _registered
    if _registered:
        return
    from hypothesis import HealthCheck, Phase, settings

    for p in PROFILES.values():
        options: dict[str, object] = {
            "max_examples": p.max_examples,
            "derandomize": p.derandomize,
            "deadline": None,  # HTTP latency varies; hangs are caught by the request timeout
            "report_multiple_bugs": False,  # one failure, shrunk, attributed to one requirement
            # @reproduce_failure cannot decorate the suites' inner test functions: rerun
            # instead (the database replays a failure first; ci is derandomized).
            "print_blob": False,
            # No explain phase: it replays variations of the failure (HTTP exchanges, and
            # sleeps in the state machine) only to annotate which parts did not matter.
            "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
            "suppress_health_check": [
                HealthCheck.too_slow,  # every example is an HTTP exchange
            ],
        }
        if not p.database:
            options["database"] = None
        settings.register_profile(p.name, **options)  # type: ignore[arg-type]
    _registered = True


@pytest.fixture(scope="session")
def ciba_fuzz(request: pytest.FixtureRequest) -> CibaFuzz:
    """The fuzz profile of this session (`--ciba-fuzz-profile`)."""
    return CibaFuzz(selected_profile(request.config))
