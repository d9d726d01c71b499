"""Whole-run bounds (docs/robustness.md): the endpoint breakers and the run budget.

The unit tests drive `SessionHealth` directly; the session tests run the suite against the
hostile provider and read results.json: a dead endpoint makes the later tests fail at once
with the breaker's cause (also across pytest-xdist workers), and the run budget stops the
remaining tests while the report is still written.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from hostile_helpers import budget_profile, robustness_problems, run_hostile_suite

from ciba_harness import HttpRequest, HttpResponse
from ciba_harness.client import _health
from ciba_harness.client._health import (
    NOTIFICATION,
    EndpointUnavailable,
    RunBudgetExhausted,
    SessionHealth,
    is_transport_failure,
)
from ciba_harness.core._http import Exchange

URL = "http://127.0.0.1:9/backchannel"


def no_answer() -> Exchange:
    return Exchange(HttpRequest("POST", URL), error="no answer within 1 s (budgets.request_timeout)")


def answer(status: int, body: bytes = b'{"error": "invalid_request"}') -> Exchange:
    return Exchange(
        HttpRequest("POST", URL),
        HttpResponse(status, (("Content-Type", "application/json"),), body),
    )


@pytest.fixture
def health(tmp_path: Path) -> SessionHealth:
    return SessionHealth(tmp_path / "health.json", probe_after=60.0)


def test_transport_failures_are_told_from_answers() -> None:
    assert is_transport_failure(no_answer())
    assert is_transport_failure(answer(502, b"<html>Bad gateway</html>"))
    assert not is_transport_failure(answer(500, b'{"error": "server_error"}'))
    assert not is_transport_failure(answer(400))  # a verdict for one request
    assert not is_transport_failure(answer(200, b"<html>login</html>"))
    refused_by_us = Exchange(HttpRequest("GET", URL), error="the request cannot be sent (URL)")
    assert not is_transport_failure(refused_by_us)


def test_the_breaker_opens_after_three_consecutive_transport_failures(
    health: SessionHealth,
) -> None:
    health.test = "t::first"
    health.after("backchannel", no_answer())
    health.test = "t::second"
    health.before("backchannel")  # still closed after one and two failures
    health.after("backchannel", no_answer())
    health.before("backchannel")
    health.after("backchannel", no_answer())
    with pytest.raises(EndpointUnavailable) as raised:
        health.before("backchannel")
    message = str(raised.value)
    assert message == (
        "backchannel endpoint unavailable since t::first: no answer within 1 s "
        "(budgets.request_timeout) (3 consecutive failures)"
    )
    assert raised.value.evidence[0]["request"]["url"] == URL  # the first failing exchange
    health.before("token")  # other endpoints are not affected
    state = health.report()["breakers"]["backchannel"]
    assert state["state"] == "open" and state["short_circuited"] == 1
    assert "unavailable since t::first" in state["message"]


def test_answers_never_open_the_breaker_and_reset_the_count(health: SessionHealth) -> None:
    for _ in range(10):
        health.after("token", answer(400))  # e.g. the wrong error code: a verdict, not down
    health.after("token", no_answer())
    health.after("token", no_answer())
    health.after("token", answer(400))  # the streak ends
    health.after("token", no_answer())
    health.after("token", no_answer())
    health.before("token")
    assert health.report()["breakers"]["token"]["state"] == "closed"


class _Clock:
    """Stands in for the `time` module of _health: only the test moves it, so a loaded machine
    cannot pass a 0.2 s deadline between two lines."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(_health, "time", fake)
    return fake


def test_a_probe_that_succeeds_closes_the_breaker(tmp_path: Path, clock: _Clock) -> None:
    health = SessionHealth(tmp_path / "health.json", probe_after=0.2)
    for _ in range(3):
        health.after("token", no_answer())
    with pytest.raises(EndpointUnavailable):
        health.before("token")
    clock.now += 0.25
    health.before("token")  # the half-open probe goes through ...
    with pytest.raises(EndpointUnavailable):
        health.before("token")  # ... one at a time
    health.after("token", answer(400))
    health.before("token")
    state = health.report()["breakers"]["token"]
    assert state["state"] == "closed" and state["probes"] == 1 and state["times_opened"] == 1


def test_the_notification_breaker_names_the_receiver(health: SessionHealth) -> None:
    health.receiver_url = "http://127.0.0.1:4711/cb"
    health.test = "conformance/test_ping.py::test_ping_after_approval"
    for _ in range(3):
        health.before_wait()
        health.after_wait(received=False, waited=4.0)
    with pytest.raises(EndpointUnavailable) as raised:
        health.before_wait()
    assert str(raised.value) == (
        "no notification ever arrived since conformance/test_ping.py::test_ping_after_approval:"
        " no callback at all arrived within 4 s (3 consecutive waits); the provider was told "
        "to call http://127.0.0.1:4711/cb"
    )
    assert health.report()["breakers"][NOTIFICATION]["url"] == "http://127.0.0.1:4711/cb"


def _fail_in_another_process(path: str, count: int) -> None:
    worker = SessionHealth(Path(path))
    for _ in range(count):
        worker.after("backchannel", no_answer())


