"""FAPI-CIBA profile (catalogue §11, FAPI-CIBA-01..28) and mirrors of the OpenID certification
suite's FAPI-CIBA provider modules (plan `fapi-ciba-id1-test-plan`, plain FAPI profile).

Runs only with `--ciba-profile fapi-ciba` (or `[provider] profile = "fapi-ciba"`); otherwise
every test is deselected (one line: "FAPI-CIBA profile not selected"). Each test names the module it
mirrors ("mirrors fapi-ciba-id1-..."); `ciba_harness.checks._fapi.CERTIFICATION_MODULES` holds the
whole map with requirement IDs, and docs/fapi-ciba.md shows it as a table. This module:
discovery, normal flows, ping, tokens, the harness as a client, registration;
test_fapi_ciba_requests.py: request objects and request parameters;
test_fapi_ciba_client_auth.py: the token endpoint and client authentication.

Variants as in the certification suite: poll and ping, private_key_jwt and mTLS. A variant
needs a FAPI client of that mode and method: confidential, a private key to sign request
objects (PS256 / ES256 for private_key_jwt), and a client certificate for certificate-bound
tokens. Requests are signed (FAPI-CIBA-06 ID1, FAPI-CIBA-12) and carry a binding message
(FAPI-CIBA-13). Rows of the other FAPI base profile (`[provider] fapi_base`) and SHOULD rows
are judged as warnings.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import pytest

from ciba_harness import (
    FAPI_ALGS,
    FAPI_TLS12_CIPHERS,
    EndpointBehaviour,
    RequestObjectSpec,
    Severity,
    accept_signed,
    accepted,
    acr_present,
    bound_tokens_advertised,
    build_refresh_request,
    callback_count_at_most,
    ciba_grant_advertised,
    complete_flow,
    decode_unverified,
    discovery_request,
    expect_backchannel_error,
    expect_callback,
    expect_certificate_bound,
    expect_flow_tokens,
    fapi_auth_method_advertised,
    fapi_severity,
    handshake_refused,
    id_token_alg_is,
    member_echoed,
    metadata_algs_fapi,
    metadata_document,
    no_callback_for_flow,
    no_rsa1_5,
    offerable_tls12_ciphers,
    poll_advertised,
    probe_tls,
    push_not_advertised,
    redirected_callbacks,
    refresh_not_rotated,
    refused,
    second_fapi_client,
    send_registration,
    send_signed,
    start_signed,
    status_is,
    string_array_if_present,
    token_entropy,
    token_error_is,
    token_response_complete,
)

if TYPE_CHECKING:
    from ciba_harness import (
        CibaClient,
        NotificationInbox,
        NotificationReceiver,
        ProviderConfig,
        ProviderMetadata,
    )

pytestmark = [pytest.mark.fapi, pytest.mark.usefixtures("fapi_profile")]

QUIET_WINDOW = 1.0


# --- discovery --------------------------------------------------------------------------------


@pytest.mark.requirement("FAPI-CIBA-03", "FAPI-CIBA-04", "FAPI-CIBA-18", "FAPI-CIBA-19",
                         "FAPI-CIBA-20", "FAPI-CIBA-21", "FAPI-CIBA-14", "CIBA-DISC-06")
def test_discovery_end_point_verification(ciba: CibaClient, ciba_config: ProviderConfig):
    """mirrors fapi-ciba-id1-discovery-end-point-verification: poll advertised, push not,
    the CIBA grant listed (a MUST under FAPI-CIBA), PS256 / ES256 for ID tokens and client
    assertions, a FAPI client authentication method, certificate-bound access tokens, no
    RSA1_5; login-hint-token type lists are arrays of strings."""
    exchange = ciba.send(discovery_request(ciba_config.issuer, ciba_config.discovery_url),
                         label="discovery")
    document = metadata_document(exchange) or {}
    ciba.check(poll_advertised, document, exchange=exchange)
    ciba.check(push_not_advertised, document, exchange=exchange)
    ciba.check_at(Severity.WARNING, ciba_grant_advertised, document, exchange=exchange)
    for name in ("id_token_signing_alg_values_supported",
                 "token_endpoint_auth_signing_alg_values_supported",
                 "backchannel_authentication_request_signing_alg_values_supported"):
        algs = document.get(name)
        if not (isinstance(algs, list) and set(algs) & FAPI_ALGS) and name.startswith("id_"):
            ciba.check(metadata_algs_fapi, document, name, exchange=exchange, must_list=True)
        # other algorithms advertised besides PS256 / ES256: RS256 "should not" be used
        ciba.check_at(Severity.WARNING, metadata_algs_fapi, document, name, exchange=exchange)
    ciba.check(fapi_auth_method_advertised, document, exchange=exchange)
    ciba.check_at(fapi_severity(ciba_config, "FAPI-CIBA-21"), bound_tokens_advertised, document,
                  exchange=exchange)
    ciba.check(no_rsa1_5, document, exchange=exchange)
    ciba.check(string_array_if_present, document,
               "backchannel_endpoint_login_hint_token_types_supported",
               requirement="FAPI-CIBA-14", exchange=exchange)


# --- normal flows -------------------------------------------------------------------------------


@pytest.mark.requirement("FAPI-CIBA-04", "FAPI-CIBA-05", "CIBA-TOKEN-14", "FAPI-CIBA-18",
                         "FAPI-CIBA-21", "FAPI-CIBA-26")
def test_two_client_flow(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_inbox: NotificationInbox,
    fapi_client,
):
    """mirrors fapi-ciba-id1 (two client test): a signed request, approval, tokens (after the
    ping in ping mode), for the client and then a second client; ID tokens PS256 / ES256,
    access tokens certificate-bound and unguessable."""
    for client in (fapi_client, second_fapi_client(ciba_config, ciba_metadata, fapi_client)):
        flow = start_signed(ciba, client)
        exchange = complete_flow(ciba, ciba_config, ciba_inbox, flow)
        tokens = expect_flow_tokens(ciba, flow, exchange)
        ciba.check(id_token_alg_is, str(tokens.get("id_token", "")), FAPI_ALGS,
                   requirement="FAPI-CIBA-18", exchange=exchange)
        ciba.check_at(fapi_severity(ciba_config, "FAPI-CIBA-26"), token_entropy, tokens,
                      exchange=exchange)
        expect_certificate_bound(ciba, ciba_config, ciba_metadata, client,
                                 str(tokens["access_token"]))


@pytest.mark.requirement("CIBA-TOKEN-13", "CIBA-PING-01")
def test_user_rejects_authentication(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, fapi_client
):
    """mirrors fapi-ciba-id1-user-rejects-authentication: the user denies; the token request
    (after the ping in ping mode) gets access_denied."""
    flow = start_signed(ciba, fapi_client)
    exchange = complete_flow(ciba, ciba_config, ciba_inbox, flow, decision="deny")
    if fapi_client.delivery_mode == "poll":
        exchange = flow.exchanges[-1]
    ciba.check(token_error_is, exchange, {"access_denied"}, requirement="CIBA-TOKEN-13")


@pytest.mark.requirement("CIBA-TOKEN-05", "CIBA-TOKEN-06", "CIBA-TOKEN-23")
def test_multiple_call_to_token_endpoint(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, fapi_client
):
    """mirrors fapi-ciba-id1-multiple-call-to-token-endpoint: token requests before the user
    acted get authorization_pending (or slow_down), then the flow completes normally."""
    flow = start_signed(ciba, fapi_client)
    interval = (flow.acknowledgement.interval if flow.acknowledgement else None) or 5
    for attempt in range(2):
        if attempt:
            time.sleep(interval)
        exchange = ciba.token(fapi_client, flow.auth_req_id)
        ciba.check(token_error_is, exchange, {"authorization_pending", "slow_down"},
                   requirement="CIBA-TOKEN-05")
    exchange = complete_flow(ciba, ciba_config, ciba_inbox, flow)
    expect_flow_tokens(ciba, flow, exchange)


@pytest.mark.slow
@pytest.mark.requirement("CIBA-TOKEN-12")
def test_auth_req_id_expired(ciba: CibaClient, ciba_config: ProviderConfig, fapi_client):
    """mirrors fapi-ciba-id1-auth-req-id-expired: the user never acts; after expires_in the
    token request gets expired_token (a ping on expiry is optional)."""
    flow = start_signed(ciba, fapi_client, requested_expiry=ciba_config.budgets.requested_expiry)
    ack = flow.acknowledgement
    assert ack is not None
    expires_in = ack.expires_in or ciba_config.budgets.requested_expiry
    if expires_in > ciba_config.budgets.max_wait:
        pytest.skip(f"not covered: expires_in is {expires_in} s, more than budgets.max_wait")
    time.sleep(max(0.0, ack.received_at + expires_in + 0.5 - time.monotonic()))
    exchange = ciba.token(fapi_client, flow.auth_req_id)
    ciba.check(token_error_is, exchange, {"expired_token"}, requirement="CIBA-TOKEN-12")


@pytest.mark.requirement("CIBA-AUTH-18", "FAPI-CIBA-02")
def test_binding_message_succeeds(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, fapi_client
):
    """mirrors fapi-ciba-id1-ensure-authorization-request-with-binding-message-succeeds: the
    binding message "1234" is accepted and the flow completes."""
    flow = start_signed(ciba, fapi_client, binding_message="1234")
    expect_flow_tokens(ciba, flow, complete_flow(ciba, ciba_config, ciba_inbox, flow))


@pytest.mark.requirement("CIBA-AUTH-06")
def test_other_scope_order_succeeds(ciba: CibaClient, fapi_poll_client):
    """mirrors fapi-ciba-id1-ensure-other-scope-order-succeeds: the same scopes in another
    order are accepted."""
    accept_signed(ciba, fapi_poll_client, "CIBA-AUTH-06", scope="profile openid")


@pytest.mark.requirement("CIBA-SREQ-15")
def test_requested_expiry_as_string_succeeds(ciba: CibaClient, fapi_poll_client):
    """mirrors fapi-ciba-id1-ensure-requested-expiry-as-string-succeeds: requested_expiry
    as a JSON string ("30") inside the request object is accepted."""
    accept_signed(ciba, fapi_poll_client, "CIBA-SREQ-15",
           spec=RequestObjectSpec(claims={"requested_expiry": "30"}))


@pytest.mark.requirement("CIBA-AUTH-19", "CIBA-AERR-11")
def test_potentially_bad_binding_message(ciba: CibaClient, fapi_poll_client):
    """mirrors fapi-ciba-id1-ensure-authorization-request-with-potentially-bad-binding-message:
    a long binding message with emoji gets either invalid_binding_message or acceptance."""
    message = "\U0001f44d Please confirm the payment of 1,000,000 EUR to ACME \U0001f680" * 3
    exchange = send_signed(ciba, fapi_poll_client, binding_message=message)
    if exchange.response is not None and 200 <= exchange.response.status < 300:
        return
    expect_backchannel_error(ciba, exchange, "invalid_binding_message",
                             requirement="CIBA-AUTH-19")


# --- ping -------------------------------------------------------------------------------------------


@pytest.mark.requirement("CIBA-PING-05", "CIBA-PING-07")
@pytest.mark.parametrize("answer", ["200-with-body", "401", "403"])
def test_ping_endpoint_answers(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_inbox: NotificationInbox,
    fapi_ping_client,
    answer,
):
    """The notification endpoint answers 200 with a body, 401 or 403: the token request that
    follows the ping still yields tokens. Mirrors, by answer,
    fapi-ciba-id1-ping-backchannel-notification-endpoint-response-has-body,
    fapi-ciba-id1-ping-backchannel-notification-endpoint-response-401,
    fapi-ciba-id1-ping-backchannel-notification-endpoint-response-403."""
    behaviour = {
        "200-with-body": EndpointBehaviour(status=200, body=b'{"ok":true}',
                                           content_type="application/json"),
        "401": EndpointBehaviour(status=401),
        "403": EndpointBehaviour(status=403),
    }[answer]
    requirement = "CIBA-PING-05" if answer.startswith("200") else "CIBA-PING-07"
    flow = ciba.start(fapi_ping_client, behaviour=behaviour, signed=RequestObjectSpec())
    ciba.approve(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow, guarded=False)
    exchange = ciba.token(fapi_ping_client, flow.auth_req_id)
    ciba.check(token_response_complete, exchange, requirement=requirement)


@pytest.mark.requirement("CIBA-PING-07")
def test_ping_not_retried_after_401(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, fapi_ping_client
):
    """mirrors fapi-ciba-id1-ping-with-mtls-ciba-notification-endpoint-response-401-and-
    require-server-does-not-retry: after a 401 the provider does not call the endpoint again
    (the certification suite fails a retry; CIBA leaves it open, BB-139: recorded)."""
    flow = ciba.start(fapi_ping_client, behaviour=EndpointBehaviour(status=401),
                      signed=RequestObjectSpec())
    ciba.approve(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow, guarded=False)
    notes = ciba_inbox.wait_for_flow(token=flow.notification_token,
                                     auth_req_id=flow.auth_req_id, timeout=QUIET_WINDOW, count=2)
    ciba.check_at(Severity.WARNING, callback_count_at_most, notes, 1, requirement="CIBA-PING-07",
                  title="The provider retried the ping after HTTP 401")
    ciba.check(token_response_complete, ciba.token(fapi_ping_client, flow.auth_req_id),
               requirement="CIBA-PING-07")


@pytest.mark.requirement("CIBA-PING-06", "CIBA-SEC-10")
def test_ping_redirect_not_followed(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_inbox: NotificationInbox,
    ciba_receiver: NotificationReceiver,
    fapi_ping_client,
):
    """mirrors fapi-ciba-id1-ping-backchannel-notification-endpoint-return-redirect-request:
    the endpoint answers 301 to another harness URL: the provider never calls it."""
    behaviour = EndpointBehaviour(status=301, redirect_to=ciba_receiver.redirect_target)
    flow = ciba.start(fapi_ping_client, behaviour=behaviour, signed=RequestObjectSpec())
    ciba.approve(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow, guarded=False)
    hits = redirected_callbacks(ciba_inbox, flow, timeout=QUIET_WINDOW)
    ciba.check(no_callback_for_flow, hits, requirement="CIBA-PING-06",
               title="The provider followed the notification endpoint's redirect")


# --- tokens: refresh, holder of key, entropy, acr -------------------------------------------------


@pytest.mark.requirement("FAPI-CIBA-25", "FAPI-CIBA-21")
def test_refresh_token(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_inbox: NotificationInbox,
    fapi_client,
):
    """mirrors fapi-ciba-id1-refresh-token: the refresh grant (with the client certificate)
    yields a new access token, bound like the first, and no new refresh token (no rotation);
    another client cannot use the refresh token."""
    flow = start_signed(ciba, fapi_client)
    tokens = expect_flow_tokens(ciba, flow, complete_flow(ciba, ciba_config, ciba_inbox, flow))
    refresh_token = tokens.get("refresh_token")
    if not isinstance(refresh_token, str):
        pytest.skip("not covered: the provider issues no refresh token")
    exchange = ciba.send(build_refresh_request(fapi_client, ciba_metadata, refresh_token),
                         label="refresh", client=fapi_client)
    ciba.check(status_is, exchange, {200}, requirement="FAPI-CIBA-25")
    body = exchange.response.json_object() if exchange.response else {}
    ciba.check_at(fapi_severity(ciba_config, "FAPI-CIBA-25"), refresh_not_rotated, refresh_token,
                  body or {}, exchange=exchange)
    expect_certificate_bound(ciba, ciba_config, ciba_metadata, fapi_client, str((body or {}).get(
        "access_token", "")))
    other = second_fapi_client(ciba_config, ciba_metadata, fapi_client)
    stolen = ciba.send(build_refresh_request(other, ciba_metadata, refresh_token),
                       label="refresh, other client", client=other)
    ciba.check_at(Severity.WARNING, token_error_is, stolen, {"invalid_grant"},
                  requirement="FAPI-CIBA-25")


@pytest.mark.requirement("FAPI-CIBA-21")
def test_holder_of_key_required(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_inbox: NotificationInbox, fapi_client
):
    """mirrors fapi-ciba-id1-ensure-mtls-holder-of-key-required: a valid token request
    without the TLS client certificate fails (a refused handshake, or invalid_client /
    invalid_grant / invalid_request with 400 or 401)."""
    flow = start_signed(ciba, fapi_client)
    ciba.approve(flow)
    if fapi_client.delivery_mode == "ping":
        expect_callback(ciba, ciba_config, ciba_inbox, flow, guarded=False)
    exchange = ciba.token(fapi_client, flow.auth_req_id, certificate=None,
                          label="token without certificate")
    if exchange.response is None:
        ciba.check_at(Severity.INFO, refused, exchange, requirement="FAPI-CIBA-21")
        return
    ciba.check_at(fapi_severity(ciba_config, "FAPI-CIBA-21"), token_error_is, exchange,
                  {"invalid_client", "invalid_grant", "invalid_request"},
                  requirement="FAPI-CIBA-21", statuses={400, 401})


@pytest.mark.requirement("FAPI-CIBA-17")
def test_tls12_cipher_suites(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """mirrors fapi-ciba-id1-ensure-mtls-holder-of-key-required (its TLS part): below TLS 1.3
    each server accepts only the four FAPI suites; every other suite offered alone is
    refused."""
    tried = 0
    seen: set[str] = set()
    for url in [ciba_metadata.issuer, *ciba_metadata.mtls_endpoint_aliases.values()]:
        parts = urlsplit(url)
        origin = f"{parts.hostname}:{parts.port}"
        if parts.scheme != "https" or origin in seen:
            continue
        seen.add(origin)
        for suite in offerable_tls12_ciphers():
            if suite in FAPI_TLS12_CIPHERS:
                continue
            probe = probe_tls(url, versions=("1.2", "1.2"), ciphers=suite, verify=False)
            if probe.inconclusive:
                continue
            tried += 1
            ciba.check_at(fapi_severity(ciba_config, "FAPI-CIBA-17"), handshake_refused, probe,
                          requirement="FAPI-CIBA-17")
    if not tried:
        pytest.skip("not covered: no https endpoint, or no suite this OpenSSL can offer")


@pytest.mark.requirement("FAPI-CIBA-09", "CIBA-IDT-03")
def test_acr_for_acr_values(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_inbox: NotificationInbox,
    fapi_client,
):
    """acr_values sent: the ID token contains acr (a MUST under FAPI-CIBA)."""
    supported = ciba_metadata.raw.get("acr_values_supported")
    value = supported[0] if isinstance(supported, list) and supported else "urn:ciba:acr:test"
    flow = start_signed(ciba, fapi_client, acr_values=str(value))
    tokens = expect_flow_tokens(ciba, flow, complete_flow(ciba, ciba_config, ciba_inbox, flow))
    claims = decode_unverified(str(tokens.get("id_token", "")))[1]
    ciba.check(acr_present, claims, requirement="FAPI-CIBA-09")


# --- the harness as a FAPI-CIBA client ---------------------------------------------------------------


@pytest.mark.requirement("FAPI-CIBA-12", "FAPI-CIBA-13", "FAPI-CIBA-27")
def test_harness_client_provisions(ciba: CibaClient, fapi_poll_client):
    """The harness itself behaves as a FAPI-CIBA client: its requests are signed, carry a
    binding message, and send no x-fapi-customer-ip-address / x-fapi-auth-date."""
    exchange = send_signed(ciba, fapi_poll_client)
    request = exchange.request
    form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
    names = {name.lower() for name, _ in request.headers}
    assert "request" in form, "the harness sent an unsigned request (FAPI-CIBA-12)"
    claims = decode_unverified(form["request"])[1]
    assert claims.get("binding_message"), "the harness sent no binding message (FAPI-CIBA-13)"
    assert not names & {"x-fapi-customer-ip-address", "x-fapi-auth-date"}, "FAPI-CIBA-27"


# --- dynamic registration (where an open registration endpoint is advertised) ------------------


def register(ciba: CibaClient, ciba_metadata: ProviderMetadata, document):
    if not ciba_metadata.registration_endpoint:
        pytest.skip("not applicable: the provider advertises no registration_endpoint")
    exchange = send_registration(ciba, str(ciba_metadata.registration_endpoint), document)
    if exchange.response is not None and exchange.response.status in {401, 403}:
        pytest.skip("not covered: the registration endpoint requires an initial access token")
    return exchange


def fapi_registration(**members):
    return {
        "client_name": "ciba-harness FAPI-CIBA registration probe",
        "grant_types": ["urn:openid:params:grant-type:ciba"],
        "backchannel_token_delivery_mode": "poll",
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": "CN=ciba-harness-probe,O=ciba-harness test",
        **members,
    }


@pytest.mark.requirement("FAPI-CIBA-03")
def test_push_registration_refused(ciba: CibaClient, ciba_metadata: ProviderMetadata):
    """A push-mode registration is refused (400 invalid_client_metadata)."""
    exchange = register(ciba, ciba_metadata, fapi_registration(
        backchannel_token_delivery_mode="push",
        backchannel_client_notification_endpoint="https://client.example.org/ciba/notify",
    ))
    ciba.check(refused, exchange, requirement="FAPI-CIBA-03")
    ciba.check(status_is, exchange, {400}, requirement="FAPI-CIBA-03")


@pytest.mark.requirement("FAPI-CIBA-15")
def test_login_hint_token_types_echoed(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """Client metadata backchannel_endpoint_login_hint_token_types (an array of strings) is
    accepted and echoed by dynamic registration (OPTIONAL: a warning when it is not)."""
    types = ["urn:ciba-harness:login-hint-token:jwt"]
    exchange = register(ciba, ciba_metadata, fapi_registration(
        backchannel_endpoint_login_hint_token_types=types))
    ciba.check(accepted, exchange, requirement="FAPI-CIBA-15")
    body = exchange.response.json_object() if exchange.response else None
    ciba.check(string_array_if_present, body or {}, "backchannel_endpoint_login_hint_token_types",
               requirement="FAPI-CIBA-15", exchange=exchange)
    ciba.check_at(Severity.WARNING, member_echoed, body or {},
                  "backchannel_endpoint_login_hint_token_types", types,
                  requirement="FAPI-CIBA-15", exchange=exchange)
