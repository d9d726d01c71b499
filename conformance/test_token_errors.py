"""Token endpoint error cases of the CIBA grant (CIBA §10.1, §11; RFC 6749 §5.2).

Every error answer is judged with `token_error_is`: the code and status break the row under
test, a body that is not a JSON error object breaks CIBA-TOKEN-21 (judged once, there).
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from ciba_harness import (
    DEFAULT_INTERVAL,
    ClientAuthentication,
    Poller,
    PollStatus,
    Severity,
    error_body_well_formed,
    error_charset,
    error_code,
    fast_poll_answer_allowed,
    record_choice,
    require_client,
    status_is,
    token_endpoint_uses_tls,
    token_error_is,
    www_authenticate_present,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, ProviderConfig, ProviderMetadata

pytestmark = pytest.mark.poll

FAST_POLLS = 3  # back-to-back token requests of the slow_down test
UNKNOWN_IDS = 5  # random well-formed ids of the guessing test (CIBA-SEC-05)
EXPIRY_MARGIN = 0.5  # seconds past expires_in before the expired poll
BACKOFF_MARGIN = 0.25  # seconds beyond interval + 5 (request latency jitter on a busy host)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def random_auth_req_id() -> str:
    """Well-formed like a real one (A-Z a-z 0-9 - _, 216 bits) but never issued."""
    return secrets.token_urlsafe(27)


def wait_for_expiry(flow, ciba_config: ProviderConfig) -> None:
    """Sleep until the acknowledged lifetime of the flow has passed (skip if over budget)."""
    ack = flow.acknowledgement
    assert ack is not None
    expires_in = ack.expires_in
    if expires_in is None:  # malformed expires_in is CIBA-ACK-07's business
        expires_in = ciba_config.budgets.requested_expiry
    if expires_in > ciba_config.budgets.max_wait:
        pytest.skip(
            f"not covered: expires_in is {expires_in} s although requested_expiry="
            f"{ciba_config.budgets.requested_expiry} was sent (A-17), more than "
            f"budgets.max_wait={ciba_config.budgets.max_wait:g} s"
        )
    remaining = ack.received_at + expires_in + EXPIRY_MARGIN - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


@pytest.mark.requirement("CIBA-TOKEN-02")
def test_missing_auth_req_id(ciba: CibaClient, poll_client):
    """The CIBA grant without auth_req_id: invalid_request."""
    exchange = ciba.token(poll_client, None)
    ciba.check(token_error_is, exchange, {"invalid_request"}, requirement="CIBA-TOKEN-02")


@pytest.mark.requirement("CIBA-TOKEN-03", "CIBA-SEC-05")
def test_unknown_auth_req_ids(ciba: CibaClient, poll_client):
    """Guessed ids (random, well-formed) and garbage: invalid_grant, never authorization_pending."""
    guesses = [random_auth_req_id() for _ in range(UNKNOWN_IDS)]
    guesses += ["garbage", "0" * 40, f"{random_auth_req_id()}.{random_auth_req_id()}"]
    for auth_req_id in guesses:
        exchange = ciba.token(poll_client, auth_req_id)
        ciba.check(token_error_is, exchange, {"invalid_grant"}, requirement="CIBA-TOKEN-03")


@pytest.mark.requirement("CIBA-TOKEN-04", "CIBA-SEC-11")
def test_another_clients_auth_req_id(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """Client B presenting client A's auth_req_id gets invalid_grant; A then completes normally."""
    other = require_client(ciba_config, ciba_metadata, mode="poll", role="second")
    owner = require_client(ciba_config, ciba_metadata, mode="poll", exclude=(other.name,))
    flow = ciba.start(owner)
    stolen = ciba.token(other, flow.auth_req_id, label="token (other client)")
    ciba.check(token_error_is, stolen, {"invalid_grant"}, requirement="CIBA-TOKEN-04")
    ciba.approve(flow)
    ciba.poll(flow)
    ciba.check(status_is, flow.exchanges[-1], {200}, requirement="CIBA-TOKEN-04")


