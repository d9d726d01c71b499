"""The authentication request: transport, parameters, hints, binding message, user code
(CIBA §7, §7.1, §7.1.2, §7.2, §13).

Errors are judged with `expect_backchannel_error`: the code against the requirement of the
test, the HTTP status of that code against CIBA-AERR-04..13. Accepted requests of ping and
push clients are denied afterwards, so that no later test meets them.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ciba_harness import (
    Flow,
    Severity,
    accepted,
    build_backchannel_request,
    describe_refusal,
    error_body_well_formed,
    error_code,
    error_code_is,
    expect_accepted,
    expect_backchannel_error,
    expect_error_status,
    fail,
    invalid_value_refused,
    issued_id_token,
    no_acknowledgement,
    not_server_error,
    parse_acknowledgement,
    record_choice,
    record_outcome,
    require_login_hint_token,
    retire,
    retire_if_accepted,
    send_and_accept,
    send_announced,
    tampered_signature,
    token_response_complete,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, ProviderConfig, ProviderMetadata

UNKNOWN_SCOPE = "x_harness_unknown_scope"


# --- helpers --------------------------------------------------------------------------------


def hints_supported(config) -> None:
    users = config.users
    client_signed = getattr(users, "login_hint_token_format", "") == "client_signed"
    if not (client_signed or users.login_hint_token_hs256_key or users.login_hint_token):
        pytest.skip(
            "not black-box testable here: no login_hint_token_hs256_key and no "
            "login_hint_token in [users]"
        )


# --- transport (§7, §7.1) ---------------------------------------------------------------------


@pytest.mark.requirement("CIBA-AUTH-01")
def test_plain_http_never_yields_auth_req_id(
    ciba: CibaClient, ciba_metadata: ProviderMetadata, poll_client
):
    """Plain http to the backchannel endpoint's host and path never yields an auth_req_id."""
    endpoint = ciba_metadata.backchannel_authentication_endpoint
    parts = urlsplit(endpoint)
    if parts.scheme != "https":
        pytest.skip("not applicable: the backchannel endpoint is not https (local test provider)")
    built = build_backchannel_request(poll_client, ciba_metadata, ciba.default_params(poll_client))
    netloc = parts.hostname or ""
    plain = urlunsplit(("http", netloc, parts.path, parts.query, ""))
    exchange = ciba.send(built.replace(url=plain), label="plain http probe", client=poll_client)
    response = exchange.response
    if response is not None and parse_acknowledgement(response) is not None:
        raise fail(
            "CIBA-AUTH-01",
            "The backchannel endpoint answers over plain http with an auth_req_id",
            expected="refusal, redirect, 4xx or no answer",
            actual=f"HTTP {response.status} with an auth_req_id",
            exchanges=[exchange],
        )


@pytest.mark.requirement("CIBA-AUTH-02")
def test_get_request_refused(ciba: CibaClient, poll_client):
    """A GET (parameters in the query) yields no auth_req_id; any refusal, in any form, passes
    (CIBA §7.1 defines only POST) and is recorded."""
    exchange = ciba.backchannel(poll_client, ciba.default_params(poll_client), method="GET")
    ciba.check(no_acknowledgement, exchange)
    record_choice("wrong_method_answer", describe_refusal(exchange), "GET, backchannel endpoint")


@pytest.mark.requirement("CIBA-AUTH-02")
def test_json_body_refused(ciba: CibaClient, poll_client):
    """A JSON body yields no auth_req_id: 415, 400 invalid_request (A-24) or any other refusal
    (a provider that reads no client credentials from it may say invalid_client); recorded."""
    exchange = ciba.backchannel(poll_client, ciba.default_params(poll_client), body_format="json")
    ciba.check(no_acknowledgement, exchange)
    record_choice("wrong_method_answer", describe_refusal(exchange), "JSON body, backchannel")


# --- scope -----------------------------------------------------------------------------------


@pytest.mark.requirement("CIBA-AUTH-03", "CIBA-AUTH-24", "CIBA-AERR-04")
def test_missing_scope(ciba: CibaClient, poll_client):
    """No scope: 400 invalid_request (invalid_scope tolerated with a warning, A-05)."""
    exchange = send_announced(ciba, poll_client, ciba.default_params(poll_client, scope=None))
    expect_backchannel_error(
        ciba, exchange, "invalid_request", requirement="CIBA-AUTH-03", tolerated={"invalid_scope"}
    )


