"""The ID token of a poll-mode token response (CIBA §7.1, §10.1.1; OIDC Core §2, §3.1.3.7).

Tests of one claim read the claims without re-validating the whole token, so a broken
signature or issuer is reported once, by the validation tests (CIBA-IDT-01).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from ciba_harness import (
    AUTH_REQ_ID_CLAIM,
    RT_HASH_CLAIM,
    IdTokenExpectations,
    InvalidIdToken,
    Severity,
    acr_present,
    auth_time_within,
    claim_present,
    decode_unverified,
    id_token_alg_is,
    nonce_absent,
    record_choice,
    redeem,
    same_subject,
)

if TYPE_CHECKING:
    from ciba_harness import CibaClient, ProviderConfig, ProviderMetadata

pytestmark = pytest.mark.poll

DEFAULT_ID_TOKEN_ALG = "RS256"  # OIDC Registration: id_token_signed_response_alg default
FAPI_ID_TOKEN_ALGS = frozenset({"PS256", "ES256"})  # FAPI-CIBA-18
FALLBACK_ACR = "urn:ciba-harness:acr:test"


def claims_of(tokens: dict[str, Any]) -> dict[str, Any]:
    """The ID token's claims, unverified (the validation tests judge the signature)."""
    token = str(tokens.get("id_token", ""))
    try:
        return decode_unverified(token)[1]
    except ValueError as exc:
        raise InvalidIdToken(
            requirement="CIBA-IDT-01",
            title="ID token is not a JWS",
            actual=str(exc),
            secrets=[token],
        ) from None


@pytest.mark.requirement("CIBA-IDT-01", "CIBA-IDT-05")
def test_id_token_validates(ciba: CibaClient, poll_client):
    """The ID token is a JWS verifiable with the provider's JWKS, with iss = issuer, aud
    containing the client_id, sub, exp in the future and iat; no nonce (CIBA sends none)."""
    flow, tokens, exchange = redeem(ciba, poll_client)
    claims = ciba.check_id_token(flow, tokens, exchange=exchange)
    ciba.check_at(Severity.INFO, nonce_absent, claims)


@pytest.mark.requirement("CIBA-IDT-02")
def test_id_token_alg(
    ciba: CibaClient, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata, poll_client
):
    """The ID token is signed with the client's registered alg (OIDC Registration
    id_token_signed_response_alg, default RS256); PS256 or ES256 under FAPI-CIBA. The harness
    does not know the registration: a provider that advertises only other algs
    (id_token_signing_alg_values_supported without RS256) registered its clients with one of
    them, and may use any of those; the alg seen is recorded."""
    _, tokens, exchange = redeem(ciba, poll_client)
    advertised = ciba_metadata.raw.get("id_token_signing_alg_values_supported")
    advertised = {a for a in advertised if isinstance(a, str)} if isinstance(advertised,
                                                                             list) else set()
    advertised -= {"none"}
    if ciba_config.profile == "fapi-ciba":
        algs = set(FAPI_ID_TOKEN_ALGS)
    elif advertised and DEFAULT_ID_TOKEN_ALG not in advertised:
        algs = {a for a in advertised if not a.startswith("HS")}
    else:
        algs = {DEFAULT_ID_TOKEN_ALG}
    id_token = str(tokens.get("id_token", ""))
    ciba.check(id_token_alg_is, id_token, algs, exchange=exchange)
    try:
        alg = str(decode_unverified(id_token)[0].get("alg"))
    except ValueError:
        return
    record_choice("id_token_alg", alg, f"advertised {sorted(advertised) or '(nothing)'}")


@pytest.mark.requirement("CIBA-IDT-03")
def test_acr_when_acr_values_requested(
    ciba: CibaClient, ciba_metadata: ProviderMetadata, poll_client
):
    """acr_values sent: the ID token has an acr claim (CIBA §7.1 "highly RECOMMENDED": a
    warning; a MUST under FAPI-CIBA, FAPI-CIBA-09)."""
    supported = ciba_metadata.raw.get("acr_values_supported")
    acr_values = (
        supported[0]
        if isinstance(supported, list) and supported and isinstance(supported[0], str)
        else FALLBACK_ACR
    )
    _, tokens, _ = redeem(ciba, poll_client, acr_values=acr_values)
    claims = claims_of(tokens)
    record_choice("acr", f"present: {claims['acr']}" if "acr" in claims else "absent",
                  f"acr_values={acr_values}")
    ciba.check_at(Severity.WARNING, acr_present, claims)


@pytest.mark.requirement("CIBA-IDT-04")
def test_auth_time_within_request_window(ciba: CibaClient, poll_client):
    """auth_time, when present, lies between the authentication request and the token
    response (± the clock skew allowed for ID tokens)."""
    started = time.time()
    _, tokens, _ = redeem(ciba, poll_client)
    finished = time.time()
    claims = claims_of(tokens)
    ciba.check_at(
        Severity.INFO, claim_present, claims, "auth_time", requirement="CIBA-IDT-04"
    )
    skew = IdTokenExpectations(issuer="", client_id="").skew
    ciba.check(auth_time_within, claims, started, finished, skew=skew)


@pytest.mark.requirement("CIBA-IDT-06")
def test_auth_req_id_claim(ciba: CibaClient, poll_client):
    """The auth_req_id claim is optional in poll mode; when present it equals the redeemed id."""
    flow, tokens, exchange = redeem(ciba, poll_client)
    claims = ciba.check_id_token(flow, tokens, exchange=exchange)
    ciba.check_at(
        Severity.INFO, claim_present, claims, AUTH_REQ_ID_CLAIM, requirement="CIBA-IDT-06"
    )


@pytest.mark.requirement("CIBA-IDT-07")
def test_token_hashes(ciba: CibaClient, poll_client):
    """at_hash and rt_hash are optional in poll mode; when present they match the tokens."""
    flow, tokens, exchange = redeem(ciba, poll_client)
    claims = ciba.check_id_token(flow, tokens, exchange=exchange)
    ciba.check_at(Severity.INFO, claim_present, claims, "at_hash", requirement="CIBA-IDT-07")
    record_choice("at_hash", "present" if "at_hash" in claims else "absent", "poll ID token")
    record_choice("refresh_token_issued", "yes" if tokens.get("refresh_token") else "no",
                  "poll flow with the default scope")
    if tokens.get("refresh_token"):
        ciba.check_at(
            Severity.INFO, claim_present, claims, RT_HASH_CLAIM, requirement="CIBA-IDT-07"
        )


@pytest.mark.requirement("CIBA-IDT-09")
def test_sub_stable_for_the_same_user(ciba: CibaClient, poll_client):
    """Two flows for the same user and client yield the same sub."""
    _, first, _ = redeem(ciba, poll_client)
    _, second, _ = redeem(ciba, poll_client)
    ciba.check(same_subject, str(claims_of(first).get("sub")), str(claims_of(second).get("sub")))
