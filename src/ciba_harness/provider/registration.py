"""Dynamic client registration (RFC 7591, with the CIBA metadata of CIBA §4)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from cryptography import x509
from starlette.requests import Request
from starlette.responses import Response

from ciba_harness.provider import jose
from ciba_harness.provider.errors import OAuthError
from ciba_harness.provider.forms import read_json_object
from ciba_harness.provider.keys import Client, dn_key
from ciba_harness.provider.protocol import (
    ASSERTION_ALGS_KEY,
    ASSERTION_ALGS_SECRET,
    CIBA_GRANT,
    FAPI_ALGS,
    MAX_REGISTERED_CLIENTS,
    SECRET_METHODS,
    valid_notification_url,
)
from ciba_harness.provider.responses import ErrorResponses, json_response
from ciba_harness.provider.settings import AUTH_METHODS, DELIVERY_MODES, REQUEST_SIGNING_ALGS
from ciba_harness.provider.state import Part, ProviderState


class RegistrationEndpoint(Part):
    """POST /register."""

    def __init__(self, state: ProviderState, errors: ErrorResponses):
        super().__init__(state)
        self.errors = errors
        #: clients registered so far (MAX_REGISTERED_CLIENTS)
        self.registered = 0

    async def handle(self, request: Request) -> Response:
        try:
            try:
                meta = await read_json_object(request)
            except OAuthError as err:
                if err.status == 413:
                    raise
                raise OAuthError("invalid_client_metadata", err.description) from None
            client, response = self._register(meta)
        except OAuthError as err:
            return json_response(self.errors.body(err), err.status, self.no_store)
        self.state.clients[client.client_id] = client
        self.registered += 1
        endpoint = response.get("backchannel_client_notification_endpoint")
        if isinstance(endpoint, str):
            self.state.notification_endpoints[client.client_id] = endpoint
        return json_response(response, 201, self.no_store)

    def _register(self, meta: dict[str, Any]) -> tuple[Client, dict[str, Any]]:
        f = self.faults

        def bad(why: str) -> OAuthError:
            return OAuthError("invalid_client_metadata", why)

        if self.registered >= MAX_REGISTERED_CLIENTS:
            raise bad("too many registered clients")
        if self.policy.registration_requires_redirect_uris:
            # OIDC Registration §2: redirect_uris REQUIRED; response_types defaults to ["code"]
            if meta.get("response_types", ["code"]) != [] and not meta.get("redirect_uris"):
                raise OAuthError("invalid_redirect_uri", "redirect_uris is mandatory")
        grant_types = meta.get("grant_types", ["authorization_code"])
        if not isinstance(grant_types, list) or not all(isinstance(g, str) for g in grant_types):
            raise bad("grant_types must be an array of strings")
        ciba = CIBA_GRANT in grant_types
        mode = meta.get("backchannel_token_delivery_mode")
        endpoint = meta.get("backchannel_client_notification_endpoint")
        effective_mode = "poll"
        if mode is not None and not isinstance(mode, str):
            raise bad("backchannel_token_delivery_mode must be a string")
        if ciba:
            if mode is None:
                if not f.registration_without_mode_accepted:
                    raise bad("backchannel_token_delivery_mode is required for the CIBA grant")
                mode = "poll"
            if mode in DELIVERY_MODES:
                effective_mode = mode
            elif not f.registration_unadvertised_mode_accepted:
                raise bad("backchannel_token_delivery_mode must be poll, ping or push")
            if effective_mode in ("ping", "push") and endpoint is None:
                if not f.registration_ping_without_endpoint_accepted:
                    raise bad("backchannel_client_notification_endpoint is required")
            if self.fapi and effective_mode == "push" and not f.fapi_push_allowed:
                raise bad("FAPI-CIBA does not allow push mode")
        if self.policy.https_notification_endpoints and isinstance(endpoint, str) and (
            not endpoint.startswith("https://")
        ):
            raise bad("backchannel_client_notification_endpoint must be an https URL (CIBA §4)")
        if endpoint is not None and not valid_notification_url(endpoint):
            raise bad("backchannel_client_notification_endpoint must be an https URL")
        alg = meta.get("backchannel_authentication_request_signing_alg")
        if alg is not None:
            if not isinstance(alg, str):
                raise bad("backchannel_authentication_request_signing_alg must be a string")
            weak = alg == "none" or alg.startswith("HS")
            if alg not in REQUEST_SIGNING_ALGS and not (
                weak and f.registration_signing_alg_none_accepted
            ):
                raise bad("backchannel_authentication_request_signing_alg not supported")
            if self.fapi and not weak and alg not in FAPI_ALGS:
                raise bad("FAPI-CIBA: backchannel_authentication_request_signing_alg must be "
                          "PS256 or ES256")
        user_code = meta.get("backchannel_user_code_parameter", False)
        if not isinstance(user_code, bool):
            raise bad("backchannel_user_code_parameter must be a boolean")
        method = meta.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in AUTH_METHODS:
            raise bad("token_endpoint_auth_method not supported")
        subject: frozenset[tuple[str, str]] | None = None
        if method == "self_signed_tls_client_auth":
            raise bad("self_signed_tls_client_auth cannot be registered dynamically here "
                      "(the TLS server trusts the certificates of the profile only)")
        if method == "tls_client_auth":
            dn = meta.get("tls_client_auth_subject_dn")
            try:
                if not isinstance(dn, str):
                    raise ValueError
                subject = dn_key(x509.Name.from_rfc4514_string(dn))
            except ValueError:
                raise bad("tls_client_auth needs tls_client_auth_subject_dn (RFC 4514)") from None
        signing_alg = meta.get("token_endpoint_auth_signing_alg")
        if signing_alg is not None and signing_alg not in (
            *ASSERTION_ALGS_SECRET, *ASSERTION_ALGS_KEY
        ):
            raise bad("token_endpoint_auth_signing_alg not supported")
        id_alg = meta.get("id_token_signed_response_alg")
        if id_alg is not None and id_alg != self.signer.alg:
            raise bad(f"id_token_signed_response_alg must be {self.signer.alg}")
        if "jwks_uri" in meta:
            raise bad("jwks_uri is not supported by this test provider, register jwks inline")
        keys: tuple[jose.PublicKey, ...] = ()
        if "jwks" in meta:
            jwks = meta["jwks"]
            if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
                raise bad("jwks must be a JWK Set")
            try:
                keys = tuple(jose.key_from_jwk(k) for k in jwks["keys"][:10])
            except ValueError as exc:
                raise bad(str(exc)) from None
        if method == "private_key_jwt" and not keys:
            raise bad("private_key_jwt needs jwks")
        signs = isinstance(alg, str) and alg in REQUEST_SIGNING_ALGS
        if signs and not keys:
            raise bad("signed requests need jwks")
        client_id = f"dyn-{secrets.token_urlsafe(12)}"
        secret = secrets.token_urlsafe(32) if method in SECRET_METHODS else None
        client = Client(
            client_id=client_id,
            auth_method=method,
            delivery_mode=effective_mode,
            secret=secret.encode() if secret else None,
            keys=keys,
            signing_alg=signing_alg,
            sign_requests=signs,
            request_signing_alg=alg if signs else None,
            user_code_required=user_code,
            ciba_allowed=ciba,
            tls_subject_dn=subject,
        )
        response = dict(meta)
        response.update({
            "client_id": client_id,
            "client_id_issued_at": int(time.time()),
            "grant_types": grant_types,
            "token_endpoint_auth_method": method,
            "backchannel_user_code_parameter": user_code,
        })
        if ciba:
            response["backchannel_token_delivery_mode"] = mode
        if secret is not None:
            response["client_secret"] = secret
            response["client_secret_expires_at"] = 0
        if id_alg is None and self.signer.alg != "RS256":
            # policy id_token_ps256 / _es256: the registered value replaces the RS256 default
            # (RFC 7591 §3.2.1 lets the server substitute metadata values)
            response["id_token_signed_response_alg"] = self.signer.alg
        if f.registration_user_code_not_echoed:
            del response["backchannel_user_code_parameter"]
        return client, response
