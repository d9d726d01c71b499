"""Ping mode: the provider's callback to the client's notification endpoint (CIBA §5, §10.2).

Callbacks are matched to a flow by their bearer token or their auth_req_id, so a callback
that breaks one of the two is still found and judged (CIBA-PING-02, CIBA-PING-03).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from ciba_harness import (
    EndpointBehaviour,
    Severity,
    callback_bearer_is,
    callback_count_at_most,
    callback_is_json,
    expect_callback,
    flow_callbacks,
    no_callback_for_flow,
    ping_body_only_auth_req_id,
    record_choice,
    start_expiring,
    status_is,
    token_error_is,
)

if TYPE_CHECKING:
    from ciba_harness import (
        CibaClient,
        NotificationInbox,
        NotificationReceiver,
        ProviderConfig,
        ProviderMetadata,
    )

pytestmark = pytest.mark.ping

QUIET_WINDOW = 1.0  # seconds to watch for callbacks that must not come (duplicates, retries)
EXPIRY_MARGIN = 0.5
SLOW_ENDPOINT_DELAY = 2.0  # seconds the notification endpoint takes to answer


@pytest.mark.requirement("CIBA-PING-01", "CIBA-PING-09")
def test_ping_after_approval(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, ping_client
):
    """After approval the provider pings; the token request that follows yields tokens."""
    flow = ciba.start(ping_client)
    ciba.approve(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow)
    flow.exchanges.append(ciba.token(ping_client, flow.auth_req_id))
    ciba.expect_tokens(flow)


@pytest.mark.requirement("CIBA-PING-02", "CIBA-PING-03")
def test_ping_shape(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, ping_client
):
    """The ping carries exactly the client_notification_token as Bearer token and the JSON
    body {"auth_req_id": ...} with nothing else."""
    flow = ciba.start(ping_client)
    ciba.approve(flow)
    note = expect_callback(ciba, ciba_config, ciba_inbox, flow)
    assert flow.notification_token is not None
    ciba.check(callback_bearer_is, note, flow.notification_token, requirement="CIBA-PING-02")
    ciba.check(callback_is_json, note, requirement="CIBA-PING-03")
    ciba.check(ping_body_only_auth_req_id, note, flow.auth_req_id)


@pytest.mark.requirement("CIBA-PING-01", "CIBA-PING-09", "CIBA-TOKEN-13")
def test_ping_after_denial(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, ping_client
):
    """After denial the provider pings too; the token request then gets access_denied."""
    flow = ciba.start(ping_client)
    ciba.deny(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow)
    exchange = ciba.token(ping_client, flow.auth_req_id)
    ciba.check(token_error_is, exchange, {"access_denied"}, requirement="CIBA-TOKEN-13")


@pytest.mark.requirement("CIBA-TOKEN-23", "CIBA-PING-12")
def test_ping_client_may_poll(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, ping_client
):
    """A ping client polling before the user acts gets authorization_pending like a poll
    client (the acknowledgement's interval, if any, paces it)."""
    poll_client = ciba_config.find_client(mode="poll")
    if poll_client is not None and ciba_metadata.supports_mode("poll"):
        # precondition: a poll client gets authorization_pending (else CIBA-TOKEN-05 is broken)
        reference = ciba.start(poll_client)
        pending = ciba.token(poll_client, reference.auth_req_id)
        ciba.check(
            token_error_is,
            pending,
            {"authorization_pending", "slow_down"},
            requirement="CIBA-TOKEN-05",
        )
    flow = ciba.start(ping_client)
    exchange = ciba.token(ping_client, flow.auth_req_id)
    ciba.check(
        token_error_is,
        exchange,
        {"authorization_pending", "slow_down"},
        requirement="CIBA-TOKEN-23",
    )


@pytest.mark.requirement("CIBA-PING-05")
def test_endpoint_answering_200_with_body(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, ping_client
):
    """The notification endpoint answers 200 with a JSON body instead of 204: the flow
    completes all the same."""
    behaviour = EndpointBehaviour(
        status=200, body=b'{"status":"received"}', content_type="application/json"
    )
    flow = ciba.start(ping_client, behaviour=behaviour)
    ciba.approve(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow)
    exchange = ciba.token(ping_client, flow.auth_req_id)
    # CIBA §10.2: the OP SHOULD also accept 200 and ignore the body: a warning if it does not.
    ciba.check_at(Severity.WARNING, status_is, exchange, {200}, requirement="CIBA-PING-05")


@pytest.mark.slow  # wait-bound: started early (ciba_harness/pytest_plugin/_early.py)
@pytest.mark.requirement("CIBA-PING-07")
@pytest.mark.parametrize("status", [401, 503])
def test_tokens_retrievable_after_failed_ping(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_inbox: NotificationInbox,
    ping_client,
    status,
):
    """The notification endpoint answers 401 or 503: the tokens stay retrievable by a token
    request. Retries are recorded, not judged (BB-139, A-13)."""
    flow = ciba.start(ping_client, behaviour=EndpointBehaviour(status=status))
    ciba.approve(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow)
    exchange = ciba.token(ping_client, flow.auth_req_id)
    # CIBA §10.2 leaves the OP's handling of a 4xx/5xx from the client open (BB-139): tokens
    # withheld afterwards are worth a warning, not a failure.
    ciba.check_at(Severity.WARNING, status_is, exchange, {200}, requirement="CIBA-PING-07")
    notes = flow_callbacks(ciba_inbox, flow, timeout=QUIET_WINDOW, count=2)
    record_choice("ping_retry", f"{len(notes)} ping(s)" if len(notes) != 1 else "no retry",
                  f"notification endpoint answered HTTP {status}")


@pytest.mark.requirement("CIBA-PING-07")
def test_slow_endpoint_does_not_hold_tokens(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, ping_client
):
    """The notification endpoint takes a while to answer: the tokens are retrievable at once."""
    flow = ciba.start(ping_client, behaviour=EndpointBehaviour(delay=SLOW_ENDPOINT_DELAY))
    ciba.approve(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow)
    exchange = ciba.token(ping_client, flow.auth_req_id)
    # No sentence ties the tokens to the callback's answer: an OP that waits for it (pings
    # synchronously) is warned, not failed.
    ciba.check_at(Severity.WARNING, status_is, exchange, {200}, requirement="CIBA-PING-07")


@pytest.mark.slow  # wait-bound: started early (ciba_harness/pytest_plugin/_early.py)
@pytest.mark.requirement("CIBA-PING-11")
def test_one_ping_and_none_for_poll_clients(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_inbox: NotificationInbox,
    ping_client,
):
    """One ping per auth_req_id, and none for a poll client's request."""
    flow = ciba.start(ping_client)
    ciba.approve(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow)
    poll_flow = None
    poll_client = ciba_config.find_client(mode="poll")
    if poll_client is not None and ciba_metadata.supports_mode("poll"):
        poll_flow = ciba.start(poll_client)
        ciba.approve(poll_flow)
    time.sleep(QUIET_WINDOW)
    ciba.check(
        callback_count_at_most,
        flow_callbacks(ciba_inbox, flow, timeout=0, count=2),
        1,
        requirement="CIBA-PING-11",
        title="The provider pinged twice for one auth_req_id",
    )
    if poll_flow is not None:
        ciba.check(
            no_callback_for_flow,
            ciba_inbox.received(auth_req_id=poll_flow.auth_req_id),
            requirement="CIBA-PING-11",
            title="The provider pinged for a poll client's request",
        )


@pytest.mark.slow
@pytest.mark.requirement("CIBA-PING-10", "CIBA-TOKEN-12")
def test_expiry(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, ping_client
):
    """The request expires unanswered: a ping is optional (BB-202, recorded), the token request
    then gets expired_token."""
    flow, expires_at = start_expiring(ciba, ciba_config, ping_client)
    time.sleep(max(0.0, expires_at + EXPIRY_MARGIN - time.monotonic()))
    exchange = ciba.token(ping_client, flow.auth_req_id)
    ciba.check(token_error_is, exchange, {"expired_token"}, requirement="CIBA-TOKEN-12")
    pinged = flow_callbacks(ciba_inbox, flow, timeout=0.0)
    record_choice("ping_on_expiry", "pinged" if pinged else "no ping", "until the poll after expiry")


@pytest.mark.requirement("CIBA-PING-04")
def test_ping_over_tls(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_inbox: NotificationInbox,
    ciba_receiver: NotificationReceiver,
    ping_client,
):
    """The ping reaches the notification endpoint over TLS (the receiver speaks only https)."""
    if not ciba_receiver.url.startswith("https://"):
        pytest.skip(
            "not covered: the notification receiver is plain http "
            "(set receiver.tls_certificate / public_url to an https endpoint)"
        )
    flow = ciba.start(ping_client)
    ciba.approve(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow)
