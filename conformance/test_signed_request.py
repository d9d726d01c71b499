"""Signed authentication requests (CIBA §7.1.1, §7.2 step 2; §4 for the registered alg).

Needs a client registered for signed requests (`sign_requests = true`) and a provider that
advertises backchannel_authentication_request_signing_alg_values_supported. Refusals expect
`invalid_request`; `invalid_request_object` is tolerated with a warning (ambiguity A-03, a
failure with --ciba-strict).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ciba_harness import (
    HttpRequest,
    RequestObjectSpec,
    Severity,
    build_backchannel_request,
    describe_refusal,
    error_code,
    expect_backchannel_error,
    expect_signed_request_refused,
    not_server_error,
    record_choice,
    refused,
    require_client,
    send_and_accept,
    send_signed,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, ClientConfig, ProviderConfig, ProviderMetadata


@pytest.fixture
def signing_client(ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata):
    if not ciba_metadata.request_signing_algs:
        pytest.skip(
            "not applicable: the provider advertises no "
            "backchannel_authentication_request_signing_alg_values_supported"
        )
    return require_client(
        ciba_config, ciba_metadata, mode="poll", signed=True, feature="signed requests"
    )


def record(ciba: CibaClient, exchange, requirement: str, latitude: str) -> None:
    """Undefined rows: refusal or acceptance is the provider's choice, recorded; an error
    must still be well-formed and carry its code's status (CIBA §13)."""
    response = exchange.response
    if response is not None and 400 <= response.status < 500:
        code = error_code(response)
        expect_backchannel_error(
            ciba,
            exchange,
            "invalid_request",
            requirement=requirement,
            tolerated={code} if code else (),
            tolerated_severity=Severity.INFO,
        )
        record_choice(latitude, f"refused: {code}", describe_refusal(exchange))
        return
    ciba.check_at(Severity.WARNING, not_server_error, exchange, requirement=requirement)
    if response is not None and 200 <= response.status < 300:
        record_choice(latitude, "accepted", f"HTTP {response.status}")


# --- baseline ---------------------------------------------------------------------------------


@pytest.mark.requirement("CIBA-SREQ-01")
def test_signed_request_accepted(ciba: CibaClient, signing_client):
    """A request object signed with the registered key and alg, with aud, iss, exp, iat, nbf,
    jti and the parameters as claims, is accepted."""
    send_and_accept(
        ciba,
        signing_client,
        ciba.default_params(signing_client),
        requirement="CIBA-SREQ-01",
        signed=RequestObjectSpec(),
    )


@pytest.mark.requirement("CIBA-SREQ-12")
def test_client_authentication_beside_request(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """Client-authentication fields travel as form fields beside `request` and are honoured,
    for each auth method of the clients registered for signed requests."""
    if not ciba_metadata.request_signing_algs:
        pytest.skip("not applicable: the provider advertises no request-signing algs")
    clients: dict[str, ClientConfig] = {}
    for client in ciba_config.clients:
        if client.sign_requests and client.ciba_allowed and client.delivery_mode == "poll":
            clients.setdefault(client.auth_method, client)
    if not clients:
        pytest.skip("not covered: no poll client configured with sign_requests = true")
    for client in clients.values():
        send_and_accept(
            ciba,
            client,
            ciba.default_params(client),
            requirement="CIBA-SREQ-12",
            signed=RequestObjectSpec(),
        )


# --- signature ----------------------------------------------------------------------------------


@pytest.mark.requirement("CIBA-SREQ-02", "CIBA-AERR-04")
def test_alg_none_refused(ciba: CibaClient, signing_client):
    """An unsigned (alg none) request object: 400 invalid_request."""
    exchange = send_signed(ciba, signing_client, RequestObjectSpec(alg="none"))
    expect_signed_request_refused(ciba, exchange, "CIBA-SREQ-02")


@pytest.mark.requirement("CIBA-SREQ-03", "CIBA-AERR-04")
def test_mac_signed_request_refused(ciba: CibaClient, signing_client):
    """A MAC-protected (HS256) request object: 400."""
    exchange = send_signed(ciba, signing_client, RequestObjectSpec(alg="HS256"))
    expect_signed_request_refused(ciba, exchange, "CIBA-SREQ-03")


def _other_key(ciba_config: ProviderConfig, client):
    other = ciba_config.find_client(role="second")
    if other is not None and other.private_key is not None:
        return other.private_key, other.signing_alg or "RS256"
    for candidate in ciba_config.clients:
        if (
            candidate.private_key is not None
            and candidate.private_key_path != client.private_key_path
        ):
            return candidate.private_key, candidate.signing_alg or "RS256"
    # A fresh key of the same type: surely never registered.
    if isinstance(client.private_key, ec.EllipticCurvePrivateKey):
        return ec.generate_private_key(ec.SECP256R1()), "ES256"
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"


@pytest.mark.requirement("CIBA-SREQ-04", "CIBA-AERR-04")
@pytest.mark.parametrize("how", ["broken_signature", "other_client_key"])
def test_bad_signature_refused(ciba: CibaClient, ciba_config: ProviderConfig, signing_client, how):
    """A request object with a broken signature, or signed with another client's key: 400
    invalid_request."""
    if how == "broken_signature":
        spec = RequestObjectSpec(tamper_signature=True)
    else:
        key, alg = _other_key(ciba_config, signing_client)
        registered = signing_client.request_signing_alg
        if registered and _key_fits(key, registered):
            alg = registered  # only the key is wrong
        spec = RequestObjectSpec(key=key, alg=alg)
    exchange = send_signed(ciba, signing_client, spec)
    expect_signed_request_refused(ciba, exchange, "CIBA-SREQ-04")


def _key_fits(key, alg: str) -> bool:
    if alg.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPrivateKey)
    if alg.startswith("ES"):
        return isinstance(key, ec.EllipticCurvePrivateKey)
    return False


