"""The send-and-judge sequences that suites share: each sends through the test's `CibaClient`
(the `ciba` fixture) and judges the answer with registered checks. A vendor writing their own
tests imports them from here (or from `ciba_harness`).

Errors are judged in a fixed order, so that a failure is attributed to the rule it proves
broken: first whether the provider refused or accepted (the requirement under test), then the
shape of an error body (CIBA-AERR-01), then the error code (the requirement under test), last
the HTTP status that code must carry (CIBA-AERR-04..13). A sequence that cannot run against
the provider described skips the test with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ciba_harness.checks._backchannel import (
    ERROR_STATUS,
    accepted,
    describe_refusal,
)
from ciba_harness.checks._choices import record_choice
from ciba_harness.checks._delivery import callback_arrived
from ciba_harness.checks._fapi import cnf_matches, fapi_clients, fapi_severity
from ciba_harness.checks._responses import (
    ack_has_auth_req_id,
    error_body_well_formed,
    error_code_is,
    not_server_error,
    refused,
    status_is,
    token_response_complete,
)
from ciba_harness.client._client import CibaClient, Flow
from ciba_harness.client._drivers import Decision
from ciba_harness.client._health import guarded_callback_wait
from ciba_harness.client._receiver import REDIRECT_TARGET_PATH
from ciba_harness.client._tls import certificate_thumbprint
from ciba_harness.core._errors import Severity, TransportError
from ciba_harness.core._http import Exchange, HttpRequest
from ciba_harness.core._requests import (
    Acknowledgement,
    BackchannelParams,
    RequestObjectSpec,
    error_code,
    login_hint_token,
    parse_acknowledgement,
)
from ciba_harness.pytest_plugin import require_client

if TYPE_CHECKING:
    from ciba_harness.client._inbox import NotificationInbox
    from ciba_harness.core._config import ClientConfig, ProviderConfig
    from ciba_harness.core._discovery import ProviderMetadata
    from ciba_harness.core._notifications import Notification

__all__ = [
    "FIRST_CALLBACK",
    "INVALID_REQUEST_OBJECT",
    "accept_signed",
    "client_with_method",
    "complete_flow",
    "expect_accepted",
    "expect_backchannel_error",
    "expect_callback",
    "expect_certificate_bound",
    "expect_error_status",
    "expect_flow_tokens",
    "expect_signed_request_refused",
    "fapi_client_for",
    "fapi_rsa_key",
    "flow_callbacks",
    "issued_id_token",
    "notification_wait",
    "record_outcome",
    "redeem",
    "redirected_callbacks",
    "require_login_hint_token",
    "retire",
    "retire_if_accepted",
    "second_fapi_client",
    "send_and_accept",
    "send_announced",
    "send_registration",
    "send_signed",
    "start_expiring",
    "start_signed",
]

#: tolerated (warned) instead of invalid_request for a broken request object (ambiguity A-03)
INVALID_REQUEST_OBJECT = frozenset({"invalid_request_object"})


# --- the authentication request -------------------------------------------------------------


def expect_error_status(
    ciba: CibaClient, exchange: Exchange, code: str | None, *, requirement: str
) -> None:
    """The status the error code must carry (CIBA §13); unknown codes: 400 for `requirement`."""
    if code is not None and code in ERROR_STATUS:
        status_requirement, statuses = ERROR_STATUS[code]
        ciba.check(status_is, exchange, statuses, requirement=status_requirement)
        if code == "invalid_client":
            # §13 pairs invalid_client with 401; RFC 6749 §5.2 makes 401 a MUST only
            # when the client used the Authorization header ("MAY return 401" otherwise), so
            # 400 without Basic is the provider's choice; with Basic it is warned (the
            # CIBA-CAUTH-02 test fails it).
            status = exchange.response.status if exchange.response is not None else None
            basic = (exchange.request.header("authorization") or "").lower().startswith("basic")
            record_choice("invalid_client_status",
                          f"{status} {'after HTTP Basic' if basic else 'without HTTP Basic'}",
                          "backchannel endpoint")
            if basic:
                ciba.check_at(
                    Severity.WARNING, status_is, exchange, {401}, requirement=status_requirement
                )
    else:
        ciba.check(status_is, exchange, {400}, requirement=requirement)


def expect_backchannel_error(
    ciba: CibaClient,
    exchange: Exchange,
    codes: str | Collection[str],
    *,
    requirement: str,
    tolerated: Collection[str] = (),
    tolerated_severity: Severity = Severity.WARNING,
) -> str | None:
    """Judge a backchannel error: refused (`requirement`), JSON error body (CIBA-AERR-01),
    code in `codes` (`requirement`; a code in `tolerated` is recorded at
    `tolerated_severity`), then the status of that code (CIBA-AERR-04..13)."""
    wanted = {codes} if isinstance(codes, str) else set(codes)
    ciba.check(refused, exchange, requirement=requirement)
    ciba.check(
        error_body_well_formed, exchange, requirement="CIBA-AERR-01", allow_extra_members=True
    )
    code = error_code(exchange.response)
    if code in tolerated and code not in wanted:
        ciba.check_at(
            tolerated_severity, error_code_is, exchange, wanted, requirement=requirement
        )
    else:
        ciba.check(error_code_is, exchange, wanted, requirement=requirement)
    expect_error_status(ciba, exchange, code, requirement=requirement)
    return code


def expect_accepted(ciba: CibaClient, exchange: Exchange, *, requirement: str) -> Acknowledgement:
    """The request was accepted (`requirement`) and carries an auth_req_id (CIBA-ACK-03)."""
    ciba.check(accepted, exchange, requirement=requirement)
    assert exchange.response is not None
    ack = parse_acknowledgement(exchange.response)
    if ack is None:
        ciba.check(ack_has_auth_req_id, exchange)
    assert ack is not None
    return ack


def send_announced(
    ciba: CibaClient, client: ClientConfig, params: BackchannelParams, **options: Any
) -> Exchange:
    """Send an authentication request; a ping/push client's notification token is announced
    to the inbox first, so that a callback the request (wrongly) causes is answered and seen."""
    token = params.client_notification_token
    if token and ciba.inbox is not None and client.delivery_mode in {"ping", "push"}:
        ciba.inbox.expect(token, client.delivery_mode)
    return ciba.backchannel(client, params, **options)


def send_and_accept(
    ciba: CibaClient,
    client: ClientConfig,
    params: BackchannelParams,
    *,
    requirement: str,
    **options: Any,
) -> Flow:
    """Send a request that must be accepted (announced as in `send_announced`). Returns the
    started flow (judged against `requirement`)."""
    exchange = send_announced(ciba, client, params, **options)
    ack = expect_accepted(ciba, exchange, requirement=requirement)
    return Flow(client, params, exchange, ack, params.client_notification_token, [exchange])


def retire(ciba: CibaClient, flow: Flow) -> None:
    """Best effort: deny a ping/push flow a test leaves behind, so no later test meets it.

    Poll flows are left pending (nothing is ever sent for them)."""
    if flow.client.delivery_mode == "poll" or flow.acknowledgement is None:
        return
    try:
        ciba.deny(flow)
    except Exception:  # noqa: BLE001 - cleanup only; the test has been judged already
        pass


def retire_if_accepted(
    ciba: CibaClient, client: ClientConfig, params: BackchannelParams, exchange: Exchange
) -> None:
    """`retire` the flow a request started, if the provider acknowledged it."""
    if exchange.response is None:
        return
    ack = parse_acknowledgement(exchange.response)
    if ack is not None:
        retire(ciba, Flow(client, params, exchange, ack, params.client_notification_token))


def record_outcome(
    ciba: CibaClient, exchange: Exchange, *, requirement: str, codes: set[str], latitude: str
) -> None:
    """For rows the spec leaves to the provider: the outcome is a provider choice, recorded,
    never a failure. An error answer must still be well-formed and carry its code's status
    (CIBA §13, MUST); a 5xx is warned (CIBA-AERR-16: no CIBA answer, a crash on odd input)."""
    response = exchange.response
    if response is not None and 400 <= response.status < 500:
        ciba.check(
            error_body_well_formed, exchange, requirement="CIBA-AERR-01", allow_extra_members=True
        )
        code = error_code(response)
        if code in ERROR_STATUS:
            expect_error_status(ciba, exchange, code, requirement=requirement)
        named = "" if code in codes else f" (not {' or '.join(sorted(codes))})"
        record_choice(latitude, f"refused: {code}{named}", describe_refusal(exchange))
        return
    ciba.check_at(Severity.WARNING, not_server_error, exchange, requirement=requirement)
    if response is not None and 200 <= response.status < 300:
        record_choice(latitude, "accepted", f"HTTP {response.status}")


def client_with_method(
    config: ProviderConfig, metadata: ProviderMetadata, method: str, **criteria: Any
) -> ClientConfig:
    """A client authenticating with `method` (and matching `criteria`), or skip: the provider
    does not list the method in token_endpoint_auth_methods_supported, or no such client is
    configured."""
    if metadata.auth_methods and method not in metadata.auth_methods:
        pytest.skip(f"not applicable: {method} is not in token_endpoint_auth_methods_supported")
    return require_client(config, metadata, auth_method=method, feature=method, **criteria)


def require_login_hint_token(
    config: ProviderConfig, kind: str, client: ClientConfig | None = None
) -> str:
    """A login_hint_token of `kind` (valid, expired, unknown) for `client`, or skip: the token
    format is deployment-defined, so it needs [users] login_hint_token_format =
    "client_signed", login_hint_token_hs256_key or static tokens."""
    token = login_hint_token(config.users, kind, client=client)
    if not token:
        pytest.skip(
            f"not black-box testable here: no login_hint_token_hs256_key and no {kind} "
            "login_hint_token in [users] (the token format is deployment-defined)"
        )
    return token


def send_registration(ciba: CibaClient, endpoint: str, document: dict[str, Any]) -> Exchange:
    """POST an RFC 7591 dynamic registration request (the client metadata as JSON)."""
    request = HttpRequest(
        "POST",
        endpoint,
        (("Content-Type", "application/json"), ("Accept", "application/json")),
        json.dumps(document).encode(),
    )
    return ciba.send(request, label="registration")


# --- tokens ----------------------------------------------------------------------------------


def redeem(
    ciba: CibaClient, client: ClientConfig, **overrides: Any
) -> tuple[Flow, dict[str, Any], Exchange]:
    """Start, approve and poll one flow (CIBA-TOKEN-14 for the token response); the flow, the
    token response body and its exchange."""
    flow = ciba.start(client, **overrides)
    ciba.approve(flow)
    ciba.poll(flow)
    exchange = flow.exchanges[-1]
    ciba.check(token_response_complete, exchange, requirement="CIBA-TOKEN-14")
    assert exchange.response is not None
    return flow, exchange.response.json_object() or {}, exchange


def start_expiring(
    ciba: CibaClient, config: ProviderConfig, client: ClientConfig
) -> tuple[Flow, float]:
    """Start a flow asking for the budget's short lifetime (`requested_expiry`): the flow and
    the monotonic time its acknowledged lifetime ends; skip when waiting for that would take
    longer than budgets.max_wait (the provider ignored requested_expiry, A-17)."""
    flow = ciba.start(client, requested_expiry=config.budgets.requested_expiry)
    ack = flow.acknowledgement
    assert ack is not None
    expires_in = ack.expires_in or config.budgets.requested_expiry
    if expires_in > config.budgets.max_wait:
        pytest.skip(
            f"not covered: expires_in is {expires_in} s despite requested_expiry (A-17), "
            f"more than budgets.max_wait={config.budgets.max_wait:g} s"
        )
    return flow, ack.received_at + expires_in


_ID_TOKENS: dict[tuple[str, str], str] = {}


def issued_id_token(ciba: CibaClient, client: ClientConfig) -> str:
    """An ID token this provider issued to `client` in a successful poll flow (one flow per
    issuer and client for the whole session)."""
    key = (ciba.config.issuer, client.client_id)
    if key not in _ID_TOKENS:
        _, tokens, _ = redeem(ciba, client)
        _ID_TOKENS[key] = str(tokens["id_token"])
    return _ID_TOKENS[key]


# --- ping and push callbacks ------------------------------------------------------------------


def notification_wait(config: ProviderConfig) -> float:
    """How long an expected callback may take to arrive."""
    return min(config.budgets.max_wait, 10.0)


def flow_callbacks(
    inbox: NotificationInbox,
    flow: Flow,
    *,
    timeout: float,
    count: int = 1,
    expected: bool = False,
) -> list[Notification]:
    """The flow's callbacks at the notification endpoint (not at the redirect target).

    `expected`: the provider must call now; the wait goes through the session's notification
    breaker (fails at once while no notification ever arrives, see docs/robustness.md)."""

    def wait() -> list[Notification]:
        return inbox.wait_for_flow(
            token=flow.notification_token,
            auth_req_id=flow.auth_req_id,
            timeout=timeout,
            count=count,
        )

    notes = guarded_callback_wait(inbox, wait, timeout=timeout) if expected else wait()
    return [n for n in notes if n.path != REDIRECT_TARGET_PATH]


def redirected_callbacks(
    inbox: NotificationInbox, flow: Flow, *, timeout: float
) -> list[Notification]:
    """Callbacks of this flow that reached the redirect target (a followed redirect): matched
    by the flow's bearer token or auth_req_id, so other tests' callbacks (tests run
    concurrently, _early.py) never count."""
    return inbox.wait_for_flow(
        token=flow.notification_token,
        auth_req_id=flow.auth_req_id,
        path=REDIRECT_TARGET_PATH,
        timeout=timeout,
    )


#: what a flow of each mode waits for first: (requirement when nothing comes, what it is)
FIRST_CALLBACK = {"ping": ("CIBA-PING-01", "ping"), "push": ("CIBA-PUSH-01", "token push")}


def expect_callback(
    ciba: CibaClient,
    config: ProviderConfig,
    inbox: NotificationInbox,
    flow: Flow,
    *,
    requirement: str | None = None,
    what: str | None = None,
    guarded: bool = True,
) -> Notification:
    """The flow's first callback; `requirement` (by default CIBA-PING-01 for a ping client,
    CIBA-PUSH-01 for a push client) fails when none arrives within `notification_wait`.
    `guarded`: the wait goes through the session's notification breaker."""
    default_requirement, default_what = FIRST_CALLBACK[flow.client.delivery_mode]
    waited = notification_wait(config)
    notes = flow_callbacks(inbox, flow, timeout=waited, expected=guarded)
    if not notes and (abandoned := inbox.abandoned(flow.notification_token)):
        # The provider did call; the receiver could not read it in time: no provider verdict.
        raise TransportError(
            f"the provider sent {abandoned} callback(s) with this flow's bearer token but closed "
            "the connection before the harness's receiver had read the body: the receiver "
            "answered slower than the provider's timeout for notification calls (a busy "
            "harness machine?); run again on a quieter machine"
        )
    ciba.check(callback_arrived, notes, requirement=requirement or default_requirement,
               what=what or default_what, waited=waited)
    return notes[0]