@pytest.mark.slow
@pytest.mark.requirement("CIBA-TOKEN-06", "CIBA-TOKEN-07")
def test_polling_too_fast(ciba: CibaClient, ciba_config: ProviderConfig, poll_client):
    """Polls faster than `interval` get authorization_pending, slow_down, invalid_request or
    503 + Retry-After (A-09); after slow_down, waiting interval + 5 s is enough."""
    flow = ciba.start(poll_client)
    assert flow.acknowledgement is not None
    poller = Poller(poll_client, ciba.metadata, flow.acknowledgement)
    first = ciba.token(poll_client, flow.auth_req_id)
    ciba.check(
        token_error_is, first, {"authorization_pending", "slow_down"}, requirement="CIBA-TOKEN-05"
    )
    assert first.response is not None
    poller.handle(first.response)
    backed_off = False
    for _ in range(FAST_POLLS):
        exchange = ciba.token(poll_client, flow.auth_req_id, label="token (too fast)")
        # the wait counts from the answer: the provider saw the poll at some moment before it
        answered = time.monotonic()
        ciba.check(fast_poll_answer_allowed, exchange)
        assert exchange.response is not None
        if error_code(exchange.response) == "invalid_request":
            return  # CIBA-TOKEN-07: the client must not poll this auth_req_id any more
        result = poller.handle(exchange.response)
        if result.status in {PollStatus.SLOW_DOWN, PollStatus.RETRY_LATER}:
            backed_off = True
            record_choice("slow_down", f"{error_code(exchange.response) or 'HTTP 503'} for a "
                          "fast poll", f"{FAST_POLLS} back-to-back polls")
            break
    if not backed_off:
        record_choice("slow_down", "authorization_pending for a fast poll",
                      f"{FAST_POLLS} back-to-back polls, no slow_down")
        return  # the provider tolerates fast polls (slow_down is a MAY)
    wait = poller.delay() - (time.monotonic() - answered)
    if wait > ciba_config.budgets.max_wait:
        pytest.skip(f"not covered: back-off of {wait:.0f} s exceeds budgets.max_wait")
    time.sleep(max(wait, 0) + BACKOFF_MARGIN)
    exchange = ciba.token(poll_client, flow.auth_req_id, label="token (after back-off)")
    ciba.check(token_error_is, exchange, {"authorization_pending"}, requirement="CIBA-TOKEN-06")


@pytest.mark.slow
@pytest.mark.requirement("CIBA-TOKEN-12", "CIBA-TOKEN-24")
def test_expired_token_after_expiry(ciba: CibaClient, ciba_config: ProviderConfig, poll_client):
    """The user does nothing: after expires_in the answer is expired_token; a later poll
    gets expired_token again or invalid_grant (A-12)."""
    flow = ciba.start(poll_client, requested_expiry=ciba_config.budgets.requested_expiry)
    wait_for_expiry(flow, ciba_config)
    exchange = ciba.token(poll_client, flow.auth_req_id)
    ciba.check(token_error_is, exchange, {"expired_token"}, requirement="CIBA-TOKEN-12")
    assert flow.acknowledgement is not None
    time.sleep(flow.acknowledgement.interval or DEFAULT_INTERVAL)
    again = ciba.token(poll_client, flow.auth_req_id)
    ciba.check(
        token_error_is, again, {"expired_token", "invalid_grant"}, requirement="CIBA-TOKEN-24"
    )
    code = error_code(again.response)
    record_choice("after_expiry", f"{code} again" if code == "expired_token" else str(code),
                  "second poll after expiry")


