"""FAPI-CIBA profile (catalogue §11, FAPI-CIBA-01..28) and mirrors of the OpenID certification
suite's FAPI-CIBA provider modules (plan `fapi-ciba-id1-test-plan`, plain FAPI profile).

Runs only with `--ciba-profile fapi-ciba` (or `[provider] profile = "fapi-ciba"`); otherwise
every test is deselected (one line: "FAPI-CIBA profile not selected"). Each test names the module it
mirrors ("mirrors fapi-ciba-id1-..."); `ciba_harness.checks._fapi.CERTIFICATION_MODULES` holds the
whole map with requirement IDs, and docs/fapi-ciba.md shows it as a table.

Variants as in the certification suite: poll and ping, private_key_jwt and mTLS. A variant
needs a FAPI client of that mode and method: confidential, a private key to sign request
objects (PS256 / ES256 for private_key_jwt), and a client certificate for certificate-bound
tokens. Requests are signed (FAPI-CIBA-06 ID1, FAPI-CIBA-12) and carry a binding message
(FAPI-CIBA-13). Rows of the other FAPI base profile (`[provider] fapi_base`) and SHOULD rows
are judged as warnings.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from ciba_harness import (
    ClientAuthentication,
    RequestObjectSpec,
    Severity,
    decode_unverified,
    discovery_request,
)
from ciba_harness.checks._backchannel import (
    accepted,
    ciba_grant_advertised,
    expect_backchannel_error,
    login_hint_token,
    metadata_document,
    retire,
    send_and_accept,
)
from ciba_harness.checks._delivery import (
    acr_present,
    callback_arrived,
    callback_count_at_most,
    id_token_alg_is,
    no_callback_for_flow,
    token_error_is,
)
from ciba_harness.checks._fapi import (
    FAPI_ALGS,
    bound_tokens_advertised,
    cnf_matches,
    fapi_auth_method_advertised,
    fapi_clients,
    fapi_severity,
    handshake_refused,
    member_echoed,
    metadata_algs_fapi,
    no_rsa1_5,
    poll_advertised,
    push_not_advertised,
    refresh_not_rotated,
    string_array_if_present,
    token_entropy,
)
from ciba_harness.checks._responses import refused, status_is, token_response_complete
from ciba_harness.client._receiver import REDIRECT_TARGET_PATH
from ciba_harness.client._tls import (
    FAPI_TLS12_CIPHERS,
    certificate_thumbprint,
    offerable_tls12_ciphers,
    probe_tls,
)
from ciba_harness.core._notifications import EndpointBehaviour
from ciba_harness.core._requests import build_refresh_request

from ._callbacks import redirected_callbacks

pytestmark = pytest.mark.fapi

A03 = {"invalid_request_object"}  # tolerated instead of invalid_request (ambiguity A-03)
QUIET_WINDOW = 1.0
VARIANTS = [
    pytest.param(("poll", "private_key_jwt"), id="poll-private_key_jwt"),
    pytest.param(("poll", "mtls"), id="poll-mtls"),
    pytest.param(("ping", "private_key_jwt"), id="ping-private_key_jwt"),
    pytest.param(("ping", "mtls"), id="ping-mtls"),
]
AUTH_VARIANTS = ["private_key_jwt", "mtls"]


@pytest.fixture(scope="module", autouse=True)
def fapi_profile(ciba_config):
    if not ciba_config.fapi:
        pytest.skip("FAPI-CIBA profile not selected")


def pick(config, metadata, mode: str, auth: str, *, exclude=()):
    if metadata.delivery_modes and not metadata.supports_mode(mode):
        pytest.skip(f"not applicable: the provider does not advertise {mode} mode")
    clients = fapi_clients(config, mode=mode, auth=auth, exclude=exclude)
    if not clients:
        pytest.skip(
            f"not covered: no FAPI-CIBA {mode} client with {auth} configured (a confidential "
            "client with a private key to sign request objects and a client certificate)"
        )
    return clients[0]


def second_client(config, metadata, client):
    """Another FAPI client (same mode preferred), for the two-client modules."""
    for mode in (client.delivery_mode, "poll", "ping"):
        for auth in AUTH_VARIANTS:
            others = fapi_clients(config, mode=mode, auth=auth, exclude=(client.name,))
            if others and (not metadata.delivery_modes or metadata.supports_mode(mode)):
                return others[0]
    pytest.skip("not covered: a second FAPI-CIBA client is needed")


@pytest.fixture(params=VARIANTS)
def fapi_client(request, ciba_config, ciba_metadata):
    mode, auth = request.param
    return pick(ciba_config, ciba_metadata, mode, auth)


@pytest.fixture(params=AUTH_VARIANTS)
def poll_client(request, ciba_config, ciba_metadata):
    return pick(ciba_config, ciba_metadata, "poll", request.param)


@pytest.fixture(params=AUTH_VARIANTS)
def ping_client(request, ciba_config, ciba_metadata):
    return pick(ciba_config, ciba_metadata, "ping", request.param)


def severity(ciba_config, requirement: str) -> Severity:
    return fapi_severity(ciba_config, requirement)


def start(ciba, client, spec=None, **overrides):
    """A valid, signed FAPI-CIBA request (acknowledgement required)."""
    return ciba.start(client, signed=spec or RequestObjectSpec(), **overrides)


def send_signed(ciba, client, spec=None, **overrides):
    return ciba.backchannel(client, ciba.default_params(client, **overrides),
                            signed=spec or RequestObjectSpec())


def accept(ciba, client, requirement: str, spec=None, **overrides):
    flow = send_and_accept(ciba, client, ciba.default_params(client, **overrides),
                           requirement=requirement, signed=spec or RequestObjectSpec())
    retire(ciba, flow)
    return flow


def wait_ping(ciba, ciba_config, inbox, flow):
    waited = min(ciba_config.budgets.max_wait, 10.0)
    notes = inbox.wait_for_flow(token=flow.notification_token, auth_req_id=flow.auth_req_id,
                                timeout=waited)
    notes = [n for n in notes if n.path != REDIRECT_TARGET_PATH]
    ciba.check(callback_arrived, notes, requirement="CIBA-PING-01", what="ping", waited=waited)
    return notes


def complete(ciba, ciba_config, inbox, flow, *, decision: str = "approve"):
    """Decide, then collect the result the way the client's mode does: the token response
    exchange (after the ping in ping mode, by polling in poll mode)."""
    ciba.decide(flow, decision)
    if flow.client.delivery_mode == "ping":
        wait_ping(ciba, ciba_config, inbox, flow)
        exchange = ciba.token(flow.client, flow.auth_req_id)
        flow.exchanges.append(exchange)
        return exchange
    ciba.poll(flow)
    return flow.exchanges[-1]


def tokens_of(ciba, flow, exchange):
    ciba.check(token_response_complete, exchange, requirement="CIBA-TOKEN-14")
    return ciba.expect_tokens(flow, exchange)


def expect_refused(ciba, exchange, requirement: str, codes=("invalid_request",), tolerated=A03):
    expect_backchannel_error(ciba, exchange, set(codes), requirement=requirement,
                             tolerated=tolerated)


def check_bound(ciba, ciba_config, metadata, client, access_token: str) -> None:
    """FAPI-CIBA-21: the access token works only with the client's certificate."""
    sev = severity(ciba_config, "FAPI-CIBA-21")
    if metadata.userinfo_endpoint:
        ciba.check(status_is, ciba.userinfo(client, access_token), {200},
                   requirement="FAPI-CIBA-21", severity=sev)
        without = ciba.userinfo(client, access_token, certificate=None,
                                label="userinfo without certificate")
        if without.response is not None:
            ciba.check(status_is, without, {401}, requirement="FAPI-CIBA-21", severity=sev)
    if metadata.raw.get("introspection_endpoint") and client.certificate_path:
        exchange = ciba.introspect(client, access_token)
        body = exchange.response.json_object() if exchange.response else None
        ciba.check(cnf_matches, body or {}, certificate_thumbprint(client.certificate_path),
                   exchange=exchange, severity=sev)


