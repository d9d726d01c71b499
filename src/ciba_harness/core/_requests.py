"""CIBA requests built as data, and responses read as data (CIBA §7.1, §7.1.1, §10.1).

Builders take the deviations tests need (extra or repeated fields, omitted fields, other
bodies, signed request objects with mutated claims) so negative cases use the same code as
positive ones.
"""

from __future__ import annotations

import json
import secrets as random_source
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields as dataclass_fields, replace
from typing import Any, Literal

from ciba_harness.core._clientauth import ClientAuthentication, apply_client_auth, sign_jwt
from ciba_harness.core._config import ClientConfig, UsersConfig
from ciba_harness.core._discovery import CIBA_GRANT, ProviderMetadata
from ciba_harness.core._http import HttpRequest, HttpResponse

__all__ = [
    "AUTH_PARAMETERS",
    "Acknowledgement",
    "BackchannelParams",
    "RequestObjectSpec",
    "build_backchannel_request",
    "build_request_object",
    "build_token_request",
    "build_refresh_request",
    "build_introspection_request",
    "build_userinfo_request",
    "endpoint_for",
    "login_hint_token",
    "uses_mtls",
    "new_notification_token",
    "parse_acknowledgement",
    "error_code",
    "tampered_signature",
]

AUTH_PARAMETERS = (
    "scope",
    "client_notification_token",
    "acr_values",
    "login_hint_token",
    "id_token_hint",
    "login_hint",
    "binding_message",
    "user_code",
    "requested_expiry",
)
BodyFormat = Literal["form", "json", "query"]


def new_notification_token() -> str:
    """A client_notification_token with 192 bits of entropy (CIBA-SEC-06 asks >= 128)."""
    return random_source.token_urlsafe(24)


def login_hint_token(
    users: UsersConfig,
    kind: str,
    *,
    now: float | None = None,
    client: ClientConfig | None = None,
    user: str | None = None,
) -> str | None:
    """A login_hint_token of `kind` (valid, expired, unknown), or None when the configuration
    gives no way to make one (the format is deployment-defined, CIBA §7.1).

    `[users] login_hint_token_format`: "provider_hs256" (default) mints an HS256 JWT
    {"sub", "iat", "exp"} with `login_hint_token_hs256_key`, else uses the static tokens of
    [users]; "client_signed" mints a JWS signed by the requesting `client` (HS256 with its
    secret, else its private key) naming the user in `sub_id` {"format": "opaque", "id"}.
    The user named is `user` (default `[users] login_hint`; unknown_login_hint for "unknown")."""
    issued = int(now if now is not None else time.time())
    sub = users.unknown_login_hint if kind == "unknown" else user or users.login_hint
    exp = issued - 600 if kind == "expired" else issued + 300
    if getattr(users, "login_hint_token_format", "provider_hs256") == "client_signed":
        if client is None:
            return None
        claims = {"sub_id": {"format": "opaque", "id": sub}, "iss": client.client_id,
                  "iat": issued - 700, "exp": exp}
        if client.client_secret:
            return sign_jwt(claims, client.client_secret.encode(), "HS256")
        if client.private_key is not None:
            return sign_jwt(claims, client.private_key, client.signing_alg or "RS256")
        return None
    key = users.login_hint_token_hs256_key
    if key:
        return sign_jwt({"sub": sub, "iat": issued - 700, "exp": exp}, key.encode(), "HS256")
    return {
        "valid": users.login_hint_token,
        "expired": users.expired_login_hint_token,
        "unknown": users.unknown_login_hint_token,
    }.get(kind)


@dataclass(frozen=True)
class BackchannelParams:
    """The authentication request parameters of CIBA §7.1. None means 'not sent'."""

    scope: str | None = "openid"
    login_hint: str | None = None
    login_hint_token: str | None = None
    id_token_hint: str | None = None
    binding_message: str | None = None
    user_code: str | None = None
    requested_expiry: int | str | None = None
    acr_values: str | None = None
    client_notification_token: str | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def as_fields(self) -> list[tuple[str, str]]:
        out = [
            (f.name, str(getattr(self, f.name)))
            for f in dataclass_fields(self)
            if f.name != "extra" and getattr(self, f.name) is not None
        ]
        return out + list(self.extra)

    def as_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclass_fields(self)
            if f.name != "extra" and getattr(self, f.name) is not None
        }
        for name, value in self.extra:
            claims[name] = value
        return claims

    @property
    def secrets(self) -> set[str]:
        return {
            v
            for v in (
                self.client_notification_token,
                self.login_hint_token,
                self.id_token_hint,
                self.user_code,
            )
            if v
        }