# --- claims -------------------------------------------------------------------------------------


@pytest.mark.requirement("CIBA-SREQ-05", "CIBA-AERR-04")
@pytest.mark.parametrize("aud", [None, "https://other-op.example.org"], ids=["missing", "other"])
def test_audience_checked(ciba: CibaClient, signing_client, aud):
    """aud missing or not the provider's issuer: 400."""
    claims = {"aud": aud}
    exchange = send_signed(ciba, signing_client, RequestObjectSpec(claims=claims))
    expect_signed_request_refused(ciba, exchange, "CIBA-SREQ-05")


@pytest.mark.requirement("CIBA-SREQ-06", "CIBA-AERR-04")
@pytest.mark.parametrize("iss", ["missing", "other_client"])
def test_issuer_checked(ciba: CibaClient, ciba_config: ProviderConfig, signing_client, iss):
    """iss missing, or another client's client_id: 400."""
    claims: dict[str, str | None]
    if iss == "missing":
        claims = {"iss": None}
    else:
        other = ciba_config.find_client(role="second") or ciba_config.find_client(
            exclude=(signing_client.name,)
        )
        claims = {"iss": other.client_id if other else "harness-other-client"}
    exchange = send_signed(ciba, signing_client, RequestObjectSpec(claims=claims))
    expect_signed_request_refused(ciba, exchange, "CIBA-SREQ-06")


@pytest.mark.requirement("CIBA-SREQ-07", "CIBA-AERR-04")
@pytest.mark.parametrize("exp", ["missing", "past"])
def test_expiry_checked(ciba: CibaClient, signing_client, exp):
    """exp missing or in the past: 400."""
    now = int(time.time())
    claims = {"exp": None} if exp == "missing" else {"exp": now - 60, "iat": now - 120}
    exchange = send_signed(ciba, signing_client, RequestObjectSpec(claims=claims))
    expect_signed_request_refused(ciba, exchange, "CIBA-SREQ-07")


@pytest.mark.requirement("CIBA-SREQ-08", "CIBA-AERR-04")
def test_issued_at_required(ciba: CibaClient, signing_client):
    """iat missing: 400."""
    exchange = send_signed(ciba, signing_client, RequestObjectSpec(claims={"iat": None}))
    expect_signed_request_refused(ciba, exchange, "CIBA-SREQ-08")


@pytest.mark.requirement("CIBA-SREQ-09", "CIBA-AERR-04")
@pytest.mark.parametrize("nbf", ["missing", "ten_minutes_ahead"])
def test_not_before_checked(ciba: CibaClient, signing_client, nbf):
    """nbf missing, or 10 minutes in the future: 400."""
    spec = (
        RequestObjectSpec(claims={"nbf": None})
        if nbf == "missing"
        else RequestObjectSpec(nbf_offset=600)
    )
    exchange = send_signed(ciba, signing_client, spec)
    expect_signed_request_refused(ciba, exchange, "CIBA-SREQ-09")


@pytest.mark.requirement("CIBA-SREQ-10", "CIBA-AERR-04")
def test_jti_required(ciba: CibaClient, signing_client):
    """jti missing: 400."""
    exchange = send_signed(ciba, signing_client, RequestObjectSpec(claims={"jti": None}))
    expect_signed_request_refused(ciba, exchange, "CIBA-SREQ-10")


@pytest.mark.requirement("CIBA-SREQ-10")
def test_jti_replay_recorded(ciba: CibaClient, signing_client):
    """The same jti twice: the provider may refuse the second request; recorded."""
    spec = RequestObjectSpec(claims={"jti": secrets.token_urlsafe(16)})
    send_and_accept(
        ciba,
        signing_client,
        ciba.default_params(signing_client),
        requirement="CIBA-SREQ-10",
        signed=spec,
    )
    record(ciba, send_signed(ciba, signing_client, spec), "CIBA-SREQ-10", "request_jti_replay")