@pytest.mark.requirement("CIBA-AUTH-04")
def test_scope_without_openid_recorded(ciba: CibaClient, poll_client):
    """scope without openid: 400 (invalid_scope or invalid_request) or 200; never 5xx (A-04)."""
    exchange = send_announced(ciba, poll_client, ciba.default_params(poll_client, scope="profile"))
    ciba.check(not_server_error, exchange, requirement="CIBA-AUTH-04")
    record_outcome(
        ciba, exchange, requirement="CIBA-AUTH-04", codes={"invalid_scope", "invalid_request"},
        latitude="scope_without_openid",
    )


@pytest.mark.requirement("CIBA-AUTH-05", "CIBA-AERR-05")
def test_unknown_scope_ignored_or_refused(ciba: CibaClient, poll_client):
    """An unknown scope value is ignored, granted or refused with invalid_scope: RFC 6749 §3.3
    lets the provider choose; which one is recorded (invalid_request instead of invalid_scope
    is warned)."""
    params = ciba.default_params(poll_client, scope=f"openid {UNKNOWN_SCOPE}")
    exchange = send_announced(ciba, poll_client, params)
    response = exchange.response
    if response is None or not 200 <= response.status < 300:
        code = expect_backchannel_error(
            ciba, exchange, "invalid_scope", requirement="CIBA-AUTH-05",
            tolerated={"invalid_request"},
        )
        record_choice("unknown_scope", "refused", f"HTTP {response.status if response else '-'} "
                      f"{code}")
        return
    ack = expect_accepted(ciba, exchange, requirement="CIBA-AUTH-05")
    flow = Flow(poll_client, params, exchange, ack, None, [exchange])
    ciba.approve(flow)
    ciba.poll(flow)
    tokens_exchange = flow.exchanges[-1]
    ciba.check(token_response_complete, tokens_exchange)
    assert tokens_exchange.response is not None
    tokens = tokens_exchange.response.json_object() or {}
    granted = tokens.get("scope")
    if granted is None:
        # RFC 6749 §5.1: an omitted scope means "as requested", unknown value included.
        record_choice("unknown_scope", "granted", "accepted; token response omits scope")
    elif isinstance(granted, str) and UNKNOWN_SCOPE in granted.split():
        record_choice("unknown_scope", "granted", f"token response scope {granted!r}")
    else:
        record_choice("unknown_scope", "ignored", f"token response scope {granted!r}")


@pytest.mark.requirement("CIBA-AUTH-06")
def test_scope_order_does_not_matter(ciba: CibaClient, poll_client):
    """The same scopes in another order are accepted."""
    params = ciba.default_params(poll_client, scope="openid profile")
    first = send_announced(ciba, poll_client, params)
    if first.response is None or not 200 <= first.response.status < 300:
        pytest.skip("not applicable: the provider refuses 'openid profile' for this client")
    send_and_accept(
        ciba,
        poll_client,
        ciba.default_params(poll_client, scope="profile openid"),
        requirement="CIBA-AUTH-06",
    )


# --- hints -----------------------------------------------------------------------------------


@pytest.mark.requirement("CIBA-AUTH-07", "CIBA-AUTH-24", "CIBA-AERR-04")
def test_no_hint(ciba: CibaClient, poll_client):
    """None of login_hint, login_hint_token, id_token_hint: 400 invalid_request."""
    exchange = send_announced(ciba, poll_client, ciba.default_params(poll_client, login_hint=None))
    expect_backchannel_error(ciba, exchange, "invalid_request", requirement="CIBA-AUTH-07")


