"""Authentication error responses of the backchannel endpoint (CIBA §13; RFC 6749 §5.2).

A few cheap triggers produce each error. Whether the provider refuses at all, and with which
code, is the business of the trigger's own requirement (CIBA-AUTH-*, CIBA-CAUTH-*); the tests
here judge the error body (CIBA-AERR-01..03), the HTTP status each code must carry
(CIBA-AERR-04..13) and that a rejected request leaves nothing behind (CIBA-AERR-15).
"""

from __future__ import annotations

import secrets
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from ciba_harness import (
    ClientAuthentication,
    Severity,
    build_backchannel_request,
    error_body_well_formed,
    error_code,
    error_description_charset,
    error_uri_charset,
    expect_backchannel_error,
    login_hint_token,
    no_notifications,
    not_server_error,
    refused,
    require_client,
)

if TYPE_CHECKING:
    from ciba_harness import (
        CibaClient,
        Exchange,
        NotificationInbox,
        ProviderConfig,
        ProviderMetadata,
    )

#: how long the receiver is watched for callbacks a rejected request must not cause
WATCH_SECONDS = 1.0


@dataclass(frozen=True)
class Trigger:
    """A request the provider must refuse: what to send, and which rule names the refusal."""

    name: str
    requirement: str
    codes: frozenset[str]
    send: Callable[..., Exchange]
    tolerated: frozenset[str] = field(default_factory=frozenset)


def _poll(config, metadata):
    return require_client(config, metadata, mode="poll")


def _no_hint(ciba: CibaClient, config, metadata):
    client = _poll(config, metadata)
    return ciba.backchannel(client, ciba.default_params(client, login_hint=None))


def _unknown_user(ciba: CibaClient, config, metadata):
    client = _poll(config, metadata)
    params = ciba.default_params(client, login_hint=config.users.unknown_login_hint)
    return ciba.backchannel(client, params)


def _wrong_secret(ciba: CibaClient, config, metadata):
    client = require_client(config, metadata, auth_method="client_secret_basic")
    auth = ClientAuthentication(secret="wrong-" + secrets.token_urlsafe(12))
    return ciba.backchannel(client, ciba.default_params(client), auth=auth)


def _not_allowed(ciba: CibaClient, config, metadata):
    client = require_client(config, metadata, ciba_allowed=False, feature="a non-CIBA client")
    return ciba.backchannel(client, ciba.default_params(client))


TRIGGERS = [
    Trigger("no_hint", "CIBA-AUTH-07", frozenset({"invalid_request"}), _no_hint),
    Trigger(
        "unknown_user",
        "CIBA-AUTH-09",
        frozenset({"unknown_user_id"}),
        _unknown_user,
        frozenset({"invalid_request"}),
    ),
    Trigger("wrong_secret", "CIBA-CAUTH-02", frozenset({"invalid_client"}), _wrong_secret),
    Trigger(
        "not_allowed",
        "CIBA-AERR-08",
        frozenset({"unauthorized_client"}),
        _not_allowed,
        frozenset({"invalid_client"}),
    ),
]


