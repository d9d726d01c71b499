"""Issuing tokens: access, refresh and ID tokens of an approved request (token endpoint and
push), refresh-grant access tokens, revocation on replay."""

from __future__ import annotations

import secrets
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from ciba_harness.provider import jose
from ciba_harness.provider.protocol import (
    CLAIM_AUTH_REQ_ID,
    CLAIM_RT_HASH,
    MAX_REMEMBERED_ID_TOKENS,
)
from ciba_harness.provider.state import Grant, Part, ProviderState, Transaction


class TokenIssuer(Part):
    """Mints the tokens of one provider instance and records their grants."""

    def __init__(self, state: ProviderState):
        super().__init__(state)
        #: fault fapi_access_token_low_entropy: tokens are a counter
        self._access_counter = 0

    def issue(
        self, tx: Transaction, client_id: str, *, push: bool, cnf: str | None = None
    ) -> dict[str, Any]:
        """Issue access, refresh and ID token for an approved transaction (the access token
        bound to the certificate thumbprint `cnf`, if given)."""
        f = self.faults
        s = self.settings
        mono, now = time.monotonic(), int(time.time())
        self.state.purge(mono)
        access = self.new_access_token(tx.user_id, client_id, tx.scope, s.access_token_lifetime)
        refresh: str | None = self.new_token()
        if self.policy.refresh_token_needs_offline_access and (
            "offline_access" not in tx.scope.split()
        ):
            refresh = None
        lifetime = s.access_token_lifetime
        self.state.access_tokens[access] = Grant(
            tx.user_id, client_id, tx.scope, mono + lifetime, cnf
        )
        self.state.remember("at", access, mono + lifetime)
        tx.issued = (access,)
        if refresh is not None:
            rt_until = mono + s.refresh_token_lifetime
            self.state.refresh_tokens[refresh] = Grant(
                tx.user_id, client_id, tx.scope, rt_until,
                auth_time=tx.auth_time if tx.auth_time is not None else time.time(),
            )
            self.state.remember("rt", refresh, rt_until)
            tx.issued = (access, refresh)
        alg = self.signer.alg
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": tx.user_id,
            "aud": client_id,
            "exp": now + lifetime,
            "iat": now,
            "auth_time": int(tx.auth_time if tx.auth_time is not None else now),
            "at_hash": jose.half_hash(access, alg),
            CLAIM_AUTH_REQ_ID: tx.auth_req_id,
        }
        if refresh is not None:
            claims[CLAIM_RT_HASH] = jose.half_hash(refresh, alg)
        pol = self.policy
        if tx.acr_values and not (self.fapi and f.fapi_id_token_missing_acr) and (
            pol.id_token_acr or push or self.fapi
        ):
            claims["acr"] = tx.acr_values.split()[0]
        if not push:
            # poll/ping ID token claims the policies leave out (a fault on the claim wins)
            if not pol.id_token_at_hash and not f.id_token_bad_at_hash:
                del claims["at_hash"]
            if not pol.id_token_rt_hash:
                claims.pop(CLAIM_RT_HASH, None)
            if not pol.id_token_auth_req_id_claim and not f.id_token_wrong_auth_req_id_claim:
                del claims[CLAIM_AUTH_REQ_ID]
        broken = False
        if push:
            if f.push_missing_auth_req_id_claim:
                del claims[CLAIM_AUTH_REQ_ID]
            if f.push_bad_at_hash:
                claims["at_hash"] = jose.half_hash(access + "x", alg)
            if f.push_missing_rt_hash:
                claims.pop(CLAIM_RT_HASH, None)
            broken = f.push_id_token_bad_signature
        else:
            if f.id_token_wrong_iss:
                claims["iss"] = f"{self.issuer}/other"
            if f.id_token_wrong_aud:
                claims["aud"] = f"{client_id}-other"
            if f.id_token_expired:
                claims["exp"], claims["iat"] = now - 60, now - 60 - lifetime
            if f.id_token_wrong_alg and isinstance(self.signer.private, rsa.RSAPrivateKey):
                alg = "PS256" if alg != "PS256" else "RS256"
            if f.id_token_missing_acr:
                claims.pop("acr", None)
            if f.auth_time_before_request:
                claims["auth_time"] = int(tx.created_at) - 3600
            if f.id_token_wrong_auth_req_id_claim:
                claims[CLAIM_AUTH_REQ_ID] = secrets.token_urlsafe(27)
            if f.id_token_bad_at_hash:
                claims["at_hash"] = jose.half_hash(access + "x", alg)
            if f.sub_not_stable:
                claims["sub"] = secrets.token_urlsafe(12)
            broken = f.id_token_bad_signature
        id_token = self.signer.sign_id_token(claims, alg)
        if broken:
            id_token = jose.corrupt_signature(id_token)
        if self.state.issued_id_tokens is not None:
            self.state.issued_id_tokens[id_token] = (client_id, tx.user_id)
            if len(self.state.issued_id_tokens) > MAX_REMEMBERED_ID_TOKENS:
                self.state.issued_id_tokens.popitem(last=False)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": self.token_type(not push and f.token_type_wrong),
            "expires_in": lifetime,
            "refresh_token": refresh,
            "id_token": id_token,
            "scope": tx.scope,
        }
        if refresh is None:
            del body["refresh_token"]
        if not self.policy.token_scope_always and set(tx.scope.split()) == set(
            tx.requested_scope.split()
        ):
            del body["scope"]  # RFC 6749 §5.1: OPTIONAL when identical to the requested scope
        if not push and f.token_missing_id_token:
            del body["id_token"]
        return body

    def new_access_token(self, sub: str, client_id: str, scope: str, lifetime: int) -> str:
        """An opaque access token, or under jwt_access_tokens an RFC 9068 JWT."""
        if self.policy.access_token_format != "jwt" or (
            self.fapi and self.faults.fapi_access_token_low_entropy
        ):
            return self.new_token()
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": sub, "aud": self.issuer, "client_id": client_id,
            "scope": scope, "iat": now, "exp": now + lifetime, "jti": secrets.token_urlsafe(16),
        }
        return jose.sign(claims, self.signer.alg, self.signer.private, self.signer.kid,
                         typ="at+jwt")

    def token_type(self, fault: bool = False) -> str:
        if fault:
            return "MAC"
        return "Bearer" if self.policy.token_type_capitalised else "bearer"

    def new_token(self) -> str:
        """An access or refresh token: 256 random bits (FAPI-CIBA-26 asks >= 128)."""
        if self.fapi and self.faults.fapi_access_token_low_entropy:
            self._access_counter += 1
            return f"at{self._access_counter:08d}"
        return secrets.token_urlsafe(32)

    def revoke(self, tx: Transaction) -> None:
        """Policy replay_revokes_tokens: forget the tokens issued from ``tx``."""
        for token in tx.issued:
            self.state.access_tokens.pop(token, None)
            self.state.refresh_tokens.pop(token, None)
        tx.issued = ()