def rsa_key(client):
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(client.private_key, rsa.RSAPrivateKey):
        pytest.skip(f"not covered: client {client.name} has no RSA key to sign RS256 with")
    return client.private_key


# --- discovery --------------------------------------------------------------------------------


@pytest.mark.requirement("FAPI-CIBA-03", "FAPI-CIBA-04", "FAPI-CIBA-18", "FAPI-CIBA-19",
                         "FAPI-CIBA-20", "FAPI-CIBA-21", "FAPI-CIBA-14", "CIBA-DISC-06")
def test_discovery_end_point_verification(ciba, ciba_config):
    """mirrors fapi-ciba-id1-discovery-end-point-verification: poll advertised, push not,
    the CIBA grant listed (a MUST under FAPI-CIBA), PS256 / ES256 for ID tokens and client
    assertions, a FAPI client authentication method, certificate-bound access tokens, no
    RSA1_5; login-hint-token type lists are arrays of strings."""
    exchange = ciba.send(discovery_request(ciba_config.issuer, ciba_config.discovery_url),
                         label="discovery")
    document = metadata_document(exchange) or {}
    ciba.check(poll_advertised, document, exchange=exchange)
    ciba.check(push_not_advertised, document, exchange=exchange)
    ciba.check(ciba_grant_advertised, document, exchange=exchange, severity=Severity.WARNING)
    for name in ("id_token_signing_alg_values_supported",
                 "token_endpoint_auth_signing_alg_values_supported",
                 "backchannel_authentication_request_signing_alg_values_supported"):
        algs = document.get(name)
        if not (isinstance(algs, list) and set(algs) & FAPI_ALGS) and name.startswith("id_"):
            ciba.check(metadata_algs_fapi, document, name, exchange=exchange, must_list=True)
        # other algorithms advertised besides PS256 / ES256: RS256 "should not" be used
        ciba.check(metadata_algs_fapi, document, name, exchange=exchange,
                   severity=Severity.WARNING)
    ciba.check(fapi_auth_method_advertised, document, exchange=exchange)
    ciba.check(bound_tokens_advertised, document, exchange=exchange,
               severity=severity(ciba_config, "FAPI-CIBA-21"))
    ciba.check(no_rsa1_5, document, exchange=exchange)
    ciba.check(string_array_if_present, document,
               "backchannel_endpoint_login_hint_token_types_supported",
               requirement="FAPI-CIBA-14", exchange=exchange)


# --- normal flows -------------------------------------------------------------------------------


@pytest.mark.requirement("FAPI-CIBA-04", "FAPI-CIBA-05", "CIBA-TOKEN-14", "FAPI-CIBA-18",
                         "FAPI-CIBA-21", "FAPI-CIBA-26")
def test_two_client_flow(ciba, ciba_config, ciba_metadata, ciba_inbox, fapi_client):
    """mirrors fapi-ciba-id1 (two client test): a signed request, approval, tokens (after the
    ping in ping mode), for the client and then a second client; ID tokens PS256 / ES256,
    access tokens certificate-bound and unguessable."""
    for client in (fapi_client, second_client(ciba_config, ciba_metadata, fapi_client)):
        flow = start(ciba, client)
        exchange = complete(ciba, ciba_config, ciba_inbox, flow)
        tokens = tokens_of(ciba, flow, exchange)
        ciba.check(id_token_alg_is, str(tokens.get("id_token", "")), FAPI_ALGS,
                   requirement="FAPI-CIBA-18", exchange=exchange)
        ciba.check(token_entropy, tokens, exchange=exchange,
                   severity=severity(ciba_config, "FAPI-CIBA-26"))
        check_bound(ciba, ciba_config, ciba_metadata, client, str(tokens["access_token"]))


