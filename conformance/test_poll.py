"""Poll mode: token requests before, during and after the user's decision (CIBA §10.1, §11)."""

from __future__ import annotations

import pytest

from ciba_harness import Severity
from ciba_harness._checks import error_body_well_formed, no_store, token_type_bearer
from ciba_harness.pytest_plugin import require_client

pytestmark = pytest.mark.poll


@pytest.fixture
def poll_client(ciba_config, ciba_metadata):
    return require_client(ciba_config, ciba_metadata, mode="poll")


@pytest.mark.requirement("CIBA-TOKEN-01", "CIBA-TOKEN-05")
def test_pending_before_the_user_acts(ciba, poll_client):
    """A token request before the user acts gets authorization_pending."""
    flow = ciba.start(poll_client)
    exchange = ciba.token(poll_client, flow.auth_req_id)
    ciba.expect_error(exchange, {"authorization_pending", "slow_down"}, requirement="CIBA-TOKEN-05")
    ciba.check(error_body_well_formed, exchange, requirement="CIBA-TOKEN-21")


@pytest.mark.requirement("CIBA-TOKEN-14", "CIBA-TOKEN-15", "CIBA-TOKEN-25", "CIBA-IDT-01")
def test_tokens_after_approval(ciba, poll_client):
    """After approval the poll yields tokens with a valid ID token, not cacheable."""
    flow = ciba.start(poll_client)
    ciba.approve(flow)
    result, _ = ciba.poll(flow)
    exchange = flow.exchanges[-1]
    tokens = ciba.expect_tokens(flow, exchange)
    ciba.check(no_store, exchange, requirement="CIBA-TOKEN-15")
    ciba.check(no_store, exchange, requirement="CIBA-TOKEN-15", pragma=True, severity=Severity.WARNING)
    ciba.check(token_type_bearer, tokens, exchange=exchange)


@pytest.mark.requirement("CIBA-TOKEN-13")
def test_access_denied_after_denial(ciba, poll_client):
    """After the user denies, the token endpoint answers access_denied."""
    flow = ciba.start(poll_client)
    ciba.deny(flow)
    result, _ = ciba.poll(flow)
    ciba.expect_error(flow.exchanges[-1], "access_denied", requirement="CIBA-TOKEN-13")


@pytest.mark.requirement("CIBA-TOKEN-16")
def test_auth_req_id_redeemed_once(ciba, poll_client):
    """A redeemed auth_req_id is no longer valid: invalid_grant."""
    flow = ciba.start(poll_client)
    ciba.approve(flow)
    ciba.poll(flow)
    ciba.expect_tokens(flow)
    again = ciba.token(poll_client, flow.auth_req_id)
    ciba.expect_error(again, "invalid_grant", requirement="CIBA-TOKEN-16")
