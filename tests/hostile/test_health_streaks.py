"""A breaker's streak counts independent attempts: requests that were in flight together when
the provider stalled are one piece of evidence (early-started tests and xdist workers send many
at once), while failures one after the other still open the breaker."""

from __future__ import annotations

from pathlib import Path

import pytest

from ciba_harness import HttpRequest
from ciba_harness.client._health import EndpointUnavailable, SessionHealth
from ciba_harness.core._http import Exchange

URL = "http://127.0.0.1:9/backchannel"
ERROR = "no answer within 1 s (budgets.request_timeout)"


def failed(started_at: float, elapsed: float = 1.0) -> Exchange:
    return Exchange(HttpRequest("POST", URL), error=ERROR, started_at=started_at, elapsed=elapsed)


@pytest.fixture
def health(tmp_path: Path) -> SessionHealth:
    return SessionHealth(tmp_path / "health.json", probe_after=60.0)


def test_requests_stalled_together_do_not_open_the_breaker(health: SessionHealth) -> None:
    for offset in (0.0, 0.1, 0.2, 0.3, 0.4):  # five sent within 0.4 s, all timing out
        health.after("backchannel", failed(1000.0 + offset))
    health.before("backchannel")  # still closed: one stall
    state = health.report()["breakers"]["backchannel"]
    assert state["state"] == "closed"
    assert state["failures"] == 5 and state["consecutive"] == 1 and state["overlapping"] == 4


def test_failures_one_after_the_other_open_it(health: SessionHealth) -> None:
    health.after("backchannel", failed(1000.0))
    health.after("backchannel", failed(1000.5))  # in flight with the first: not counted
    health.after("backchannel", failed(1001.0))  # sent as the first one ended
    health.after("backchannel", failed(1002.5))
    with pytest.raises(EndpointUnavailable, match=r"\(3 consecutive failures\)"):
        health.before("backchannel")


def test_a_success_starts_the_next_streak_afresh(health: SessionHealth) -> None:
    health.after("backchannel", failed(1000.0, elapsed=5.0))
    health.success("backchannel")
    # sent before the old streak's failure ended, but the streak is over: it counts
    health.after("backchannel", failed(1001.0))
    assert health.report()["breakers"]["backchannel"]["consecutive"] == 1