@pytest.mark.requirement("CIBA-TOKEN-13", "CIBA-PING-01")
def test_user_rejects_authentication(ciba, ciba_config, ciba_inbox, fapi_client):
    """mirrors fapi-ciba-id1-user-rejects-authentication: the user denies; the token request
    (after the ping in ping mode) gets access_denied."""
    flow = start(ciba, fapi_client)
    exchange = complete(ciba, ciba_config, ciba_inbox, flow, decision="deny")
    if fapi_client.delivery_mode == "poll":
        exchange = flow.exchanges[-1]
    ciba.check(token_error_is, exchange, {"access_denied"}, requirement="CIBA-TOKEN-13")


@pytest.mark.requirement("CIBA-TOKEN-05", "CIBA-TOKEN-06", "CIBA-TOKEN-23")
def test_multiple_call_to_token_endpoint(ciba, ciba_config, ciba_inbox, fapi_client):
    """mirrors fapi-ciba-id1-multiple-call-to-token-endpoint: token requests before the user
    acted get authorization_pending (or slow_down), then the flow completes normally."""
    flow = start(ciba, fapi_client)
    interval = (flow.acknowledgement.interval if flow.acknowledgement else None) or 5
    for attempt in range(2):
        if attempt:
            time.sleep(interval)
        exchange = ciba.token(fapi_client, flow.auth_req_id)
        ciba.check(token_error_is, exchange, {"authorization_pending", "slow_down"},
                   requirement="CIBA-TOKEN-05")
    exchange = complete(ciba, ciba_config, ciba_inbox, flow)
    tokens_of(ciba, flow, exchange)


@pytest.mark.slow
@pytest.mark.requirement("CIBA-TOKEN-12")
def test_auth_req_id_expired(ciba, ciba_config, fapi_client):
    """mirrors fapi-ciba-id1-auth-req-id-expired: the user never acts; after expires_in the
    token request gets expired_token (a ping on expiry is optional)."""
    flow = start(ciba, fapi_client, requested_expiry=ciba_config.budgets.requested_expiry)
    ack = flow.acknowledgement
    assert ack is not None
    expires_in = ack.expires_in or ciba_config.budgets.requested_expiry
    if expires_in > ciba_config.budgets.max_wait:
        pytest.skip(f"not covered: expires_in is {expires_in} s, more than budgets.max_wait")
    time.sleep(max(0.0, ack.received_at + expires_in + 0.5 - time.monotonic()))
    exchange = ciba.token(fapi_client, flow.auth_req_id)
    ciba.check(token_error_is, exchange, {"expired_token"}, requirement="CIBA-TOKEN-12")


@pytest.mark.requirement("CIBA-AUTH-18", "FAPI-CIBA-02")
def test_binding_message_succeeds(ciba, ciba_config, ciba_inbox, fapi_client):
    """mirrors fapi-ciba-id1-ensure-authorization-request-with-binding-message-succeeds: the
    binding message "1234" is accepted and the flow completes."""
    flow = start(ciba, fapi_client, binding_message="1234")
    tokens_of(ciba, flow, complete(ciba, ciba_config, ciba_inbox, flow))


@pytest.mark.requirement("CIBA-AUTH-06")
def test_other_scope_order_succeeds(ciba, poll_client):
    """mirrors fapi-ciba-id1-ensure-other-scope-order-succeeds: the same scopes in another
    order are accepted."""
    accept(ciba, poll_client, "CIBA-AUTH-06", scope="profile openid")


@pytest.mark.requirement("CIBA-SREQ-15")
def test_requested_expiry_as_string_succeeds(ciba, poll_client):
    """mirrors fapi-ciba-id1-ensure-requested-expiry-as-string-succeeds: requested_expiry
    as a JSON string ("30") inside the request object is accepted."""
    accept(ciba, poll_client, "CIBA-SREQ-15",
           spec=RequestObjectSpec(claims={"requested_expiry": "30"}))


@pytest.mark.requirement("CIBA-AUTH-19", "CIBA-AERR-11")
def test_potentially_bad_binding_message(ciba, poll_client):
    """mirrors fapi-ciba-id1-ensure-authorization-request-with-potentially-bad-binding-message:
    a long binding message with emoji gets either invalid_binding_message or acceptance."""
    message = "\U0001f44d Please confirm the payment of 1,000,000 EUR to ACME \U0001f680" * 3
    exchange = send_signed(ciba, poll_client, binding_message=message)
    if exchange.response is not None and 200 <= exchange.response.status < 300:
        return
    expect_backchannel_error(ciba, exchange, "invalid_binding_message",
                             requirement="CIBA-AUTH-19")


# --- request objects ----------------------------------------------------------------------------

REQUEST_OBJECT_CASES = {
    # case: (RequestObjectSpec, requirement)
    "missing-aud": (RequestObjectSpec(claims={"aud": None}), "CIBA-SREQ-05"),
    "bad-aud": (RequestObjectSpec(claims={"aud": "https://other-op.example.org"}),
                "CIBA-SREQ-05"),
    "missing-iss": (RequestObjectSpec(claims={"iss": None}), "CIBA-SREQ-06"),
    "missing-exp": (RequestObjectSpec(claims={"exp": None}), "CIBA-SREQ-07"),
    "missing-iat": (RequestObjectSpec(claims={"iat": None}), "CIBA-SREQ-08"),
    "missing-nbf": (RequestObjectSpec(claims={"nbf": None}), "CIBA-SREQ-09"),
    "nbf-is-10-minutes-in-future": (RequestObjectSpec(nbf_offset=600), "CIBA-SREQ-09"),
    "missing-jti": (RequestObjectSpec(claims={"jti": None}), "CIBA-SREQ-10"),
    "signature-algorithm-is-none": (RequestObjectSpec(alg="none"), "CIBA-SREQ-02"),
    "signature-algorithm-is-bad": (RequestObjectSpec(tamper_signature=True), "CIBA-SREQ-04"),
}


