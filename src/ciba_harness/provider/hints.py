"""Who the authentication request is about: login_hint, login_hint_token (the provider's HS256
format or, under a policy, signed by the client), id_token_hint (CIBA §7.1)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from ciba_harness.provider import jose
from ciba_harness.provider.errors import OAuthError, invalid_request
from ciba_harness.provider.keys import Client
from ciba_harness.provider.protocol import HINTS, is_number
from ciba_harness.provider.state import Part


class UserResolver(Part):
    """The user a hint names, or the CIBA §13 error of a hint naming none."""

    def unknown_user(self) -> OAuthError:
        return OAuthError("unknown_user_id", "the hint does not identify a known user")

    def resolve(self, params: Mapping[str, str | int], client: Client) -> str:
        f = self.faults
        hints = [(k, params[k]) for k in HINTS if k in params]
        if not hints:
            if f.no_hint_accepted:
                return next(iter(self.settings.users))
            raise invalid_request("one of login_hint, login_hint_token, id_token_hint is required")
        if len(hints) > 1 and not f.multiple_hints_accepted:
            raise invalid_request("only one of login_hint, login_hint_token, id_token_hint")
        kind, value = hints[0]
        assert isinstance(value, str)
        if kind == "login_hint":
            if value not in self.settings.users:
                if f.unknown_user_wrong_error:
                    raise invalid_request("invalid user")
                raise self.unknown_user()
            return value
        if kind == "login_hint_token":
            if self.policy.login_hint_token_format == "client_signed":
                return self.from_client_signed_hint(value, client)
            return self._from_login_hint_token(value)
        return self._from_id_token_hint(value, client)

    def _from_login_hint_token(self, token: str) -> str:
        f = self.faults

        def malformed(why: str) -> OAuthError:
            if f.malformed_login_hint_token_wrong_error:
                return self.unknown_user()
            return invalid_request(f"login_hint_token {why}")

        if self.keys.hint_key is None:
            raise invalid_request("login_hint_token is not supported")
        try:
            jws = jose.parse_jws(token)
        except jose.JoseError:
            raise malformed("is not a JWT") from None
        if jws.alg != "HS256" or not jose.verify(jws, self.keys.hint_key):
            raise malformed("signature invalid")
        sub = jws.claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise malformed("has no sub")
        exp = jws.claims.get("exp")
        if exp is not None:
            if not is_number(exp):
                raise malformed("exp is not a number")
            if exp <= time.time() and not f.expired_login_hint_token_accepted:
                raise OAuthError("expired_login_hint_token", "login_hint_token has expired")
        if sub not in self.settings.users:
            raise self.unknown_user()
        return sub

    def from_client_signed_hint(self, token: str, client: Client) -> str:
        """Policy login_hint_token_client_signed: a JWS of the requesting client (HS* with its
        secret, else one of its registered keys) naming the user in ``sub_id`` (RFC 9493
        subject identifier, ``id`` member), ``login_hint`` or ``sub``."""
        f = self.faults

        def malformed(why: str) -> OAuthError:
            if f.malformed_login_hint_token_wrong_error:
                return self.unknown_user()
            return invalid_request(f"login_hint_token {why}")

        try:
            jws = jose.parse_jws(token)
        except jose.JoseError:
            raise malformed("is not a JWT") from None
        keys: tuple[jose.VerifyKey, ...] = (
            (client.secret,) if jws.alg.startswith("HS") and client.secret else client.keys
        )
        if jws.alg == "none" or not any(jose.verify(jws, k) for k in keys):
            raise malformed("is not signed by the requesting client")
        claims = jws.claims
        sub_id = claims.get("sub_id")
        user: object = sub_id.get("id") if isinstance(sub_id, dict) else None
        for name in ("login_hint", "sub"):
            if user is None:
                user = claims.get(name)
        if not isinstance(user, str) or not user:
            raise malformed("names no user (sub_id, login_hint or sub)")
        exp = claims.get("exp")
        if exp is not None:
            if not is_number(exp):
                raise malformed("exp is not a number")
            if exp <= time.time() and not f.expired_login_hint_token_accepted:
                raise OAuthError("expired_login_hint_token", "login_hint_token has expired")
        if user not in self.settings.users:
            raise self.unknown_user()
        return user

    def _from_id_token_hint(self, token: str, client: Client) -> str:
        if self.state.issued_id_tokens is not None and token in self.state.issued_id_tokens:
            issued_to, user_id = self.state.issued_id_tokens[token]
            if issued_to != client.client_id:
                raise self.unknown_user()
            return user_id
        try:
            jws = jose.parse_jws(token)
        except jose.JoseError:
            raise invalid_request("id_token_hint is not a JWT") from None
        claims = jws.claims
        if not self.faults.id_token_hint_not_verified:
            if not self.signer.verify(jws):
                raise self.unknown_user()
            aud = claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if claims.get("iss") != self.issuer or client.client_id not in auds:
                raise self.unknown_user()
        sub = claims.get("sub")
        if not isinstance(sub, str) or sub not in self.settings.users:
            raise self.unknown_user()
        return sub