@pytest.fixture(params=TRIGGERS, ids=lambda t: t.name)
def refusal(
    request, ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """The exchange of one trigger, judged refused against the trigger's requirement."""
    trigger: Trigger = request.param
    exchange = trigger.send(ciba, ciba_config, ciba_metadata)
    ciba.check(refused, exchange, requirement=trigger.requirement)
    return exchange


# --- the error body ---------------------------------------------------------------------------


@pytest.mark.requirement("CIBA-AERR-01")
def test_error_body_shape(ciba: CibaClient, refusal):
    """An error is an application/json object with a string error; members beyond error,
    error_description, error_uri are warned (A-23)."""
    ciba.check(
        error_body_well_formed, refusal, requirement="CIBA-AERR-01", allow_extra_members=True
    )
    ciba.check_at(
        Severity.WARNING, error_body_well_formed, refusal, requirement="CIBA-AERR-01"
    )


@pytest.mark.requirement("CIBA-AERR-02")
def test_error_description_charset(ciba: CibaClient, refusal):
    """error_description uses only printable ASCII without quote and backslash."""
    ciba.check(error_description_charset, refusal)


@pytest.mark.requirement("CIBA-AERR-03")
def test_error_uri_charset(ciba: CibaClient, refusal):
    """error_uri, when present, uses only %x21 / %x23-5B / %x5D-7E."""
    ciba.check(error_uri_charset, refusal)


# --- status per error code -----------------------------------------------------------------------


@pytest.mark.requirement("CIBA-AERR-04")
@pytest.mark.parametrize("cause", ["no_hint", "repeated_parameter", "bad_requested_expiry"])
def test_invalid_request_status(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, cause
):
    """invalid_request comes with HTTP 400."""
    client = _poll(ciba_config, ciba_metadata)
    if cause == "no_hint":
        params, requirement = ciba.default_params(client, login_hint=None), "CIBA-AUTH-07"
    elif cause == "repeated_parameter":
        params, requirement = (
            ciba.default_params(client, extra=(("scope", "openid"),)),
            ("CIBA-AUTH-23"),
        )
    else:
        params, requirement = ciba.default_params(client, requested_expiry="-1"), "CIBA-AUTH-21"
    exchange = ciba.backchannel(client, params)
    if cause == "bad_requested_expiry" and error_code(exchange.response) != "invalid_request":
        pytest.skip("not applicable: the provider does not refuse requested_expiry=-1 (A-17)")
    expect_backchannel_error(ciba, exchange, "invalid_request", requirement=requirement)


@pytest.mark.requirement("CIBA-AERR-05")
def test_invalid_scope_status(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """invalid_scope (for an unknown scope value, if the provider refuses it) comes with 400."""
    client = _poll(ciba_config, ciba_metadata)
    params = ciba.default_params(client, scope="openid x_harness_unknown_scope")
    exchange = ciba.backchannel(client, params)
    if exchange.response is not None and 200 <= exchange.response.status < 300:
        pytest.skip("not applicable: the provider ignores unknown scope values (no invalid_scope)")
    code = error_code(exchange.response)
    if code not in {"invalid_scope", None}:
        # The code is CIBA-AUTH-05's business (test_unknown_scope_ignored_or_refused warns).
        pytest.skip(f"not applicable: the provider refuses an unknown scope with {code}")
    expect_backchannel_error(ciba, exchange, "invalid_scope", requirement="CIBA-AUTH-05")


@pytest.mark.requirement("CIBA-AERR-06")
def test_expired_login_hint_token_status(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """expired_login_hint_token comes with 400."""
    client = _poll(ciba_config, ciba_metadata)
    token = login_hint_token(ciba_config.users, "expired", client=client)
    if not token:
        pytest.skip(
            "not black-box testable here: no login_hint_token_hs256_key and no "
            "expired_login_hint_token in [users]"
        )
    params = ciba.default_params(client, login_hint=None, login_hint_token=token)
    exchange = ciba.backchannel(client, params)
    expect_backchannel_error(ciba, exchange, "expired_login_hint_token", requirement="CIBA-AUTH-12")


@pytest.mark.requirement("CIBA-AERR-07")
def test_unknown_user_id_status(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """unknown_user_id comes with 400."""
    exchange = _unknown_user(ciba, ciba_config, ciba_metadata)
    code = expect_backchannel_error(
        ciba,
        exchange,
        "unknown_user_id",
        requirement="CIBA-AUTH-09",
        tolerated={"invalid_request"},
    )
    if code != "unknown_user_id":
        pytest.skip(f"not applicable: the provider answers {code} for an unknown user (A-06)")


@pytest.mark.requirement("CIBA-AERR-08")
def test_unauthorized_client_status(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """An authenticated client that may not use CIBA gets 400 unauthorized_client
    (401 invalid_client warned, A-01)."""
    exchange = _not_allowed(ciba, ciba_config, ciba_metadata)
    expect_backchannel_error(
        ciba,
        exchange,
        "unauthorized_client",
        requirement="CIBA-AERR-08",
        tolerated={"invalid_client"},
    )


def _user_code_client(config, metadata):
    if not metadata.user_code_supported:
        pytest.skip("not applicable: the provider does not advertise user code support")
    if not config.users.user_code:
        pytest.skip("not covered: no [users] user_code configured")
    return require_client(config, metadata, user_code=True, feature="user codes")


@pytest.mark.requirement("CIBA-AERR-09")
def test_missing_user_code_status(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """missing_user_code comes with 400."""
    client = _user_code_client(ciba_config, ciba_metadata)
    exchange = ciba.backchannel(client, ciba.default_params(client, user_code=None))
    expect_backchannel_error(ciba, exchange, "missing_user_code", requirement="CIBA-AUTH-25")


@pytest.mark.requirement("CIBA-AERR-10")
def test_invalid_user_code_status(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """invalid_user_code comes with 400."""
    client = _user_code_client(ciba_config, ciba_metadata)
    wrong = "x" + (ciba_config.users.user_code or "")[::-1] + "9"
    exchange = ciba.backchannel(client, ciba.default_params(client, user_code=wrong))
    expect_backchannel_error(ciba, exchange, "invalid_user_code", requirement="CIBA-AUTH-26")


@pytest.mark.requirement("CIBA-AERR-11")
def test_invalid_binding_message_status(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """invalid_binding_message (for a long message, if the provider refuses it) comes with 400."""
    client = _poll(ciba_config, ciba_metadata)
    message = "Confirm payment " + "0123456789" * 30
    exchange = ciba.backchannel(client, ciba.default_params(client, binding_message=message))
    if exchange.response is not None and 200 <= exchange.response.status < 300:
        pytest.skip("not applicable: the provider accepts a 316-character binding message")
    expect_backchannel_error(ciba, exchange, "invalid_binding_message", requirement="CIBA-AUTH-19")


@pytest.mark.requirement("CIBA-AERR-12")
@pytest.mark.parametrize("cause", ["wrong_secret_basic", "unknown_client", "assertion_audience"])
def test_invalid_client_status(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, cause
):
    """invalid_client comes with 401 (§13); 400 without HTTP Basic is the provider's choice
    (RFC 6749 §5.2 "MAY return 401", A-01) and recorded, 400 after Basic is warned."""
    if cause == "wrong_secret_basic":
        exchange, requirement = _wrong_secret(ciba, ciba_config, ciba_metadata), "CIBA-CAUTH-02"
    elif cause == "unknown_client":
        client = _poll(ciba_config, ciba_metadata)
        auth = ClientAuthentication(client_id="harness-unknown-" + secrets.token_hex(6))
        exchange = ciba.backchannel(client, ciba.default_params(client), auth=auth)
        requirement = "CIBA-CAUTH-03"
    else:
        client = require_client(ciba_config, ciba_metadata, auth_method="private_key_jwt")
        auth = ClientAuthentication(audience="https://other-op.example.org/")
        exchange = ciba.backchannel(client, ciba.default_params(client), auth=auth)
        requirement = "CIBA-CAUTH-05"
    expect_backchannel_error(ciba, exchange, "invalid_client", requirement=requirement)


def blocked_login_hint(config) -> str | None:
    """A user the provider refuses by policy: `[users] blocked_login_hint` where the
    configuration offers it, else the first of `[reference_provider] blocked_users` of a
    reference-provider profile (the profile that seeds the provider also names them)."""
    hint = getattr(config.users, "blocked_login_hint", None)
    if hint:
        return str(hint)
    try:
        profile = tomllib.loads(config.source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    section = profile.get("reference_provider")
    blocked = section.get("blocked_users") if isinstance(section, dict) else None
    if isinstance(blocked, list) and blocked and isinstance(blocked[0], str):
        return blocked[0]
    return None


@pytest.mark.requirement("CIBA-AERR-13")
def test_access_denied_status(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """access_denied (a user the provider blocks before any interaction) comes with 403."""
    blocked = blocked_login_hint(ciba_config)
    if not blocked:
        pytest.skip(
            "not black-box testable here: needs a user the provider refuses by policy "
            "(no blocked user in the profile)"
        )
    client = _poll(ciba_config, ciba_metadata)
    exchange = ciba.backchannel(client, ciba.default_params(client, login_hint=blocked))
    expect_backchannel_error(ciba, exchange, "access_denied", requirement="CIBA-AERR-13")


# --- nothing left behind, no 5xx -------------------------------------------------------------------


@pytest.mark.slow  # wait-bound: started early (ciba_harness/pytest_plugin/_early.py)
@pytest.mark.requirement("CIBA-AERR-15")
def test_no_callback_after_rejected_request(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_inbox: NotificationInbox,
):
    """A rejected request of a ping or push client is never followed by a ping or push
    (the receiver is watched for about a second)."""
    clients = [
        c
        for mode in ("ping", "push")
        if ciba_metadata.supports_mode(mode)
        and (c := ciba_config.find_client(mode=mode)) is not None
    ]
    if not clients:
        pytest.skip("not applicable: no ping or push client (or mode) available")
    tokens, exchanges = [], []
    for client in clients:
        for requirement, overrides in (
            ("CIBA-AUTH-09", {"login_hint": ciba_config.users.unknown_login_hint}),
            ("CIBA-AUTH-07", {"login_hint": None}),
            ("CIBA-AUTH-23", {"extra": (("scope", "openid"),)}),
        ):
            params = ciba.default_params(client, **overrides)
            token = params.client_notification_token
            assert token is not None
            ciba_inbox.expect(token, client.delivery_mode)
            exchange = ciba.backchannel(client, params)
            ciba.check(refused, exchange, requirement=requirement)
            tokens.append(token)
            exchanges.append(exchange)
    deadline = time.monotonic() + WATCH_SECONDS
    for token in tokens:
        ciba_inbox.wait_for(token=token, timeout=max(0.0, deadline - time.monotonic()))
    ciba.check(no_notifications, ciba_inbox, tokens, exchanges=exchanges)


@pytest.mark.requirement("CIBA-AERR-16")
@pytest.mark.parametrize(
    "oddity", ["empty_body", "bad_percent_encoding", "invalid_utf8", "oversized_parameter"]
)
def test_odd_requests_get_no_server_error(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, oddity
):
    """Malformed requests get a 4xx, not a 5xx (5xx is no CIBA error code: warning)."""
    client = require_client(ciba_config, ciba_metadata, auth_method="client_secret_basic")
    request = build_backchannel_request(client, ciba_metadata, ciba.default_params(client))
    body = {
        "empty_body": b"",
        "bad_percent_encoding": request.body + b"&binding_message=%zz%",
        "invalid_utf8": request.body + b"&acr_values=%ff%fe%fd",
        "oversized_parameter": request.body + b"&x_harness_big=" + b"a" * 100_000,
    }[oddity]
    exchange = ciba.send(request.replace(body=body), label=f"backchannel ({oddity})", client=client)
    ciba.check_at(Severity.WARNING, not_server_error, exchange, requirement="CIBA-AERR-16")