@pytest.mark.requirement("CIBA-SREQ-02", "CIBA-SREQ-04", "CIBA-SREQ-05", "CIBA-SREQ-06",
                         "CIBA-SREQ-07", "CIBA-SREQ-08", "CIBA-SREQ-09", "CIBA-SREQ-10",
                         "CIBA-AERR-04", "FAPI-CIBA-07")
@pytest.mark.parametrize("case", sorted(REQUEST_OBJECT_CASES) + ["bad-iss", "expired-exp"])
def test_request_object_refused(ciba, ciba_config, ciba_metadata, poll_client, case):
    """A broken request object is refused with invalid_request. Mirrors, by case,
    fapi-ciba-id1-ensure-request-object-missing-aud-fails,
    fapi-ciba-id1-ensure-request-object-bad-aud-fails,
    fapi-ciba-id1-ensure-request-object-missing-iss-fails,
    fapi-ciba-id1-ensure-request-object-bad-iss-fails,
    fapi-ciba-id1-ensure-request-object-missing-exp-fails,
    fapi-ciba-id1-ensure-request-object-expired-exp-fails,
    fapi-ciba-id1-ensure-request-object-missing-iat-fails,
    fapi-ciba-id1-ensure-request-object-missing-nbf-fails,
    fapi-ciba-id1-ensure-request-object-nbf-is-10-minutes-in-future-fails,
    fapi-ciba-id1-ensure-request-object-missing-jti-fails,
    fapi-ciba-id1-ensure-request-object-signature-algorithm-is-none-fails,
    fapi-ciba-id1-ensure-request-object-signature-algorithm-is-bad-fails."""
    now = int(time.time())
    if case == "bad-iss":
        other = second_client(ciba_config, ciba_metadata, poll_client)
        spec, requirement = RequestObjectSpec(claims={"iss": other.client_id}), "CIBA-SREQ-06"
    elif case == "expired-exp":
        spec = RequestObjectSpec(claims={"exp": now - 60, "iat": now - 120, "nbf": now - 120})
        requirement = "CIBA-SREQ-07"
    else:
        spec, requirement = REQUEST_OBJECT_CASES[case]
    expect_refused(ciba, send_signed(ciba, poll_client, spec), requirement)


@pytest.mark.requirement("FAPI-CIBA-07", "CIBA-AERR-04")
@pytest.mark.parametrize("case", ["exp-is-70-minutes-in-future", "nbf-is-70-minutes-in-past"])
def test_request_object_lifetime_limited(ciba, ciba_config, poll_client, case):
    """A request object living longer than 60 minutes is refused. Mirrors
    fapi-ciba-id1-ensure-request-object-exp-is-70-minutes-in-future-fails and
    fapi-ciba-id1-ensure-request-object-nbf-is-70-minutes-in-past-fails."""
    now = int(time.time())
    claims = (
        {"nbf": now, "iat": now, "exp": now + 70 * 60}
        if case.startswith("exp")
        else {"nbf": now - 70 * 60, "iat": now, "exp": now + 300}
    )
    exchange = send_signed(ciba, poll_client, RequestObjectSpec(claims=claims))
    expect_refused(ciba, exchange, "FAPI-CIBA-07")


@pytest.mark.requirement("FAPI-CIBA-07")
def test_request_object_of_60_minutes_accepted(ciba, poll_client):
    """A request object with exp exactly 60 minutes after nbf is accepted (the limit is
    inclusive)."""
    now = int(time.time())
    accept(ciba, poll_client, "FAPI-CIBA-07",
           spec=RequestObjectSpec(claims={"nbf": now, "iat": now, "exp": now + 3600}))


@pytest.mark.requirement("FAPI-CIBA-18", "CIBA-AERR-04")
def test_request_object_rs256_refused(ciba, ciba_config, poll_client):
    """mirrors fapi-ciba-id1-ensure-request-object-signature-algorithm-is-RS256-fails: a
    request object signed with RS256 (the client's own RSA key) is refused."""
    spec = RequestObjectSpec(alg="RS256", key=rsa_key(poll_client))
    exchange = send_signed(ciba, poll_client, spec)
    ciba.check(refused, exchange, requirement="FAPI-CIBA-18")
    expect_refused(ciba, exchange, "FAPI-CIBA-18")


@pytest.mark.requirement("CIBA-SREQ-04", "CIBA-AERR-04")
def test_request_object_signed_by_other_client_refused(ciba, ciba_config, ciba_metadata,
                                                       poll_client):
    """mirrors fapi-ciba-id1-ensure-request-object-signed-by-other-client-fails: a request
    object signed with the second client's key is refused."""
    other = second_client(ciba_config, ciba_metadata, poll_client)
    spec = RequestObjectSpec(key=other.private_key,
                             alg=other.request_signing_alg or other.signing_alg)
    expect_refused(ciba, send_signed(ciba, poll_client, spec), "CIBA-SREQ-04")


