"""Discovery metadata (OIDC Discovery, CIBA §4, RFC 8705 §5 aliases)."""

from __future__ import annotations

import json
from typing import Any

from ciba_harness.provider.protocol import (
    CIBA_GRANT,
    CLAIM_AUTH_REQ_ID,
    CLAIM_RT_HASH,
    FAPI_ALGS,
    MTLS_ALIASED,
    SCOPES_SUPPORTED,
)
from ciba_harness.provider.settings import MTLS_METHODS, REQUEST_SIGNING_ALGS
from ciba_harness.provider.state import Part


class Discovery(Part):
    """The provider's metadata document."""

    def document(self) -> bytes:
        """The body of /.well-known/openid-configuration (built once per instance)."""
        f = self.faults
        i = self.issuer
        modes = ["poll", "ping", "push"] + (["email"] if f.discovery_bad_modes else [])
        if self.fapi and not f.fapi_push_allowed:
            modes.remove("push")  # FAPI-CIBA-03
        request_algs = list(FAPI_ALGS if self.fapi else REQUEST_SIGNING_ALGS)
        if f.discovery_signing_alg_none:
            request_algs.append("none")
        grants = [CIBA_GRANT, "refresh_token"]
        if f.discovery_no_ciba_grant:
            grants.remove(CIBA_GRANT)
        doc: dict[str, Any] = {
            "issuer": f"{i}/other" if f.discovery_issuer_mismatch else i,
            "token_endpoint": self.state.token_endpoint,
            "jwks_uri": f"{i}/jwks",
            "backchannel_authentication_endpoint": self.state.backchannel_endpoint,
            "registration_endpoint": f"{i}/register",
            "userinfo_endpoint": f"{i}/userinfo",
            "backchannel_token_delivery_modes_supported": modes,
            "backchannel_authentication_request_signing_alg_values_supported": request_algs,
            "backchannel_user_code_parameter_supported": (
                "true" if f.discovery_user_code_param_as_string else True
            ),
            "grant_types_supported": grants,
            "token_endpoint_auth_methods_supported": self._auth_methods_supported(),
            "token_endpoint_auth_signing_alg_values_supported": (
                list(FAPI_ALGS) if self.fapi else ["HS256", "RS256", "PS256", "ES256"]
            ),
            "id_token_signing_alg_values_supported": [self.signer.alg],
            "scopes_supported": list(SCOPES_SUPPORTED),
            "subject_types_supported": ["public"],
            "response_types_supported": ["none"],
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "at_hash",
                CLAIM_RT_HASH, CLAIM_AUTH_REQ_ID,
            ],
        }
        doc["introspection_endpoint"] = f"{i}/introspect"
        if self.state.mtls_base is not None:
            doc["tls_client_certificate_bound_access_tokens"] = True
            doc["mtls_endpoint_aliases"] = {
                name: self.state.mtls_url(path) for name, path in MTLS_ALIASED.items()
            }
        if f.discovery_missing_backchannel_endpoint:
            del doc["backchannel_authentication_endpoint"]
        return json.dumps(doc, separators=(",", ":")).encode()

    def _auth_methods_supported(self) -> list[str]:
        methods = [] if self.fapi else [
            "client_secret_basic", "client_secret_post", "client_secret_jwt",
        ]
        methods.append("private_key_jwt")
        if self.state.mtls_base is not None or self.keys.client_cas or any(
            c.auth_method in MTLS_METHODS for c in self.keys.clients.values()
        ):
            methods += ["tls_client_auth", "self_signed_tls_client_auth"]
        return methods