# --- signed requests and FAPI-CIBA -------------------------------------------------------------


def send_signed(
    ciba: CibaClient, client: ClientConfig, spec: RequestObjectSpec | None = None, **overrides: Any
) -> Exchange:
    """A request built from `ciba.default_params(client, **overrides)`, signed per `spec`
    (default: a valid request object)."""
    return ciba.backchannel(client, ciba.default_params(client, **overrides),
                            signed=spec or RequestObjectSpec())


def start_signed(
    ciba: CibaClient, client: ClientConfig, spec: RequestObjectSpec | None = None, **overrides: Any
) -> Flow:
    """A valid, signed request (acknowledgement required, as `ciba.start`)."""
    return ciba.start(client, signed=spec or RequestObjectSpec(), **overrides)


def accept_signed(
    ciba: CibaClient,
    client: ClientConfig,
    requirement: str,
    spec: RequestObjectSpec | None = None,
    **overrides: Any,
) -> Flow:
    """A signed request that must be accepted (`requirement`); the flow is retired."""
    flow = send_and_accept(ciba, client, ciba.default_params(client, **overrides),
                           requirement=requirement, signed=spec or RequestObjectSpec())
    retire(ciba, flow)
    return flow


def expect_signed_request_refused(
    ciba: CibaClient,
    exchange: Exchange,
    requirement: str,
    codes: Collection[str] = ("invalid_request",),
    tolerated: Collection[str] = INVALID_REQUEST_OBJECT,
) -> None:
    """A (signed) request the provider must refuse: `codes` (invalid_request), with
    invalid_request_object warned (A-03)."""
    expect_backchannel_error(ciba, exchange, set(codes), requirement=requirement,
                             tolerated=tolerated)


