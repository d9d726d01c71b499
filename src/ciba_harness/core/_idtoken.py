"""ID token validation (OIDC Core §2, §3.1.3.7; CIBA §10.1.1, §10.3.1), without I/O.

The caller fetches the JWKS; `Jwks.refresh_needed(kid)` tells it when a key is unknown so it
can fetch again once (key rotation). Each broken rule raises InvalidIdToken with the
requirement it breaks, so a report can say which clause failed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from ciba_harness.core._errors import InvalidIdToken, hide_check_failure_frames
from ciba_harness.core._http import Exchange

__tracebackhide__ = hide_check_failure_frames  # pytest: check failures show the test's line

__all__ = [
    "AUTH_REQ_ID_CLAIM",
    "RT_HASH_CLAIM",
    "Jwks",
    "token_hash",
    "IdTokenExpectations",
    "validate_id_token",
    "decode_unverified",
]

AUTH_REQ_ID_CLAIM = "urn:openid:params:jwt:claim:auth_req_id"
RT_HASH_CLAIM = "urn:openid:params:jwt:claim:rt_hash"
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


def token_hash(value: str, alg: str) -> str:
    """at_hash / rt_hash: base64url of the left half of the hash that goes with `alg`."""
    digest_function = hashlib.sha512 if alg == "EdDSA" else _HASHES.get(alg[-3:], hashlib.sha256)
    digest = digest_function(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def _b64_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except RecursionError:
        raise ValueError("JSON nested too deeply to decode") from None


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims without verification; ValueError for anything not a JWS."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"a JWS has 3 dot-separated parts, this has {len(parts)}")
    try:
        header, claims = _b64_json(parts[0]), _b64_json(parts[1])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not base64url JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("header and payload must be JSON objects")
    return header, claims


class Jwks:
    """A provider's signing keys, looked up by kid (or the only key of the right type)."""

    def __init__(self, document: Mapping[str, Any] | None = None) -> None:
        self.keys: list[jwt.PyJWK] = []
        if document:
            self.update(document)

    def update(self, document: Mapping[str, Any]) -> None:
        keys = []
        for entry in document.get("keys", []) if isinstance(document.get("keys"), list) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                keys.append(jwt.PyJWK(entry))
            except (jwt.PyJWKError, jwt.InvalidKeyError, KeyError, ValueError):
                continue  # unusable or unsupported keys are skipped, not fatal
        self.keys = keys

    def find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        family = (
            "OKP"
            if alg in {"EdDSA", "Ed25519", "Ed448"}
            else {"RS": "RSA", "PS": "RSA", "ES": "EC"}.get(alg[:2], "")
        )
        candidates = [k for k in self.keys if k.key_type == family or not family]
        if kid is not None:
            candidates = [k for k in candidates if k.key_id == kid]
        return (
            candidates[0]
            if len(candidates) >= 1 and (kid is not None or len(candidates) == 1)
            else None
        )

    def refresh_needed(self, token: str) -> bool:
        try:
            header, _ = decode_unverified(token)
        except ValueError:
            return False
        return self.find(header.get("kid"), str(header.get("alg", ""))) is None


@dataclass(frozen=True)
class IdTokenExpectations:
    issuer: str
    client_id: str
    access_token: str | None = None
    refresh_token: str | None = None
    auth_req_id: str | None = None
    push: bool = False  # push mode makes auth_req_id, at_hash, rt_hash mandatory
    expected_alg: str | None = None
    expected_sub: str | None = None
    skew: float = 60.0


