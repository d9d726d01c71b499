"""The fuzz plugin: profiles, their selection (option, $CI), the time budget."""

from __future__ import annotations

import os
import time

import pytest

from ciba_harness.pytest_plugin import _fuzz as _fuzz_plugin
from ciba_harness.pytest_plugin._fuzz import PROFILES, Budget, CibaFuzz, default_profile_name

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _inner_runs_without_locust(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:locust -p no:cacheprovider")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "ciba-quick"),
        ({"CI": ""}, "ciba-quick"),
        ({"CI": "false"}, "ciba-quick"),
        ({"CI": "true"}, "ciba-ci"),
        ({"CI": "1"}, "ciba-ci"),
    ],
)
def test_ci_selects_the_ci_profile(environ: dict[str, str], expected: str) -> None:
    assert default_profile_name(environ) == expected


def test_profiles_become_hypothesis_settings() -> None:
    ci = CibaFuzz(PROFILES["ciba-ci"]).settings
    assert ci.derandomize and ci.database is None and ci.deadline is None
    assert not ci.report_multiple_bugs
    assert ci.max_examples == PROFILES["ciba-ci"].max_examples
    quick = CibaFuzz(PROFILES["ciba-quick"]).settings
    assert not quick.derandomize
    # Hypothesis itself turns the example database off when $CI is set; quick inherits that.
    assert quick.database is not None or os.environ.get("CI")
    machine = CibaFuzz(PROFILES["ciba-thorough"]).machine_settings
    assert machine.stateful_step_count == PROFILES["ciba-thorough"].machine_steps
    assert machine.max_examples == PROFILES["ciba-thorough"].machine_examples


def test_budget_runs_out_but_never_while_a_failure_shrinks() -> None:
    budget = Budget(0.05)
    assert not budget.exhausted()
    time.sleep(0.06)
    assert budget.exhausted() and budget.skipped == 1
    with pytest.raises(AssertionError), budget.watch():
        raise AssertionError("a provider bug")
    assert budget.failing and not budget.exhausted()
    assert isinstance(budget.fallback, AssertionError)


class _Clock:
    """Stands in for the plugin's `time` module: a loaded machine cannot move it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_flaky_failure_is_reported_as_the_smallest_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    from hypothesis.errors import FlakyFailure

    clock = _Clock()
    monkeypatch.setattr(_fuzz_plugin, "time", clock)
    budget = Budget(10, shrink_sleep=0.05)
    first, smaller, larger = (AssertionError(f"[CIBA-TOKEN-12] {n}") for n in (1, 2, 3))
    budget.offer(first, 5, "\nIts steps: five")
    clock.now += 0.05
    budget.offer(smaller, 3, "\nIts steps: three")
    budget.offer(larger, 4)
    assert budget.may_sleep()  # shrink_sleep counts from the first failure
    clock.now += 0.01
    assert not budget.may_sleep()

    def flaky() -> None:
        raise FlakyFailure("did not reproduce", [first])

    with pytest.raises(AssertionError) as caught:
        budget.run(flaky)
    assert caught.value is smaller
    assert "smallest failing example seen" in "".join(getattr(smaller, "__notes__", []))
    assert "three" in "".join(getattr(smaller, "__notes__", []))


def test_option_marker_and_header(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["ciba_harness.pytest_plugin._fuzz"]')
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fuzz
        def test_profile(ciba_fuzz):
            assert ciba_fuzz.profile.name == "ciba-thorough"
            assert ciba_fuzz.profile.max_examples == 7
            assert ciba_fuzz.profile.seconds == 2.5
        """
    )
    result = pytester.runpytest(
        "--ciba-no-report",
        "--ciba-fuzz-profile", "ciba-thorough",
        "--ciba-fuzz-examples", "7",
        "--ciba-fuzz-seconds", "2.5",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["ciba fuzz profile: ciba-thorough*7 examples or 2.5 s*"])
    assert "fuzz:" in pytester.runpytest("--markers").stdout.str()
