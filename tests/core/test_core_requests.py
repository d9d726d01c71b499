"""_clientauth and _requests: client authentication, backchannel/token requests, signed
request objects, and reading acknowledgements."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import jwt
import pytest
from core_helpers import ISSUER, json_response

from ciba_harness import (
    ASSERTION_TYPE,
    CIBA_GRANT,
    BackchannelParams,
    ClientAuthentication,
    ClientConfig,
    HttpRequest,
    HttpResponse,
    ProviderMetadata,
    RequestObjectSpec,
    apply_client_auth,
    build_backchannel_request,
    build_refresh_request,
    build_request_object,
    build_token_request,
    decode_unverified,
    error_code,
    new_notification_token,
    parse_acknowledgement,
)

ClientOf = Callable[[str], ClientConfig]


def secret_client(client_id: str, secret: str, method: str = "client_secret_basic") -> ClientConfig:
    return ClientConfig(
        name="c",
        client_id=client_id,
        auth_method=method,  # type: ignore[arg-type]
        delivery_mode="poll",
        client_secret=secret,
    )


def appendix_b(value: str) -> str:
    """RFC 6749 Appendix B, written out independently of the code under test."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        if char == " ":
            out.append("+")
        elif char.isascii() and (char.isalnum() or char in "*-._"):
            out.append(char)
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    raw = base64.b64decode(encoded).decode("ascii")
    user, _, password = raw.partition(":")
    return user, password


def verify(token: str, key: Any, alg: str, audience: str = ISSUER) -> dict[str, Any]:
    public = key if isinstance(key, bytes) else key.public_key()
    claims: dict[str, Any] = jwt.decode(token, public, algorithms=[alg], audience=audience)
    return claims


# --- client authentication -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [
        ("poll-basic", "poll-basic-secret-6c1f0e2a"),
        ("client id/ü", "p@ss+word:x y~*%"),
        ("a:b", "=&?#"),
    ],
)
def test_client_secret_basic_form_encodes_id_and_secret(client_id: str, secret: str) -> None:
    parts = apply_client_auth(secret_client(client_id, secret), audience=ISSUER)
    assert parts.fields == []
    ((name, value),) = parts.headers
    assert name == "Authorization"
    user, password = basic_credentials(value)
    assert (user, password) == (appendix_b(client_id), appendix_b(secret))
    # What a server does: split at the first colon, then form-decode.
    assert (unquote_plus(user), unquote_plus(password)) == (client_id, secret)
    assert secret in parts.secrets


def test_client_secret_post_fields(client_of: ClientOf) -> None:
    parts = apply_client_auth(client_of("poll-post"), audience=ISSUER)
    assert parts.headers == []
    assert parts.fields == [("client_id", "poll-post"), ("client_secret", "poll-post-secret-91b7d2c4")]
    assert "poll-post-secret-91b7d2c4" in parts.secrets


@pytest.mark.parametrize(
    ("name", "alg"),
    [
        ("poll-secret-jwt", "HS256"),
        ("poll-rs256", "RS256"),
        ("poll-ps256", "PS256"),
        ("poll-es256", "ES256"),
    ],
)
def test_jwt_assertions_verify_with_the_right_key(
    client_of: ClientOf, name: str, alg: str
) -> None:
    client = client_of(name)
    now = time.time()
    parts = apply_client_auth(client, audience=ISSUER, now=now)
    fields = dict(parts.fields)
    assert [k for k, _ in parts.fields] == ["client_id", "client_assertion_type", "client_assertion"]
    assert fields["client_id"] == client.client_id
    assert fields["client_assertion_type"] == ASSERTION_TYPE
    assertion = fields["client_assertion"]
    assert assertion in parts.secrets
    header, _ = decode_unverified(assertion)
    assert header["alg"] == alg
    key: Any = client.client_secret.encode() if client.client_secret else client.private_key
    claims = verify(assertion, key, alg)
    assert claims["iss"] == claims["sub"] == client.client_id
    assert claims["aud"] == ISSUER
    assert claims["iat"] == int(now)
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    # A fresh jti each time.
    again = dict(apply_client_auth(client, audience=ISSUER).fields)["client_assertion"]
    assert verify(again, key, alg)["jti"] != claims["jti"]


def test_assertion_signed_with_another_key_does_not_verify(
    client_of: ClientOf, other_rsa_key: Any
) -> None:
    client = client_of("poll-rs256")
    auth = ClientAuthentication(assertion_key=other_rsa_key)
    assertion = dict(apply_client_auth(client, audience=ISSUER, auth=auth).fields)["client_assertion"]
    with pytest.raises(jwt.InvalidSignatureError):
        verify(assertion, client.private_key, "RS256")
    assert verify(assertion, other_rsa_key, "RS256")["iss"] == client.client_id