def validate_id_token(
    token: str,
    jwks: Jwks,
    expect: IdTokenExpectations,
    *,
    exchange: Exchange | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The verified claims; InvalidIdToken naming the requirement for the first broken rule."""
    exchanges = [exchange] if exchange else []
    base = "CIBA-PUSH-06" if expect.push else "CIBA-IDT-01"

    def fail(requirement: str, title: str, **details: Any) -> InvalidIdToken:
        return InvalidIdToken(
            requirement=requirement, title=title, exchanges=exchanges, secrets=[token], **details
        )

    try:
        header, _ = decode_unverified(token)
    except ValueError as exc:
        raise fail(base, "ID token is not a JWS", actual=str(exc)) from None
    alg = str(header.get("alg", ""))
    if alg in {"", "none"} or alg.startswith("HS"):
        raise fail(base, "ID token is not signed with an asymmetric key", actual=f"alg={alg!r}")
    if expect.expected_alg and alg != expect.expected_alg:
        raise fail(
            "CIBA-IDT-02",
            "ID token alg differs from the registered one",
            expected=expect.expected_alg,
            actual=alg,
        )
    key = jwks.find(header.get("kid"), alg)
    if key is None:
        raise fail(
            base,
            "No key in the provider's JWKS matches the ID token",
            actual=f"kid={header.get('kid')!r}, alg={alg}",
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise fail(base, "ID token signature does not verify with the provider's JWKS") from None
    except jwt.PyJWTError as exc:
        raise fail(base, "ID token cannot be verified", actual=str(exc)) from None
    current = now if now is not None else time.time()
    if claims.get("iss") != expect.issuer:
        raise fail(
            base, "ID token iss is not the issuer", expected=expect.issuer, actual=claims.get("iss")
        )
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if expect.client_id not in audiences:
        raise fail(
            base,
            "ID token aud does not contain the client_id",
            expected=expect.client_id,
            actual=audience,
        )
    if len(audiences) > 1 and claims.get("azp") != expect.client_id:
        raise fail(
            base, "ID token with several audiences lacks azp = client_id", actual=claims.get("azp")
        )
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise fail(base, "ID token has no sub")
    for name in ("exp", "iat"):
        if not isinstance(claims.get(name), int | float) or isinstance(claims.get(name), bool):
            raise fail(base, f"ID token {name} missing or not a number", actual=claims.get(name))
    if claims["exp"] + expect.skew < current:
        raise fail(base, "ID token has expired", actual=f"exp={claims['exp']}, now={int(current)}")
    if claims["iat"] - expect.skew > current:
        raise fail(base, "ID token iat lies in the future", actual=f"iat={claims['iat']}")
    if expect.expected_sub is not None and claims["sub"] != expect.expected_sub:
        raise fail(
            "CIBA-IDT-09",
            "ID token sub differs from the user's earlier sub",
            expected=expect.expected_sub,
            actual=claims["sub"],
        )
    _check_hashes(claims, alg, expect, fail)
    return claims


def _check_hashes(claims: dict[str, Any], alg: str, expect: IdTokenExpectations, fail: Any) -> None:
    auth_req_id_rule = "CIBA-PUSH-03" if expect.push else "CIBA-IDT-06"
    at_hash_rule = "CIBA-PUSH-04" if expect.push else "CIBA-IDT-07"
    rt_hash_rule = "CIBA-PUSH-05" if expect.push else "CIBA-IDT-07"
    if AUTH_REQ_ID_CLAIM in claims or expect.push:
        if claims.get(AUTH_REQ_ID_CLAIM) != expect.auth_req_id:
            raise fail(
                auth_req_id_rule,
                "ID token auth_req_id claim does not match",
                expected=expect.auth_req_id,
                actual=claims.get(AUTH_REQ_ID_CLAIM),
            )
    if expect.access_token and ("at_hash" in claims or expect.push):
        if claims.get("at_hash") != token_hash(expect.access_token, alg):
            raise fail(
                at_hash_rule,
                "at_hash does not match the access token",
                actual=claims.get("at_hash"),
            )
    if expect.refresh_token and (RT_HASH_CLAIM in claims or expect.push):
        if claims.get(RT_HASH_CLAIM) != token_hash(expect.refresh_token, alg):
            raise fail(
                rt_hash_rule,
                "rt_hash does not match the refresh token",
                actual=claims.get(RT_HASH_CLAIM),
            )
