"""Minimal JOSE helpers of the reference provider (JWS compact serialisation only).

Deliberately separate from the harness's own JWT code: the provider is the oracle the harness is
checked against, so the two must not share hashing or token building. The cryptographic
primitives come from PyJWT's algorithm objects; the framing (base64url, JSON, claims) is done here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt import PyJWK
from jwt.algorithms import Algorithm, ECAlgorithm, RSAAlgorithm, get_default_algorithms
from jwt.exceptions import PyJWKError

_ALGORITHMS: dict[str, Algorithm] = get_default_algorithms()
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
#: a verification key: an asymmetric public key or a shared secret (HMAC)
VerifyKey = PublicKey | bytes

MAX_JWT_LENGTH = 16384


class JoseError(ValueError):
    """A JWS that cannot even be parsed."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise JoseError("invalid base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - guarded by the regex
        raise JoseError("invalid base64url") from exc


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise JoseError(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise JoseError(f"{what} is not a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class Jws:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        alg = self.header.get("alg")
        return alg if isinstance(alg, str) else ""


def segment_count(token: str) -> int:
    return token.count(".") + 1


def parse_jws(token: str) -> Jws:
    """Split a compact JWS; raises JoseError unless it is three base64url JSON segments."""
    if len(token) > MAX_JWT_LENGTH:
        raise JoseError("token too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseError("not a compact JWS")
    header = _json_object(b64url_decode(parts[0]), "JOSE header")
    if not isinstance(header.get("alg"), str):
        raise JoseError("JOSE header has no alg")
    claims = _json_object(b64url_decode(parts[1]), "payload")
    return Jws(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), b64url_decode(parts[2]))


def verify(jws: Jws, key: VerifyKey) -> bool:
    """Verify the signature of ``jws`` under its own ``alg`` with ``key`` (never for none)."""
    alg = jws.alg
    if alg == "none":
        return False
    algorithm = _ALGORITHMS.get(alg)
    if algorithm is None:
        return False
    if not compatible(alg, key):
        return False
    try:
        return bool(algorithm.verify(jws.signing_input, key, jws.signature))
    except Exception:  # wrong key type or curve, malformed signature
        return False


def sign(
    claims: dict[str, Any], alg: str, key: PrivateKey | bytes, kid: str | None = None,
    typ: str = "JWT",
) -> str:
    header: dict[str, Any] = {"alg": alg, "typ": typ}
    if kid is not None:
        header["kid"] = kid
    head = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    body = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    signature = _ALGORITHMS[alg].sign(signing_input, key)
    return f"{head}.{body}.{b64url_encode(signature)}"


def corrupt_signature(token: str) -> str:
    """Same token with one bit of the signature flipped (for faults)."""
    head, body, sig = token.split(".")
    raw = bytearray(b64url_decode(sig))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{b64url_encode(bytes(raw))}"


def half_hash(value: str, alg: str) -> str:
    """at_hash / rt_hash: base64url of the left half of the hash that goes with ``alg``."""
    bits = alg[-3:]
    hasher = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}.get(bits)
    if hasher is None:
        raise ValueError(f"no hash for alg {alg}")
    digest = hasher(value.encode("ascii")).digest()
    return b64url_encode(digest[: len(digest) // 2])


def public_jwk(key: PublicKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPublicKey):
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key, as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(key, as_dict=True)
    return jwk


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256)."""
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def key_from_jwk(jwk: Any) -> PublicKey:
    """Public key from a JWK dict (RSA or EC); raises ValueError."""
    if not isinstance(jwk, dict):
        raise ValueError("a JWK must be a JSON object")
    if any(m in jwk for m in ("d", "p", "q")):
        raise ValueError("JWK contains private key material")
    try:
        key = PyJWK(jwk).key
    except (PyJWKError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"unusable JWK: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ValueError("only RSA and EC public keys are supported")
    return key


def compatible(alg: str, key: VerifyKey) -> bool:
    """Whether ``alg`` can be used with ``key``."""
    if alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
        return isinstance(key, rsa.RSAPublicKey)
    if alg == "ES256":
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    if alg.startswith("HS"):
        return isinstance(key, bytes)
    return False
