"""_flow.Poller: the poll-mode state machine (CIBA §7.3, §10.1, §11)."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate

import pytest
from core_helpers import json_response

from ciba_harness import (
    CIBA_GRANT,
    DEFAULT_INTERVAL,
    SLOW_DOWN_INCREMENT,
    Acknowledgement,
    ClientConfig,
    HttpResponse,
    Poller,
    PollStatus,
    ProviderMetadata,
)

ClientOf = Callable[[str], ClientConfig]


def poller(client_of: ClientOf, metadata: ProviderMetadata, interval: int | None = 2) -> Poller:
    ack = Acknowledgement("auth-req-7", 120, interval, 0.0, {})
    return Poller(client_of("poll-post"), metadata, ack)


def test_default_interval_is_5_seconds(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    assert DEFAULT_INTERVAL == 5.0
    assert poller(client_of, metadata, None).delay() == 5.0
    assert poller(client_of, metadata, 3).delay() == 3.0


def test_request_is_a_ciba_token_request(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    request = poller(client_of, metadata).request()
    assert request.url == metadata.token_endpoint
    fields = dict(request.form_fields())
    assert fields["grant_type"] == CIBA_GRANT
    assert fields["auth_req_id"] == "auth-req-7"
    assert fields["client_id"] == "poll-post"


def test_pending_keeps_the_interval(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    p = poller(client_of, metadata)
    for _ in range(3):
        result = p.handle(json_response(400, {"error": "authorization_pending"}))
        assert result.status is PollStatus.PENDING
        assert result.error == "authorization_pending"
        assert p.delay() == 2.0
    assert p.polls == 3 and p.slow_downs == 0


def test_slow_down_adds_5_seconds_for_good(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    assert SLOW_DOWN_INCREMENT == 5.0
    p = poller(client_of, metadata)
    assert p.handle(json_response(400, {"error": "slow_down"})).status is PollStatus.SLOW_DOWN
    assert p.delay() == 7.0
    p.handle(json_response(400, {"error": "authorization_pending"}))
    assert p.delay() == 7.0  # "this and all later requests"
    p.handle(json_response(400, {"error": "slow_down"}))
    assert p.delay() == 12.0
    assert p.slow_downs == 2
    assert p.history == [PollStatus.SLOW_DOWN, PollStatus.PENDING, PollStatus.SLOW_DOWN]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("30", 30.0), ("1", 2.0), ("2.5", 2.5), (None, DEFAULT_INTERVAL), ("soon", DEFAULT_INTERVAL)],
)
def test_503_with_retry_after_is_honoured(
    client_of: ClientOf, metadata: ProviderMetadata, retry_after: str | None, expected: float
) -> None:
    p = poller(client_of, metadata)
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    result = p.handle(HttpResponse(503, headers, b""))
    assert result.status is PollStatus.RETRY_LATER
    assert p.delay() == expected  # never shorter than the interval
    p.handle(json_response(400, {"error": "authorization_pending"}))
    assert p.delay() == 2.0  # Retry-After applies to the next request only


def test_retry_after_as_http_date(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    p = poller(client_of, metadata)
    p.handle(HttpResponse(503, (("Retry-After", formatdate(time.time() + 60, usegmt=True)),), b""))
    assert 55 <= p.delay() <= 61
    p.handle(HttpResponse(503, (("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),), b""))
    assert p.delay() == 2.0  # a date in the past: the interval


def test_200_yields_tokens(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    p = poller(client_of, metadata)
    tokens = {"access_token": "a", "token_type": "Bearer", "id_token": "x.y.z"}
    result = p.handle(json_response(200, tokens))
    assert result.status is PollStatus.TOKENS
    assert result.tokens == tokens
    malformed = poller(client_of, metadata).handle(HttpResponse(200, (), b"<html>"))
    assert malformed.status is PollStatus.FAILED
    assert malformed.error == "malformed_token_response"


@pytest.mark.parametrize(
    "code", ["access_denied", "expired_token", "invalid_grant", "invalid_request", "unauthorized_client"]
)
def test_terminal_errors_fail_with_the_code(
    client_of: ClientOf, metadata: ProviderMetadata, code: str
) -> None:
    result = poller(client_of, metadata).handle(json_response(400, {"error": code}))
    assert result.status is PollStatus.FAILED
    assert result.error == code


def test_error_without_code_names_the_status(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    result = poller(client_of, metadata).handle(HttpResponse(500, (), b"boom"))
    assert result.status is PollStatus.FAILED
    assert result.error == "http_500"
