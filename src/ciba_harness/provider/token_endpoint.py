"""The token endpoint: the CIBA grant (CIBA §10.1, §11) and the refresh grant (RFC 6749 §6),
tokens bound to the client certificate (RFC 8705 §3)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ciba_harness.provider import jose
from ciba_harness.provider.clientauth import ClientAuthenticator
from ciba_harness.provider.errors import OAuthError, invalid_request
from ciba_harness.provider.forms import Form, read_form
from ciba_harness.provider.keys import Client, cert_thumbprint, peer_certificate
from ciba_harness.provider.policies import EXTRA_TOKEN_MEMBERS
from ciba_harness.provider.protocol import CIBA_GRANT, KNOWN_TOKEN_FIELDS
from ciba_harness.provider.responses import ErrorResponses, json_response
from ciba_harness.provider.state import Grant, Part, ProviderState
from ciba_harness.provider.tokens import TokenIssuer


class TokenEndpoint(Part):
    """POST /token."""

    def __init__(
        self, state: ProviderState, auth: ClientAuthenticator, tokens: TokenIssuer,
        errors: ErrorResponses,
    ):
        super().__init__(state)
        self.auth = auth
        self.tokens = tokens
        self.errors = errors

    async def handle(self, request: Request) -> Response:
        try:
            form = await read_form(request, empty_is_absent=self.policy.empty_params_omitted)
            if form.repeated:
                raise invalid_request(f"parameter {form.repeated[0][:40]} repeated")
            client = self.auth.authenticate(request, form, backchannel=False)
            if self.faults.token_unknown_param_refused:
                unknown = [k for k in form.values if k not in KNOWN_TOKEN_FIELDS]
                if unknown:
                    raise invalid_request(f"unknown parameter {unknown[0][:40]}")
            grant_type = form.get("grant_type")
            if grant_type is None:
                raise invalid_request("grant_type is required")
            if grant_type == CIBA_GRANT:
                return self._ciba_grant(form, client, self._binding(request))
            if grant_type == "refresh_token":
                return self._refresh_grant(form, client, self._binding(request))
            if self.faults.unsupported_grant_wrong_error:
                raise OAuthError("invalid_grant", "grant not accepted")
            raise OAuthError("unsupported_grant_type", "grant_type not supported")
        except OAuthError as err:
            return self.errors.response(err, "token")

    def _binding(self, request: Request) -> str | None:
        """x5t#S256 the tokens of this token request get bound to (RFC 8705 §3): the TLS
        client certificate, when one was presented. Under FAPI-CIBA one is required."""
        cert = peer_certificate(request)
        if self.fapi and self.faults.fapi_token_not_certificate_bound:
            return None
        if cert is None:
            if self.fapi:
                # FAPI-CIBA-21: certificate-bound access tokens, so no certificate, no tokens
                raise invalid_request(
                    "FAPI-CIBA: a TLS client certificate is required at the token endpoint "
                    "(certificate-bound access tokens; use mtls_endpoint_aliases)"
                )
            return None
        return cert_thumbprint(cert)

    def _ciba_grant(self, form: Form, client: Client, cnf: str | None = None) -> Response:
        f = self.faults
        if not client.ciba_allowed and not f.non_ciba_client_can_poll:
            raise OAuthError("unauthorized_client", "client is not allowed to use the CIBA grant")
        if client.delivery_mode == "push" and not f.push_client_can_poll:
            raise OAuthError("unauthorized_client", "push clients cannot use the token endpoint")
        auth_req_id = form.get("auth_req_id")
        if auth_req_id is None:
            if f.missing_auth_req_id_wrong_error:
                raise OAuthError("invalid_grant", "auth_req_id not valid")
            raise invalid_request("auth_req_id is required")
        tx = self.state.transactions.get(auth_req_id)
        if tx is None:
            if f.unknown_auth_req_id_pending:
                raise OAuthError("authorization_pending", "the user has not yet been authenticated")
            raise OAuthError("invalid_grant", "auth_req_id is unknown or no longer valid")
        if tx.client_id != client.client_id and not f.cross_client_redeem:
            raise OAuthError("invalid_grant", "auth_req_id is unknown or no longer valid")
        now = time.monotonic()
        self.state.check_expiry(tx, now)
        previous, tx.last_poll = tx.last_poll, now
        state = tx.state
        if state == "pending":
            s = self.settings
            too_fast = previous is not None and (
                now - previous < tx.interval - s.poll_interval_tolerance
            )
            if too_fast and (self.policy.slow_down or f.fast_poll_wrong_error):
                tx.interval += s.slow_down_increment
                code = "too_many_requests" if f.fast_poll_wrong_error else "slow_down"
                raise OAuthError(code, f"poll at most every {tx.interval} seconds")
            if tx.mode == "poll" and f.pending_as_invalid_grant:
                raise OAuthError("invalid_grant", "auth_req_id is not valid yet")
            raise OAuthError("authorization_pending", "the user has not yet been authenticated")
        if state == "expired":
            window = self.policy.expired_token_window
            if window is not None and now - tx.expires_at > window and not f.never_expires:
                raise OAuthError("invalid_grant", "auth_req_id is unknown or no longer valid")
            raise OAuthError("expired_token", "auth_req_id has expired")
        if state == "denied":
            if tx.mode == "poll" and f.denial_as_pending:
                raise OAuthError("authorization_pending", "the user has not yet been authenticated")
            if tx.denial_reported and self.policy.after_denial == "invalid_grant":
                raise OAuthError("invalid_grant", "auth_req_id is no longer valid")
            tx.denial_reported = True
            raise OAuthError("access_denied", "the user denied the request")
        if state == "redeemed" and not f.reusable_auth_req_id:
            if self.policy.replay_revokes_tokens:
                self.tokens.revoke(tx)
            raise OAuthError("invalid_grant", "auth_req_id was already redeemed")
        # approved (or re-use under the fault): redeem synchronously, no await in between
        tx.state = "redeemed"
        body = self.tokens.issue(tx, client.client_id, push=False, cnf=cnf)
        headers = {} if f.token_cacheable else self.no_store
        if self.policy.extra_response_members:
            body.update(EXTRA_TOKEN_MEMBERS)
        return json_response(body, 200, headers)

    def _refresh_grant(self, form: Form, client: Client, cnf: str | None = None) -> Response:
        token = form.get("refresh_token")
        if token is None:
            raise invalid_request("refresh_token is required")
        now = time.monotonic()
        grant = self.state.refresh_tokens.get(token)
        if grant is None or grant.client_id != client.client_id or grant.expires_at <= now:
            raise OAuthError("invalid_grant", "refresh_token is not valid")
        lifetime = self.settings.access_token_lifetime
        access = self.tokens.new_access_token(grant.sub, client.client_id, grant.scope, lifetime)
        self.state.access_tokens[access] = Grant(
            grant.sub, client.client_id, grant.scope, now + lifetime, cnf
        )
        self.state.remember("at", access, now + lifetime)
        body: dict[str, Any] = {
            "access_token": access, "token_type": self.tokens.token_type(), "expires_in": lifetime,
            "scope": grant.scope,
        }
        if self.policy.id_token_on_refresh:
            # OIDC Core §12.2: the refresh response may carry a new ID token (same iss, sub,
            # aud; iat now; auth_time of the original authentication)
            iat = int(time.time())
            claims = {
                "iss": self.issuer, "sub": grant.sub, "aud": client.client_id,
                "exp": iat + lifetime, "iat": iat, "auth_time": int(grant.auth_time),
                "at_hash": jose.half_hash(access, self.signer.alg),
            }
            body["id_token"] = self.signer.sign_id_token(claims, self.signer.alg)
        if self.policy.rotate_refresh_tokens and not self.fapi:
            # RFC 6749 §6: a new refresh token, the presented one revoked
            del self.state.refresh_tokens[token]
            rotated = self.tokens.new_token()
            until = now + self.settings.refresh_token_lifetime
            self.state.refresh_tokens[rotated] = Grant(
                grant.sub, client.client_id, grant.scope, until, auth_time=grant.auth_time
            )
            self.state.remember("rt", rotated, until)
            body["refresh_token"] = rotated
        if self.fapi and self.faults.fapi_refresh_token_rotated:
            # FAPI-CIBA-25 broken: a new refresh token, the old one stays usable
            rotated = self.tokens.new_token()
            until = now + self.settings.refresh_token_lifetime
            self.state.refresh_tokens[rotated] = Grant(
                grant.sub, client.client_id, grant.scope, until
            )
            self.state.remember("rt", rotated, until)
            body["refresh_token"] = rotated
        return json_response(body, 200, self.no_store)
