"""Ping mode (CIBA §7.1, §7.4, §10.2): the client's notification endpoint and token fetch."""

from __future__ import annotations

import pytest

from ciba_harness.rp import _checks as c
from ciba_harness.rp._harness import ClientTest

COMMON = ("CIBA-RP-01", "CIBA-RP-02", "CIBA-RP-03", "CIBA-RP-04", "CIBA-RP-05", "CIBA-RP-06",
          "CIBA-RP-08", "CIBA-RP-10", "CIBA-RP-17", "CIBA-RP-20")
pytestmark = [pytest.mark.ping, pytest.mark.client_requirement(*COMMON)]


@pytest.mark.client_requirement("CIBA-RP-48")
def test_ping_faithful(ciba_rp: ClientTest) -> None:
    """A valid ping: the client answers 204, fetches the tokens once and accepts them."""
    seen = ciba_rp.observe("ping_faithful")
    ciba_rp.standard(seen)
    ciba_rp.check(c.rp_tokens_accepted, seen.outcome, seen.expected_sub)
    ciba_rp.conclude()


@pytest.mark.client_requirement("CIBA-RP-21", "CIBA-RP-22", "CIBA-RP-48")
@pytest.mark.parametrize("behaviour", ["ping_wrong_bearer", "ping_no_bearer"],
                         ids=["wrong_bearer", "no_bearer"])
def test_ping_wrong_bearer(ciba_rp: ClientTest, behaviour: str) -> None:
    """A ping with a wrong or no bearer token first: ignored (401), the valid one 0.5 s later
    counts."""
    seen = ciba_rp.observe(behaviour)
    ciba_rp.standard(seen)
    if ciba_rp.check(c.rp_wrong_bearer_ping_ignored, seen.run):
        ciba_rp.check(c.rp_invalid_bearer_answered_401, seen.run)
    ciba_rp.check(c.rp_tokens_accepted, seen.outcome, seen.expected_sub)
    ciba_rp.conclude()


@pytest.mark.client_requirement("CIBA-RP-23", "CIBA-RP-48")
def test_ping_unknown_auth_req_id(ciba_rp: ClientTest) -> None:
    """A ping with the right bearer token for an auth_req_id the client never started."""
    seen = ciba_rp.observe("ping_unknown_auth_req_id")
    ciba_rp.standard(seen)
    ciba_rp.check(c.rp_foreign_ping_ignored, seen.run)
    ciba_rp.check(c.rp_tokens_accepted, seen.outcome, seen.expected_sub)
    ciba_rp.conclude()


@pytest.mark.client_requirement("CIBA-RP-48")
def test_ping_twice(ciba_rp: ClientTest) -> None:
    """Two pings back to back (the token endpoint holds its answer 0.3 s): one token request."""
    seen = ciba_rp.observe("ping_twice")
    ciba_rp.standard(seen)
    ciba_rp.check(c.rp_tokens_accepted, seen.outcome, seen.expected_sub)
    ciba_rp.conclude()


@pytest.mark.client_requirement("CIBA-RP-07", "CIBA-RP-48")
def test_ping_two_flows(ciba_rp: ClientTest) -> None:
    """Two flows one after the other: each with its own client_notification_token."""
    seen = ciba_rp.observe("ping_two_flows")
    ciba_rp.standard(seen)
    for outcome, sub in zip(seen.outcomes, seen.expected_subs, strict=True):
        ciba_rp.check(c.rp_tokens_accepted, outcome, sub)
    ciba_rp.conclude()