def complete_flow(
    ciba: CibaClient,
    config: ProviderConfig,
    inbox: NotificationInbox,
    flow: Flow,
    *,
    decision: Decision = "approve",
) -> Exchange:
    """Decide, then collect the result the way the client's mode does: the token response
    exchange (after the ping in ping mode, by polling in poll mode)."""
    ciba.decide(flow, decision)
    if flow.client.delivery_mode == "ping":
        expect_callback(ciba, config, inbox, flow, guarded=False)
        exchange = ciba.token(flow.client, flow.auth_req_id)
        flow.exchanges.append(exchange)
        return exchange
    ciba.poll(flow)
    return flow.exchanges[-1]


def expect_flow_tokens(ciba: CibaClient, flow: Flow, exchange: Exchange) -> dict[str, Any]:
    """A complete token response (CIBA-TOKEN-14) with a valid ID token; its body."""
    ciba.check(token_response_complete, exchange, requirement="CIBA-TOKEN-14")
    return ciba.expect_tokens(flow, exchange)


def fapi_client_for(
    config: ProviderConfig,
    metadata: ProviderMetadata,
    mode: str,
    auth: str,
    *,
    exclude: Collection[str] = (),
) -> ClientConfig:
    """The first FAPI-CIBA client of `mode` authenticating with `auth` ("private_key_jwt" or
    "mtls"), or skip naming what is missing."""
    if metadata.delivery_modes and not metadata.supports_mode(mode):
        pytest.skip(f"not applicable: the provider does not advertise {mode} mode")
    clients = fapi_clients(config, mode=mode, auth=auth, exclude=exclude)
    if not clients:
        pytest.skip(
            f"not covered: no FAPI-CIBA {mode} client with {auth} configured (a confidential "
            "client with a private key to sign request objects and a client certificate)"
        )
    return clients[0]


