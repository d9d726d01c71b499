"""Client registration metadata through dynamic registration (CIBA §4, RFC 7591).

Runs only where the provider advertises a registration_endpoint that is open (no initial
access token); otherwise each test skips naming why. Registrations are RFC 7591 JSON requests
built as data; the clients they create are not used beyond CIBA-REG-03.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ciba_harness import (
    CIBA_GRANT,
    ClientConfig,
    Exchange,
    Severity,
    accepted,
    error_body_well_formed,
    error_code,
    error_code_is,
    expect_backchannel_error,
    fail,
    record_choice,
    refused,
    send_registration,
    status_is,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, ProviderMetadata

NOTIFICATION_URL = "https://client.example.org/ciba/notify"


@pytest.fixture
def registration_endpoint(ciba: CibaClient, ciba_metadata: ProviderMetadata) -> str:
    if not ciba_metadata.registration_endpoint:
        pytest.skip("not applicable: the provider advertises no registration_endpoint")
    endpoint = str(ciba_metadata.registration_endpoint)
    baseline(ciba, endpoint)
    return endpoint


def register(ciba: CibaClient, endpoint: str, metadata: dict[str, Any]) -> Exchange:
    """POST an RFC 7591 registration request; skip when registration is not open to us."""
    exchange = send_registration(ciba, endpoint, metadata)
    if exchange.response is not None and exchange.response.status in {401, 403}:
        pytest.skip(
            "not covered: the registration endpoint requires an initial access token "
            f"(HTTP {exchange.response.status})"
        )
    return exchange


def client_metadata(**changes: Any) -> dict[str, Any]:
    """A valid poll-mode registration with client_secret_basic; None removes a member.

    A CIBA-only client uses no redirect-based flow, so it registers `response_types: []`
    (RFC 7591 §2: the default is ["code"], which would call for redirect_uris)."""
    document: dict[str, Any] = {
        "client_name": "ciba-harness registration probe",
        "grant_types": [CIBA_GRANT],
        "response_types": [],
        "backchannel_token_delivery_mode": "poll",
        "token_endpoint_auth_method": "client_secret_basic",
    }
    for name, value in changes.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return document


#: RFC 7591 §3.2.2 codes that name another metadata problem than the one under test
UNRELATED_CODES = frozenset({"invalid_redirect_uri", "invalid_software_statement",
                             "unapproved_software_statement"})
_BASELINE: dict[str, str | None] = {}  # registration endpoint -> why a valid one is refused


def refusal_reason(exchange: Exchange) -> str:
    response = exchange.response
    if response is None:
        return f"no answer ({exchange.error})"
    body = response.json_object() or {}
    described = body.get("error_description")
    return f"HTTP {response.status} {body.get('error') or response.content_type}" + (
        f": {str(described)[:160]}" if described else ""
    )


def baseline(ciba: CibaClient, endpoint: str) -> None:
    """A valid CIBA-only registration must be accepted before a refusal can mean anything:
    if the provider demands more (redirect_uris, jwks, a software statement), every refusal
    is inconclusive, with the provider's reason (recorded as a provider choice)."""
    if endpoint not in _BASELINE:
        exchange = register(ciba, endpoint, client_metadata())
        response = exchange.response
        ok = response is not None and 200 <= response.status < 300
        _BASELINE[endpoint] = None if ok else refusal_reason(exchange)
        record_choice("registration_demands",
                      "none beyond CIBA metadata" if ok else "refuses a CIBA-only client",
                      "valid poll registration with response_types []: "
                      + ("accepted" if ok else str(_BASELINE[endpoint])))
    if _BASELINE[endpoint] is not None:
        pytest.skip(
            "inconclusive: the provider refuses a valid CIBA-only registration "
            f"({_BASELINE[endpoint]}), so no refusal shows the CIBA rule"
        )


def inconclusive_if_unrelated(ciba: CibaClient, exchange: Exchange) -> None:
    """A refusal for another reason (e.g. invalid_redirect_uri) says nothing about the rule."""
    code = error_code(exchange.response)
    if code in UNRELATED_CODES:
        record_choice("registration_demands", f"refuses with {code}", refusal_reason(exchange))
        pytest.skip(f"inconclusive: refused for an unrelated reason ({refusal_reason(exchange)})")


def expect_refused(ciba: CibaClient, exchange: Exchange, requirement: str) -> None:
    """400 invalid_client_metadata (RFC 7591 §3.2.2)."""
    ciba.check(refused, exchange, requirement=requirement)
    inconclusive_if_unrelated(ciba, exchange)
    ciba.check(error_body_well_formed, exchange, requirement=requirement, allow_extra_members=True)
    ciba.check(error_code_is, exchange, {"invalid_client_metadata"}, requirement=requirement)
    ciba.check(status_is, exchange, {400}, requirement=requirement)


@pytest.mark.requirement("CIBA-REG-01")
def test_ciba_grant_without_delivery_mode_refused(ciba: CibaClient, registration_endpoint):
    """A CIBA registration without backchannel_token_delivery_mode is refused."""
    exchange = register(
        ciba, registration_endpoint, client_metadata(backchannel_token_delivery_mode=None)
    )
    expect_refused(ciba, exchange, "CIBA-REG-01")


