"""Client authentication methods, applied to a request being built (no I/O).

`ClientAuthentication` describes deviations from the client's registered method so tests
can send what a correct client never would (wrong secret, expired assertion, two methods).
"""

from __future__ import annotations

import base64
import secrets as random_source
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import jwt

from ciba_harness.core._config import ClientConfig

__all__ = ["ASSERTION_TYPE", "ClientAuthentication", "AuthParts", "apply_client_auth", "sign_jwt"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_REMOVE = None  # a claim or header mapped to None is removed


@dataclass(frozen=True)
class ClientAuthentication:
    """Overrides of the registered client authentication. All default to 'as registered'."""

    method: str | None = None
    secret: str | None = None
    client_id: str | None = None
    audience: str | None = None
    assertion_claims: Mapping[str, Any] = field(default_factory=dict)
    assertion_headers: Mapping[str, Any] = field(default_factory=dict)
    assertion_key: Any = None
    assertion_alg: str | None = None
    assertion: str | None = None
    also_basic: bool = False


@dataclass
class AuthParts:
    fields: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)


def sign_jwt(
    claims: Mapping[str, Any],
    key: Any,
    alg: str,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign claims; alg 'none' yields an unsigned JWT (for negative tests)."""
    header = {k: v for k, v in (headers or {}).items() if v is not _REMOVE}
    if alg == "none":

        def segment(value: Mapping[str, Any]) -> str:
            import json

            raw = json.dumps(dict(value), separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return f"{segment({'alg': 'none', 'typ': 'JWT', **header})}.{segment(claims)}."
    return jwt.encode(dict(claims), key, algorithm=alg, headers=header or None)


def _form_encode(value: str) -> str:
    # RFC 6749 Appendix B: UTF-8, space as "+", everything but * - . _ digits letters as %XX.
    return quote_plus(value, safe="*").replace("~", "%7E")


def _basic(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: form-urlencode id and secret before base64.
    raw = f"{_form_encode(client_id)}:{_form_encode(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def apply_client_auth(
    client: ClientConfig,
    *,
    audience: str,
    auth: ClientAuthentication | None = None,
    now: float | None = None,
) -> AuthParts:
    """Form fields, headers and secrets that authenticate `client` (as overridden by `auth`)."""
    auth = auth or ClientAuthentication()
    method = auth.method or client.auth_method
    client_id = auth.client_id or client.client_id
    secret = auth.secret if auth.secret is not None else (client.client_secret or "")
    parts = AuthParts()
    parts.secrets |= {s for s in (secret, client.client_secret) if s}
    if method == "client_secret_basic":
        parts.headers.append(("Authorization", _basic(client_id, secret)))
    elif method == "client_secret_post":
        parts.fields += [("client_id", client_id), ("client_secret", secret)]
    elif method in {"client_secret_jwt", "private_key_jwt"}:
        assertion = auth.assertion or _assertion(
            client, method, client_id, secret, audience, auth, now
        )
        parts.secrets.add(assertion)
        parts.fields += [
            ("client_id", client_id),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ]
        if auth.also_basic:
            parts.headers.append(("Authorization", _basic(client_id, secret or "x")))
    elif method in {"tls_client_auth", "self_signed_tls_client_auth", "none"}:
        # The certificate travels in the TLS handshake; the client is named in the form.
        parts.fields.append(("client_id", client_id))
    elif method == "omit":
        pass
    else:
        raise ValueError(f"unknown client authentication method {method!r}")
    if auth.also_basic and method == "client_secret_post":
        parts.headers.append(("Authorization", _basic(client_id, secret)))
    return parts


def _assertion(
    client: ClientConfig,
    method: str,
    client_id: str,
    secret: str,
    audience: str,
    auth: ClientAuthentication,
    now: float | None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": auth.audience or audience,
        "jti": random_source.token_urlsafe(24),
        "iat": issued,
        "exp": issued + 60,
    }
    for name, value in auth.assertion_claims.items():
        if value is _REMOVE:
            claims.pop(name, None)
        else:
            claims[name] = value
    if method == "client_secret_jwt":
        alg = auth.assertion_alg or client.signing_alg or "HS256"
        key: Any = auth.assertion_key if auth.assertion_key is not None else secret.encode()
    else:
        alg = auth.assertion_alg or client.signing_alg or "RS256"
        key = auth.assertion_key if auth.assertion_key is not None else client.private_key
    return sign_jwt(claims, key, alg, auth.assertion_headers)