@pytest.mark.requirement("CIBA-AUTH-08", "CIBA-AERR-04")
@pytest.mark.parametrize(
    "hints",
    [
        ("login_hint", "id_token_hint"),
        ("login_hint", "login_hint_token"),
        ("login_hint_token", "id_token_hint"),
        ("login_hint", "login_hint_token", "id_token_hint"),
    ],
    ids=lambda h: "+".join(h),
)
def test_several_hints(ciba: CibaClient, ciba_config: ProviderConfig, poll_client, hints):
    """Two or three (each valid) hints in one request: 400 invalid_request."""
    values: dict[str, str | None] = {"login_hint": None}
    if "login_hint" in hints:
        values["login_hint"] = ciba_config.users.login_hint
    if "login_hint_token" in hints:
        values["login_hint_token"] = require_login_hint_token(ciba_config, "valid", poll_client)
    if "id_token_hint" in hints:
        values["id_token_hint"] = issued_id_token(ciba, poll_client)
    exchange = send_announced(ciba, poll_client, ciba.default_params(poll_client, **values))
    expect_backchannel_error(ciba, exchange, "invalid_request", requirement="CIBA-AUTH-08")


@pytest.mark.requirement("CIBA-AUTH-09", "CIBA-AERR-07")
def test_unknown_login_hint(ciba: CibaClient, ciba_config: ProviderConfig, poll_client):
    """A login_hint naming no user: 400 unknown_user_id (invalid_request warned, A-06)."""
    params = ciba.default_params(poll_client, login_hint=ciba_config.users.unknown_login_hint)
    exchange = send_announced(ciba, poll_client, params)
    expect_backchannel_error(
        ciba,
        exchange,
        "unknown_user_id",
        requirement="CIBA-AUTH-09",
        tolerated={"invalid_request"},
    )


@pytest.mark.requirement("CIBA-AUTH-10")
def test_id_token_hint_from_earlier_flow(ciba: CibaClient, poll_client):
    """An ID token this provider issued to this client identifies the user: accepted.
    Which hint types an OP supports is its choice (CIBA §7.1 OPTIONAL, CIBA-AUTH-29): a
    well-formed refusal is recorded, not failed."""
    id_token = issued_id_token(ciba, poll_client)
    params = ciba.default_params(poll_client, login_hint=None, id_token_hint=id_token)
    exchange = send_announced(ciba, poll_client, params)
    response = exchange.response
    if response is not None and 400 <= response.status < 500:
        answered = error_code(response)
        code = expect_backchannel_error(
            ciba, exchange, {"invalid_request", "unknown_user_id"}, requirement="CIBA-AUTH-10",
            tolerated={answered} - {"invalid_client"} if answered is not None else (),
        )
        record_choice("hint_types", f"id_token_hint refused ({code})", describe_refusal(exchange))
        return
    expect_accepted(ciba, exchange, requirement="CIBA-AUTH-10")
    record_choice("hint_types", "id_token_hint accepted", "an ID token from an earlier flow")