@dataclass(frozen=True)
class RequestObjectSpec:
    """How to build the signed `request` (CIBA §7.1.1); overrides make it deliberately wrong."""

    alg: str | None = None
    key: Any = None
    claims: Mapping[str, Any] = field(default_factory=dict)  # None removes a claim
    headers: Mapping[str, Any] = field(default_factory=dict)
    lifetime: int = 300
    nbf_offset: int = 0
    also_outside: tuple[str, ...] = ()  # parameters also sent as form fields
    tamper_signature: bool = False


def build_request_object(
    client: ClientConfig,
    issuer: str,
    params: BackchannelParams,
    spec: RequestObjectSpec,
    *,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": client.client_id,
        "aud": issuer,
        "iat": issued,
        "nbf": issued + spec.nbf_offset,
        "exp": issued + spec.nbf_offset + spec.lifetime,
        "jti": random_source.token_urlsafe(16),
        **params.as_claims(),
    }
    for name, value in spec.claims.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    alg = spec.alg or client.request_signing_alg or client.signing_alg or "RS256"
    key = spec.key if spec.key is not None else client.private_key
    if alg.startswith("HS") and spec.key is None:
        key = (client.client_secret or "harness-mac-key-of-sufficient-length").encode()
    headers = dict(spec.headers)
    token = sign_jwt(claims, key, alg, headers)
    if spec.tamper_signature and token.count(".") == 2:
        token = tampered_signature(token)
    return token


def tampered_signature(token: str) -> str:
    """The same JWS (header.payload.signature) with the signature's first character changed:
    a signature that no longer verifies."""
    head, body, signature = token.split(".")
    flipped = ("A" if signature[:1] != "A" else "B") + signature[1:]
    return f"{head}.{body}.{flipped}"


def uses_mtls(client: ClientConfig) -> bool:
    """The client authenticates with mTLS or presents a certificate for certificate-bound
    tokens: its requests go to the mTLS endpoint aliases (RFC 8705 §5, CIBA-DISC-08)."""
    return client.auth_method in {"tls_client_auth", "self_signed_tls_client_auth"} or bool(
        client.certificate_path and client.certificate_key_path
    )


def endpoint_for(client: ClientConfig, metadata: ProviderMetadata, name: str) -> str:
    """The URL of metadata endpoint `name` for `client`: the mTLS alias when it has one."""
    default = str(getattr(metadata, name, None) or metadata.raw.get(name) or "")
    if uses_mtls(client):
        return metadata.mtls_endpoint_aliases.get(name, default)
    return default


def build_userinfo_request(
    metadata: ProviderMetadata,
    access_token: str,
    *,
    client: ClientConfig | None = None,
    url: str | None = None,
) -> HttpRequest:
    """GET userinfo with the access token as Bearer (the mTLS alias for certificate users)."""
    target = url or (
        endpoint_for(client, metadata, "userinfo_endpoint")
        if client is not None
        else metadata.userinfo_endpoint or ""
    )
    return HttpRequest(
        "GET",
        target,
        (("Authorization", f"Bearer {access_token}"), ("Accept", "application/json")),
        b"",
        frozenset({access_token}),
    )


def build_introspection_request(
    client: ClientConfig,
    metadata: ProviderMetadata,
    token: str,
    *,
    now: float | None = None,
) -> HttpRequest:
    """RFC 7662 introspection of `token`, authenticated as `client`."""
    url = endpoint_for(client, metadata, "introspection_endpoint")
    parts = apply_client_auth(client, audience=metadata.issuer, now=now)
    fields = [("token", token), *parts.fields]
    return _encode("POST", url, fields, parts.headers, parts.secrets | {token}, "form")