def second_fapi_client(
    config: ProviderConfig, metadata: ProviderMetadata, client: ClientConfig
) -> ClientConfig:
    """Another FAPI-CIBA client (same mode preferred), for the two-client modules; or skip."""
    for mode in (client.delivery_mode, "poll", "ping"):
        for auth in ("private_key_jwt", "mtls"):
            others = fapi_clients(config, mode=mode, auth=auth, exclude=(client.name,))
            if others and (not metadata.delivery_modes or metadata.supports_mode(mode)):
                return others[0]
    pytest.skip("not covered: a second FAPI-CIBA client is needed")


def expect_certificate_bound(
    ciba: CibaClient,
    config: ProviderConfig,
    metadata: ProviderMetadata,
    client: ClientConfig,
    access_token: str,
) -> None:
    """FAPI-CIBA-21: the access token works only with the client's certificate (userinfo
    with and without it; introspection's cnf names the certificate's thumbprint)."""
    severity = fapi_severity(config, "FAPI-CIBA-21")
    if metadata.userinfo_endpoint:
        ciba.check_at(severity, status_is, ciba.userinfo(client, access_token), {200},
                      requirement="FAPI-CIBA-21")
        without = ciba.userinfo(client, access_token, certificate=None,
                                label="userinfo without certificate")
        if without.response is not None:
            ciba.check_at(severity, status_is, without, {401}, requirement="FAPI-CIBA-21")
    if metadata.raw.get("introspection_endpoint") and client.certificate_path:
        exchange = ciba.introspect(client, access_token)
        body = exchange.response.json_object() if exchange.response else None
        ciba.check_at(severity, cnf_matches, body or {},
                      certificate_thumbprint(client.certificate_path), exchange=exchange)


def fapi_rsa_key(client: ClientConfig) -> rsa.RSAPrivateKey:
    """The client's RSA private key (to sign with RS256, which FAPI-CIBA forbids), or skip."""
    if not isinstance(client.private_key, rsa.RSAPrivateKey):
        pytest.skip(f"not covered: client {client.name} has no RSA key to sign RS256 with")
    return client.private_key
