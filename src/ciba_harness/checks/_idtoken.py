"""ID token rules as registered checks (OIDC Core §2, §3.1.3.7; CIBA §10.1.1, §10.3.1) and
`validate_id_token`, the sequence that runs them in order through a `CheckRunner`.

Every check takes the ID token itself (the core decodes it and computes the hashes), so a
failure can mask it in its report. In push mode (CIBA §10.3.1) auth_req_id, at_hash and
rt_hash are mandatory and each names its own requirement; the generic rules are CIBA-PUSH-06
there and CIBA-IDT-01 otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

import jwt

from ciba_harness.checks._registry import CheckRunner, check
from ciba_harness.core._errors import InvalidIdToken, hide_check_failure_frames
from ciba_harness.core._http import Exchange
from ciba_harness.core._idtoken import (
    AUTH_REQ_ID_CLAIM,
    RT_HASH_CLAIM,
    IdTokenExpectations,
    Jwks,
    decode_unverified,
    token_hash,
)

__tracebackhide__ = hide_check_failure_frames  # pytest: check failures show the test's line

__all__ = [
    "acr_present",
    "auth_time_within",
    "claim_present",
    "id_token_alg_is",
    "nonce_absent",
    "same_subject",
    "id_token_at_hash_matches",
    "id_token_audience_is",
    "id_token_auth_req_id_is",
    "id_token_has_subject",
    "id_token_is_asymmetric_jws",
    "id_token_issuer_is",
    "id_token_rt_hash_matches",
    "id_token_signature_verifies",
    "id_token_times_valid",
    "validate_id_token",
]


def _failure(
    id_token: str, requirement: str, title: str, exchange: Exchange | None, **details: Any
) -> InvalidIdToken:
    return InvalidIdToken(
        requirement=requirement,
        title=title,
        exchanges=[exchange] if exchange else [],
        secrets=[id_token],
        **details,
    )


def _decoded(
    id_token: str, requirement: str, exchange: Exchange | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return decode_unverified(id_token)
    except ValueError as exc:
        raise _failure(id_token, requirement, "ID token is not a JWS", exchange, actual=str(exc)) from None


def _alg(header: dict[str, Any]) -> str:
    return str(header.get("alg", ""))


@check("CIBA-IDT-01")
def id_token_is_asymmetric_jws(
    id_token: str, *, requirement: str = "CIBA-IDT-01", exchange: Exchange | None = None
) -> None:
    """The ID token is a JWS signed with an asymmetric algorithm (not none, not HMAC).

    OIDC Core §3.1.3.7 / CIBA §10.1.1: the client validates the ID token's signature with the
    provider's keys; an unsigned or MAC-signed token cannot be checked that way."""
    header, _ = _decoded(id_token, requirement, exchange)
    alg = _alg(header)
    if alg in {"", "none"} or alg.startswith("HS"):
        raise _failure(
            id_token,
            requirement,
            "ID token is not signed with an asymmetric key",
            exchange,
            actual=f"alg={alg!r}",
        )


