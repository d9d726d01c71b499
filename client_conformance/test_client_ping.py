"""Ping mode (CIBA §7.1, §7.4, §10.2): the client's notification endpoint and token fetch."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ciba_harness.rp import _checks as c
from ciba_harness.rp._harness import ClientTest

COMMON = ("CIBA-RP-01", "CIBA-RP-02", "CIBA-RP-03", "CIBA-RP-04", "CIBA-RP-05", "CIBA-RP-06",
          "CIBA-RP-08", "CIBA-RP-10", "CIBA-RP-17", "CIBA-RP-20")
pytestmark = [pytest.mark.ping, pytest.mark.client_requirement(*COMMON)]


@pytest.mark.client_requirement("CIBA-RP-48")
@pytest.mark.parametrize("behaviour", [
    # A valid ping: the client answers 204, fetches the tokens once and accepts them.
    pytest.param("ping_faithful", id="faithful"),
    # Two pings back to back (the token endpoint holds its answer 0.3 s): one token request.
    pytest.param("ping_twice", id="twice"),
    # Two flows one after the other: each with its own client_notification_token.
    pytest.param("ping_two_flows", id="two_flows",
                 marks=pytest.mark.client_requirement("CIBA-RP-07")),
])
def test_ping_tokens_accepted(ciba_rp: ClientTest, behaviour: str) -> None:
    """A valid ping: every flow's tokens are fetched and accepted."""
    ciba_rp.tokens_accepted(behaviour)


WRONG_BEARER = pytest.mark.client_requirement("CIBA-RP-21", "CIBA-RP-22")
Check = Callable[..., None]


@pytest.mark.client_requirement("CIBA-RP-48")
@pytest.mark.parametrize(("behaviour", "ignored", "answered_401"), [
    # A wrong or no bearer token first: ignored (401), the valid one 0.5 s later counts.
    pytest.param("ping_wrong_bearer", c.rp_wrong_bearer_ping_ignored,
                 c.rp_invalid_bearer_answered_401, id="wrong_bearer", marks=WRONG_BEARER),
    pytest.param("ping_no_bearer", c.rp_wrong_bearer_ping_ignored,
                 c.rp_invalid_bearer_answered_401, id="no_bearer", marks=WRONG_BEARER),
    # The right bearer token for an auth_req_id the client never started.
    pytest.param("ping_unknown_auth_req_id", c.rp_foreign_ping_ignored, None,
                 id="unknown_auth_req_id", marks=pytest.mark.client_requirement("CIBA-RP-23")),
])
def test_ping_ignored(ciba_rp: ClientTest, behaviour: str, ignored: Check,
                      answered_401: Check | None) -> None:
    """A ping the client must ignore comes first; the valid ping after it counts."""
    seen = ciba_rp.observe(behaviour)
    ciba_rp.standard(seen)
    if ciba_rp.check(ignored, seen.run) and answered_401 is not None:
        ciba_rp.check(answered_401, seen.run)
    ciba_rp.check(c.rp_tokens_accepted, seen.outcome, seen.expected_sub)
    ciba_rp.conclude()