@pytest.mark.requirement("FAPI-CIBA-06", "CIBA-AERR-04")
def test_unsigned_request_refused(ciba, ciba_config, poll_client):
    """mirrors fapi-ciba-id1-ensure-unsigned-backchannel-authorization-request-fails: an
    unsigned authentication request is refused (ID1; with fapi_ciba_version = "draft" it
    must be accepted instead, ambiguity A-19)."""
    exchange = ciba.backchannel(poll_client, ciba.default_params(poll_client), signed=False)
    if ciba_config.fapi_ciba_version == "draft":
        ciba.check(accepted, exchange, requirement="FAPI-CIBA-06")
        return
    expect_refused(ciba, exchange, "FAPI-CIBA-06")


@pytest.mark.requirement("FAPI-CIBA-24")
def test_jwt_slightly_in_the_future_accepted(ciba, ciba_config, poll_client):
    """iat and nbf 10 s in the future (clock skew) are accepted (FAPI 2.0 SP: a warning under
    fapi_base 1.0)."""
    now = int(time.time())
    flow_spec = RequestObjectSpec(claims={"iat": now + 10, "nbf": now + 10, "exp": now + 300})
    exchange = send_signed(ciba, poll_client, flow_spec)
    ciba.check(accepted, exchange, requirement="FAPI-CIBA-24",
               severity=severity(ciba_config, "FAPI-CIBA-24"))


@pytest.mark.requirement("FAPI-CIBA-24", "CIBA-AERR-04")
def test_jwt_far_in_the_future_refused(ciba, ciba_config, poll_client):
    """iat and nbf 70 s in the future are refused (more than 60 s)."""
    now = int(time.time())
    spec = RequestObjectSpec(claims={"iat": now + 70, "nbf": now + 70, "exp": now + 400})
    exchange = send_signed(ciba, poll_client, spec)
    ciba.check(refused, exchange, requirement="FAPI-CIBA-24",
               severity=severity(ciba_config, "FAPI-CIBA-24"))


# --- hints, binding message, clients --------------------------------------------------------------


@pytest.mark.requirement("CIBA-AUTH-08", "CIBA-AERR-04")
def test_multiple_hints_fail(ciba, ciba_config, poll_client):
    """mirrors fapi-ciba-id1-ensure-authorization-request-with-multiple-hints-fails: a
    login_hint together with a login_hint_token (or an id_token_hint) is refused."""
    token = login_hint_token(ciba_config.users, "valid", client=poll_client)
    extra = {"login_hint_token": token} if token else {"id_token_hint": "e30.e30.sig"}
    expect_refused(ciba, send_signed(ciba, poll_client, **extra), "CIBA-AUTH-08", tolerated=())


@pytest.mark.requirement("FAPI-CIBA-02", "CIBA-AERR-04")
def test_binding_message_required(ciba, ciba_config, poll_client):
    """Without a binding message (and no other unique authorization context) the request is
    refused."""
    exchange = send_signed(ciba, poll_client, binding_message=None)
    expect_refused(ciba, exchange, "FAPI-CIBA-02",
                   codes=("invalid_request", "invalid_binding_message"), tolerated=())


@pytest.mark.requirement("FAPI-CIBA-01", "FAPI-CIBA-03", "FAPI-CIBA-20")
@pytest.mark.parametrize("kind", ["public", "push", "shared_secret"])
def test_only_confidential_key_based_clients(ciba, ciba_config, kind):
    """A public client (FAPI-CIBA-01), a push client (FAPI-CIBA-03) and a client
    authenticating with a shared secret (FAPI-CIBA-20) obtain no auth_req_id."""
    if kind == "public":
        client = ciba_config.find_client(auth_method="none")
        requirement = "FAPI-CIBA-01"
    elif kind == "push":
        client = next((c for c in ciba_config.clients
                       if c.delivery_mode == "push" and c.ciba_allowed), None)
        requirement = "FAPI-CIBA-03"
    else:
        client = next((c for c in ciba_config.clients
                       if c.auth_method.startswith("client_secret") and c.ciba_allowed
                       and c.delivery_mode != "push"), None)
        requirement = "FAPI-CIBA-20"
    if client is None:
        pytest.skip(f"not covered: no {kind} client configured")
    exchange = ciba.backchannel(client, ciba.default_params(client))
    ciba.check(refused, exchange, requirement=requirement)
    if kind == "shared_secret":
        expect_backchannel_error(ciba, exchange, "invalid_client", requirement=requirement)


# --- token endpoint and client authentication ------------------------------------------------------


@pytest.mark.requirement("CIBA-TOKEN-04")
def test_wrong_auth_req_id_in_token_endpoint_request(ciba, ciba_config, ciba_metadata,
                                                     ciba_inbox, fapi_client):
    """mirrors fapi-ciba-id1-ensure-wrong-auth-req-id-in-token-endpoint-request: the second
    client presents the first client's approved auth_req_id: invalid_grant; the first client
    then gets its tokens."""
    other = second_client(ciba_config, ciba_metadata, fapi_client)
    flow = start(ciba, fapi_client)
    ciba.approve(flow)
    if fapi_client.delivery_mode == "ping":
        wait_ping(ciba, ciba_config, ciba_inbox, flow)
    exchange = ciba.token(other, flow.auth_req_id, label="token, other client")
    ciba.check(token_error_is, exchange, {"invalid_grant"}, requirement="CIBA-TOKEN-04")
    own = ciba.token(fapi_client, flow.auth_req_id)
    flow.exchanges.append(own)
    ciba.check(token_response_complete, own, requirement="CIBA-TOKEN-04")


def mtls_variant(client):
    if client.auth_method not in {"tls_client_auth", "self_signed_tls_client_auth"}:
        pytest.skip("not applicable: an mTLS-only module (private_key_jwt variant)")


