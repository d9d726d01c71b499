"""OpenID Provider metadata (discovery) as data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ciba_harness.core._errors import ProviderSetupError
from ciba_harness.core._http import HttpRequest, HttpResponse

__all__ = ["CIBA_GRANT", "ProviderMetadata", "discovery_request", "parse_metadata"]

CIBA_GRANT = "urn:openid:params:grant-type:ciba"


def discovery_request(issuer: str, discovery_url: str | None = None) -> HttpRequest:
    url = discovery_url or issuer.rstrip("/") + "/.well-known/openid-configuration"
    return HttpRequest("GET", url, (("Accept", "application/json"),))


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    token_endpoint: str
    backchannel_authentication_endpoint: str
    jwks_uri: str | None = None
    registration_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    delivery_modes: tuple[str, ...] = ()
    request_signing_algs: tuple[str, ...] = ()
    user_code_supported: bool = False
    grant_types: tuple[str, ...] = ()
    auth_methods: tuple[str, ...] = ()
    mtls_endpoint_aliases: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> ProviderMetadata:
        def strings(name: str) -> tuple[str, ...]:
            value = document.get(name)
            return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

        def string(name: str) -> str | None:
            value = document.get(name)
            return value if isinstance(value, str) else None

        aliases = document.get("mtls_endpoint_aliases")
        return cls(
            issuer=string("issuer") or "",
            token_endpoint=string("token_endpoint") or "",
            backchannel_authentication_endpoint=string("backchannel_authentication_endpoint") or "",
            jwks_uri=string("jwks_uri"),
            registration_endpoint=string("registration_endpoint"),
            userinfo_endpoint=string("userinfo_endpoint"),
            delivery_modes=strings("backchannel_token_delivery_modes_supported"),
            request_signing_algs=strings(
                "backchannel_authentication_request_signing_alg_values_supported"
            ),
            user_code_supported=document.get("backchannel_user_code_parameter_supported") is True,
            grant_types=strings("grant_types_supported"),
            auth_methods=strings("token_endpoint_auth_methods_supported"),
            mtls_endpoint_aliases={k: v for k, v in aliases.items() if isinstance(v, str)}
            if isinstance(aliases, dict)
            else {},
            raw=document,
        )

    def supports_mode(self, mode: str) -> bool:
        return mode in self.delivery_modes


def parse_metadata(response: HttpResponse, *, url: str) -> ProviderMetadata:
    """Metadata good enough to run CIBA tests; ProviderSetupError names what is missing."""
    if response.status != 200:
        raise ProviderSetupError(
            f"discovery at {url} answered HTTP {response.status}, expected 200"
        )
    document = response.json_object()
    if document is None:
        raise ProviderSetupError(f"discovery at {url} did not return a JSON object")
    metadata = ProviderMetadata.from_json(document)
    missing = [
        name
        for name in ("issuer", "token_endpoint", "backchannel_authentication_endpoint")
        if not getattr(metadata, name)
    ]
    if missing:
        raise ProviderSetupError(
            f"discovery at {url} lacks {', '.join(missing)}: this provider does not offer CIBA "
            "as configured (check the issuer URL)"
        )
    return metadata
