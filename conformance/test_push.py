"""Push mode: tokens and errors pushed to the client's notification endpoint (CIBA §5, §10.3,
§10.3.1, §12). Only runs when the provider advertises push (rare, A-14; FAPI-CIBA forbids it).

Deliveries are matched to a flow by their bearer token or their auth_req_id, so a delivery
that breaks one of the two is still found and judged.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from ciba_harness import (
    Severity,
    ack_no_interval_for_push,
    callback_bearer_is,
    callback_count_at_most,
    callback_is_json,
    expect_callback,
    flow_callbacks,
    push_error_code_allowed,
    push_error_is,
    push_token_payload,
    record_choice,
    start_expiring,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, NotificationInbox, ProviderConfig

pytestmark = pytest.mark.push

QUIET_WINDOW = 1.0  # seconds to watch for deliveries that must not come
EXPIRY_MARGIN = 0.5
EXPIRY_DELIVERY_WINDOW = 2.0  # seconds past expiry an optional expired_token push may take


@pytest.mark.requirement("CIBA-PUSH-01", "CIBA-PUSH-02")
def test_tokens_pushed(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, push_client
):
    """After approval the tokens are POSTed as JSON with the client_notification_token as
    Bearer token: auth_req_id, access_token, token_type, id_token (expires_in, refresh_token)."""
    flow = ciba.start(push_client)
    ciba.approve(flow)
    note = expect_callback(ciba, ciba_config, ciba_inbox, flow)
    assert flow.notification_token is not None
    ciba.check(callback_bearer_is, note, flow.notification_token, requirement="CIBA-PUSH-01")
    ciba.check(callback_is_json, note, requirement="CIBA-PUSH-01")
    ciba.check(push_token_payload, note, flow.auth_req_id)


@pytest.mark.requirement("CIBA-PUSH-03", "CIBA-PUSH-04", "CIBA-PUSH-05", "CIBA-PUSH-06")
def test_pushed_id_token(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, push_client
):
    """The pushed ID token validates and carries the auth_req_id claim, at_hash and (with a
    refresh token) rt_hash matching the pushed tokens."""
    flow = ciba.start(push_client)
    ciba.approve(flow)
    note = expect_callback(ciba, ciba_config, ciba_inbox, flow)
    ciba.check_id_token(flow, note.payload or {}, push=True)


@pytest.mark.requirement("CIBA-PUSH-08", "CIBA-PUSH-11")
def test_denial_pushed(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, push_client
):
    """After denial the provider pushes {"error": "access_denied", "auth_req_id": ...}."""
    flow = ciba.start(push_client)
    ciba.deny(flow)
    note = expect_callback(
        ciba, ciba_config, ciba_inbox, flow, requirement="CIBA-PUSH-08", what="error push"
    )
    ciba.check(push_error_code_allowed, note)
    ciba.check(push_error_is, note, "access_denied", flow.auth_req_id, requirement="CIBA-PUSH-08")


@pytest.mark.slow
@pytest.mark.requirement("CIBA-PUSH-09", "CIBA-PUSH-11")
def test_expiry(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, push_client
):
    """The request expires unanswered: either nothing is pushed (A-15) or
    {"error": "expired_token", "auth_req_id": ...}."""
    flow, expires_at = start_expiring(ciba, ciba_config, push_client)
    deadline = expires_at + EXPIRY_MARGIN + EXPIRY_DELIVERY_WINDOW
    notes = flow_callbacks(ciba_inbox, flow, timeout=max(0.0, deadline - time.monotonic()))
    record_choice("push_on_expiry", "pushed" if notes else "nothing pushed",
                  f"within {EXPIRY_DELIVERY_WINDOW:g} s after expiry")
    if not notes:
        return  # pushing expired_token is optional (CIBA §12)
    ciba.check(push_error_code_allowed, notes[0])
    ciba.check(
        push_error_is, notes[0], "expired_token", flow.auth_req_id, requirement="CIBA-PUSH-09"
    )


@pytest.mark.slow  # wait-bound: started early (ciba_harness/pytest_plugin/_early.py)
@pytest.mark.requirement("CIBA-PUSH-15")
def test_exactly_one_delivery(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, push_client
):
    """One delivery per auth_req_id (a duplicate is a warning)."""
    flow = ciba.start(push_client)
    ciba.approve(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow)
    notes = flow_callbacks(ciba_inbox, flow, timeout=QUIET_WINDOW, count=2)
    ciba.check_at(
        Severity.WARNING,
        callback_count_at_most,
        notes,
        1,
        requirement="CIBA-PUSH-15",
        title="The provider delivered more than once for one auth_req_id",
    )


@pytest.mark.requirement("CIBA-PUSH-13")
def test_acknowledgement_without_interval(ciba: CibaClient, push_client):
    """A push client's acknowledgement carries no interval (a warning: the rule is descriptive)."""
    flow = ciba.start(push_client)
    ciba.check_at(
        Severity.WARNING,
        ack_no_interval_for_push,
        flow.exchange,
        requirement="CIBA-PUSH-13",
    )