def assertion_variant(client):
    if client.auth_method != "private_key_jwt":
        pytest.skip("not applicable: a private_key_jwt-only module (mTLS variant)")


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-AERR-12")
def test_different_client_id_and_issuer(ciba, ciba_config, ciba_metadata, fapi_client):
    """mirrors fapi-ciba-id1-ensure-different-client-id-and-issuer-in-backchannel-authorization-
    request: the request object is the first client's, the client_id form field names the
    second client while the TLS certificate is the first's: 401 invalid_client."""
    mtls_variant(fapi_client)
    other = second_client(ciba_config, ciba_metadata, fapi_client)
    exchange = ciba.backchannel(fapi_client, ciba.default_params(fapi_client),
                                signed=RequestObjectSpec(),
                                auth=ClientAuthentication(client_id=other.client_id))
    expect_backchannel_error(ciba, exchange, "invalid_client", requirement="CIBA-CAUTH-10")


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-AERR-12")
def test_wrong_client_id_in_backchannel_request(ciba, ciba_config, ciba_metadata, fapi_client):
    """mirrors fapi-ciba-id1-ensure-wrong-client-id-in-backchannel-authorization-request: the
    second client's client_id with the first client's certificate and keys: refused
    (access_denied, invalid_request or invalid_client)."""
    mtls_variant(fapi_client)
    other = second_client(ciba_config, ciba_metadata, fapi_client)
    spec = RequestObjectSpec(claims={"iss": other.client_id})
    exchange = ciba.backchannel(fapi_client, ciba.default_params(fapi_client), signed=spec,
                                auth=ClientAuthentication(client_id=other.client_id))
    expect_backchannel_error(ciba, exchange, {"invalid_client", "invalid_request",
                                              "access_denied"}, requirement="CIBA-CAUTH-10")


@pytest.mark.requirement("CIBA-CAUTH-10", "CIBA-TOKEN-20")
def test_wrong_client_id_in_token_endpoint_request(ciba, ciba_config, ciba_metadata,
                                                   ciba_inbox, fapi_client):
    """mirrors fapi-ciba-id1-ensure-wrong-client-id-in-token-endpoint-request: the token
    request names the second client with the first client's certificate: invalid_client
    (400 or 401)."""
    mtls_variant(fapi_client)
    other = second_client(ciba_config, ciba_metadata, fapi_client)
    flow = start(ciba, fapi_client)
    ciba.approve(flow)
    exchange = ciba.token(fapi_client, flow.auth_req_id,
                          auth=ClientAuthentication(client_id=other.client_id))
    ciba.check(token_error_is, exchange, {"invalid_client"}, requirement="CIBA-CAUTH-10",
               statuses={400, 401})


@pytest.mark.requirement("CIBA-TOKEN-20")
def test_without_client_assertion_in_token_endpoint_request(ciba, fapi_client):
    """mirrors fapi-ciba-id1-ensure-without-client-assertion-in-token-endpoint-request: only
    the client_id, no client_assertion: invalid_client (invalid_request, access_denied
    tolerated)."""
    assertion_variant(fapi_client)
    flow = start(ciba, fapi_client)
    ciba.approve(flow)
    exchange = ciba.token(fapi_client, flow.auth_req_id, auth=ClientAuthentication(method="none"))
    ciba.check(token_error_is, exchange, {"invalid_client", "invalid_request", "access_denied"},
               requirement="CIBA-TOKEN-20", statuses={400, 401})


@pytest.mark.requirement("CIBA-CAUTH-01", "CIBA-AERR-12")
def test_without_client_assertion_in_backchannel_request(ciba, fapi_client):
    """mirrors fapi-ciba-id1-ensure-without-client-assertion-in-backchannel-authorization-
    request: only the client_id, no client_assertion: refused (invalid_client,
    invalid_request or access_denied)."""
    assertion_variant(fapi_client)
    exchange = ciba.backchannel(fapi_client, ciba.default_params(fapi_client),
                                signed=RequestObjectSpec(), auth=ClientAuthentication(method="none"))
    expect_backchannel_error(ciba, exchange, {"invalid_client", "invalid_request",
                                              "access_denied"}, requirement="CIBA-CAUTH-01")


@pytest.mark.requirement("FAPI-CIBA-18", "CIBA-AERR-12")
@pytest.mark.parametrize("endpoint", ["backchannel", "token"])
def test_client_assertion_rs256_refused(ciba, ciba_inbox, ciba_config, fapi_client, endpoint):
    """A client assertion signed with RS256 is refused with invalid_client. Mirrors
    fapi-ciba-id1-ensure-client-assertion-signature-algorithm-in-backchannel-authorization-
    request-is-RS256-fails and fapi-ciba-id1-ensure-client-assertion-signature-algorithm-in-
    token-endpoint-request-is-RS256-fails."""
    assertion_variant(fapi_client)
    auth = ClientAuthentication(assertion_alg="RS256", assertion_key=rsa_key(fapi_client))
    if endpoint == "backchannel":
        exchange = ciba.backchannel(fapi_client, ciba.default_params(fapi_client),
                                    signed=RequestObjectSpec(), auth=auth)
        expect_backchannel_error(ciba, exchange, "invalid_client", requirement="FAPI-CIBA-18")
        return
    flow = start(ciba, fapi_client)
    ciba.approve(flow)
    exchange = ciba.token(fapi_client, flow.auth_req_id, auth=auth)
    ciba.check(token_error_is, exchange, {"invalid_client"}, requirement="FAPI-CIBA-18",
               statuses={400, 401})