def build_backchannel_request(
    client: ClientConfig,
    metadata: ProviderMetadata,
    params: BackchannelParams,
    *,
    auth: ClientAuthentication | None = None,
    signed: RequestObjectSpec | None = None,
    body_format: BodyFormat = "form",
    method: str = "POST",
    omit: Iterable[str] = (),
    now: float | None = None,
) -> HttpRequest:
    """The authentication request of CIBA §7.1 (signed per §7.1.1 when `signed` is given)."""
    endpoint = endpoint_for(client, metadata, "backchannel_authentication_endpoint")
    parts = apply_client_auth(client, audience=metadata.issuer, auth=auth, now=now)
    secrets = parts.secrets | params.secrets
    if signed is not None:
        # A JSON object cannot repeat a member: an `extra` field repeating a parameter (or
        # another extra) travels beside the request object, as a repeated form field would.
        seen = {k for k, _ in params.as_fields()[: len(params.as_fields()) - len(params.extra)]}
        repeated: list[tuple[str, str]] = []
        kept: list[tuple[str, str]] = []
        for name, value in params.extra:
            (repeated if name in seen else kept).append((name, value))
            seen.add(name)
        inner = replace(params, extra=tuple(kept))
        request_object = build_request_object(client, metadata.issuer, inner, signed, now=now)
        secrets.add(request_object)
        outside = [(k, v) for k, v in inner.as_fields() if k in signed.also_outside]
        fields = [("request", request_object), *outside, *repeated, *parts.fields]
    else:
        fields = params.as_fields() + parts.fields
    omitted = set(omit)
    fields = [(k, v) for k, v in fields if k not in omitted]
    return _encode(method, endpoint, fields, parts.headers, secrets, body_format)


def build_token_request(
    client: ClientConfig,
    metadata: ProviderMetadata,
    auth_req_id: str | None,
    *,
    auth: ClientAuthentication | None = None,
    grant_type: str = CIBA_GRANT,
    extra: Iterable[tuple[str, str]] = (),
    body_format: BodyFormat = "form",
    now: float | None = None,
) -> HttpRequest:
    """Token request with the CIBA grant (CIBA §10.1); auth_req_id None leaves it out."""
    endpoint = endpoint_for(client, metadata, "token_endpoint")
    parts = apply_client_auth(client, audience=metadata.issuer, auth=auth, now=now)
    fields = [("grant_type", grant_type)]
    if auth_req_id is not None:
        fields.append(("auth_req_id", auth_req_id))
    fields += [*extra, *parts.fields]
    return _encode("POST", endpoint, fields, parts.headers, parts.secrets, body_format)


def build_refresh_request(
    client: ClientConfig,
    metadata: ProviderMetadata,
    refresh_token: str,
    *,
    now: float | None = None,
) -> HttpRequest:
    parts = apply_client_auth(client, audience=metadata.issuer, now=now)
    fields = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), *parts.fields]
    return _encode(
        "POST",
        endpoint_for(client, metadata, "token_endpoint"),
        fields,
        parts.headers,
        parts.secrets | {refresh_token},
        "form",
    )


def _encode(
    method: str,
    url: str,
    fields: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    secrets: set[str],
    body_format: BodyFormat,
) -> HttpRequest:
    if body_format == "form" and method == "POST":
        return HttpRequest.form_post(url, fields, headers=headers, secrets=secrets)
    if body_format == "json":
        body = json.dumps(dict(fields)).encode()
        all_headers = (
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            *headers,
        )
        return HttpRequest(method, url, tuple(all_headers), body, frozenset(secrets))
    from urllib.parse import urlencode

    separator = "&" if "?" in url else "?"
    return HttpRequest(
        method,
        f"{url}{separator}{urlencode(fields)}",
        (("Accept", "application/json"), *headers),
        b"",
        frozenset(secrets),
    )


# --- reading responses --------------------------------------------------------------------


@dataclass(frozen=True)
class Acknowledgement:
    auth_req_id: str
    expires_in: int | None
    interval: int | None
    received_at: float
    raw: dict[str, Any]


def parse_acknowledgement(
    response: HttpResponse, *, received_at: float | None = None
) -> Acknowledgement | None:
    """The acknowledgement of CIBA §7.3, or None when the response is not one."""
    if not 200 <= response.status < 300:
        return None
    body = response.json_object()
    if body is None or not isinstance(body.get("auth_req_id"), str):
        return None
    expires = body.get("expires_in")
    interval = body.get("interval")
    return Acknowledgement(
        auth_req_id=body["auth_req_id"],
        expires_in=expires if isinstance(expires, int) and not isinstance(expires, bool) else None,
        interval=interval if isinstance(interval, int) and not isinstance(interval, bool) else None,
        received_at=received_at if received_at is not None else time.monotonic(),
        raw=body,
    )


def error_code(response: HttpResponse | None) -> str | None:
    """The `error` member of an error response, if there is one."""
    if response is None:
        return None
    body = response.json_object()
    value = body.get("error") if body else None
    return value if isinstance(value, str) else None
