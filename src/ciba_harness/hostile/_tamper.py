"""Rewrites of real answers: JSON of the wrong shape, broken ID tokens, rotating keys."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["KeyRing", "reshape", "b64url"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _unsigned(token: str) -> str:
    parts = token.split(".")
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{parts[1] if len(parts) == 3 else b64url(b'{}')}."


def _bad_signature(token: str) -> str:
    parts = token.split(".")
    if len(parts) != 3:
        return token
    raw = bytearray(_b64url_decode(parts[2]) or b"\0")
    raw[len(raw) // 2] ^= 0x01
    return f"{parts[0]}.{parts[1]}.{b64url(bytes(raw))}"


def reshape(name: str, document: dict[str, Any]) -> Any:
    """The JSON `document` changed as behaviour `name` says (unchanged when it does not apply)."""
    if name == "json_array":
        return [document]
    changed = dict(document)
    if name == "auth_req_id_number" and "auth_req_id" in changed:
        changed["auth_req_id"] = 4711
    elif name == "missing_auth_req_id":
        changed.pop("auth_req_id", None)
    elif name == "expires_in_negative" and "expires_in" in changed:
        changed["expires_in"] = -60
    elif name == "access_token_number" and "access_token" in changed:
        changed["access_token"] = 123456789
    elif name == "id_token_unparsable" and "id_token" in changed:
        changed["id_token"] = "this-is-not-a-jwt"
    elif name == "id_token_unsigned" and isinstance(changed.get("id_token"), str):
        changed["id_token"] = _unsigned(changed["id_token"])
    elif name == "id_token_bad_signature" and isinstance(changed.get("id_token"), str):
        changed["id_token"] = _bad_signature(changed["id_token"])
    elif name == "no_backchannel_endpoint":
        changed.pop("backchannel_authentication_endpoint", None)
    return changed


def _public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()

    def encode(value: int) -> str:
        return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": encode(numbers.n), "e": encode(numbers.e)}


class KeyRing:
    """Signing keys of the hostile server itself: a rotation (each ID token re-signed with the
    next key, the JWKS listing only the newest one) and a foreign key that signed nothing."""

    POOL = 3

    def __init__(self) -> None:
        self._pool: list[rsa.RSAPrivateKey] = []
        self._foreign: dict[str, Any] | None = None
        self.generation = 0
        self.resigned: dict[str, str] = {}  # re-signed ID token -> the provider's original

    def _key(self, generation: int) -> rsa.RSAPrivateKey:
        while len(self._pool) < self.POOL:
            self._pool.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return self._pool[generation % self.POOL]

    def current_jwks(self) -> dict[str, Any]:
        if self.generation == 0:
            self.generation = 1
        kid = f"rotated-{self.generation}"
        return {"keys": [_public_jwk(self._key(self.generation), kid)]}

    def foreign_jwks(self) -> dict[str, Any]:
        if self._foreign is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._foreign = _public_jwk(key, f"foreign-{secrets.token_hex(4)}")
        return {"keys": [self._foreign]}

    def resign(self, token: str) -> str:
        """The same claims under the next key (RS256 keeps at_hash/rt_hash valid)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return token
        if not str(header.get("alg", "")).startswith("RS"):
            return token
        self.generation += 1
        kid = f"rotated-{self.generation}"
        signed = jwt.encode(claims, self._key(self.generation), algorithm="RS256",
                            headers={"kid": kid})
        self.resigned[signed] = token
        return signed

    def original(self, token: str) -> str:
        return self.resigned.get(token, token)