@pytest.mark.requirement("FAPI-CIBA-23", "CIBA-CAUTH-04")
@pytest.mark.parametrize("form", ["string", "array"])
def test_client_assertion_with_issuer_audience_succeeds(ciba, ciba_config, ciba_metadata,
                                                        ciba_inbox, fapi_client, form):
    """mirrors fapi-ciba-id1-ensure-client-assertion-with-iss-aud-to-token-endpoint-succeeds:
    a client assertion whose aud is the issuer (a string, or an array holding it) is
    accepted at the token endpoint."""
    assertion_variant(fapi_client)
    audience = ciba_metadata.issuer
    auth = ClientAuthentication(
        audience=audience if form == "string" else None,
        assertion_claims={} if form == "string" else {"aud": [audience]},
    )
    flow = start(ciba, fapi_client)
    ciba.approve(flow)
    if fapi_client.delivery_mode == "ping":
        wait_ping(ciba, ciba_config, ciba_inbox, flow)
        exchange = ciba.token(fapi_client, flow.auth_req_id, auth=auth)
    else:
        ciba.poll(flow, auth=auth)
        exchange = flow.exchanges[-1]
    ciba.check(token_response_complete, exchange, requirement="FAPI-CIBA-23",
               severity=severity(ciba_config, "FAPI-CIBA-23"))


@pytest.mark.requirement("FAPI-CIBA-22")
def test_password_grant_refused(ciba, ciba_config, poll_client):
    """The resource-owner password grant yields no tokens (FAPI 2.0 SP)."""
    exchange = ciba.token(poll_client, None, grant_type="password",
                          extra=(("username", ciba_config.users.login_hint),
                                 ("password", "harness-password")))
    response = exchange.response
    sev = severity(ciba_config, "FAPI-CIBA-22")
    if response is None or 200 <= response.status < 300:
        ciba.check(token_error_is, exchange, {"unsupported_grant_type", "unauthorized_client",
                                              "invalid_grant", "invalid_request"},
                   requirement="FAPI-CIBA-22", severity=sev)


# --- ping -------------------------------------------------------------------------------------------


@pytest.mark.requirement("CIBA-PING-05", "CIBA-PING-07")
@pytest.mark.parametrize("answer", ["200-with-body", "401", "403"])
def test_ping_endpoint_answers(ciba, ciba_config, ciba_inbox, ping_client, answer):
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
    flow = ciba.start(ping_client, behaviour=behaviour, signed=RequestObjectSpec())
    ciba.approve(flow)
    wait_ping(ciba, ciba_config, ciba_inbox, flow)
    exchange = ciba.token(ping_client, flow.auth_req_id)
    ciba.check(token_response_complete, exchange, requirement=requirement)


@pytest.mark.requirement("CIBA-PING-07")
def test_ping_not_retried_after_401(ciba, ciba_config, ciba_inbox, ping_client):
    """mirrors fapi-ciba-id1-ping-with-mtls-ciba-notification-endpoint-response-401-and-
    require-server-does-not-retry: after a 401 the provider does not call the endpoint again
    (the certification suite fails a retry; CIBA leaves it open, BB-139: recorded)."""
    flow = ciba.start(ping_client, behaviour=EndpointBehaviour(status=401),
                      signed=RequestObjectSpec())
    ciba.approve(flow)
    wait_ping(ciba, ciba_config, ciba_inbox, flow)
    notes = ciba_inbox.wait_for_flow(token=flow.notification_token,
                                     auth_req_id=flow.auth_req_id, timeout=QUIET_WINDOW, count=2)
    ciba.check(callback_count_at_most, notes, 1, requirement="CIBA-PING-07",
               title="The provider retried the ping after HTTP 401", severity=Severity.WARNING)
    ciba.check(token_response_complete, ciba.token(ping_client, flow.auth_req_id),
               requirement="CIBA-PING-07")


@pytest.mark.requirement("CIBA-PING-06", "CIBA-SEC-10")
def test_ping_redirect_not_followed(ciba, ciba_config, ciba_inbox, ciba_receiver, ping_client):
    """mirrors fapi-ciba-id1-ping-backchannel-notification-endpoint-return-redirect-request:
    the endpoint answers 301 to another harness URL: the provider never calls it."""
    behaviour = EndpointBehaviour(status=301, redirect_to=ciba_receiver.redirect_target)
    flow = ciba.start(ping_client, behaviour=behaviour, signed=RequestObjectSpec())
    ciba.approve(flow)
    wait_ping(ciba, ciba_config, ciba_inbox, flow)
    hits = redirected_callbacks(ciba_inbox, flow, timeout=QUIET_WINDOW)
    ciba.check(no_callback_for_flow, hits, requirement="CIBA-PING-06",
               title="The provider followed the notification endpoint's redirect")


# --- tokens: refresh, holder of key, entropy, acr -------------------------------------------------


@pytest.mark.requirement("FAPI-CIBA-25", "FAPI-CIBA-21")
def test_refresh_token(ciba, ciba_config, ciba_metadata, ciba_inbox, fapi_client):
    """mirrors fapi-ciba-id1-refresh-token: the refresh grant (with the client certificate)
    yields a new access token, bound like the first, and no new refresh token (no rotation);
    another client cannot use the refresh token."""
    flow = start(ciba, fapi_client)
    tokens = tokens_of(ciba, flow, complete(ciba, ciba_config, ciba_inbox, flow))
    refresh_token = tokens.get("refresh_token")
    if not isinstance(refresh_token, str):
        pytest.skip("not covered: the provider issues no refresh token")
    exchange = ciba.send(build_refresh_request(fapi_client, ciba_metadata, refresh_token),
                         label="refresh", client=fapi_client)
    ciba.check(status_is, exchange, {200}, requirement="FAPI-CIBA-25")
    body = exchange.response.json_object() if exchange.response else {}
    ciba.check(refresh_not_rotated, refresh_token, body or {}, exchange=exchange,
               severity=severity(ciba_config, "FAPI-CIBA-25"))
    check_bound(ciba, ciba_config, ciba_metadata, fapi_client, str((body or {}).get(
        "access_token", "")))
    other = second_client(ciba_config, ciba_metadata, fapi_client)
    stolen = ciba.send(build_refresh_request(other, ciba_metadata, refresh_token),
                       label="refresh, other client", client=other)
    ciba.check(token_error_is, stolen, {"invalid_grant"}, requirement="FAPI-CIBA-25",
               severity=Severity.WARNING)