def test_assertion_claim_overrides(client_of: ClientOf) -> None:
    client = client_of("poll-rs256")
    auth = ClientAuthentication(
        assertion_claims={"exp": None, "jti": None, "aud": "https://elsewhere", "extra": 7},
        assertion_headers={"kid": "key-1"},
        audience="ignored-because-claims-win",
    )
    assertion = dict(apply_client_auth(client, audience=ISSUER, auth=auth).fields)["client_assertion"]
    header, claims = decode_unverified(assertion)
    assert header["kid"] == "key-1"
    assert "exp" not in claims and "jti" not in claims
    assert claims["aud"] == "https://elsewhere"
    assert claims["extra"] == 7
    assert claims["iss"] == claims["sub"] == client.client_id


def test_assertion_audience_and_client_id_overrides(client_of: ClientOf) -> None:
    client = client_of("poll-rs256")
    auth = ClientAuthentication(audience=f"{ISSUER}/token", client_id="someone-else")
    parts = apply_client_auth(client, audience=ISSUER, auth=auth)
    fields = dict(parts.fields)
    assert fields["client_id"] == "someone-else"
    claims = verify(fields["client_assertion"], client.private_key, "RS256", f"{ISSUER}/token")
    assert claims["iss"] == claims["sub"] == "someone-else"


def test_unsigned_assertion(client_of: ClientOf) -> None:
    auth = ClientAuthentication(assertion_alg="none")
    assertion = dict(apply_client_auth(client_of("poll-rs256"), audience=ISSUER, auth=auth).fields)[
        "client_assertion"
    ]
    header, claims = decode_unverified(assertion)
    assert header["alg"] == "none"
    assert assertion.endswith(".")
    assert claims["iss"] == "poll-rs256"


def test_assertion_given_verbatim_and_also_basic(client_of: ClientOf) -> None:
    client = client_of("poll-secret-jwt")
    auth = ClientAuthentication(assertion="given.assertion.value", also_basic=True)
    parts = apply_client_auth(client, audience=ISSUER, auth=auth)
    assert dict(parts.fields)["client_assertion"] == "given.assertion.value"
    ((name, value),) = parts.headers
    assert name == "Authorization"
    assert basic_credentials(value) == ("poll-secret-jwt", "poll-secret-jwt-secret-3e5a8b1d0f9c7e2a")


def test_post_also_basic_and_method_and_secret_overrides(client_of: ClientOf) -> None:
    client = client_of("poll-basic")
    parts = apply_client_auth(
        client,
        audience=ISSUER,
        auth=ClientAuthentication(method="client_secret_post", secret="wrong-secret", also_basic=True),
    )
    assert parts.fields == [("client_id", "poll-basic"), ("client_secret", "wrong-secret")]
    assert basic_credentials(parts.headers[0][1]) == ("poll-basic", "wrong-secret")
    # Both the override and the real secret are secrets.
    assert {"wrong-secret", "poll-basic-secret-6c1f0e2a"} <= parts.secrets


def test_none_omit_and_unknown_methods(client_of: ClientOf) -> None:
    public = apply_client_auth(client_of("public"), audience=ISSUER)
    assert public.fields == [("client_id", "public-client")] and public.headers == []
    omitted = apply_client_auth(
        client_of("poll-basic"), audience=ISSUER, auth=ClientAuthentication(method="omit")
    )
    assert omitted.fields == [] and omitted.headers == []
    with pytest.raises(ValueError, match="unknown client authentication method"):
        apply_client_auth(
            client_of("poll-basic"), audience=ISSUER, auth=ClientAuthentication(method="magic")
        )


# --- backchannel requests --------------------------------------------------------------------


