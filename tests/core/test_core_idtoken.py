"""_idtoken: hashes, JWKS lookup and ID token validation with the requirement each rule breaks."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from ciba_harness import (
    AUTH_REQ_ID_CLAIM,
    RT_HASH_CLAIM,
    IdTokenExpectations,
    InvalidIdToken,
    Jwks,
    decode_unverified,
    sign_jwt,
    token_hash,
    validate_id_token,
)

ISSUER = "https://op.example.com"
CLIENT = "poll-rs256"
KID = "op-key-1"
ACCESS_TOKEN = "SlAV32hkKG-access-token-value"
REFRESH_TOKEN = "8xLOxBtZp8-refresh-token-value"
AUTH_REQ_ID = "1c266114-a1be-4252-8ad1-04986c5b9ac1"
NOW = 1_800_000_000


def independent_hash(value: str, digest: Any) -> str:
    raw = digest(value.encode()).digest()
    return base64.urlsafe_b64encode(raw[: len(raw) // 2]).decode().rstrip("=")


def test_token_hash_known_vectors() -> None:
    # OpenID Connect Core 1.0, Appendix A.3 / A.4 (RS256).
    assert token_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256") == "77QmUPtjPfzWtF2AnpK9RQ"
    for alg, digest in [
        ("RS256", hashlib.sha256),
        ("PS256", hashlib.sha256),
        ("ES256", hashlib.sha256),
        ("RS384", hashlib.sha384),
        ("ES384", hashlib.sha384),
        ("PS512", hashlib.sha512),
        ("EdDSA", hashlib.sha512),
    ]:
        assert token_hash(ACCESS_TOKEN, alg) == independent_hash(ACCESS_TOKEN, digest), alg
    assert len(token_hash(ACCESS_TOKEN, "RS256")) == 22


def jwk_of(public: Any, kid: str | None = KID, **extra: str) -> dict[str, Any]:
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    if kid is not None:
        jwk["kid"] = kid
    return {**jwk, **extra}


@pytest.fixture(scope="module")
def jwks(provider_key: rsa.RSAPrivateKey) -> Jwks:
    return Jwks({"keys": [jwk_of(provider_key.public_key(), use="sig", alg="RS256")]})


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "user-alice",
        "iat": NOW - 10,
        "exp": NOW + 300,
        "at_hash": token_hash(ACCESS_TOKEN, "RS256"),
        RT_HASH_CLAIM: token_hash(REFRESH_TOKEN, "RS256"),
        AUTH_REQ_ID_CLAIM: AUTH_REQ_ID,
    }
    for name, value in changes.items():
        name = {"auth_req_id": AUTH_REQ_ID_CLAIM, "rt_hash": RT_HASH_CLAIM}.get(name, name)
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def expect(**changes: Any) -> IdTokenExpectations:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": CLIENT,
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "auth_req_id": AUTH_REQ_ID,
        **changes,
    }
    return IdTokenExpectations(**values)


def signed(key: Any, alg: str = "RS256", kid: str | None = KID, **changes: Any) -> str:
    return sign_jwt(claims(**changes), key, alg, {"kid": kid} if kid else None)


def test_good_token_validates(provider_key: rsa.RSAPrivateKey, jwks: Jwks) -> None:
    token = signed(provider_key)
    result = validate_id_token(token, jwks, expect(), now=NOW)
    assert result["sub"] == "user-alice"
    assert validate_id_token(token, jwks, expect(push=True), now=NOW)["sub"] == "user-alice"
    # Without the optional claims, poll/ping tokens still validate.
    bare = signed(provider_key, at_hash=None, rt_hash=None, auth_req_id=None)
    validate_id_token(bare, jwks, expect(), now=NOW)
    # Several audiences with azp = client_id.
    multi = signed(provider_key, aud=[CLIENT, "api"], azp=CLIENT)
    validate_id_token(multi, jwks, expect(), now=NOW)
    # Within the clock skew.
    validate_id_token(signed(provider_key, exp=NOW - 30), jwks, expect(), now=NOW)


@pytest.mark.parametrize(
    ("changes", "expectations", "requirement", "words"),
    [
        ({"iss": "https://evil.example.com"}, {}, "CIBA-IDT-01", "iss"),
        ({"iss": None}, {}, "CIBA-IDT-01", "iss"),
        ({"aud": "other-client"}, {}, "CIBA-IDT-01", "aud"),
        ({"aud": [CLIENT, "api"]}, {}, "CIBA-IDT-01", "azp"),
        ({"exp": NOW - 3600}, {}, "CIBA-IDT-01", "expired"),
        ({"exp": None}, {}, "CIBA-IDT-01", "exp"),
        ({"iat": NOW + 3600}, {}, "CIBA-IDT-01", "future"),
        ({"sub": None}, {}, "CIBA-IDT-01", "sub"),
        ({"sub": ""}, {}, "CIBA-IDT-01", "sub"),
        ({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, {}, "CIBA-IDT-07", "at_hash"),
        ({"rt_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, {}, "CIBA-IDT-07", "rt_hash"),
        ({"auth_req_id": "another"}, {}, "CIBA-IDT-06", "auth_req_id"),
        ({}, {"expected_sub": "user-bob"}, "CIBA-IDT-09", "sub"),
        ({}, {"expected_alg": "PS256"}, "CIBA-IDT-02", "alg"),
        # Push mode: the claims become mandatory and name their own requirements.
        ({"auth_req_id": None}, {"push": True}, "CIBA-PUSH-03", "auth_req_id"),
        ({"at_hash": None}, {"push": True}, "CIBA-PUSH-04", "at_hash"),
        ({"rt_hash": None}, {"push": True}, "CIBA-PUSH-05", "rt_hash"),
        ({"iss": "https://evil.example.com"}, {"push": True}, "CIBA-PUSH-06", "iss"),
    ],
)
def test_broken_rules(
    provider_key: rsa.RSAPrivateKey,
    jwks: Jwks,
    changes: dict[str, Any],
    expectations: dict[str, Any],
    requirement: str,
    words: str,
) -> None:
    token = signed(provider_key, **changes)
    with pytest.raises(InvalidIdToken) as info:
        validate_id_token(token, jwks, expect(**expectations), now=NOW)
    assert info.value.requirement == requirement
    assert words in str(info.value)


def test_bad_signature(provider_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey, jwks: Jwks) -> None:
    forged = signed(other_rsa_key)  # right kid, wrong key
    with pytest.raises(InvalidIdToken) as info:
        validate_id_token(forged, jwks, expect(), now=NOW)
    assert info.value.requirement == "CIBA-IDT-01"
    assert "signature" in str(info.value)
    head, body, signature = signed(provider_key).split(".")
    tampered_body = base64.urlsafe_b64encode(
        b'{"iss":"%s","aud":"%s","sub":"mallory","iat":1,"exp":9999999999}'
        % (ISSUER.encode(), CLIENT.encode())
    ).decode().rstrip("=")
    with pytest.raises(InvalidIdToken, match="signature"):
        validate_id_token(f"{head}.{tampered_body}.{signature}", jwks, expect(), now=NOW)


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_unsigned_or_mac_token(alg: str, jwks: Jwks) -> None:
    token = sign_jwt(claims(), b"k" * 32, alg, {"kid": KID})
    with pytest.raises(InvalidIdToken) as info:
        validate_id_token(token, jwks, expect(), now=NOW)
    assert info.value.requirement == "CIBA-IDT-01"
    assert alg in str(info.value)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "e30.e30.e30.e30"])
def test_not_a_jws(token: str, jwks: Jwks) -> None:
    with pytest.raises(InvalidIdToken) as info:
        validate_id_token(token, jwks, expect(), now=NOW)
    assert info.value.requirement == "CIBA-IDT-01"


def test_unknown_kid(provider_key: rsa.RSAPrivateKey, jwks: Jwks) -> None:
    token = signed(provider_key, kid="rotated-key")
    assert jwks.refresh_needed(token)
    with pytest.raises(InvalidIdToken, match="No key"):
        validate_id_token(token, jwks, expect(), now=NOW)


def test_failure_masks_the_token(provider_key: rsa.RSAPrivateKey, jwks: Jwks) -> None:
    token = signed(provider_key, iss="https://evil.example.com")
    with pytest.raises(InvalidIdToken) as info:
        validate_id_token(token, jwks, expect(), now=NOW)
    assert token in info.value.secrets


# --- JWKS ------------------------------------------------------------------------------------


def test_jwks_refresh_needed(provider_key: rsa.RSAPrivateKey, jwks: Jwks) -> None:
    assert not jwks.refresh_needed(signed(provider_key))
    assert jwks.refresh_needed(signed(provider_key, kid="unknown"))
    assert not jwks.refresh_needed("not a token")  # nothing to refresh for
    assert Jwks().refresh_needed(signed(provider_key))
    # A single key without kid matches a token without kid; two such keys are ambiguous.
    single = Jwks({"keys": [jwk_of(provider_key.public_key(), kid=None)]})
    assert not single.refresh_needed(signed(provider_key, kid=None))


def test_jwks_skips_unusable_keys(provider_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey) -> None:
    document = {
        "keys": [
            {"kty": "RSA", "kid": "broken", "n": "AQAB"},  # no e
            {"kty": "oct", "kid": "mac", "k": "c2VjcmV0"},
            "not a key",
            jwk_of(other_rsa_key.public_key(), kid="enc", use="enc"),
            jwk_of(provider_key.public_key()),
        ]
    }
    jwks = Jwks(document)
    assert [k.key_id for k in jwks.keys if k.key_type == "RSA"] == [KID]
    assert Jwks({"keys": "nope"}).keys == []
    assert Jwks({}).keys == []


def test_jwks_picks_the_key_by_kid_among_several(
    provider_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks = Jwks(
        {"keys": [jwk_of(other_rsa_key.public_key(), kid="old"), jwk_of(provider_key.public_key())]}
    )
    validate_id_token(signed(provider_key), jwks, expect(), now=NOW)
    with pytest.raises(InvalidIdToken, match="No key"):
        validate_id_token(signed(provider_key, kid=None), jwks, expect(), now=NOW)


def test_ec_and_eddsa_tokens_validate() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    jwks = Jwks(
        {"keys": [jwk_of(ec_key.public_key(), kid="ec"), jwk_of(ed_key.public_key(), kid="ed")]}
    )
    es = sign_jwt(claims(at_hash=token_hash(ACCESS_TOKEN, "ES256"), rt_hash=None), ec_key, "ES256", {"kid": "ec"})
    assert validate_id_token(es, jwks, expect(refresh_token=None), now=NOW)["iss"] == ISSUER
    ed = sign_jwt(claims(at_hash=token_hash(ACCESS_TOKEN, "EdDSA"), rt_hash=None), ed_key, "EdDSA", {"kid": "ed"})
    assert not jwks.refresh_needed(ed)
    assert validate_id_token(ed, jwks, expect(refresh_token=None), now=NOW)["iss"] == ISSUER


def test_decode_unverified() -> None:
    header, payload = decode_unverified(jwt.encode({"a": 1}, "k" * 32, algorithm="HS256"))
    assert header["alg"] == "HS256" and payload == {"a": 1}
    with pytest.raises(ValueError):
        decode_unverified("W10.W10.x")  # arrays, not objects
    with pytest.raises(ValueError):
        decode_unverified("!!!.###.x")


def test_real_time_default(provider_key: rsa.RSAPrivateKey, jwks: Jwks) -> None:
    now = int(time.time())
    token = signed(provider_key, iat=now, exp=now + 60)
    validate_id_token(token, jwks, expect())
