"""Poll mode: token requests before, during and after the user's decision (CIBA §10.1, §11).

Error answers of the token endpoint are judged with `token_error_is`: a wrong code or status
breaks the requirement under test, an error body that is not JSON breaks CIBA-TOKEN-21.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from ciba_harness import (
    DEFAULT_INTERVAL,
    ResponseTimeout,
    Severity,
    build_refresh_request,
    error_code,
    no_store,
    record_choice,
    single_redemption,
    token_error_is,
    token_response_complete,
    token_type_bearer,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, ProviderConfig

pytestmark = pytest.mark.poll

CONCURRENT_REDEMPTIONS = 4


def poll_until_decided(ciba: CibaClient, flow, budget):
    """Poll at the provider's interval until the answer is no longer pending (or the budget
    is spent); the last exchange, for the caller to judge against its own requirement."""
    try:
        ciba.poll(flow, max_wait=budget)
    except ResponseTimeout:
        pass  # still pending: the caller's check names what that breaks
    return flow.exchanges[-1]


@pytest.mark.requirement("CIBA-TOKEN-01", "CIBA-TOKEN-05")
def test_pending_before_the_user_acts(ciba: CibaClient, poll_client):
    """A token request before the user acts gets authorization_pending."""
    flow = ciba.start(poll_client)
    exchange = ciba.token(poll_client, flow.auth_req_id)
    ciba.check(
        token_error_is,
        exchange,
        {"authorization_pending", "slow_down"},
        requirement="CIBA-TOKEN-05",
    )


@pytest.mark.requirement("CIBA-TOKEN-14", "CIBA-TOKEN-15", "CIBA-TOKEN-25", "CIBA-IDT-01")
def test_tokens_after_approval(ciba: CibaClient, poll_client):
    """After approval the poll yields tokens with a valid ID token, not cacheable."""
    flow = ciba.start(poll_client)
    ciba.approve(flow)
    ciba.poll(flow)
    exchange = flow.exchanges[-1]
    tokens = ciba.expect_tokens(flow, exchange)
    ciba.check(no_store, exchange, requirement="CIBA-TOKEN-15")
    # RFC 6749 §5.1 also asks for Pragma: no-cache (an HTTP/1.0 relic): a warning only
    ciba.check_at(
        Severity.WARNING, no_store, exchange, requirement="CIBA-TOKEN-15", pragma=True
    )
    ciba.check(token_type_bearer, tokens, exchange=exchange)


@pytest.mark.slow  # wait-bound: started early (ciba_harness/pytest_plugin/_early.py)
@pytest.mark.requirement("CIBA-TOKEN-13", "CIBA-TOKEN-24")
def test_access_denied_after_denial(ciba: CibaClient, ciba_config: ProviderConfig, poll_client):
    """After the user denies, the token endpoint answers access_denied; a later poll gets the
    same error or invalid_grant, never tokens (A-12)."""
    flow = ciba.start(poll_client)
    ciba.deny(flow)
    exchange = poll_until_decided(ciba, flow, ciba_config.budgets.approve_timeout)
    ciba.check(token_error_is, exchange, {"access_denied"}, requirement="CIBA-TOKEN-13")
    assert flow.acknowledgement is not None
    time.sleep(flow.acknowledgement.interval or DEFAULT_INTERVAL)
    again = ciba.token(poll_client, flow.auth_req_id)
    ciba.check(
        token_error_is, again, {"access_denied", "invalid_grant"}, requirement="CIBA-TOKEN-24"
    )
    code = error_code(again.response)
    record_choice("after_denial", f"{code} again" if code == "access_denied" else str(code),
                  "second poll after the denial")


@pytest.mark.requirement("CIBA-TOKEN-16")
def test_auth_req_id_redeemed_once(ciba: CibaClient, poll_client):
    """A redeemed auth_req_id is no longer valid: invalid_grant."""
    flow = ciba.start(poll_client)
    ciba.approve(flow)
    ciba.poll(flow)
    ciba.check(token_response_complete, flow.exchanges[-1], requirement="CIBA-TOKEN-14")
    again = ciba.token(poll_client, flow.auth_req_id)
    ciba.check(token_error_is, again, {"invalid_grant"}, requirement="CIBA-TOKEN-16")


@pytest.mark.requirement("CIBA-TOKEN-16")
def test_concurrent_redemptions_yield_tokens_once(ciba: CibaClient, poll_client):
    """Several simultaneous token requests for one approved auth_req_id: exactly one gets
    tokens, the others invalid_grant."""
    flow = ciba.start(poll_client)
    ciba.approve(flow)
    barrier = threading.Barrier(CONCURRENT_REDEMPTIONS)

    def redeem(_: int):
        barrier.wait(timeout=10)
        return ciba.token(poll_client, flow.auth_req_id, label="token (concurrent)")

    with ThreadPoolExecutor(CONCURRENT_REDEMPTIONS) as pool:
        exchanges = list(pool.map(redeem, range(CONCURRENT_REDEMPTIONS)))
    ciba.check(single_redemption, exchanges)
    for exchange in exchanges:
        if exchange.response is not None and exchange.response.status != 200:
            ciba.check(token_error_is, exchange, {"invalid_grant"}, requirement="CIBA-TOKEN-16")


@pytest.mark.requirement("CIBA-TOKEN-14")
def test_refresh_token_works(ciba: CibaClient, poll_client):
    """A refresh_token delivered with the tokens can be used (refresh grant, RFC 6749 §6)."""
    flow = ciba.start(poll_client)
    ciba.approve(flow)
    ciba.poll(flow)
    ciba.check(token_response_complete, flow.exchanges[-1], requirement="CIBA-TOKEN-14")
    response = flow.exchanges[-1].response
    assert response is not None
    refresh_token = (response.json_object() or {}).get("refresh_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        pytest.skip("not applicable: the provider issued no refresh_token")
    request = build_refresh_request(poll_client, ciba.metadata, refresh_token)
    exchange = ciba.send(request, label="refresh", client=poll_client)
    ciba.check(token_response_complete, exchange, openid=False, requirement="CIBA-TOKEN-14")
    rotated = ((exchange.response.json_object() if exchange.response else None) or {}).get(
        "refresh_token"
    )
    # RFC 6749 §6: the OP MAY issue a new refresh token (the client then discards the old).
    record_choice("refresh_token_rotation",
                  "rotated" if rotated and rotated != refresh_token else "not rotated",
                  "first refresh grant")