def _signed_elsewhere(token: str) -> str:
    """The same header and claims, signed with a key this provider never used."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": header.get("kid")})


@pytest.mark.requirement("CIBA-AUTH-11")
@pytest.mark.parametrize("forgery", ["bad_signature", "other_key"])
def test_forged_id_token_hint(ciba: CibaClient, poll_client, forgery):
    """An id_token_hint this provider did not issue: 400 unknown_user_id or invalid_request
    (other codes such as invalid_id_token_hint warned, A-22)."""
    genuine = issued_id_token(ciba, poll_client)
    if forgery == "bad_signature":
        forged = tampered_signature(genuine)
    else:
        forged = _signed_elsewhere(genuine)
    params = ciba.default_params(poll_client, login_hint=None, id_token_hint=forged)
    exchange = send_announced(ciba, poll_client, params)
    code = error_code(exchange.response)
    expect_backchannel_error(
        ciba,
        exchange,
        {"unknown_user_id", "invalid_request"},
        requirement="CIBA-AUTH-11",
        tolerated={code} if code and code not in {"invalid_client", "unauthorized_client"} else (),
    )


@pytest.mark.requirement("CIBA-AUTH-12", "CIBA-AUTH-13")
def test_valid_login_hint_token(ciba: CibaClient, ciba_config: ProviderConfig, poll_client):
    """A valid login_hint_token of the configured format identifies the user: accepted
    (precondition of CIBA-AUTH-12/13)."""
    token = require_login_hint_token(ciba_config, "valid", poll_client)
    send_and_accept(
        ciba,
        poll_client,
        ciba.default_params(poll_client, login_hint=None, login_hint_token=token),
        requirement="CIBA-AUTH-12",
    )


@pytest.mark.requirement("CIBA-AUTH-12", "CIBA-AERR-06")
def test_expired_login_hint_token(ciba: CibaClient, ciba_config: ProviderConfig, poll_client):
    """An expired login_hint_token: 400 expired_login_hint_token."""
    token = require_login_hint_token(ciba_config, "expired", poll_client)
    params = ciba.default_params(poll_client, login_hint=None, login_hint_token=token)
    exchange = send_announced(ciba, poll_client, params)
    expect_backchannel_error(ciba, exchange, "expired_login_hint_token", requirement="CIBA-AUTH-12")


@pytest.mark.requirement("CIBA-AUTH-13", "CIBA-AERR-07")
def test_login_hint_token_of_unknown_user(
    ciba: CibaClient, ciba_config: ProviderConfig, poll_client
):
    """A well-formed login_hint_token naming no user: 400 unknown_user_id."""
    token = require_login_hint_token(ciba_config, "unknown", poll_client)
    params = ciba.default_params(poll_client, login_hint=None, login_hint_token=token)
    exchange = send_announced(ciba, poll_client, params)
    expect_backchannel_error(ciba, exchange, "unknown_user_id", requirement="CIBA-AUTH-13")


@pytest.mark.requirement("CIBA-AUTH-13", "CIBA-AERR-04")
def test_malformed_login_hint_token(ciba: CibaClient, ciba_config: ProviderConfig, poll_client):
    """A malformed login_hint_token: 400 invalid_request."""
    hints_supported(ciba_config)
    params = ciba.default_params(poll_client, login_hint=None, login_hint_token="not.a-token")
    exchange = send_announced(ciba, poll_client, params)
    expect_backchannel_error(ciba, exchange, "invalid_request", requirement="CIBA-AUTH-13")


# --- client_notification_token ------------------------------------------------------------------


@pytest.mark.requirement("CIBA-AUTH-14", "CIBA-AUTH-24", "CIBA-AERR-04")
def test_notification_token_required(ciba: CibaClient, notified_client):
    """A ping or push client without client_notification_token: 400 invalid_request."""
    params = ciba.default_params(notified_client, client_notification_token=None)
    exchange = send_announced(ciba, notified_client, params)
    expect_backchannel_error(ciba, exchange, "invalid_request", requirement="CIBA-AUTH-14")


@pytest.mark.requirement("CIBA-AUTH-15")
def test_notification_token_of_1024_characters(ciba: CibaClient, notified_client):
    """A valid 1024-character client_notification_token is accepted."""
    token = secrets.token_urlsafe(768)
    assert len(token) == 1024
    params = ciba.default_params(notified_client, client_notification_token=token)
    flow = send_and_accept(ciba, notified_client, params, requirement="CIBA-AUTH-15")
    retire(ciba, flow)


@pytest.mark.requirement("CIBA-AUTH-15")
@pytest.mark.parametrize("shape", ["1025_characters", "embedded_space"])
def test_notification_token_out_of_syntax_recorded(ciba: CibaClient, notified_client, shape):
    """A 1025-character token or one with a space: refused (invalid_request) or accepted."""
    token = secrets.token_urlsafe(769)[:1025] if shape == "1025_characters" else "abc def-42"
    params = ciba.default_params(notified_client, client_notification_token=token)
    exchange = send_announced(ciba, notified_client, params)
    record_outcome(ciba, exchange, requirement="CIBA-AUTH-15", codes={"invalid_request"},
                   latitude="notification_token_syntax")
    retire_if_accepted(ciba, notified_client, params, exchange)


@pytest.mark.requirement("CIBA-AUTH-16")
def test_poll_client_sending_notification_token_recorded(ciba: CibaClient, poll_client):
    """A poll client sending client_notification_token: ignored or invalid_request (A-08)."""
    params = ciba.default_params(poll_client, client_notification_token=secrets.token_urlsafe(24))
    exchange = send_announced(ciba, poll_client, params)
    record_outcome(ciba, exchange, requirement="CIBA-AUTH-16", codes={"invalid_request"},
                   latitude="poll_client_notification_token")


# --- optional parameters -----------------------------------------------------------------------


@pytest.mark.requirement("CIBA-AUTH-17")
def test_acr_values_accepted(ciba: CibaClient, poll_client):
    """acr_values (space-separated, in preference order) is accepted."""
    params = ciba.default_params(poll_client, acr_values="urn:harness:acr:high urn:harness:acr:low")
    send_and_accept(ciba, poll_client, params, requirement="CIBA-AUTH-17")


@pytest.mark.requirement("CIBA-AUTH-18")
@pytest.mark.parametrize("message", ["1234", "W4SCT"])
def test_short_binding_message_completes(ciba: CibaClient, poll_client, message):
    """A short plain binding message is accepted and the flow completes with tokens."""
    params = ciba.default_params(poll_client, binding_message=message)
    flow = send_and_accept(ciba, poll_client, params, requirement="CIBA-AUTH-18")
    ciba.approve(flow)
    result, _ = ciba.poll(flow)
    ciba.check(token_response_complete, flow.exchanges[-1])


@pytest.mark.requirement("CIBA-AUTH-19", "CIBA-AERR-11")
@pytest.mark.parametrize(
    "message",
    [
        "Please confirm the transfer of 1250 EUR to account DE89 3704 0044 0532 0130 00 now",
        "Überweisung bestätigen: Café Müller",
        "\U0001f355 Pizza order 4711 \U0001f355",
    ],
    ids=["long", "non_ascii", "emoji"],
)
def test_awkward_binding_message(ciba: CibaClient, poll_client, message):
    """A long, non-ASCII or emoji binding message: invalid_binding_message or accepted (the
    limits are the OP's, A-16: recorded); refused with invalid_request instead of the code
    §13 defines for it: a warning."""
    params = ciba.default_params(poll_client, binding_message=message)
    exchange = send_announced(ciba, poll_client, params)
    kind = ("long" if len(message) > 40 else "emoji" if any(ord(c) > 0xFFFF for c in message)
            else "non-ASCII")
    if exchange.response is not None and 200 <= exchange.response.status < 300:
        expect_accepted(ciba, exchange, requirement="CIBA-AUTH-19")
        record_choice("binding_message_policy", f"{kind} message accepted",
                      f"{len(message)} characters")
        return
    code = expect_backchannel_error(ciba, exchange, "invalid_binding_message",
                                    requirement="CIBA-AUTH-19", tolerated={"invalid_request"})
    record_choice("binding_message_policy", f"{kind} message refused ({code})",
                  f"{len(message)} characters")


@pytest.mark.requirement("CIBA-AUTH-20")
def test_requested_expiry_accepted(ciba: CibaClient, poll_client):
    """requested_expiry=30 is accepted; whether expires_in honours it is recorded."""
    params = ciba.default_params(poll_client, requested_expiry=30)
    flow = send_and_accept(ciba, poll_client, params, requirement="CIBA-AUTH-20")
    ack = flow.acknowledgement
    assert ack is not None
    # The provider MAY honour it (CIBA §7.1): a choice, not a verdict.
    honoured = ack.expires_in is not None and ack.expires_in <= 30
    record_choice("requested_expiry", "honoured" if honoured else "not reflected in expires_in",
                  f"requested 30, expires_in {ack.expires_in}")


@pytest.mark.requirement("CIBA-AUTH-21")
@pytest.mark.parametrize("value", ["0", "-5", "soon"], ids=["zero", "negative", "non_numeric"])
def test_invalid_requested_expiry_recorded(ciba: CibaClient, poll_client, value):
    """requested_expiry 0, negative or non-numeric: 400 invalid_request (CIBA §13, "invalid
    value"); accepting it is a warning (A-17), another error code too."""
    params = ciba.default_params(poll_client, requested_expiry=value)
    exchange = send_announced(ciba, poll_client, params)
    if not ciba.check_at(Severity.WARNING, invalid_value_refused, exchange):
        return
    code = error_code(exchange.response)
    ciba.check(error_body_well_formed, exchange, requirement="CIBA-AERR-01",
               allow_extra_members=True)
    if code != "invalid_request":
        ciba.check_at(Severity.WARNING, error_code_is, exchange, {"invalid_request"},
                      requirement="CIBA-AUTH-21")
    expect_error_status(ciba, exchange, code, requirement="CIBA-AUTH-21")


@pytest.mark.requirement("CIBA-AUTH-22")
def test_unknown_parameter_ignored(ciba: CibaClient, poll_client):
    """An unknown extra parameter does not break the request (warning if it does)."""
    params = ciba.default_params(poll_client, extra=(("x_harness_probe", "1"),))
    exchange = send_announced(ciba, poll_client, params)
    if ciba.check_at(Severity.WARNING, accepted, exchange, requirement="CIBA-AUTH-22"):
        expect_accepted(ciba, exchange, requirement="CIBA-AUTH-22")


@pytest.mark.requirement("CIBA-AUTH-23", "CIBA-AUTH-24", "CIBA-AERR-04")
@pytest.mark.parametrize("name", ["scope", "login_hint"])
def test_repeated_parameter(ciba: CibaClient, ciba_config: ProviderConfig, poll_client, name):
    """A parameter sent twice (same value): 400 invalid_request."""
    value = "openid" if name == "scope" else ciba_config.users.login_hint
    params = ciba.default_params(poll_client, extra=((name, value),))
    exchange = send_announced(ciba, poll_client, params)
    expect_backchannel_error(ciba, exchange, "invalid_request", requirement="CIBA-AUTH-23")


@pytest.mark.requirement("CIBA-AUTH-23")
def test_empty_repeated_parameter_recorded(ciba: CibaClient, poll_client):
    """scope sent a second time without a value: RFC 6749 §3.1 treats it as omitted, so the
    request carries one scope and may be accepted; a refusal as a repeat (invalid_request)
    is also seen. Which one is recorded; no auth_req_id is wrong either way."""
    params = ciba.default_params(poll_client, extra=(("scope", ""),))
    exchange = send_announced(ciba, poll_client, params)
    response = exchange.response
    if response is not None and 200 <= response.status < 300:
        expect_accepted(ciba, exchange, requirement="CIBA-AUTH-23")
        record_choice("empty_parameter", "treated as omitted", "scope=openid&...&scope= accepted")
        return
    expect_backchannel_error(ciba, exchange, "invalid_request", requirement="CIBA-AUTH-23")
    record_choice("empty_parameter", "counted as a repeat", describe_refusal(exchange))


# --- user code (§7.1.2) --------------------------------------------------------------------------


@pytest.mark.requirement("CIBA-AUTH-25", "CIBA-AERR-09")
def test_user_code_missing(ciba: CibaClient, user_code_client):
    """A user-code client's request without user_code: 400 missing_user_code."""
    params = ciba.default_params(user_code_client, user_code=None)
    exchange = send_announced(ciba, user_code_client, params)
    expect_backchannel_error(ciba, exchange, "missing_user_code", requirement="CIBA-AUTH-25")


@pytest.mark.requirement("CIBA-AUTH-26", "CIBA-AERR-10")
def test_user_code_wrong(ciba: CibaClient, ciba_config: ProviderConfig, user_code_client):
    """A user-code client's request with a wrong user_code: 400 invalid_user_code."""
    wrong = "x" + (ciba_config.users.user_code or "")[::-1] + "9"
    params = ciba.default_params(user_code_client, user_code=wrong)
    exchange = send_announced(ciba, user_code_client, params)
    expect_backchannel_error(ciba, exchange, "invalid_user_code", requirement="CIBA-AUTH-26")


@pytest.mark.requirement("CIBA-AUTH-27")
def test_user_code_right(ciba: CibaClient, ciba_config: ProviderConfig, user_code_client):
    """A user-code client's request with the user's code is accepted."""
    params = ciba.default_params(user_code_client, user_code=ciba_config.users.user_code)
    send_and_accept(ciba, user_code_client, params, requirement="CIBA-AUTH-27")


@pytest.mark.requirement("CIBA-AUTH-28")
def test_user_code_from_client_not_registered_for_it(
    ciba: CibaClient, ciba_config: ProviderConfig, poll_client
):
    """user_code from a client not registered for it: ignored or refused (A-07); recorded."""
    code = ciba_config.users.user_code or "4711"
    exchange = send_announced(ciba, poll_client, ciba.default_params(poll_client, user_code=code))
    record_outcome(ciba, exchange, requirement="CIBA-AUTH-28", codes={"invalid_request"},
                   latitude="user_code_unregistered")