@pytest.mark.push
@pytest.mark.requirement("CIBA-TOKEN-17", "CIBA-PUSH-12")
def test_push_client_cannot_poll(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """A push client using the CIBA grant gets unauthorized_client."""
    push_client = require_client(ciba_config, ciba_metadata, mode="push")
    flow = ciba.start(push_client)
    exchange = ciba.token(push_client, flow.auth_req_id)
    ciba.check(token_error_is, exchange, {"unauthorized_client"}, requirement="CIBA-TOKEN-17")


@pytest.mark.requirement("CIBA-TOKEN-18")
def test_client_without_ciba_grant(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """A confidential client not registered for the CIBA grant gets unauthorized_client."""
    client = require_client(
        ciba_config, ciba_metadata, ciba_allowed=False, feature="a client without the CIBA grant"
    )
    exchange = ciba.token(client, random_auth_req_id())
    ciba.check(token_error_is, exchange, {"unauthorized_client"}, requirement="CIBA-TOKEN-18")


@pytest.mark.requirement("CIBA-TOKEN-19")
def test_unsupported_grant_type(ciba: CibaClient, poll_client):
    """A misspelt CIBA grant type gets unsupported_grant_type."""
    exchange = ciba.token(
        poll_client, random_auth_req_id(), grant_type="urn:openid:params:grant-type:cibaa"
    )
    ciba.check(token_error_is, exchange, {"unsupported_grant_type"}, requirement="CIBA-TOKEN-19")


INVALID_CLIENT_CASES = {
    "basic-wrong-secret": ("client_secret_basic", ClientAuthentication(secret="wrong-secret-0")),
    "post-wrong-secret": ("client_secret_post", ClientAuthentication(secret="wrong-secret-0")),
    "unknown-client": (
        "client_secret_post",
        ClientAuthentication(client_id="no-such-client-ciba-harness"),
    ),
    "no-authentication": ("client_secret_basic", ClientAuthentication(method="omit")),
}


@pytest.mark.requirement("CIBA-TOKEN-20")
@pytest.mark.parametrize("case", sorted(INVALID_CLIENT_CASES))
def test_invalid_client(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, case
):
    """Failed client authentication: invalid_client, 401 with WWW-Authenticate after HTTP Basic
    (RFC 6749 §5.2), otherwise 400 or 401."""
    method, auth = INVALID_CLIENT_CASES[case]
    client = require_client(ciba_config, ciba_metadata, mode="poll", auth_method=method)
    exchange = ciba.token(client, random_auth_req_id(), auth=auth)
    basic = auth.method is None and method == "client_secret_basic"
    ciba.check(
        token_error_is,
        exchange,
        {"invalid_client"},
        requirement="CIBA-TOKEN-20",
        statuses={401} if basic else {400, 401},
    )
    if basic:
        ciba.check(www_authenticate_present, exchange, requirement="CIBA-TOKEN-20")
    elif exchange.response is not None:
        record_choice("invalid_client_status", f"{exchange.response.status} without HTTP Basic",
                      "token endpoint")


@pytest.mark.requirement("CIBA-TOKEN-21")
def test_error_body_shape(ciba: CibaClient, poll_client):
    """Token errors are JSON objects with error, optional error_description / error_uri in the
    allowed characters; members beyond those three only warn (A-23)."""
    exchanges = [
        ciba.token(poll_client, random_auth_req_id()),
        ciba.token(poll_client, None),
        ciba.token(poll_client, random_auth_req_id(), grant_type="urn:example:no-such-grant"),
    ]
    for exchange in exchanges:
        ciba.check(
            error_body_well_formed, exchange, requirement="CIBA-TOKEN-21", allow_extra_members=True
        )
        ciba.check(error_charset, exchange, requirement="CIBA-TOKEN-21")
        ciba.check_at(
            Severity.WARNING, error_body_well_formed, exchange, requirement="CIBA-TOKEN-21"
        )


@pytest.mark.requirement("CIBA-TOKEN-22")
def test_unknown_parameter_ignored(ciba: CibaClient, ciba_config: ProviderConfig, poll_client):
    """An unknown extra parameter in the token request is ignored: tokens as usual."""
    flow = ciba.start(poll_client)
    ciba.approve(flow)
    assert flow.acknowledgement is not None
    deadline = time.monotonic() + ciba_config.budgets.approve_timeout
    while True:  # the device's decision may take a moment to reach the provider
        exchange = ciba.token(poll_client, flow.auth_req_id, extra=(("x_harness_probe", "1"),))
        pending = exchange.response is not None and error_code(exchange.response) in {
            "authorization_pending",
            "slow_down",
        }
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(flow.acknowledgement.interval or DEFAULT_INTERVAL)
    ciba.check(status_is, exchange, {200}, requirement="CIBA-TOKEN-22")


@pytest.mark.requirement("CIBA-SEC-02")
def test_token_endpoint_uses_tls(ciba: CibaClient, ciba_metadata: ProviderMetadata):
    """The token endpoint is served over TLS (https)."""
    url = ciba_metadata.token_endpoint
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        pytest.skip(
            "not applicable: the provider under test is a local setup on plain http over loopback"
        )
    ciba.check(token_endpoint_uses_tls, url)
