"""Client registration metadata through dynamic registration (CIBA §4, RFC 7591).

Runs only where the provider advertises a registration_endpoint that is open (no initial
access token); otherwise each test skips naming why. Registrations are RFC 7591 JSON requests
built as data; the clients they create are not used beyond CIBA-REG-03.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ciba_harness import CIBA_GRANT, ClientConfig, Exchange, HttpRequest, Severity
from ciba_harness._checks import error_body_well_formed, error_code_is, fail, refused, status_is
from ciba_harness._checks_backchannel import accepted, expect_backchannel_error

NOTIFICATION_URL = "https://client.example.org/ciba/notify"


@pytest.fixture
def registration_endpoint(ciba_metadata) -> str:
    if not ciba_metadata.registration_endpoint:
        pytest.skip("not applicable: the provider advertises no registration_endpoint")
    return str(ciba_metadata.registration_endpoint)


def register(ciba, endpoint: str, metadata: dict[str, Any]) -> Exchange:
    """POST an RFC 7591 registration request; skip when registration is not open to us."""
    request = HttpRequest(
        "POST",
        endpoint,
        (("Content-Type", "application/json"), ("Accept", "application/json")),
        json.dumps(metadata).encode(),
    )
    exchange = ciba.send(request, label="registration")
    if exchange.response is not None and exchange.response.status in {401, 403}:
        pytest.skip(
            "not covered: the registration endpoint requires an initial access token "
            f"(HTTP {exchange.response.status})"
        )
    return exchange


def client_metadata(**changes: Any) -> dict[str, Any]:
    """A valid poll-mode registration with client_secret_basic; None removes a member."""
    document: dict[str, Any] = {
        "client_name": "ciba-harness registration probe",
        "grant_types": [CIBA_GRANT],
        "backchannel_token_delivery_mode": "poll",
        "token_endpoint_auth_method": "client_secret_basic",
    }
    for name, value in changes.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return document


def expect_refused(ciba, exchange: Exchange, requirement: str) -> None:
    """400 invalid_client_metadata (RFC 7591 §3.2.2)."""
    ciba.check(refused, exchange, requirement=requirement)
    ciba.check(error_body_well_formed, exchange, requirement=requirement, allow_extra_members=True)
    ciba.check(error_code_is, exchange, {"invalid_client_metadata"}, requirement=requirement)
    ciba.check(status_is, exchange, {400}, requirement=requirement)


@pytest.mark.requirement("CIBA-REG-01")
def test_ciba_grant_without_delivery_mode_refused(ciba, registration_endpoint):
    """A CIBA registration without backchannel_token_delivery_mode is refused."""
    exchange = register(
        ciba, registration_endpoint, client_metadata(backchannel_token_delivery_mode=None)
    )
    expect_refused(ciba, exchange, "CIBA-REG-01")


@pytest.mark.requirement("CIBA-REG-02")
def test_unadvertised_delivery_mode_refused(ciba, ciba_metadata, registration_endpoint):
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
def test_client_without_ciba_grant_cannot_use_ciba(ciba, registration_endpoint):
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
        return
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
    ciba, ciba_metadata, registration_endpoint, mode, endpoint
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
def test_weak_request_signing_alg_refused(ciba, registration_endpoint, alg):
    """backchannel_authentication_request_signing_alg none or HS256 is refused."""
    document = client_metadata(backchannel_authentication_request_signing_alg=alg)
    expect_refused(ciba, register(ciba, registration_endpoint, document), "CIBA-REG-05")


@pytest.mark.requirement("CIBA-REG-06")
def test_user_code_parameter_echoed(ciba, ciba_metadata, registration_endpoint):
    """backchannel_user_code_parameter=true is registered and echoed in the response."""
    if not ciba_metadata.user_code_supported:
        pytest.skip("not applicable: the provider does not advertise user code support")
    exchange = register(
        ciba, registration_endpoint, client_metadata(backchannel_user_code_parameter=True)
    )
    ciba.check(accepted, exchange, requirement="CIBA-REG-06")
    ciba.check(status_is, exchange, {201}, requirement="CIBA-REG-06", severity=Severity.WARNING)
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
def test_pairwise_without_jwks_uri_refused(ciba, ciba_metadata, registration_endpoint):
    """A pairwise poll registration without jwks_uri is refused."""
    subject_types = ciba_metadata.raw.get("subject_types_supported") or []
    if "pairwise" not in subject_types:
        pytest.skip("not applicable: the provider does not support pairwise subjects")
    document = client_metadata(subject_type="pairwise", jwks_uri=None)
    expect_refused(ciba, register(ciba, registration_endpoint, document), "CIBA-REG-08")