def test_the_state_is_shared_between_processes(health: SessionHealth) -> None:
    """Two 'workers' fail once and twice: together three consecutive failures."""
    context = multiprocessing.get_context("spawn")
    for count in (1, 2):
        process = context.Process(target=_fail_in_another_process, args=(str(health.path), count))
        process.start()
        process.join(60)
        assert process.exitcode == 0
    with pytest.raises(EndpointUnavailable):
        health.before("backchannel")
    assert health.report()["breakers"]["backchannel"]["failures"] == 3


def test_the_run_budget(tmp_path: Path, clock: _Clock) -> None:
    health = SessionHealth(tmp_path / "health.json", run_timeout=0.2)
    health.before("token")
    assert health.budget_message() is None
    clock.now += 0.25
    message = health.budget_message()
    assert message is not None and message.startswith("run budget exhausted")
    with pytest.raises(RunBudgetExhausted):
        health.before("token")
    assert health.report()["run_budget_exhausted"] is True


# --- whole sessions against the hostile provider -------------------------------------------


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return budget_profile(tmp_path_factory.mktemp("profile"))


BREAKER_CAUSE = "backchannel endpoint unavailable since "


def _titles(run: Any) -> list[str]:
    return [str((t.get("failure") or {}).get("title", "")) for t in run.failures]


@pytest.mark.parametrize("workers", [0, 2], ids=["serial", "xdist"])
def test_a_hanging_backchannel_fails_the_later_tests_at_once(
    profile: Path, tmp_path: Path, workers: int
) -> None:
    args = ["-k", "test_acknowledgement"]
    if workers:
        args += ["-n", str(workers)]
    run = run_hostile_suite(tmp_path / "report", {"backchannel": "hang"}, *args, profile=profile)
    assert not robustness_problems(run), robustness_problems(run)
    assert run.results is not None
    titles = _titles(run)
    opened = [t for t in titles if t.startswith(BREAKER_CAUSE)]
    assert opened and all("consecutive failures)" in t for t in opened), titles
    assert "no answer within 1 s" in opened[0]
    # Only a few requests spent a timeout on the endpoint: the streak (shared by every worker
    # of the run), the probes, and requests of the other workers on their way beside each of
    # them (those count as failures, not as the streak's).
    breaker = run.results["endpoint_health"]["breakers"]["backchannel"]
    assert breaker["state"] == "open"
    in_flight = max(workers, 1) - 1
    probes = breaker.get("probes", 0)
    overlapping = breaker.get("overlapping", 0)
    assert 3 + probes <= breaker["failures"] - overlapping <= 3 + in_flight + probes
    assert overlapping <= (3 + probes) * in_flight
    assert breaker["short_circuited"] >= len(opened)
    assert len(opened) >= len(run.failures) - breaker["failures"]
    failed_fast = [t for t in run.failures if (t.get("failure") or {}).get("title") in opened]
    assert failed_fast[0]["failure"]["exchanges"][0]["error"].startswith("no answer within 1 s")
    assert (run.report_dir / "report.html").read_text().count("Endpoint health") >= 1


def test_silent_notifications_fail_the_later_waits_at_once(profile: Path, tmp_path: Path) -> None:
    args = ["-k", "test_ping_after_approval or test_ping_shape or test_ping_after_denial"
            " or test_tokens_pushed or test_pushed_id_token or test_push_after_denial"]
    run = run_hostile_suite(
        tmp_path / "report", {"notification": "never"}, *args, profile=profile
    )
    assert not robustness_problems(run), robustness_problems(run)
    assert run.results is not None
    receiver = run.results["endpoint_health"]["breakers"][NOTIFICATION]["url"]
    assert receiver.startswith("http://127.0.0.1:") and receiver.endswith("/cb")
    fast = [t for t in _titles(run) if t.startswith("no notification ever arrived since ")]
    assert fast, _titles(run)
    assert all(f"the provider was told to call {receiver}" in t for t in fast)
    assert len(run.failures) == len(fast) + 3 + run.results["endpoint_health"]["breakers"][
        NOTIFICATION
    ].get("probes", 0)


def test_the_run_budget_stops_the_remaining_tests_and_the_report_is_written(
    profile: Path, tmp_path: Path
) -> None:
    args = ["-k", "test_acknowledgement", "--ciba-run-timeout", "1"]
    run = run_hostile_suite(tmp_path / "report", {"backchannel": "slow:0.4"}, *args,
                            profile=profile)
    assert run.results is not None, run.describe()
    assert (run.report_dir / "report.html").is_file()
    stopped = [t for t in _titles(run) if t.startswith("run budget exhausted")]
    assert stopped, run.describe()
    assert run.results["endpoint_health"]["run_budget_exhausted"] is True
    assert run.returncode == 1


def test_failed_probes_space_the_next_ones_out(tmp_path: Path, clock: _Clock) -> None:
    health = SessionHealth(tmp_path / "health.json", probe_after=5.0)
    for _ in range(3):
        health.after("token", no_answer())
    for wait in (5.0, 10.0, 20.0, 40.0, 60.0, 60.0):  # doubling, at most a minute
        clock.now += wait - 0.5
        with pytest.raises(EndpointUnavailable):
            health.before("token")
        clock.now += 0.5
        health.before("token")  # the probe
        health.after("token", no_answer())
    health.after("token", answer(200, b"{}"))  # closed; a new streak probes at 5 s again
    for _ in range(3):
        health.after("token", no_answer())
    clock.now += 5.0
    health.before("token")