@check("CIBA-IDT-01")
def id_token_signature_verifies(
    id_token: str, jwks: Jwks, *, requirement: str = "CIBA-IDT-01", exchange: Exchange | None = None
) -> None:
    """A key of the provider's JWKS verifies the ID token's signature.

    OIDC Core §3.1.3.7 step 6: the client MUST validate the signature of the ID token with the
    key the provider published."""
    header, _ = _decoded(id_token, requirement, exchange)
    alg = _alg(header)
    key = jwks.find(header.get("kid"), alg)
    if key is None:
        raise _failure(
            id_token,
            requirement,
            "No key in the provider's JWKS matches the ID token",
            exchange,
            actual=f"kid={header.get('kid')!r}, alg={alg}",
        )
    try:
        jwt.decode(
            id_token,
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
        raise _failure(
            id_token, requirement, "ID token signature does not verify with the provider's JWKS", exchange
        ) from None
    except jwt.PyJWTError as exc:
        raise _failure(
            id_token, requirement, "ID token cannot be verified", exchange, actual=str(exc)
        ) from None


@check("CIBA-IDT-01")
def id_token_issuer_is(
    id_token: str, issuer: str, *, requirement: str = "CIBA-IDT-01", exchange: Exchange | None = None
) -> None:
    """iss is the provider's issuer identifier.

    OIDC Core §3.1.3.7 step 2: the issuer identifier MUST exactly match the iss claim."""
    _, claims = _decoded(id_token, requirement, exchange)
    if claims.get("iss") != issuer:
        raise _failure(
            id_token,
            requirement,
            "ID token iss is not the issuer",
            exchange,
            expected=issuer,
            actual=claims.get("iss"),
        )


@check("CIBA-IDT-01")
def id_token_audience_is(
    id_token: str, client_id: str, *, requirement: str = "CIBA-IDT-01", exchange: Exchange | None = None
) -> None:
    """aud contains the client_id; with several audiences azp is the client_id.

    OIDC Core §3.1.3.7 steps 3-5: aud MUST contain the client_id; with several audiences
    the client SHOULD verify an azp claim naming itself."""
    _, claims = _decoded(id_token, requirement, exchange)
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise _failure(
            id_token,
            requirement,
            "ID token aud does not contain the client_id",
            exchange,
            expected=client_id,
            actual=audience,
        )
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise _failure(
            id_token,
            requirement,
            "ID token with several audiences lacks azp = client_id",
            exchange,
            actual=claims.get("azp"),
        )


@check("CIBA-IDT-01")
def id_token_has_subject(
    id_token: str, *, requirement: str = "CIBA-IDT-01", exchange: Exchange | None = None
) -> None:
    """sub is a non-empty string.

    OIDC Core §2: sub is REQUIRED, a locally unique identifier of the end-user."""
    _, claims = _decoded(id_token, requirement, exchange)
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _failure(id_token, requirement, "ID token has no sub", exchange)


@check("CIBA-IDT-01")
def id_token_times_valid(
    id_token: str,
    now: float,
    *,
    skew: float = 60.0,
    requirement: str = "CIBA-IDT-01",
    exchange: Exchange | None = None,
) -> None:
    """exp and iat are numbers; the token has not expired and was not issued in the future
    (± `skew` seconds).

    OIDC Core §2 / §3.1.3.7 steps 9-10: exp and iat are REQUIRED; the current time MUST be
    before exp."""
    _, claims = _decoded(id_token, requirement, exchange)
    for name in ("exp", "iat"):
        value = claims.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _failure(
                id_token, requirement, f"ID token {name} missing or not a number", exchange, actual=value
            )
    if claims["exp"] + skew < now:
        raise _failure(
            id_token,
            requirement,
            "ID token has expired",
            exchange,
            actual=f"exp={claims['exp']}, now={int(now)}",
        )
    if claims["iat"] - skew > now:
        raise _failure(
            id_token, requirement, "ID token iat lies in the future", exchange, actual=f"iat={claims['iat']}"
        )


@check("CIBA-IDT-06")
def id_token_auth_req_id_is(
    id_token: str,
    auth_req_id: str | None,
    *,
    mandatory: bool = False,
    requirement: str = "CIBA-IDT-06",
    exchange: Exchange | None = None,
) -> None:
    """The auth_req_id claim, when present (always, when `mandatory`), is the flow's one.

    CIBA §10.3.1: in push mode the ID token MUST carry urn:openid:params:jwt:claim:auth_req_id,
    the auth_req_id of the request it answers."""
    _, claims = _decoded(id_token, requirement, exchange)
    if (AUTH_REQ_ID_CLAIM in claims or mandatory) and claims.get(AUTH_REQ_ID_CLAIM) != auth_req_id:
        raise _failure(
            id_token,
            requirement,
            "ID token auth_req_id claim does not match",
            exchange,
            expected=auth_req_id,
            actual=claims.get(AUTH_REQ_ID_CLAIM),
        )


@check("CIBA-IDT-07")
def id_token_at_hash_matches(
    id_token: str,
    access_token: str | None,
    *,
    mandatory: bool = False,
    requirement: str = "CIBA-IDT-07",
    exchange: Exchange | None = None,
) -> None:
    """at_hash, when present (always, when `mandatory`), is the hash of the access token.

    OIDC Core §3.3.2.11 / CIBA §10.3.1: at_hash is the base64url left half of the access
    token's hash; in push mode it is REQUIRED."""
    header, claims = _decoded(id_token, requirement, exchange)
    if not access_token or ("at_hash" not in claims and not mandatory):
        return
    if claims.get("at_hash") != token_hash(access_token, _alg(header)):
        raise _failure(
            id_token,
            requirement,
            "at_hash does not match the access token",
            exchange,
            actual=claims.get("at_hash"),
        )


@check("CIBA-IDT-07")
def id_token_rt_hash_matches(
    id_token: str,
    refresh_token: str | None,
    *,
    mandatory: bool = False,
    requirement: str = "CIBA-IDT-07",
    exchange: Exchange | None = None,
) -> None:
    """rt_hash, when present (always, when `mandatory`), is the hash of the refresh token.

    CIBA §10.3.1: urn:openid:params:jwt:claim:rt_hash is the base64url left half of the
    refresh token's hash; in push mode it is REQUIRED when a refresh token is issued."""
    header, claims = _decoded(id_token, requirement, exchange)
    if not refresh_token or (RT_HASH_CLAIM not in claims and not mandatory):
        return
    if claims.get(RT_HASH_CLAIM) != token_hash(refresh_token, _alg(header)):
        raise _failure(
            id_token,
            requirement,
            "rt_hash does not match the refresh token",
            exchange,
            actual=claims.get(RT_HASH_CLAIM),
        )


# --- ID token details -------------------------------------------------------------------------


@check("CIBA-IDT-02")
def id_token_alg_is(
    id_token: str,
    algs: Collection[str],
    *,
    requirement: str = "CIBA-IDT-02",
    exchange: Exchange | None = None,
) -> None:
    """The ID token's JWS alg is the registered one.

    OIDC Registration §2: the ID token is signed with id_token_signed_response_alg (default
    RS256)."""
    try:
        header, _ = decode_unverified(id_token)
    except ValueError as exc:
        raise InvalidIdToken(
            requirement=requirement,
            title="ID token is not a JWS",
            actual=str(exc),
            exchanges=[exchange] if exchange else [],
            secrets=[id_token],
        ) from None
    if header.get("alg") not in algs:
        raise InvalidIdToken(
            requirement=requirement,
            title="ID token alg differs from the registered one",
            expected=" or ".join(sorted(algs)),
            actual=repr(header.get("alg")),
            exchanges=[exchange] if exchange else [],
            secrets=[id_token],
        )


@check("CIBA-IDT-03")
def acr_present(claims: Mapping[str, Any], *, requirement: str = "CIBA-IDT-03") -> None:
    """The ID token has an acr claim (acr_values was sent).

    CIBA §7.1: when acr_values was sent the ID token's acr claim is highly RECOMMENDED (a
    warning; MUST under FAPI-CIBA)."""
    if not isinstance(claims.get("acr"), str) or not claims["acr"]:
        raise InvalidIdToken(
            requirement=requirement,
            title="ID token has no acr although acr_values was requested",
            expected="acr claim",
            actual=repr(claims.get("acr")),
        )


@check("CIBA-IDT-04")
def auth_time_within(
    claims: Mapping[str, Any],
    earliest: float,
    latest: float,
    *,
    skew: float,
    requirement: str = "CIBA-IDT-04",
) -> None:
    """auth_time, when present, lies between the request and the token response (± skew).

    OIDC Core §2: auth_time, when present, is the time of the user's authentication."""
    if "auth_time" not in claims:
        return
    value = claims["auth_time"]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidIdToken(
            requirement=requirement, title="auth_time is not a number", actual=repr(value)
        )
    if not earliest - skew <= value <= latest + skew:
        raise InvalidIdToken(
            requirement=requirement,
            title="auth_time lies outside the authentication request window",
            expected=f"between {earliest:.0f} and {latest:.0f} (± {skew:g} s)",
            actual=f"{value} ({value - earliest:+.0f} s from the request)",
        )


@check("CIBA-IDT-09")
def same_subject(
    first: str,
    second: str,
    *,
    requirement: str = "CIBA-IDT-09",
    exchange: Exchange | None = None,
) -> None:
    """Two flows for the same user and client yield the same sub.

    CIBA §7.1 (implied) / OIDC Core §2: sub identifies the user named by the hint, stably for
    one client."""
    if first != second:
        raise InvalidIdToken(
            requirement=requirement,
            title="sub differs between two flows for the same user and client",
            expected=first,
            actual=second,
            exchanges=[exchange] if exchange else [],
        )


@check(title="An optional ID token claim is present")
def claim_present(claims: Mapping[str, Any], name: str, *, requirement: str) -> None:
    """The claim is present (used at INFO severity to record optional claims).

    Generic: records OPTIONAL ID token claims (OIDC Core §2, CIBA §10.1.1)."""
    if name not in claims:
        raise InvalidIdToken(
            requirement=requirement, title=f"ID token has no {name}", actual=sorted(claims)
        )


@check("CIBA-IDT-05")
def nonce_absent(claims: Mapping[str, Any], *, requirement: str = "CIBA-IDT-05") -> None:
    """CIBA requests carry no nonce, so the ID token has none.

    CIBA §7.1 (descriptive): CIBA requests carry no nonce, so the ID token has none."""
    if "nonce" in claims:
        raise InvalidIdToken(
            requirement=requirement,
            title="ID token carries a nonce although CIBA requests have none",
            actual=repr(claims["nonce"]),
        )


def validate_id_token(
    token: str,
    jwks: Jwks,
    expect: IdTokenExpectations,
    *,
    exchange: Exchange | None = None,
    now: float | None = None,
    runner: CheckRunner | None = None,
) -> dict[str, Any]:
    """Run every ID token rule through `runner` (a fresh one by default) at FAILURE, in a
    fixed order (signature first: claims are judged only once they are the provider's);
    the first broken rule raises its InvalidIdToken. Returns the verified claims."""
    run = runner if runner is not None else CheckRunner()
    base = "CIBA-PUSH-06" if expect.push else "CIBA-IDT-01"
    run(id_token_is_asymmetric_jws, token, requirement=base, exchange=exchange)
    if expect.expected_alg:
        run(id_token_alg_is, token, {expect.expected_alg}, exchange=exchange)
    run(id_token_signature_verifies, token, jwks, requirement=base, exchange=exchange)
    run(id_token_issuer_is, token, expect.issuer, requirement=base, exchange=exchange)
    run(id_token_audience_is, token, expect.client_id, requirement=base, exchange=exchange)
    run(id_token_has_subject, token, requirement=base, exchange=exchange)
    current = now if now is not None else time.time()
    run(id_token_times_valid, token, current, skew=expect.skew, requirement=base, exchange=exchange)
    _, claims = decode_unverified(token)
    if expect.expected_sub is not None:
        run(same_subject, expect.expected_sub, claims["sub"], exchange=exchange)
    push = expect.push
    run(
        id_token_auth_req_id_is,
        token,
        expect.auth_req_id,
        mandatory=push,
        requirement="CIBA-PUSH-03" if push else "CIBA-IDT-06",
        exchange=exchange,
    )
    run(
        id_token_at_hash_matches,
        token,
        expect.access_token,
        mandatory=push,
        requirement="CIBA-PUSH-04" if push else "CIBA-IDT-07",
        exchange=exchange,
    )
    run(
        id_token_rt_hash_matches,
        token,
        expect.refresh_token,
        mandatory=push,
        requirement="CIBA-PUSH-05" if push else "CIBA-IDT-07",
        exchange=exchange,
    )
    return claims