@pytest.mark.requirement("CIBA-REG-02")
def test_unadvertised_delivery_mode_refused(
    ciba: CibaClient, ciba_metadata: ProviderMetadata, registration_endpoint
):
    """A delivery mode the provider does not advertise (or a junk one) is refused."""
    modes = ["email"] + [m for m in ("poll", "ping", "push") if not ciba_metadata.supports_mode(m)]
    for mode in modes:
        extra = {"backchannel_client_notification_endpoint": NOTIFICATION_URL}
        exchange = register(
            ciba,
            registration_endpoint,
            client_metadata(backchannel_token_delivery_mode=mode, **extra),
        )
        expect_refused(ciba, exchange, "CIBA-REG-02")


@pytest.mark.requirement("CIBA-REG-03", "CIBA-AERR-08")
def test_client_without_ciba_grant_cannot_use_ciba(ciba: CibaClient, registration_endpoint):
    """A poll client registered without the CIBA grant is refused at registration or gets
    unauthorized_client at the backchannel endpoint (records which)."""
    exchange = register(
        ciba,
        registration_endpoint,
        client_metadata(grant_types=["client_credentials"], backchannel_token_delivery_mode=None),
    )
    response = exchange.response
    if response is None or not 200 <= response.status < 300:
        ciba.check(refused, exchange, requirement="CIBA-REG-03")
        inconclusive_if_unrelated(ciba, exchange)
        record_choice("registration_without_grant", "refused at registration",
                      refusal_reason(exchange))
        return
    record_choice("registration_without_grant", "registered; checked at use", "HTTP "
                  f"{response.status}")
    body = response.json_object() or {}
    client_id, secret = body.get("client_id"), body.get("client_secret")
    if not isinstance(client_id, str) or not isinstance(secret, str):
        pytest.skip("not covered: the registration response holds no client_secret to use")
    client = ClientConfig(
        name="registered-without-ciba",
        client_id=client_id,
        auth_method="client_secret_basic",
        delivery_mode="poll",
        client_secret=secret,
    )
    attempt = ciba.backchannel(client, ciba.default_params(client))
    expect_backchannel_error(
        ciba,
        attempt,
        "unauthorized_client",
        requirement="CIBA-AERR-08",
        tolerated={"invalid_client"},  # Keycloak answers 401 invalid_client
    )


@pytest.mark.requirement("CIBA-REG-04")
@pytest.mark.parametrize("mode", ["ping", "push"])
@pytest.mark.parametrize(
    "endpoint", [None, "http://client.example.org/ciba/notify"], ids=["missing", "http"]
)
def test_notification_endpoint_required_and_https(
    ciba: CibaClient, ciba_metadata: ProviderMetadata, registration_endpoint, mode, endpoint
):
    """A ping/push registration without a notification endpoint, or with an http: one, is
    refused."""
    if not ciba_metadata.supports_mode(mode):
        pytest.skip(f"not applicable: the provider does not advertise {mode} mode")
    document = client_metadata(
        backchannel_token_delivery_mode=mode, backchannel_client_notification_endpoint=endpoint
    )
    expect_refused(ciba, register(ciba, registration_endpoint, document), "CIBA-REG-04")


@pytest.mark.requirement("CIBA-REG-05")
@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_weak_request_signing_alg_refused(ciba: CibaClient, registration_endpoint, alg):
    """backchannel_authentication_request_signing_alg none or HS256 is refused."""
    document = client_metadata(backchannel_authentication_request_signing_alg=alg)
    expect_refused(ciba, register(ciba, registration_endpoint, document), "CIBA-REG-05")


@pytest.mark.requirement("CIBA-REG-06")
def test_user_code_parameter_echoed(
    ciba: CibaClient, ciba_metadata: ProviderMetadata, registration_endpoint
):
    """backchannel_user_code_parameter=true is registered and echoed in the response."""
    if not ciba_metadata.user_code_supported:
        pytest.skip("not applicable: the provider does not advertise user code support")
    exchange = register(
        ciba, registration_endpoint, client_metadata(backchannel_user_code_parameter=True)
    )
    inconclusive_if_unrelated(ciba, exchange)
    ciba.check(accepted, exchange, requirement="CIBA-REG-06")
    ciba.check_at(Severity.WARNING, status_is, exchange, {201}, requirement="CIBA-REG-06")
    assert exchange.response is not None
    body = exchange.response.json_object() or {}
    if body.get("backchannel_user_code_parameter") is not True:
        raise fail(
            "CIBA-REG-06",
            "Registration response does not echo backchannel_user_code_parameter",
            expected="backchannel_user_code_parameter: true",
            actual=repr(body.get("backchannel_user_code_parameter", "(absent)")),
            exchanges=[exchange],
        )


@pytest.mark.requirement("CIBA-REG-08")
def test_pairwise_without_jwks_uri_refused(
    ciba: CibaClient, ciba_metadata: ProviderMetadata, registration_endpoint
):
    """A pairwise poll registration without jwks_uri is refused."""
    subject_types = ciba_metadata.raw.get("subject_types_supported") or []
    if "pairwise" not in subject_types:
        pytest.skip("not applicable: the provider does not support pairwise subjects")
    document = client_metadata(subject_type="pairwise", jwks_uri=None)
    expect_refused(ciba, register(ciba, registration_endpoint, document), "CIBA-REG-08")
