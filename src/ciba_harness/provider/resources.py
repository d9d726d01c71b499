"""Endpoints for issued tokens: userinfo (OIDC Core §5.3) and introspection (RFC 7662)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ciba_harness.provider.clientauth import ClientAuthenticator
from ciba_harness.provider.errors import OAuthError, invalid_request
from ciba_harness.provider.forms import read_form
from ciba_harness.provider.keys import cert_thumbprint, peer_certificate
from ciba_harness.provider.protocol import CNF_THUMBPRINT
from ciba_harness.provider.responses import ErrorResponses, invalid_token, json_response
from ciba_harness.provider.state import Part, ProviderState


class TokenResources(Part):
    """GET/POST /userinfo, POST /introspect."""

    def __init__(self, state: ProviderState, auth: ClientAuthenticator, errors: ErrorResponses):
        super().__init__(state)
        self.auth = auth
        self.errors = errors

    async def handle_userinfo(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        grant = self.state.access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or grant.expires_at <= time.monotonic():
            return invalid_token("access token not valid")
        if grant.cnf is not None:
            # RFC 8705 §3: a certificate-bound token needs the same certificate
            cert = peer_certificate(request)
            if cert is None or cert_thumbprint(cert) != grant.cnf:
                return invalid_token("the access token is bound to another client certificate")
        return json_response({"sub": grant.sub}, 200, self.no_store)

    async def handle_introspect(self, request: Request) -> Response:
        """RFC 7662 token introspection for the token's own client; shows `cnf` (RFC 8705
        §3.2) of certificate-bound access tokens."""
        try:
            form = await read_form(request)
            if form.repeated:
                raise invalid_request(f"parameter {form.repeated[0][:40]} repeated")
            client = self.auth.authenticate(request, form, backchannel=False)
            token = form.get("token")
            if token is None:
                raise invalid_request("token is required")
        except OAuthError as err:
            return self.errors.response(err, "introspect")
        now = time.monotonic()
        grant = self.state.access_tokens.get(token)
        kind = "access_token"
        if grant is None:
            grant, kind = self.state.refresh_tokens.get(token), "refresh_token"
        if grant is None or grant.expires_at <= now or grant.client_id != client.client_id:
            return json_response({"active": False}, 200, self.no_store)
        body: dict[str, Any] = {
            "active": True,
            "client_id": grant.client_id,
            "sub": grant.sub,
            "scope": grant.scope,
            "token_type": "Bearer" if kind == "access_token" else "refresh_token",
            "exp": int(time.time() + grant.expires_at - now),
            "iat": int(grant.issued_at),
            "iss": self.issuer,
        }
        if grant.cnf is not None:
            body["cnf"] = {CNF_THUMBPRINT: grant.cnf}
        return json_response(body, 200, self.no_store)