def test_backchannel_form_request(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    token = new_notification_token()
    params = BackchannelParams(
        login_hint="alice",
        binding_message="T1 0042",
        requested_expiry=30,
        client_notification_token=token,
        acr_values="urn:acr:1",
    )
    request = build_backchannel_request(client_of("poll-post"), metadata, params)
    assert request.method == "POST"
    assert request.url == metadata.backchannel_authentication_endpoint
    assert request.header("content-type") == "application/x-www-form-urlencoded"
    assert request.header("accept") == "application/json"
    assert request.form_fields() == [
        ("scope", "openid"),
        ("login_hint", "alice"),
        ("binding_message", "T1 0042"),
        ("requested_expiry", "30"),
        ("acr_values", "urn:acr:1"),
        ("client_notification_token", token),
        ("client_id", "poll-post"),
        ("client_secret", "poll-post-secret-91b7d2c4"),
    ]
    assert {token, "poll-post-secret-91b7d2c4"} <= request.secrets
    assert len(token) >= 22 and token != new_notification_token()


def test_repeated_fields_are_preserved_in_order(
    client_of: ClientOf, metadata: ProviderMetadata
) -> None:
    params = BackchannelParams(
        login_hint="alice", extra=(("scope", "email"), ("login_hint", "bob"), ("scope", "x"))
    )
    request = build_backchannel_request(client_of("poll-basic"), metadata, params)
    fields = request.form_fields()
    assert [v for k, v in fields if k == "scope"] == ["openid", "email", "x"]
    assert [v for k, v in fields if k == "login_hint"] == ["alice", "bob"]
    assert request.header("authorization") is not None


def test_omitted_fields(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    request = build_backchannel_request(
        client_of("poll-post"),
        metadata,
        BackchannelParams(login_hint="alice"),
        omit=("scope", "client_secret"),
    )
    assert request.form_fields() == [("login_hint", "alice"), ("client_id", "poll-post")]


def test_json_body_format(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    request = build_backchannel_request(
        client_of("poll-post"), metadata, BackchannelParams(login_hint="alice"), body_format="json"
    )
    assert request.header("content-type") == "application/json"
    assert json.loads(request.body) == {
        "scope": "openid",
        "login_hint": "alice",
        "client_id": "poll-post",
        "client_secret": "poll-post-secret-91b7d2c4",
    }
    assert request.form_fields() == []


def test_query_body_format(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    request = build_backchannel_request(
        client_of("poll-basic"),
        metadata,
        BackchannelParams(login_hint="a b"),
        body_format="query",
        method="GET",
    )
    assert request.method == "GET" and request.body == b""
    url = urlsplit(request.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == metadata.backchannel_authentication_endpoint
    assert parse_qsl(url.query) == [("scope", "openid"), ("login_hint", "a b")]
    assert request.header("authorization") is not None


def test_mtls_client_uses_the_alias(metadata: ProviderMetadata) -> None:
    aliased = ProviderMetadata(
        **{
            **{f: getattr(metadata, f) for f in ("issuer", "token_endpoint", "backchannel_authentication_endpoint")},
            "mtls_endpoint_aliases": {
                "backchannel_authentication_endpoint": "https://mtls.op/bc",
                "token_endpoint": "https://mtls.op/token",
            },
        }
    )
    client = ClientConfig(name="m", client_id="m", auth_method="tls_client_auth", delivery_mode="poll")
    assert build_backchannel_request(client, aliased, BackchannelParams(login_hint="a")).url == "https://mtls.op/bc"
    assert build_token_request(client, aliased, "id").url == "https://mtls.op/token"
    basic = secret_client("b", "secret-b")
    assert build_backchannel_request(basic, aliased, BackchannelParams(login_hint="a")).url == metadata.backchannel_authentication_endpoint


# --- signed request objects ------------------------------------------------------------------


def test_signed_request_object(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    client = client_of("poll-signed")
    params = BackchannelParams(
        login_hint="alice", binding_message="B1", requested_expiry=30, user_code="4711",
        acr_values="a", client_notification_token="n" * 30, extra=(("custom", "v"),),
    )
    now = time.time()
    request = build_backchannel_request(
        client, metadata, params, signed=RequestObjectSpec(also_outside=("login_hint",)), now=now
    )
    fields = request.form_fields()
    names = [k for k, _ in fields]
    assert names == ["request", "login_hint", "client_id", "client_assertion_type", "client_assertion"]
    request_object = dict(fields)["request"]
    assert request_object in request.secrets
    header, _ = decode_unverified(request_object)
    assert header["alg"] == "RS256"
    claims = verify(request_object, client.private_key, "RS256")
    assert claims["iss"] == client.client_id
    assert claims["aud"] == ISSUER
    assert claims["iat"] == claims["nbf"] == int(now)
    assert claims["exp"] == int(now) + 300
    assert isinstance(claims["jti"], str) and claims["jti"]
    for name, value in params.as_claims().items():
        assert claims[name] == value, name
    assert claims["requested_expiry"] == 30 and claims["custom"] == "v"
    assert claims["scope"] == "openid"


def test_request_object_overrides(client_of: ClientOf, other_rsa_key: Any) -> None:
    client = client_of("poll-signed")
    spec = RequestObjectSpec(
        claims={"aud": None, "iss": "intruder", "login_hint": None},
        headers={"kid": "k2"},
        lifetime=60,
        nbf_offset=-10,
        key=other_rsa_key,
        alg="PS256",
    )
    token = build_request_object(
        client, ISSUER, BackchannelParams(login_hint="alice"), spec, now=1_000_000
    )
    header, claims = decode_unverified(token)
    assert header == {"alg": "PS256", "kid": "k2", "typ": "JWT"}
    assert "aud" not in claims and "login_hint" not in claims
    assert claims["iss"] == "intruder"
    assert claims["iat"] == 1_000_000 and claims["nbf"] == 999_990 and claims["exp"] == 1_000_050
    jwt.decode(token, other_rsa_key.public_key(), algorithms=["PS256"], options={"verify_exp": False})


def test_tamper_signature_breaks_verification(client_of: ClientOf) -> None:
    client = client_of("poll-signed")
    params = BackchannelParams(login_hint="alice")
    fixed = {"jti": "fixed-jti"}
    good = build_request_object(client, ISSUER, params, RequestObjectSpec(claims=fixed), now=1e9)
    bad = build_request_object(
        client, ISSUER, params, RequestObjectSpec(claims=fixed, tamper_signature=True), now=1e9
    )
    # Same header and payload; only the signature differs.
    assert bad.rsplit(".", 1)[0] == good.rsplit(".", 1)[0]
    assert bad != good
    options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
    jwt.decode(good, client.private_key.public_key(), ["RS256"], audience=ISSUER, options=options)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(bad, client.private_key.public_key(), ["RS256"], audience=ISSUER, options=options)


def test_request_object_mac_and_none(client_of: ClientOf) -> None:
    client = client_of("poll-secret-jwt")
    params = BackchannelParams(login_hint="alice")
    mac = build_request_object(client, ISSUER, params, RequestObjectSpec(alg="HS256"))
    verify(mac, b"poll-secret-jwt-secret-3e5a8b1d0f9c7e2a", "HS256")
    unsigned = build_request_object(client, ISSUER, params, RequestObjectSpec(alg="none"))
    assert decode_unverified(unsigned)[0]["alg"] == "none"


# --- token requests --------------------------------------------------------------------------


def test_token_request(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    request = build_token_request(client_of("poll-post"), metadata, "auth-req-1", extra=[("x", "1")])
    assert request.url == metadata.token_endpoint
    assert request.form_fields() == [
        ("grant_type", CIBA_GRANT),
        ("auth_req_id", "auth-req-1"),
        ("x", "1"),
        ("client_id", "poll-post"),
        ("client_secret", "poll-post-secret-91b7d2c4"),
    ]
    missing = build_token_request(client_of("poll-basic"), metadata, None, grant_type="password")
    assert missing.form_fields() == [("grant_type", "password")]


def test_refresh_request(client_of: ClientOf, metadata: ProviderMetadata) -> None:
    request = build_refresh_request(client_of("poll-basic"), metadata, "refresh-token-value")
    assert request.form_fields() == [("grant_type", "refresh_token"), ("refresh_token", "refresh-token-value")]
    assert "refresh-token-value" in request.secrets


# --- reading responses -----------------------------------------------------------------------


def test_parse_acknowledgement() -> None:
    ack = parse_acknowledgement(
        json_response(200, {"auth_req_id": "abc", "expires_in": 120, "interval": 2, "x": 1}),
        received_at=5.0,
    )
    assert ack is not None
    assert (ack.auth_req_id, ack.expires_in, ack.interval, ack.received_at) == ("abc", 120, 2, 5.0)
    assert ack.raw["x"] == 1  # unknown members are kept, not refused
    loose = parse_acknowledgement(json_response(200, {"auth_req_id": "abc", "expires_in": "120", "interval": True}))
    assert loose is not None and loose.expires_in is None and loose.interval is None
    assert parse_acknowledgement(json_response(400, {"error": "invalid_request"})) is None
    assert parse_acknowledgement(json_response(200, {"auth_req_id": 5})) is None
    assert parse_acknowledgement(HttpResponse(200, (), b"<html>")) is None


def test_error_code() -> None:
    assert error_code(json_response(400, {"error": "slow_down"})) == "slow_down"
    assert error_code(json_response(400, {"error": 5})) is None
    assert error_code(json_response(400, ["error"])) is None
    assert error_code(HttpResponse(502, (), b"Bad gateway")) is None
    assert error_code(None) is None


def test_params_secrets_and_fields() -> None:
    params = BackchannelParams(
        scope=None, login_hint_token="lht", id_token_hint="ith", user_code="uc",
        client_notification_token="cnt",
    )
    assert params.secrets == {"lht", "ith", "uc", "cnt"}
    assert "scope" not in dict(params.as_fields())
    request = HttpRequest.form_post("https://op/x", params.as_fields())
    assert dict(request.form_fields())["login_hint_token"] == "lht"
