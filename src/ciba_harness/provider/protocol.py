"""Protocol vocabulary and limits of the reference provider (CIBA Core 1.0, FAPI-CIBA, RFC 8705),
shared by its endpoints."""

from __future__ import annotations

from typing import TypeGuard
from urllib.parse import urlsplit

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLAIM_AUTH_REQ_ID = "urn:openid:params:jwt:claim:auth_req_id"
CLAIM_RT_HASH = "urn:openid:params:jwt:claim:rt_hash"

#: authentication request parameters (CIBA §7.1); inside the JWT when ``request`` is used
AUTH_PARAMS = (
    "scope", "client_notification_token", "acr_values", "login_hint_token", "id_token_hint",
    "login_hint", "binding_message", "user_code", "requested_expiry",
)
HINTS = ("login_hint", "login_hint_token", "id_token_hint")
CLIENT_AUTH_FIELDS = ("client_id", "client_secret", "client_assertion", "client_assertion_type")
KNOWN_BACKCHANNEL_FIELDS = frozenset((*AUTH_PARAMS, *CLIENT_AUTH_FIELDS, "request"))
KNOWN_TOKEN_FIELDS = frozenset(
    (*CLIENT_AUTH_FIELDS, "grant_type", "auth_req_id", "refresh_token", "scope")
)
FAPI = "fapi-ciba"
#: FAPI-CIBA (FAPI 1.0 Part 2 §8.6): the only JWS algorithms
FAPI_ALGS = ("PS256", "ES256")
#: FAPI-CIBA (ID1 5.2.2-9): longest life of a signed authentication request (exp - nbf)
FAPI_REQUEST_LIFETIME = 3600
#: the lifetime limit under the fault fapi_request_lifetime_unlimited
UNLIMITED_REQUEST_LIFETIME = 86400
CNF_THUMBPRINT = "x5t#S256"
REQUEST_OBJECT_CLAIMS = frozenset(
    (*AUTH_PARAMS, "aud", "iss", "exp", "iat", "nbf", "jti", "sub", "client_id")
)
SCOPES_SUPPORTED = ("openid", "profile", "email", "address", "phone", "offline_access")
SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")
ASSERTION_ALGS_SECRET = ("HS256", "HS384", "HS512")
ASSERTION_ALGS_KEY = ("RS256", "PS256", "ES256")
MAX_NOTIFICATION_TOKEN = 1024
MAX_REGISTERED_CLIENTS = 10_000
MAX_DEVICE_DELAY = 3600.0
MAX_REMEMBERED_ID_TOKENS = 10_000
#: endpoints with an mTLS alias (RFC 8705 §5): metadata name -> path under the issuer
MTLS_ALIASED = {
    "token_endpoint": "/token",
    "backchannel_authentication_endpoint": "/backchannel",
    "userinfo_endpoint": "/userinfo",
    "introspection_endpoint": "/introspect",
}
#: policy notification_retry: seconds before the one retry of a failed ping / push
NOTIFICATION_RETRY_DELAY = 1.0
#: auth_req_id_reused: a pending identical request younger than this is handed out again
REUSE_WINDOW = 1.0


def is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number (a bool is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def valid_notification_url(url: object) -> bool:
    """https URL, or http on a loopback host (this is a loopback test server)."""
    if not isinstance(url, str) or len(url) > 2000:
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    if not host or parts.fragment:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and host in ("127.0.0.1", "localhost", "::1")