@pytest.mark.requirement("CIBA-SREQ-11")
def test_parameter_also_outside_recorded(ciba: CibaClient, signing_client):
    """scope inside the JWT and also as a form field: refused, or accepted using the inner
    value; recorded."""
    exchange = send_signed(ciba, signing_client, RequestObjectSpec(also_outside=("scope",)))
    record(ciba, exchange, "CIBA-SREQ-11", "request_object_outside_params")


@pytest.mark.requirement("CIBA-SREQ-13")
def test_encrypted_request_refused(
    ciba: CibaClient, ciba_metadata: ProviderMetadata, signing_client
):
    """An encrypted (JWE compact, five parts) request object: 400."""

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM", "cty": "JWT"}).encode())
    jwe = ".".join(
        [
            header,
            part(secrets.token_bytes(256)),
            part(secrets.token_bytes(12)),
            part(secrets.token_bytes(64)),
            part(secrets.token_bytes(16)),
        ]
    )
    request = build_backchannel_request(
        signing_client,
        ciba_metadata,
        ciba.default_params(signing_client),
        signed=RequestObjectSpec(),
    )
    fields = [(k, jwe if k == "request" else v) for k, v in request.form_fields()]
    encrypted = HttpRequest.form_post(
        request.url,
        fields,
        headers=[h for h in request.headers if h[0].lower() == "authorization"],
        secrets=request.secrets,
    )
    exchange = ciba.send(encrypted, label="backchannel (JWE request)", client=signing_client)
    if exchange.response is not None and 200 <= exchange.response.status < 300:
        # CIBA §7.1.1 defines signed requests only; no sentence makes the OP refuse an
        # encrypted one, so accepting it (an extension) is a warning (BB-105).
        ciba.check_at(Severity.WARNING, refused, exchange, requirement="CIBA-SREQ-13")
        return
    code = error_code(exchange.response)
    expect_backchannel_error(
        ciba,
        exchange,
        "invalid_request",
        requirement="CIBA-SREQ-13",
        tolerated={code} if code and code != "invalid_client" else (),
    )


@pytest.mark.requirement("CIBA-SREQ-14")
def test_unknown_claim_ignored(ciba: CibaClient, signing_client):
    """An unrecognised claim in the request object is ignored: accepted."""
    spec = RequestObjectSpec(claims={"x_harness_claim": "ignore me"})
    send_and_accept(
        ciba,
        signing_client,
        ciba.default_params(signing_client),
        requirement="CIBA-SREQ-14",
        signed=spec,
    )


@pytest.mark.requirement("CIBA-SREQ-15")
@pytest.mark.parametrize("value", ["30", 30], ids=["string", "number"])
def test_requested_expiry_string_or_number(ciba: CibaClient, signing_client, value):
    """requested_expiry inside the JWT as JSON string and as number: accepted."""
    send_and_accept(
        ciba,
        signing_client,
        ciba.default_params(signing_client, requested_expiry=value),
        requirement="CIBA-SREQ-15",
        signed=RequestObjectSpec(),
    )


# --- registered alg -----------------------------------------------------------------------------


@pytest.mark.requirement("CIBA-SREQ-16", "CIBA-AERR-04")
def test_unsigned_request_from_signing_client_refused(
    ciba: CibaClient, ciba_metadata: ProviderMetadata, signing_client
):
    """A client registered for signed requests sends a plain (unsigned) request: 400."""
    request = build_backchannel_request(
        signing_client, ciba_metadata, ciba.default_params(signing_client)
    )
    exchange = ciba.send(request, label="backchannel (unsigned)", client=signing_client)
    expect_signed_request_refused(ciba, exchange, "CIBA-SREQ-16")


@pytest.mark.requirement("CIBA-SREQ-16", "CIBA-AERR-04")
def test_other_alg_than_registered_refused(
    ciba: CibaClient, ciba_metadata: ProviderMetadata, signing_client
):
    """A request object signed with the registered key but another advertised alg: 400."""
    registered = signing_client.request_signing_alg
    other = [
        alg
        for alg in ciba_metadata.request_signing_algs
        if alg != registered and _key_fits(signing_client.private_key, alg)
    ]
    if not registered or not other:
        pytest.skip("not applicable: no other advertised alg fits the client's key")
    exchange = send_signed(ciba, signing_client, RequestObjectSpec(alg=other[0]))
    expect_signed_request_refused(ciba, exchange, "CIBA-SREQ-16")


@pytest.mark.requirement("CIBA-SREQ-17")
def test_request_uri_recorded(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
):
    """request_uri (undefined here) pointing at an unreachable host: refused or ignored;
    recorded."""
    client = require_client(ciba_config, ciba_metadata, mode="poll")
    params = ciba.default_params(
        client, extra=(("request_uri", "https://request-uri.invalid/ciba/req/1"),)
    )
    exchange = ciba.backchannel(client, params)
    record(ciba, exchange, "CIBA-SREQ-17", "request_uri")
