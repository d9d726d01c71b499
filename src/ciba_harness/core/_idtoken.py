"""ID tokens as data (OIDC Core §2; CIBA §10.1.1, §10.3.1), without I/O: decoding, the
at_hash / rt_hash function, the provider's keys and what a validation expects.

The caller fetches the JWKS; `Jwks.refresh_needed(kid)` tells it when a key is unknown so it
can fetch again once (key rotation). The rules are checks (`checks._idtoken`), run in order
by `checks._idtoken.validate_id_token`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

__all__ = [
    "AUTH_REQ_ID_CLAIM",
    "RT_HASH_CLAIM",
    "Jwks",
    "token_hash",
    "IdTokenExpectations",
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