@pytest.mark.requirement("FAPI-CIBA-21")
def test_holder_of_key_required(ciba, ciba_config, ciba_inbox, fapi_client):
    """mirrors fapi-ciba-id1-ensure-mtls-holder-of-key-required: a valid token request
    without the TLS client certificate fails (a refused handshake, or invalid_client /
    invalid_grant / invalid_request with 400 or 401)."""
    flow = start(ciba, fapi_client)
    ciba.approve(flow)
    if fapi_client.delivery_mode == "ping":
        wait_ping(ciba, ciba_config, ciba_inbox, flow)
    exchange = ciba.token(fapi_client, flow.auth_req_id, certificate=None,
                          label="token without certificate")
    if exchange.response is None:
        ciba.check(refused, exchange, requirement="FAPI-CIBA-21", severity=Severity.INFO)
        return
    ciba.check(token_error_is, exchange, {"invalid_client", "invalid_grant", "invalid_request"},
               requirement="FAPI-CIBA-21", statuses={400, 401},
               severity=severity(ciba_config, "FAPI-CIBA-21"))


@pytest.mark.requirement("FAPI-CIBA-17")
def test_tls12_cipher_suites(ciba, ciba_config, ciba_metadata):
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
            ciba.check(handshake_refused, probe, requirement="FAPI-CIBA-17",
                       severity=severity(ciba_config, "FAPI-CIBA-17"))
    if not tried:
        pytest.skip("not covered: no https endpoint, or no suite this OpenSSL can offer")


@pytest.mark.requirement("FAPI-CIBA-09", "CIBA-IDT-03")
def test_acr_for_acr_values(ciba, ciba_config, ciba_metadata, ciba_inbox, fapi_client):
    """acr_values sent: the ID token contains acr (a MUST under FAPI-CIBA)."""
    supported = ciba_metadata.raw.get("acr_values_supported")
    value = supported[0] if isinstance(supported, list) and supported else "urn:ciba:acr:test"
    flow = start(ciba, fapi_client, acr_values=str(value))
    tokens = tokens_of(ciba, flow, complete(ciba, ciba_config, ciba_inbox, flow))
    claims = decode_unverified(str(tokens.get("id_token", "")))[1]
    ciba.check(acr_present, claims, requirement="FAPI-CIBA-09")


# --- the harness as a FAPI-CIBA client ---------------------------------------------------------------


@pytest.mark.requirement("FAPI-CIBA-12", "FAPI-CIBA-13", "FAPI-CIBA-27")
def test_harness_client_provisions(ciba, poll_client):
    """The harness itself behaves as a FAPI-CIBA client: its requests are signed, carry a
    binding message, and send no x-fapi-customer-ip-address / x-fapi-auth-date."""
    exchange = send_signed(ciba, poll_client)
    request = exchange.request
    form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
    names = {name.lower() for name, _ in request.headers}
    assert "request" in form, "the harness sent an unsigned request (FAPI-CIBA-12)"
    claims = decode_unverified(form["request"])[1]
    assert claims.get("binding_message"), "the harness sent no binding message (FAPI-CIBA-13)"
    assert not names & {"x-fapi-customer-ip-address", "x-fapi-auth-date"}, "FAPI-CIBA-27"


# --- dynamic registration (where an open registration endpoint is advertised) ------------------


def register(ciba, ciba_metadata, document):
    import json

    from ciba_harness import HttpRequest

    if not ciba_metadata.registration_endpoint:
        pytest.skip("not applicable: the provider advertises no registration_endpoint")
    request = HttpRequest(
        "POST", str(ciba_metadata.registration_endpoint),
        (("Content-Type", "application/json"), ("Accept", "application/json")),
        json.dumps(document).encode(),
    )
    exchange = ciba.send(request, label="registration")
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
def test_push_registration_refused(ciba, ciba_metadata):
    """A push-mode registration is refused (400 invalid_client_metadata)."""
    exchange = register(ciba, ciba_metadata, fapi_registration(
        backchannel_token_delivery_mode="push",
        backchannel_client_notification_endpoint="https://client.example.org/ciba/notify",
    ))
    ciba.check(refused, exchange, requirement="FAPI-CIBA-03")
    ciba.check(status_is, exchange, {400}, requirement="FAPI-CIBA-03")


@pytest.mark.requirement("FAPI-CIBA-15")
def test_login_hint_token_types_echoed(ciba, ciba_config, ciba_metadata):
    """Client metadata backchannel_endpoint_login_hint_token_types (an array of strings) is
    accepted and echoed by dynamic registration (OPTIONAL: a warning when it is not)."""
    types = ["urn:ciba-harness:login-hint-token:jwt"]
    exchange = register(ciba, ciba_metadata, fapi_registration(
        backchannel_endpoint_login_hint_token_types=types))
    ciba.check(accepted, exchange, requirement="FAPI-CIBA-15")
    body = exchange.response.json_object() if exchange.response else None
    ciba.check(string_array_if_present, body or {}, "backchannel_endpoint_login_hint_token_types",
               requirement="FAPI-CIBA-15", exchange=exchange)
    ciba.check(member_echoed, body or {}, "backchannel_endpoint_login_hint_token_types", types,
               requirement="FAPI-CIBA-15", exchange=exchange, severity=Severity.WARNING)
