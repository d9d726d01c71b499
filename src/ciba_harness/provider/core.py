"""The reference OpenID Provider: state and protocol logic (CIBA Core 1.0, OP side).

One :class:`Provider` is one independent provider instance (own clients, transactions, tokens)
with one issuer. The HTTP layer (``app.py``) only routes requests to its ``handle_*`` methods.
Faults (``faults.py``) are small checks at the place where the behaviour lives.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import hmac
import json
import logging
import re
import secrets
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import unquote_plus, urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.requests import Request
from starlette.responses import Response

from ciba_harness.provider import jose
from ciba_harness.provider.errors import OAuthError, invalid_client, invalid_request
from ciba_harness.provider.forms import Form, read_form, read_json_object
from ciba_harness.provider.policies import (
    EXTRA_ACK_MEMBERS,
    EXTRA_TOKEN_MEMBERS,
    ROTATE_EVERY_ID_TOKENS,
    ProviderPolicy,
)
from ciba_harness.provider.settings import (
    AUTH_METHODS,
    DELIVERY_MODES,
    MTLS_METHODS,
    REQUEST_SIGNING_ALGS,
    ProviderSettings,
)

log = logging.getLogger("ciba_harness.provider")

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
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
NO_STORE_ONLY = {"Cache-Control": "no-store"}
MAX_NOTIFICATION_TOKEN = 1024
MAX_REGISTERED_CLIENTS = 10_000
MAX_DEVICE_DELAY = 3600.0
MAX_REMEMBERED_ID_TOKENS = 10_000
#: jwks_rotation: how many signing keys a provider remembers (for its own id_token_hint checks)
MAX_SIGNING_KEYS = 50
#: faults whose ID tokens the provider itself would not accept as id_token_hint: such a fault
#: tenant remembers the ID tokens it issued, so that hint flows (CIBA-AUTH-10) still work there
ID_TOKEN_FAULTS = frozenset(
    {"id_token_wrong_iss", "id_token_wrong_aud", "id_token_bad_signature", "id_token_wrong_alg",
     "sub_not_stable"}
)
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

_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_DIGITS = re.compile(r"^[0-9]{1,10}$")

#: backchannel error code -> (fault that changes its status, the wrong status)
_STATUS_FAULTS: dict[str, tuple[str, int]] = {
    "invalid_request": ("invalid_request_wrong_status", 422),
    "expired_login_hint_token": ("expired_login_hint_token_wrong_status", 401),
    "unknown_user_id": ("unknown_user_wrong_status", 404),
    "unauthorized_client": ("unauthorized_client_wrong_status", 401),
    "missing_user_code": ("missing_user_code_wrong_status", 401),
    "invalid_user_code": ("invalid_user_code_wrong_status", 401),
    "invalid_binding_message": ("binding_message_error_wrong_status", 401),
    "invalid_client": ("invalid_client_status_403", 403),
    "access_denied": ("access_denied_wrong_status", 400),
}


def _invalid_token(description: str) -> Response:
    return json_response(
        {"error": "invalid_token", "error_description": description}, 401,
        {"WWW-Authenticate": 'Bearer error="invalid_token"', **NO_STORE},
    )


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _num(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None,
    media_type: str = "application/json",
) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")).encode(), status, dict(headers or {}), media_type
    )


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


# --------------------------------------------------------------------------------------------
# shared, immutable material (built once per create_app, shared by all fault tenants)


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    auth_method: str
    delivery_mode: str
    secret: bytes | None = None
    keys: tuple[jose.PublicKey, ...] = ()
    signing_alg: str | None = None
    sign_requests: bool = False
    request_signing_alg: str | None = None
    user_code_required: bool = False
    ciba_allowed: bool = True
    #: tls_client_auth: the registered subject DN (normalised, see dn_key)
    tls_subject_dn: frozenset[tuple[str, str]] | None = None
    #: self_signed_tls_client_auth: x5t#S256 thumbprints of the registered certificates
    cert_thumbprints: frozenset[str] = frozenset()


def dn_key(name: x509.Name) -> frozenset[tuple[str, str]]:
    """A subject DN compared as a set of (attribute OID, value), independent of RDN order."""
    return frozenset((attr.oid.dotted_string, str(attr.value)) for attr in name)


def cert_thumbprint(cert: x509.Certificate) -> str:
    """RFC 8705 x5t#S256: base64url(SHA-256(DER))."""
    import hashlib

    der = cert.public_bytes(serialization.Encoding.DER)
    return jose.b64url_encode(hashlib.sha256(der).digest())


def peer_certificate(request: Request) -> x509.Certificate | None:
    """The TLS client certificate of the connection (ASGI TLS extension), if any."""
    extensions = request.scope.get("extensions") or {}
    tls = extensions.get("tls") if isinstance(extensions, dict) else None
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    if not chain:
        return None
    first = chain[0]
    try:
        return x509.load_pem_x509_certificate(first.encode() if isinstance(first, str) else first)
    except (ValueError, TypeError):
        return None


class KeyMaterial:
    """Provider signing key, its JWKS, and the pre-registered clients with parsed keys."""

    def __init__(self, settings: ProviderSettings, profile: str | None = None):
        self.profile = profile or settings.profile
        key = serialization.load_pem_private_key(
            settings.signing_key_pem, password=None, unsafe_skip_rsa_key_validation=True
        )
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("the provider signing key must be RSA or EC")
        self.private: jose.PrivateKey = key
        self.public: jose.PublicKey = key.public_key()
        self.alg = settings.id_token_alg
        if self.profile == FAPI and self.alg not in FAPI_ALGS:
            # FAPI-CIBA-18: ID tokens are PS256 or ES256 (the same key signs)
            self.alg = "PS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        if not jose.compatible(self.alg, self.public):
            raise ValueError(f"id_token_alg {self.alg} does not fit the signing key")
        jwk = jose.public_jwk(self.public)
        self.kid = jose.thumbprint(jwk)
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        self.jwks_body = json.dumps({"keys": [jwk]}, separators=(",", ":")).encode()
        self.hint_key = (
            settings.login_hint_token_key.encode() if settings.login_hint_token_key else None
        )
        self.client_cas: tuple[x509.Certificate, ...] = ()
        if settings.tls_client_ca is not None:
            self.client_cas = tuple(
                x509.load_pem_x509_certificates(settings.tls_client_ca.read_bytes())
            )
        clients: dict[str, Client] = {}
        for c in settings.clients.values():
            keys: tuple[jose.PublicKey, ...] = ()
            if c.public_key_pem:
                pub = serialization.load_pem_public_key(c.public_key_pem)
                if not isinstance(pub, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
                    raise ValueError(f"client {c.client_id}: unsupported key type")
                keys = (pub,)
            subject: frozenset[tuple[str, str]] | None = None
            thumbprints: frozenset[str] = frozenset()
            cert = x509.load_pem_x509_certificate(c.certificate_pem) if c.certificate_pem else None
            if c.auth_method == "tls_client_auth":
                if c.tls_client_auth_subject_dn is not None:
                    subject = dn_key(x509.Name.from_rfc4514_string(c.tls_client_auth_subject_dn))
                elif cert is not None:
                    subject = dn_key(cert.subject)
            if c.auth_method == "self_signed_tls_client_auth" and cert is not None:
                thumbprints = frozenset({cert_thumbprint(cert)})
            clients[c.client_id] = Client(
                client_id=c.client_id,
                auth_method=c.auth_method,
                delivery_mode=c.delivery_mode,
                secret=c.client_secret.encode() if c.client_secret else None,
                keys=keys,
                signing_alg=c.signing_alg,
                sign_requests=c.sign_requests,
                request_signing_alg=c.request_signing_alg,
                user_code_required=c.user_code_required,
                ciba_allowed=c.ciba_allowed,
                tls_subject_dn=subject,
                cert_thumbprints=thumbprints,
            )
        self.clients: Mapping[str, Client] = clients
        # default client for the no_client_auth_accepted fault: first confidential poll client
        self.default_client_id = next(
            (c.client_id for c in clients.values()
             if c.delivery_mode == "poll" and c.ciba_allowed and c.auth_method != "none"),
            next(iter(clients), None),
        )


class Signer:
    """The ID token signing key of one provider instance: the profile's key and alg, or under
    the id_token_alg policy a key of its own; under jwks_rotation a new key every few ID
    tokens (the JWKS keeping the previous one or not). Every key ever used stays trusted for
    id_token_hint (the provider knows its own keys)."""

    def __init__(self, keys: KeyMaterial, policy: ProviderPolicy):
        self.rotation = policy.jwks_rotation
        private: jose.PrivateKey = keys.private
        alg = keys.alg
        if policy.id_token_alg == "PS256":
            alg = "PS256"
            if not isinstance(private, rsa.RSAPrivateKey):
                private = rsa.generate_private_key(65537, 2048)
        elif policy.id_token_alg == "ES256":
            alg = "ES256"
            if not isinstance(private, ec.EllipticCurvePrivateKey) or not jose.compatible(
                "ES256", private.public_key()
            ):
                private = ec.generate_private_key(ec.SECP256R1())
        self.alg = alg
        self.private = private
        self.kid = keys.kid if private is keys.private else self._kid(private)
        #: (kid, public key) of every key used, newest last
        self.used: list[tuple[str, jose.PublicKey]] = [(self.kid, private.public_key())]
        self.signed = 0
        self._jwks = self._build_jwks()

    def _kid(self, private: jose.PrivateKey) -> str:
        return jose.thumbprint(jose.public_jwk(private.public_key()))

    def _build_jwks(self) -> bytes:
        published = self.used[-2:] if self.rotation == "keep_old" else self.used[-1:]
        jwks = []
        for kid, public in reversed(published):
            jwk = jose.public_jwk(public)
            jwk.update({"kid": kid, "use": "sig", "alg": self.alg})
            jwks.append(jwk)
        return json.dumps({"keys": jwks}, separators=(",", ":")).encode()

    @property
    def jwks_body(self) -> bytes:
        return self._jwks

    def _rotate(self) -> None:
        if self.rotation == "off" or self.signed == 0 or self.signed % ROTATE_EVERY_ID_TOKENS:
            return
        if isinstance(self.private, rsa.RSAPrivateKey):
            self.private = rsa.generate_private_key(65537, 2048)
        else:
            self.private = ec.generate_private_key(self.private.curve)
        self.kid = self._kid(self.private)
        self.used.append((self.kid, self.private.public_key()))
        del self.used[:-MAX_SIGNING_KEYS]
        self._jwks = self._build_jwks()

    def sign_id_token(self, claims: dict[str, Any], alg: str) -> str:
        """Sign with the current key (rotated first when due, so the newest ID token is
        always signed with a published key)."""
        self._rotate()
        self.signed += 1
        return jose.sign(claims, alg, self.private, self.kid)

    def verify(self, jws: jose.Jws) -> bool:
        """A JWS signed by one of this provider's keys with its ID token alg."""
        if jws.alg != self.alg:
            return False
        kid = jws.header.get("kid")
        return any(
            jose.verify(jws, public) for k, public in self.used if kid is None or k == kid
        )


class Outbound:
    """The httpx client used for pings, pushes and webhook calls (one per event loop)."""

    def __init__(
        self, transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ):
        self._transport = transport
        self._verify = verify
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                transport=self._transport, verify=self._verify, trust_env=False
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None
        self._loop = None


# --------------------------------------------------------------------------------------------
# state


@dataclass(slots=True, eq=False)
class Transaction:
    auth_req_id: str
    client_id: str
    user_id: str
    scope: str
    mode: str
    created_at: float  # wall clock
    expires_at: float  # monotonic
    expires_in: int
    interval: int
    acr_values: str | None = None
    binding_message: str | None = None
    notification_token: str | None = None
    state: str = "pending"  # pending approved denied expired redeemed
    last_poll: float | None = None
    auth_time: float | None = None
    webhook_token: str | None = None
    timer: asyncio.TimerHandle | None = None
    #: the scope values the client asked for (policy no_scope_when_as_requested)
    requested_scope: str = ""
    #: policy invalid_grant_after_denial: access_denied was answered once
    denial_reported: bool = False
    #: access and refresh token issued from it (policy replay_revokes_tokens)
    issued: tuple[str, ...] = ()


@dataclass(slots=True)
class Grant:
    """An access or refresh token."""

    sub: str
    client_id: str
    scope: str
    expires_at: float  # monotonic
    #: x5t#S256 of the client certificate the token is bound to (RFC 8705 §3)
    cnf: str | None = None
    issued_at: float = field(default_factory=time.time)
    #: when the user authenticated (epoch seconds; policy id_token_on_refresh)
    auth_time: float = field(default_factory=time.time)


@dataclass
class Delivery:
    """One outbound call (for tests and diagnostics)."""

    kind: str  # ping | push | webhook
    url: str
    auth_req_id: str
    payload: dict[str, Any]
    authorization: str | None
    status: int | None = None
    error: str | None = None
    done: float = field(default_factory=time.time)


# --------------------------------------------------------------------------------------------


class Provider:
    def __init__(
        self,
        settings: ProviderSettings,
        keys: KeyMaterial,
        *,
        issuer: str,
        faults: Iterable[str] = (),
        outbound: Outbound | None = None,
        device_webhook_url: str | None = None,
        mtls_base: str | None = None,
        policy: ProviderPolicy | None = None,
    ):
        self.settings = settings
        self.keys = keys
        self.issuer = issuer.rstrip("/")
        self.faults = frozenset(faults)
        self.policy = policy or ProviderPolicy()
        self.signer = Signer(keys, self.policy)
        #: Cache-Control (and Pragma unless the policy no_pragma) of sensitive responses
        self.no_store = NO_STORE if self.policy.pragma_no_cache else NO_STORE_ONLY
        self.outbound = outbound or Outbound()
        self.webhook_url = device_webhook_url or settings.device_webhook_url
        self.fapi = keys.profile == FAPI
        self.token_endpoint = f"{self.issuer}/token"
        self.backchannel_endpoint = f"{self.issuer}/backchannel"
        #: where the mTLS endpoints are served (RFC 8705 §5 aliases), e.g. a second port
        self.mtls_base = mtls_base.rstrip("/") if mtls_base else None
        self._access_counter = 0
        self.clients: dict[str, Client] = dict(keys.clients)
        self.notification_endpoints: dict[str, str] = {
            c.client_id: c.notification_endpoint
            for c in settings.clients.values() if c.notification_endpoint
        }
        self.default_notification_endpoint: str | None = None
        self.transactions: dict[str, Transaction] = {}
        self.pending: dict[str, Transaction] = {}
        self.access_tokens: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.assertion_jtis: dict[tuple[str, str], float] = {}
        self.request_jtis: dict[tuple[str, str], float] = {}
        self.webhook_tokens: dict[str, str] = {}
        self.registered = 0
        self.issued_id_tokens: OrderedDict[str, tuple[str, str]] | None = (
            OrderedDict() if self.faults & ID_TOKEN_FAULTS else None
        )
        self._reuse: dict[tuple[Any, ...], Transaction] = {}
        self._stores: dict[str, dict[Any, Any]] = {
            "tx": self.transactions, "at": self.access_tokens, "rt": self.refresh_tokens,
            "aj": self.assertion_jtis, "rj": self.request_jtis,
        }
        self._expiry_heap: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self._counter = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.deliveries: deque[Delivery] = deque(maxlen=2000)
        self.server_errors = 0
        self.tenants: dict[str, Provider] = {}
        self.discovery_body = self._build_discovery()

    # ---------------------------------------------------------------- housekeeping

    def _remember(self, store: str, key: Any, when: float) -> None:
        self._seq += 1
        heapq.heappush(self._expiry_heap, (when, self._seq, store, key))

    def _purge(self, now: float) -> None:
        heap = self._expiry_heap
        while heap and heap[0][0] <= now:
            when, _, store, key = heapq.heappop(heap)
            target = self._stores[store]
            if store == "tx":
                tx = target.get(key)
                if tx is not None and tx.expires_at + self.settings.transaction_retention <= now:
                    del target[key]
                    self.pending.pop(key, None)
                    if tx.webhook_token:
                        self.webhook_tokens.pop(tx.webhook_token, None)
            else:
                target.pop(key, None)

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every background task (deliveries, delayed decisions) has finished."""
        deadline = time.monotonic() + timeout
        while True:
            pending = [t for p in (self, *self.tenants.values()) for t in p.tasks]
            if not pending:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("background tasks still running")
            await asyncio.wait(pending, timeout=remaining)

    # ---------------------------------------------------------------- discovery / jwks

    def _build_discovery(self) -> bytes:
        f = self.faults
        i = self.issuer
        modes = ["poll", "ping", "push"] + (["email"] if "discovery_bad_modes" in f else [])
        if self.fapi and "fapi_push_allowed" not in f:
            modes.remove("push")  # FAPI-CIBA-03
        request_algs = list(FAPI_ALGS if self.fapi else REQUEST_SIGNING_ALGS)
        if "discovery_signing_alg_none" in f:
            request_algs.append("none")
        grants = [CIBA_GRANT, "refresh_token"]
        if "discovery_no_ciba_grant" in f:
            grants.remove(CIBA_GRANT)
        doc: dict[str, Any] = {
            "issuer": f"{i}/other" if "discovery_issuer_mismatch" in f else i,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": f"{i}/jwks",
            "backchannel_authentication_endpoint": self.backchannel_endpoint,
            "registration_endpoint": f"{i}/register",
            "userinfo_endpoint": f"{i}/userinfo",
            "backchannel_token_delivery_modes_supported": modes,
            "backchannel_authentication_request_signing_alg_values_supported": request_algs,
            "backchannel_user_code_parameter_supported": (
                "true" if "discovery_user_code_param_as_string" in f else True
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
        if self.mtls_base is not None:
            doc["tls_client_certificate_bound_access_tokens"] = True
            doc["mtls_endpoint_aliases"] = {
                name: self.mtls_url(path) for name, path in MTLS_ALIASED.items()
            }
        if "discovery_missing_backchannel_endpoint" in f:
            del doc["backchannel_authentication_endpoint"]
        return json.dumps(doc, separators=(",", ":")).encode()

    def _auth_methods_supported(self) -> list[str]:
        methods = [] if self.fapi else [
            "client_secret_basic", "client_secret_post", "client_secret_jwt",
        ]
        methods.append("private_key_jwt")
        if self.mtls_base is not None or self.keys.client_cas or any(
            c.auth_method in MTLS_METHODS for c in self.keys.clients.values()
        ):
            methods += ["tls_client_auth", "self_signed_tls_client_auth"]
        return methods

    def mtls_url(self, path: str) -> str:
        """The mTLS alias of an endpoint path: the same path under the mTLS base URL."""
        base = self.mtls_base or self.issuer
        prefix = urlsplit(self.issuer).path.rstrip("/")
        return f"{base}{prefix}{path}"

    # ---------------------------------------------------------------- errors

    def error_response(self, err: OAuthError, endpoint: str) -> Response:
        f = self.faults
        status = err.status
        headers = dict(self.no_store)
        body = self.error_body(err)
        www = err.error == "invalid_client" and err.basic
        if err.error == "invalid_client" and not err.basic:
            status = self.policy.invalid_client_status_without_basic
        not_json = False
        if endpoint == "backchannel":
            override = _STATUS_FAULTS.get(err.error)
            if override is not None and override[0] in f and status != 413:
                status = override[1]
            if www and "basic_401_without_www_authenticate" in f:
                www = False
            if "error_extra_chars" in f:  # the fault wins over the policy no_error_description
                body["error_description"] = f'{err.description} ("{err.error}")\nsee log'
            if "error_uri_bad_chars" in f:
                body["error_uri"] = f'https://errors.invalid/ciba "{err.error}"'
            not_json = "error_not_json" in f
        elif endpoint == "token":
            if www and "token_invalid_client_no_www_authenticate" in f:
                www = False
            not_json = "token_error_not_json" in f
        if www:
            headers["WWW-Authenticate"] = 'Basic realm="ciba"'
        if not_json:
            text = f"error={body['error']}"
            if "error_description" in body:
                text += f"&error_description={body['error_description']}"
            return Response(text, status, headers, "text/plain")
        return json_response(body, status, headers)

    def error_body(self, err: OAuthError) -> dict[str, str]:
        """``{"error", "error_description"}`` (only ``error`` under no_error_description; plus
        ``error_uri`` under error_uri)."""
        body = {"error": err.error}
        if self.policy.error_description:
            body["error_description"] = err.description
        if self.policy.error_uri:
            body["error_uri"] = f"https://errors.example/ciba#{err.error}"
        return body

    # ---------------------------------------------------------------- client authentication

    def authenticate(self, request: Request, form: Form, *, backchannel: bool) -> Client:
        """Client authentication shared by the backchannel and token endpoints.

        The CIBA-CAUTH faults apply to the backchannel endpoint only.
        """
        f = self.faults if backchannel else frozenset()
        header = request.headers.get("authorization")
        basic: str | None = None
        if header is not None:
            scheme, _, cred = header.strip().partition(" ")
            if scheme.lower() == "basic":
                basic = cred.strip()
        has_post = "client_secret" in form
        has_assertion = "client_assertion" in form or "client_assertion_type" in form
        used = (basic is not None) + has_post + has_assertion
        if used > 1 and "multiple_auth_methods_accepted" not in f:
            raise invalid_request("more than one client authentication method used")
        if basic is not None:
            client = self._auth_basic(basic, form, f)
        elif has_assertion:
            client = self._auth_assertion(form, f)
        elif has_post:
            client = self._auth_post(form, f)
        else:
            client = self._auth_without_credentials(request, form, f)
        if self.fapi and client.auth_method in SECRET_METHODS and (
            "fapi_secret_client_auth_accepted" not in self.faults
        ):
            # FAPI-CIBA-20: private_key_jwt, tls_client_auth, self_signed_tls_client_auth only
            raise invalid_client(
                "FAPI-CIBA: shared-secret client authentication is not allowed",
                basic=basic is not None,
            )
        return client

    def _auth_without_credentials(self, request: Request, form: Form, f: frozenset[str]) -> Client:
        """No secret, no assertion: mTLS (RFC 8705 §2), a public client, or nothing."""
        client_id = form.get("client_id")
        client = self.clients.get(client_id) if client_id else None
        if client is not None and client.auth_method in MTLS_METHODS:
            self._auth_mtls(client, peer_certificate(request))
            return client
        if client is not None and client.auth_method == "none":
            if "public_client_accepted" in f:
                return client
            raise invalid_client("public clients cannot use this endpoint")
        if "no_client_auth_accepted" in f:
            if client is not None:
                return client
            if client_id is None and self.keys.default_client_id is not None:
                return self.clients[self.keys.default_client_id]
        raise invalid_client("client authentication required")

    def _auth_mtls(self, client: Client, cert: x509.Certificate | None) -> None:
        """tls_client_auth: a certificate issued by the client CA with the registered subject
        DN; self_signed_tls_client_auth: one of the registered certificates."""
        if cert is None:
            raise invalid_client("a TLS client certificate is required (mtls_endpoint_aliases)")
        now = time.time()
        if not (
            cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp()
        ):
            raise invalid_client("the TLS client certificate is not valid now")
        if client.auth_method == "self_signed_tls_client_auth":
            if cert_thumbprint(cert) not in client.cert_thumbprints:
                raise invalid_client("the TLS client certificate is not the registered one")
            return
        if client.tls_subject_dn is None or dn_key(cert.subject) != client.tls_subject_dn:
            raise invalid_client("the TLS client certificate's subject is not the registered one")
        if not any(_issued_by(cert, ca) for ca in self.keys.client_cas):
            raise invalid_client("the TLS client certificate is not issued by a trusted CA")

    @property
    def clock_skew(self) -> int:
        """How far iat / nbf of JWTs may lie in the future (FAPI-CIBA-24: >= 10 s)."""
        if self.fapi and "fapi_future_jwt_refused" in self.faults:
            return 0
        return self.settings.clock_skew

    def _mtls_audiences(self) -> tuple[str, ...]:
        if self.mtls_base is None:
            return ()
        return (self.mtls_url("/token"), self.mtls_url("/backchannel"))

    def _check_method(self, client: Client, method: str, f: frozenset[str], basic: bool) -> None:
        if client.auth_method != method and "wrong_auth_method_accepted" not in f:
            raise invalid_client(
                f"client is registered for {client.auth_method}, not {method}", basic=basic
            )

    def _check_secret(
        self, client: Client, secret: str, f: frozenset[str], basic: bool, skip: bool = False
    ) -> None:
        if client.secret is None:
            if "wrong_auth_method_accepted" in f:
                return  # method mismatch tolerated by the fault, nothing to compare with
            raise invalid_client("client has no secret", basic=basic)
        if skip:
            return
        if not hmac.compare_digest(client.secret, secret.encode("utf-8", "surrogatepass")):
            raise invalid_client("client authentication failed", basic=basic)

    def _auth_basic(self, cred: str, form: Form, f: frozenset[str]) -> Client:
        try:
            decoded = base64.b64decode(cred, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise invalid_client("malformed Basic credentials", basic=True) from None
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise invalid_client("malformed Basic credentials", basic=True)
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        client = self.clients.get(client_id)
        if client is None:
            raise invalid_client("client authentication failed", basic=True)
        form_id = form.get("client_id")
        if form_id is not None and form_id != client_id:
            raise invalid_client("client_id does not match the credentials", basic=True)
        if client.auth_method == "none":
            if "public_client_accepted" in f:
                return client
            raise invalid_client("public clients cannot use this endpoint", basic=True)
        self._check_method(client, "client_secret_basic", f, True)
        self._check_secret(client, secret, f, True)
        return client

    def _auth_post(self, form: Form, f: frozenset[str]) -> Client:
        client_id = form.get("client_id")
        client = self.clients.get(client_id) if client_id else None
        if client is None:
            raise invalid_client("client authentication failed")
        self._check_method(client, "client_secret_post", f, False)
        self._check_secret(
            client, form.get("client_secret") or "", f, False,
            skip="post_secret_not_checked" in f,
        )
        return client

    def _auth_assertion(self, form: Form, f: frozenset[str]) -> Client:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise invalid_client(f"client_assertion_type must be {JWT_BEARER}")
        assertion = form.get("client_assertion")
        if assertion is None:
            raise invalid_client("client_assertion missing")
        try:
            jws = jose.parse_jws(assertion)
        except jose.JoseError:
            raise invalid_client("client_assertion is not a signed JWT") from None
        claims = jws.claims
        iss, sub, form_id = claims.get("iss"), claims.get("sub"), form.get("client_id")
        if "assertion_iss_not_checked" in f:
            client_id = next(
                (x for x in (form_id, sub, iss) if isinstance(x, str) and x in self.clients), None
            )
        else:
            if not isinstance(iss, str) or iss != sub:
                raise invalid_client("assertion iss and sub must both be the client_id")
            if form_id is not None and form_id != iss:
                raise invalid_client("client_id does not match the assertion")
            client_id = iss
        client = self.clients.get(client_id) if client_id else None
        if client is None:
            raise invalid_client("client authentication failed")
        alg = jws.alg
        method = "client_secret_jwt" if alg.startswith("HS") else "private_key_jwt"
        self._check_method(client, method, f, False)
        if client.signing_alg and client.auth_method == method:
            allowed: tuple[str, ...] = (client.signing_alg,)
        else:
            allowed = ASSERTION_ALGS_SECRET if method == "client_secret_jwt" else ASSERTION_ALGS_KEY
        if self.fapi and method == "private_key_jwt":
            # FAPI-CIBA-18: PS256 or ES256 only (the fault lets RS256 through, also for clients
            # registered with another alg)
            if alg == "RS256" and "fapi_rs256_assertion_accepted" in self.faults:
                allowed = ("RS256",)
            else:
                allowed = tuple(a for a in allowed if a in FAPI_ALGS)
        if alg not in allowed:
            raise invalid_client(f"client assertion alg {alg[:20]} not accepted for this client")
        if "assertion_signature_not_checked" not in f:
            keys: tuple[jose.VerifyKey, ...] = (
                (client.secret,) if method == "client_secret_jwt" and client.secret else client.keys
            )
            if not any(jose.verify(jws, k) for k in keys):
                raise invalid_client("client assertion signature invalid")
        if "assertion_aud_not_checked" not in f:
            accepted = (
                (self.issuer,) if "assertion_endpoint_aud_refused" in f
                else (self.issuer, self.token_endpoint, self.backchannel_endpoint)
                + self._mtls_audiences()
            )
            aud = claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if not any(isinstance(a, str) and a in accepted for a in auds):
                raise invalid_client("client assertion aud does not identify this provider")
        now = time.time()
        exp = claims.get("exp")
        if not _num(exp):
            raise invalid_client("client assertion exp missing")
        if exp <= now and "expired_assertion_accepted" not in f:
            raise invalid_client("client assertion expired")
        skew = self.clock_skew
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and (not _num(value) or value > now + skew):
                raise invalid_client(f"client assertion {name} invalid or in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise invalid_client("client assertion jti missing")
        key = (client.client_id, jti)
        if key in self.assertion_jtis:
            raise invalid_client("client assertion jti replayed")
        keep_until = time.monotonic() + min(max(exp - now, 0.0), 86400.0) + skew
        self.assertion_jtis[key] = keep_until
        self._remember("aj", key, keep_until)
        return client

    # ---------------------------------------------------------------- backchannel endpoint

    async def handle_backchannel(self, request: Request) -> Response:
        f = self.faults
        client: Client | None = None
        form: Form | None = None
        try:
            form = await read_form(request, empty_is_absent=self.policy.empty_params_omitted)
            if form.repeated and "repeated_param_accepted" not in f:
                raise invalid_request(f"parameter {form.repeated[0][:40]} repeated")
            client = self.authenticate(request, form, backchannel=True)
            if not client.ciba_allowed and "non_ciba_client_can_request" not in f:
                raise OAuthError("unauthorized_client", "client is not allowed to use CIBA")
            if self.fapi and client.delivery_mode == "push" and "fapi_push_allowed" not in f:
                # FAPI-CIBA-03: no push mode
                raise OAuthError("unauthorized_client", "FAPI-CIBA does not allow push mode")
            params = self._authentication_parameters(form, client)
            tx = self._new_transaction(params, client, form)
        except OAuthError as err:
            if client is not None and form is not None and "ping_for_rejected_request" in f:
                self._ping_for_rejected(client, form)
            return self.error_response(err, "backchannel")
        return self._ack(tx)

    def _authentication_parameters(self, form: Form, client: Client) -> dict[str, str | int]:
        f = self.faults
        if "request_uri" in form:
            raise invalid_request("request_uri is not supported at the backchannel endpoint")
        raw = form.get("request")
        if raw is None:
            if client.sign_requests and "unsigned_accepted_for_signing_client" not in f:
                raise invalid_request("this client must send a signed authentication request")
            if self.fapi and "fapi_unsigned_request_accepted" not in f:
                # FAPI-CIBA-06 (ID1 5.2.2-6, the certification suite): signed requests only
                raise invalid_request("FAPI-CIBA: the authentication request must be signed")
            return {k: form.values[k] for k in AUTH_PARAMS if k in form.values}
        outside = [k for k in AUTH_PARAMS if k in form.values]
        if outside:
            raise invalid_request(
                f"{outside[0]} must be inside the request object, not a form field"
            )
        claims = self._verify_request_object(raw, client)
        params: dict[str, str | int] = {}
        for name in AUTH_PARAMS:
            value = claims.get(name)
            if value is None:
                continue
            if name == "requested_expiry":
                if isinstance(value, str):
                    if "requested_expiry_string_refused" in f:
                        raise invalid_request("requested_expiry must be a number")
                elif not isinstance(value, int) or isinstance(value, bool):
                    raise invalid_request("requested_expiry must be an integer")
            elif not isinstance(value, str):
                raise invalid_request(f"{name} in the request object must be a string")
            if value == "":
                continue
            params[name] = value
        return params

    def _verify_request_object(self, raw: str, client: Client) -> dict[str, Any]:
        f = self.faults
        if jose.segment_count(raw) == 5:
            raise invalid_request("encrypted request objects are not supported")
        try:
            jws = jose.parse_jws(raw)
        except jose.JoseError:
            raise invalid_request("request is not a signed JWT") from None
        alg = jws.alg
        if alg == "none":
            if "alg_none_request_accepted" not in f:
                raise invalid_request("unsigned request objects are not accepted")
        elif alg.startswith("HS"):
            if "hs256_request_accepted" not in f:
                raise invalid_request("request objects must carry an asymmetric signature")
            if client.secret is not None and not jose.verify(jws, client.secret):
                raise invalid_request("request object signature invalid")
        else:
            if alg not in REQUEST_SIGNING_ALGS:
                raise invalid_request("request object alg not supported")
            if self.fapi and alg not in FAPI_ALGS and "fapi_rs256_request_accepted" not in f:
                raise invalid_request(f"FAPI-CIBA: request objects must be signed with "
                                      f"{' or '.join(FAPI_ALGS)}")
            if (
                client.request_signing_alg is not None
                and alg != client.request_signing_alg
                and "request_alg_mismatch_accepted" not in f
            ):
                raise invalid_request(
                    f"request object must be signed with {client.request_signing_alg}"
                )
            if "request_signature_not_checked" not in f:
                if not client.keys:
                    raise invalid_request("client has no registered key for signed requests")
                if not any(jose.verify(jws, k) for k in client.keys):
                    raise invalid_request("request object signature invalid")
        claims = jws.claims
        now = time.time()
        skew = self.clock_skew
        lifetime = self.settings.request_object_max_lifetime
        if self.fapi:
            # FAPI-CIBA-07: at most 60 minutes between nbf and exp, nbf at most 60 minutes old
            lifetime = (
                max(lifetime, UNLIMITED_REQUEST_LIFETIME)
                if "fapi_request_lifetime_unlimited" in f
                else min(lifetime, FAPI_REQUEST_LIFETIME)
            )
        if "request_aud_not_checked" not in f:
            aud = claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if self.issuer not in auds:
                raise invalid_request("request object aud must be the issuer")
        if "request_iss_not_checked" not in f and claims.get("iss") != client.client_id:
            raise invalid_request("request object iss must be the client_id")
        exp = claims.get("exp")
        if "request_exp_not_checked" not in f and not (_num(exp) and exp > now):
            raise invalid_request("request object exp missing or expired")
        iat = claims.get("iat")
        if iat is None:
            if "request_iat_not_required" not in f:
                raise invalid_request("request object iat missing")
        elif not _num(iat) or iat > now + skew:
            raise invalid_request("request object iat invalid or in the future")
        if "request_nbf_not_checked" not in f:
            nbf = claims.get("nbf")
            if not _num(nbf):
                raise invalid_request("request object nbf missing")
            if nbf > now + skew:
                raise invalid_request("request object nbf in the future")
            if nbf < now - lifetime:
                raise invalid_request("request object too old (nbf)")
            if _num(exp) and exp - nbf > lifetime:
                raise invalid_request("request object lifetime (exp - nbf) too long")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            if "request_jti_not_required" not in f:
                raise invalid_request("request object jti missing")
        else:
            key = (client.client_id, jti)
            if key in self.request_jtis:
                raise invalid_request("request object jti replayed")
            until = time.monotonic() + (
                min(max(exp - now, 0.0), float(lifetime)) if _num(exp) else float(lifetime)
            ) + skew
            self.request_jtis[key] = until
            self._remember("rj", key, until)
        if "request_unknown_claim_refused" in f:
            unknown = [k for k in claims if k not in REQUEST_OBJECT_CLAIMS]
            if unknown:
                raise invalid_request(f"unknown claim {unknown[0][:40]} in the request object")
        return claims

    def _unknown_user(self) -> OAuthError:
        return OAuthError("unknown_user_id", "the hint does not identify a known user")

    def _resolve_user(self, params: Mapping[str, str | int], client: Client) -> str:
        f = self.faults
        hints = [(k, params[k]) for k in HINTS if k in params]
        if not hints:
            if "no_hint_accepted" in f:
                return next(iter(self.settings.users))
            raise invalid_request("one of login_hint, login_hint_token, id_token_hint is required")
        if len(hints) > 1 and "multiple_hints_accepted" not in f:
            raise invalid_request("only one of login_hint, login_hint_token, id_token_hint")
        kind, value = hints[0]
        assert isinstance(value, str)
        if kind == "login_hint":
            if value not in self.settings.users:
                if "unknown_user_wrong_error" in f:
                    raise invalid_request("invalid user")
                raise self._unknown_user()
            return value
        if kind == "login_hint_token":
            if self.policy.login_hint_token_format == "client_signed":
                return self._user_from_client_signed_hint(value, client)
            return self._user_from_login_hint_token(value)
        return self._user_from_id_token_hint(value, client)

    def _user_from_login_hint_token(self, token: str) -> str:
        f = self.faults

        def malformed(why: str) -> OAuthError:
            if "malformed_login_hint_token_wrong_error" in f:
                return self._unknown_user()
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
            if not _num(exp):
                raise malformed("exp is not a number")
            if exp <= time.time() and "expired_login_hint_token_accepted" not in f:
                raise OAuthError("expired_login_hint_token", "login_hint_token has expired")
        if sub not in self.settings.users:
            raise self._unknown_user()
        return sub

    def _user_from_client_signed_hint(self, token: str, client: Client) -> str:
        """Policy login_hint_token_client_signed: a JWS of the requesting client (HS* with its
        secret, else one of its registered keys) naming the user in ``sub_id`` (RFC 9493
        subject identifier, ``id`` member), ``login_hint`` or ``sub``."""
        f = self.faults

        def malformed(why: str) -> OAuthError:
            if "malformed_login_hint_token_wrong_error" in f:
                return self._unknown_user()
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
            if not _num(exp):
                raise malformed("exp is not a number")
            if exp <= time.time() and "expired_login_hint_token_accepted" not in f:
                raise OAuthError("expired_login_hint_token", "login_hint_token has expired")
        if user not in self.settings.users:
            raise self._unknown_user()
        return user

    def _user_from_id_token_hint(self, token: str, client: Client) -> str:
        if self.issued_id_tokens is not None and token in self.issued_id_tokens:
            issued_to, user_id = self.issued_id_tokens[token]
            if issued_to != client.client_id:
                raise self._unknown_user()
            return user_id
        try:
            jws = jose.parse_jws(token)
        except jose.JoseError:
            raise invalid_request("id_token_hint is not a JWT") from None
        claims = jws.claims
        if "id_token_hint_not_verified" not in self.faults:
            if not self.signer.verify(jws):
                raise self._unknown_user()
            aud = claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if claims.get("iss") != self.issuer or client.client_id not in auds:
                raise self._unknown_user()
        sub = claims.get("sub")
        if not isinstance(sub, str) or sub not in self.settings.users:
            raise self._unknown_user()
        return sub

    def _new_transaction(
        self, params: Mapping[str, str | int], client: Client, form: Form
    ) -> Transaction:
        f = self.faults
        s = self.settings
        scope = params.get("scope")
        if scope is None:
            if "missing_scope_accepted" not in f:
                raise invalid_request("scope is required")
            scope = "openid"
        assert isinstance(scope, str)
        scopes = scope.split(" ")
        if "openid" not in scopes:
            raise OAuthError(self.policy.scope_without_openid, "scope must contain openid")
        unknown_scopes = [x for x in scopes if x not in SCOPES_SUPPORTED]
        if unknown_scopes and self.policy.unknown_scopes == "refuse":
            raise OAuthError("invalid_scope", f"unknown scope value {unknown_scopes[0][:40]}")
        if "scope_order_sensitive" in f and scopes[0] != "openid":
            raise OAuthError("invalid_scope", "scope must start with openid")
        if "unknown_parameter_refused" in f:
            unknown = [k for k in form.values if k not in KNOWN_BACKCHANNEL_FIELDS]
            if unknown:
                raise invalid_request(f"unknown parameter {unknown[0][:40]}")
        user_id = self._resolve_user(params, client)
        if user_id in s.blocked_users:
            raise OAuthError("access_denied", "the user may not use this service", 403)
        token = params.get("client_notification_token")
        assert token is None or isinstance(token, str)
        if token is not None and client.delivery_mode == "poll" and (
            self.policy.poll_notification_token_refused
        ):
            raise invalid_request("client_notification_token is only for ping and push clients")
        if client.delivery_mode in ("ping", "push"):
            if token is None:
                if "missing_notification_token_accepted" not in f:
                    raise invalid_request("client_notification_token is required for ping/push")
            else:
                limit = 255 if "long_notification_token_refused" in f else MAX_NOTIFICATION_TOKEN
                if len(token) > limit:
                    raise invalid_request(f"client_notification_token longer than {limit}")
                if not _B64TOKEN.match(token):
                    raise invalid_request("client_notification_token is not a b64token")
        binding = params.get("binding_message")
        assert binding is None or isinstance(binding, str)
        if binding is None and self.fapi and "fapi_binding_message_optional" not in f:
            # FAPI-CIBA-02: a binding message (this provider knows no other unique
            # authorization context)
            raise invalid_request("FAPI-CIBA: binding_message is required")
        pattern = self.policy.binding_message_pattern
        if binding is not None and pattern is not None:
            if not re.fullmatch(pattern, binding):
                raise OAuthError("invalid_binding_message",
                                 f"binding_message must match {pattern}")
        elif binding is not None and (
            len(binding) > s.binding_message_max or not _PRINTABLE.match(binding)
        ):
            raise OAuthError(
                "invalid_binding_message",
                f"binding_message must be at most {s.binding_message_max} printable ASCII "
                "characters",
            )
        if client.user_code_required or (
            self.policy.user_code_any_client and "user_code" in params
        ):
            code = params.get("user_code")
            if code is None:
                if "missing_user_code_accepted" not in f:
                    raise OAuthError("missing_user_code", "user_code is required for this client")
            else:
                expected = s.users[user_id].user_code
                ok = expected is not None and hmac.compare_digest(
                    expected.encode(), str(code).encode("utf-8", "surrogatepass")
                )
                if not ok and "wrong_user_code_accepted" not in f:
                    raise OAuthError("invalid_user_code", "user_code is not valid")
        expires_in = s.default_expires_in
        requested = params.get("requested_expiry")
        if requested is not None:
            if isinstance(requested, str):
                if not _DIGITS.match(requested):
                    raise invalid_request("requested_expiry must be a positive integer")
                requested = int(requested)
            if not 0 < requested <= s.max_requested_expiry:
                raise invalid_request(
                    f"requested_expiry must be between 1 and {s.max_requested_expiry}"
                )
            if self.policy.honour_requested_expiry:
                expires_in = requested
        acr_values = params.get("acr_values")
        assert acr_values is None or isinstance(acr_values, str)
        keep = self.policy.unknown_scopes == "keep"
        granted = " ".join(x for x in dict.fromkeys(scopes) if keep or x in SCOPES_SUPPORTED)

        now = time.monotonic()
        self._purge(now)
        # identical = same client, user and parameters except the binding message
        reuse_key = (client.client_id, user_id, granted, expires_in, acr_values, token,
                     params.get("user_code"))
        if "auth_req_id_reused" in f:
            earlier = self._reuse.get(reuse_key)
            if earlier is not None:
                self.check_expiry(earlier, now)
                if earlier.state == "pending" and time.time() - earlier.created_at < REUSE_WINDOW:
                    return earlier
        tx = Transaction(
            auth_req_id=self._new_auth_req_id(),
            client_id=client.client_id,
            user_id=user_id,
            scope=granted,
            requested_scope=" ".join(dict.fromkeys(scopes)),
            mode=client.delivery_mode,
            created_at=time.time(),
            expires_at=now + expires_in,
            expires_in=expires_in,
            interval=s.interval,
            acr_values=acr_values,
            binding_message=binding,
            notification_token=token,
        )
        self.transactions[tx.auth_req_id] = tx
        self.pending[tx.auth_req_id] = tx
        if "auth_req_id_reused" in f:
            self._reuse[reuse_key] = tx
        self._remember("tx", tx.auth_req_id, tx.expires_at + s.transaction_retention)
        if tx.mode == "push" or (tx.mode == "ping" and self.policy.ping_on_expiry):
            tx.timer = asyncio.get_running_loop().call_later(
                expires_in, self._expire_push, tx.auth_req_id
            )
        if self.webhook_url:
            self._call_webhook(tx)
        return tx

    def _new_auth_req_id(self) -> str:
        f = self.faults
        if "auth_req_id_low_entropy" in f:
            self._counter += 1
            return f"{self._counter:020d}"
        if "auth_req_id_bad_charset" in f:
            raw = secrets.token_urlsafe(27).replace("-", "+").replace("_", "+")
            return f"{raw[:18]}+{raw[18:]}"
        if self.policy.auth_req_id_dotted:
            return f"{secrets.token_hex(16)}.{secrets.token_hex(16)}"  # 256 bits, hex and a dot
        return secrets.token_urlsafe(27)  # 216 bits, A-Za-z0-9-_

    def _ack(self, tx: Transaction) -> Response:
        f = self.faults
        body: dict[str, Any] = {}
        if "ack_without_auth_req_id" not in f:
            body["auth_req_id"] = tx.auth_req_id
        body["expires_in"] = str(tx.expires_in) if "expires_in_as_string" in f else tx.expires_in
        interval_faults = {"push_interval_in_ack", "interval_as_string"} & f
        if (tx.mode != "push" and (self.policy.ack_interval or interval_faults)) or (
            "push_interval_in_ack" in f
        ):
            body["interval"] = str(tx.interval) if "interval_as_string" in f else tx.interval
        if self.policy.extra_response_members:
            body.update(EXTRA_ACK_MEMBERS)
        return json_response(
            body,
            201 if "ack_status_201" in f else 200,
            self.no_store,
            "text/plain" if "ack_content_type_text" in f else "application/json",
        )

    # ---------------------------------------------------------------- transaction life cycle

    def _retire(self, tx: Transaction) -> None:
        """Leave the pending state: stop the expiry timer, forget the webhook token."""
        self.pending.pop(tx.auth_req_id, None)
        if tx.timer is not None:
            tx.timer.cancel()
            tx.timer = None
        if tx.webhook_token is not None:
            self.webhook_tokens.pop(tx.webhook_token, None)
            tx.webhook_token = None

    def check_expiry(self, tx: Transaction, now: float | None = None) -> None:
        if tx.state == "pending" and not (tx.mode == "poll" and "never_expires" in self.faults):
            if (time.monotonic() if now is None else now) >= tx.expires_at:
                tx.state = "expired"
                self._retire(tx)

    def _expire_push(self, auth_req_id: str) -> None:
        tx = self.transactions.get(auth_req_id)
        if tx is None or tx.state != "pending":
            return
        tx.timer = None
        tx.state = "expired"
        self._retire(tx)
        if tx.mode == "ping":  # policy ping_on_expiry: the client then polls expired_token
            self._send_ping(tx, fallback=False)
            return
        if not self.policy.push_on_expiry and "push_error_wrong_code" not in self.faults:
            return
        code = "token_expired" if "push_error_wrong_code" in self.faults else "expired_token"
        self._push_error(tx, code)

    def decide(self, tx: Transaction, approve: bool) -> bool:
        """Apply the user's decision; False when the transaction is no longer pending."""
        f = self.faults
        self.check_expiry(tx)
        if tx.state != "pending":
            return False
        tx.state = "approved" if approve else "denied"
        if approve:
            tx.auth_time = time.time()
        self._retire(tx)
        if tx.mode == "ping":
            if approve or "ping_not_sent_on_denial" not in f:
                self._send_ping(tx, fallback=False)
        elif tx.mode == "push":
            if approve:
                self._push_tokens(tx)
            else:
                code = "expired_token" if "push_denial_as_expired" in f else "access_denied"
                self._push_error(tx, code)
        elif "ping_on_poll_client" in f:
            self._send_ping(tx, fallback=True)
        return True

    # ---------------------------------------------------------------- outbound calls

    def endpoint_for(self, client_id: str, *, fallback: bool = False) -> str | None:
        url = self.notification_endpoints.get(client_id) or self.default_notification_endpoint
        if url is None and fallback:
            url = next(iter(self.notification_endpoints.values()), None)
        return url

    def _send_ping(self, tx: Transaction, *, fallback: bool) -> None:
        f = self.faults
        url = self.endpoint_for(tx.client_id, fallback=fallback)
        if url is None:
            log.warning("no notification endpoint for client %s: ping dropped", tx.client_id)
            return
        bearer = tx.notification_token
        if bearer is not None and "ping_wrong_bearer" in f:
            bearer = ("B" if bearer[0] == "A" else "A") + bearer[1:]
        if "ping_without_bearer" in f:
            bearer = None
        payload: dict[str, Any] = {"auth_req_id": tx.auth_req_id}
        if "ping_extra_members" in f:
            payload["status"] = tx.state
        times = 2 if "ping_twice" in f else 1
        self.spawn(self._post("ping", url, tx.auth_req_id, payload, bearer,
                              follow="ping_follows_redirect" in f, times=times))

    def _ping_for_rejected(self, client: Client, form: Form) -> None:
        token = form.get("client_notification_token")
        url = self.endpoint_for(client.client_id)
        if client.delivery_mode != "ping" or url is None:
            return
        fake = secrets.token_urlsafe(27)
        self.spawn(self._post("ping", url, fake, {"auth_req_id": fake}, token))

    def _push_tokens(self, tx: Transaction) -> None:
        f = self.faults
        try:
            payload = self._issue(tx, tx.client_id, push=True)
        except Exception:
            log.exception("building tokens for push failed")
            self._push_error(tx, "transaction_failed")
            return
        tx.state = "redeemed"
        if "push_missing_auth_req_id" not in f:
            payload = {"auth_req_id": tx.auth_req_id, **payload}
        self._push(tx, payload)

    def _push_error(self, tx: Transaction, code: str) -> None:
        self._push(tx, {"error": code, "auth_req_id": tx.auth_req_id})

    def _push(self, tx: Transaction, payload: dict[str, Any]) -> None:
        f = self.faults
        url = self.endpoint_for(tx.client_id)
        if url is None:
            log.warning("no notification endpoint for client %s: push dropped", tx.client_id)
            return
        bearer = None if "push_without_bearer" in f else tx.notification_token
        self.spawn(self._post("push", url, tx.auth_req_id, payload, bearer,
                              follow="push_follows_redirect" in f,
                              times=2 if "push_twice" in f else 1))

    def _call_webhook(self, tx: Transaction) -> None:
        assert self.webhook_url is not None
        token = secrets.token_urlsafe(32)
        tx.webhook_token = token
        self.webhook_tokens[token] = tx.auth_req_id
        payload = {
            "login_hint": tx.user_id,
            "scope": tx.scope,
            "binding_message": tx.binding_message,
            "acr_values": tx.acr_values,
            "is_consent_required": True,
            "auth_req_id": tx.auth_req_id,
        }
        self.spawn(self._post("webhook", self.webhook_url, tx.auth_req_id, payload, token))

    async def _post(
        self, kind: str, url: str, auth_req_id: str, payload: dict[str, Any],
        bearer: str | None, *, follow: bool = False, times: int = 1,
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        content = json.dumps(payload, separators=(",", ":")).encode()
        client = self.outbound.client()
        attempts, retry = 0, kind != "webhook" and self.policy.notification_retry
        while attempts < times:
            attempts += 1
            record = Delivery(kind, url, auth_req_id, payload, headers.get("Authorization"))
            try:
                resp = await client.post(
                    url, content=content, headers=headers, follow_redirects=follow,
                    timeout=self.settings.notification_timeout,
                )
                record.status = resp.status_code
                if resp.status_code >= 300:
                    log.info("%s to %s answered %s (not retried)", kind, url, resp.status_code)
            except httpx.HTTPError as exc:
                record.error = f"{type(exc).__name__}: {exc}"[:200]
                log.info("%s to %s failed: %s (not retried)", kind, url, record.error)
            except Exception as exc:  # never let a delivery crash the loop
                record.error = f"{type(exc).__name__}"
                log.exception("%s to %s crashed", kind, url)
            record.done = time.time()
            self.deliveries.append(record)
            failed = record.error is not None or (record.status or 0) >= 400
            if failed and retry and attempts == times:
                # policy notification_retry: one more attempt after a failure (not after 3xx)
                retry = False
                times += 1
                await asyncio.sleep(NOTIFICATION_RETRY_DELAY)

    # ---------------------------------------------------------------- token endpoint

    async def handle_token(self, request: Request) -> Response:
        try:
            form = await read_form(request, empty_is_absent=self.policy.empty_params_omitted)
            if form.repeated:
                raise invalid_request(f"parameter {form.repeated[0][:40]} repeated")
            client = self.authenticate(request, form, backchannel=False)
            if "token_unknown_param_refused" in self.faults:
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
            if "unsupported_grant_wrong_error" in self.faults:
                raise OAuthError("invalid_grant", "grant not accepted")
            raise OAuthError("unsupported_grant_type", "grant_type not supported")
        except OAuthError as err:
            return self.error_response(err, "token")

    def _binding(self, request: Request) -> str | None:
        """x5t#S256 the tokens of this token request get bound to (RFC 8705 §3): the TLS
        client certificate, when one was presented. Under FAPI-CIBA one is required."""
        cert = peer_certificate(request)
        if self.fapi and "fapi_token_not_certificate_bound" in self.faults:
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
        if not client.ciba_allowed and "non_ciba_client_can_poll" not in f:
            raise OAuthError("unauthorized_client", "client is not allowed to use the CIBA grant")
        if client.delivery_mode == "push" and "push_client_can_poll" not in f:
            raise OAuthError("unauthorized_client", "push clients cannot use the token endpoint")
        auth_req_id = form.get("auth_req_id")
        if auth_req_id is None:
            if "missing_auth_req_id_wrong_error" in f:
                raise OAuthError("invalid_grant", "auth_req_id not valid")
            raise invalid_request("auth_req_id is required")
        tx = self.transactions.get(auth_req_id)
        if tx is None:
            if "unknown_auth_req_id_pending" in f:
                raise OAuthError("authorization_pending", "the user has not yet been authenticated")
            raise OAuthError("invalid_grant", "auth_req_id is unknown or no longer valid")
        if tx.client_id != client.client_id and "cross_client_redeem" not in f:
            raise OAuthError("invalid_grant", "auth_req_id is unknown or no longer valid")
        now = time.monotonic()
        self.check_expiry(tx, now)
        previous, tx.last_poll = tx.last_poll, now
        state = tx.state
        if state == "pending":
            s = self.settings
            too_fast = previous is not None and (
                now - previous < tx.interval - s.poll_interval_tolerance
            )
            if too_fast and (self.policy.slow_down or "fast_poll_wrong_error" in f):
                tx.interval += s.slow_down_increment
                code = "too_many_requests" if "fast_poll_wrong_error" in f else "slow_down"
                raise OAuthError(code, f"poll at most every {tx.interval} seconds")
            if tx.mode == "poll" and "pending_as_invalid_grant" in f:
                raise OAuthError("invalid_grant", "auth_req_id is not valid yet")
            raise OAuthError("authorization_pending", "the user has not yet been authenticated")
        if state == "expired":
            window = self.policy.expired_token_window
            if window is not None and now - tx.expires_at > window and "never_expires" not in f:
                raise OAuthError("invalid_grant", "auth_req_id is unknown or no longer valid")
            raise OAuthError("expired_token", "auth_req_id has expired")
        if state == "denied":
            if tx.mode == "poll" and "denial_as_pending" in f:
                raise OAuthError("authorization_pending", "the user has not yet been authenticated")
            if tx.denial_reported and self.policy.after_denial == "invalid_grant":
                raise OAuthError("invalid_grant", "auth_req_id is no longer valid")
            tx.denial_reported = True
            raise OAuthError("access_denied", "the user denied the request")
        if state == "redeemed" and "reusable_auth_req_id" not in f:
            if self.policy.replay_revokes_tokens:
                self._revoke(tx)
            raise OAuthError("invalid_grant", "auth_req_id was already redeemed")
        # approved (or re-use under the fault): redeem synchronously, no await in between
        tx.state = "redeemed"
        body = self._issue(tx, client.client_id, push=False, cnf=cnf)
        headers = {} if "token_cacheable" in f else self.no_store
        if self.policy.extra_response_members:
            body.update(EXTRA_TOKEN_MEMBERS)
        return json_response(body, 200, headers)

    def _revoke(self, tx: Transaction) -> None:
        """Policy replay_revokes_tokens: forget the tokens issued from ``tx``."""
        for token in tx.issued:
            self.access_tokens.pop(token, None)
            self.refresh_tokens.pop(token, None)
        tx.issued = ()

    def _refresh_grant(self, form: Form, client: Client, cnf: str | None = None) -> Response:
        token = form.get("refresh_token")
        if token is None:
            raise invalid_request("refresh_token is required")
        now = time.monotonic()
        grant = self.refresh_tokens.get(token)
        if grant is None or grant.client_id != client.client_id or grant.expires_at <= now:
            raise OAuthError("invalid_grant", "refresh_token is not valid")
        lifetime = self.settings.access_token_lifetime
        access = self._new_access_token(grant.sub, client.client_id, grant.scope, lifetime)
        self.access_tokens[access] = Grant(
            grant.sub, client.client_id, grant.scope, now + lifetime, cnf
        )
        self._remember("at", access, now + lifetime)
        body: dict[str, Any] = {
            "access_token": access, "token_type": self._token_type(), "expires_in": lifetime,
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
            del self.refresh_tokens[token]
            rotated = self._new_token()
            until = now + self.settings.refresh_token_lifetime
            self.refresh_tokens[rotated] = Grant(grant.sub, client.client_id, grant.scope, until,
                                                 auth_time=grant.auth_time)
            self._remember("rt", rotated, until)
            body["refresh_token"] = rotated
        if self.fapi and "fapi_refresh_token_rotated" in self.faults:
            # FAPI-CIBA-25 broken: a new refresh token, the old one stays usable
            rotated = self._new_token()
            until = now + self.settings.refresh_token_lifetime
            self.refresh_tokens[rotated] = Grant(grant.sub, client.client_id, grant.scope, until)
            self._remember("rt", rotated, until)
            body["refresh_token"] = rotated
        return json_response(body, 200, self.no_store)

    def _new_access_token(self, sub: str, client_id: str, scope: str, lifetime: int) -> str:
        """An opaque access token, or under jwt_access_tokens an RFC 9068 JWT."""
        if self.policy.access_token_format != "jwt" or (
            self.fapi and "fapi_access_token_low_entropy" in self.faults
        ):
            return self._new_token()
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": sub, "aud": self.issuer, "client_id": client_id,
            "scope": scope, "iat": now, "exp": now + lifetime, "jti": secrets.token_urlsafe(16),
        }
        return jose.sign(claims, self.signer.alg, self.signer.private, self.signer.kid,
                         typ="at+jwt")

    def _token_type(self, fault: bool = False) -> str:
        if fault:
            return "MAC"
        return "Bearer" if self.policy.token_type_capitalised else "bearer"

    def _new_token(self) -> str:
        """An access or refresh token: 256 random bits (FAPI-CIBA-26 asks >= 128)."""
        if self.fapi and "fapi_access_token_low_entropy" in self.faults:
            self._access_counter += 1
            return f"at{self._access_counter:08d}"
        return secrets.token_urlsafe(32)

    def _issue(
        self, tx: Transaction, client_id: str, *, push: bool, cnf: str | None = None
    ) -> dict[str, Any]:
        """Issue access, refresh and ID token for an approved transaction (the access token
        bound to the certificate thumbprint `cnf`, if given)."""
        f = self.faults
        s = self.settings
        mono, now = time.monotonic(), int(time.time())
        self._purge(mono)
        access = self._new_access_token(tx.user_id, client_id, tx.scope, s.access_token_lifetime)
        refresh: str | None = self._new_token()
        if self.policy.refresh_token_needs_offline_access and (
            "offline_access" not in tx.scope.split()
        ):
            refresh = None
        lifetime = s.access_token_lifetime
        self.access_tokens[access] = Grant(tx.user_id, client_id, tx.scope, mono + lifetime, cnf)
        self._remember("at", access, mono + lifetime)
        tx.issued = (access,)
        if refresh is not None:
            rt_until = mono + s.refresh_token_lifetime
            self.refresh_tokens[refresh] = Grant(
                tx.user_id, client_id, tx.scope, rt_until,
                auth_time=tx.auth_time if tx.auth_time is not None else time.time(),
            )
            self._remember("rt", refresh, rt_until)
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
        if tx.acr_values and not (self.fapi and "fapi_id_token_missing_acr" in f) and (
            pol.id_token_acr or push or self.fapi
        ):
            claims["acr"] = tx.acr_values.split()[0]
        if not push:
            # poll/ping ID token claims the policies leave out (a fault on the claim wins)
            if not pol.id_token_at_hash and "id_token_bad_at_hash" not in f:
                del claims["at_hash"]
            if not pol.id_token_rt_hash:
                claims.pop(CLAIM_RT_HASH, None)
            if not pol.id_token_auth_req_id_claim and "id_token_wrong_auth_req_id_claim" not in f:
                del claims[CLAIM_AUTH_REQ_ID]
        broken = False
        if push:
            if "push_missing_auth_req_id_claim" in f:
                del claims[CLAIM_AUTH_REQ_ID]
            if "push_bad_at_hash" in f:
                claims["at_hash"] = jose.half_hash(access + "x", alg)
            if "push_missing_rt_hash" in f:
                claims.pop(CLAIM_RT_HASH, None)
            broken = "push_id_token_bad_signature" in f
        else:
            if "id_token_wrong_iss" in f:
                claims["iss"] = f"{self.issuer}/other"
            if "id_token_wrong_aud" in f:
                claims["aud"] = f"{client_id}-other"
            if "id_token_expired" in f:
                claims["exp"], claims["iat"] = now - 60, now - 60 - lifetime
            if "id_token_wrong_alg" in f and isinstance(self.signer.private, rsa.RSAPrivateKey):
                alg = "PS256" if alg != "PS256" else "RS256"
            if "id_token_missing_acr" in f:
                claims.pop("acr", None)
            if "auth_time_before_request" in f:
                claims["auth_time"] = int(tx.created_at) - 3600
            if "id_token_wrong_auth_req_id_claim" in f:
                claims[CLAIM_AUTH_REQ_ID] = secrets.token_urlsafe(27)
            if "id_token_bad_at_hash" in f:
                claims["at_hash"] = jose.half_hash(access + "x", alg)
            if "sub_not_stable" in f:
                claims["sub"] = secrets.token_urlsafe(12)
            broken = "id_token_bad_signature" in f
        id_token = self.signer.sign_id_token(claims, alg)
        if broken:
            id_token = jose.corrupt_signature(id_token)
        if self.issued_id_tokens is not None:
            self.issued_id_tokens[id_token] = (client_id, tx.user_id)
            if len(self.issued_id_tokens) > MAX_REMEMBERED_ID_TOKENS:
                self.issued_id_tokens.popitem(last=False)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": self._token_type(not push and "token_type_wrong" in f),
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
        if not push and "token_missing_id_token" in f:
            del body["id_token"]
        return body

    # ---------------------------------------------------------------- userinfo

    async def handle_userinfo(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        grant = self.access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or grant.expires_at <= time.monotonic():
            return _invalid_token("access token not valid")
        if grant.cnf is not None:
            # RFC 8705 §3: a certificate-bound token needs the same certificate
            cert = peer_certificate(request)
            if cert is None or cert_thumbprint(cert) != grant.cnf:
                return _invalid_token("the access token is bound to another client certificate")
        return json_response({"sub": grant.sub}, 200, self.no_store)

    async def handle_introspect(self, request: Request) -> Response:
        """RFC 7662 token introspection for the token's own client; shows `cnf` (RFC 8705
        §3.2) of certificate-bound access tokens."""
        try:
            form = await read_form(request)
            if form.repeated:
                raise invalid_request(f"parameter {form.repeated[0][:40]} repeated")
            client = self.authenticate(request, form, backchannel=False)
            token = form.get("token")
            if token is None:
                raise invalid_request("token is required")
        except OAuthError as err:
            return self.error_response(err, "introspect")
        now = time.monotonic()
        grant = self.access_tokens.get(token)
        kind = "access_token"
        if grant is None:
            grant, kind = self.refresh_tokens.get(token), "refresh_token"
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

    # ---------------------------------------------------------------- device API and webhook

    def device_authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode("utf-8", "surrogatepass"), self.settings.device_token.encode()
        )

    def describe(self, tx: Transaction) -> dict[str, Any]:
        return {
            "auth_req_id": tx.auth_req_id,
            "client_id": tx.client_id,
            "login_hint": tx.user_id,
            "scope": tx.scope,
            "binding_message": tx.binding_message,
            "acr_values": tx.acr_values,
            "created_at": tx.created_at,
            "expires_in": tx.expires_in,
            "delivery_mode": tx.mode,
        }

    def pending_requests(self) -> list[Transaction]:
        now = time.monotonic()
        for tx in list(self.pending.values()):
            self.check_expiry(tx, now)
        return list(self.pending.values())

    async def handle_device_decision(self, request: Request, auth_req_id: str, approve: bool) -> (
        Response
    ):
        body = await read_json_object(request, allow_empty=True)
        delay = body.get("delay", 0)
        if not _num(delay) or not 0 <= delay <= MAX_DEVICE_DELAY:
            raise invalid_request(f"delay must be a number of seconds (0..{MAX_DEVICE_DELAY:.0f})")
        tx = self.transactions.get(auth_req_id)
        if tx is None:
            return json_response({"error": "not_found", "error_description": "no such request"},
                                 404)
        self.check_expiry(tx)
        if tx.state != "pending":
            return json_response(
                {"error": "conflict", "error_description": f"request is {tx.state}"}, 409
            )
        if delay > 0:
            self.spawn(self._decide_later(tx, approve, float(delay)))
            return json_response({"status": "scheduled", "delay": delay}, 202)
        self.decide(tx, approve)
        return json_response({"status": tx.state}, 200)

    async def _decide_later(self, tx: Transaction, approve: bool, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self.decide(tx, approve):
            log.info("delayed decision for %s dropped: request is %s", tx.auth_req_id, tx.state)

    async def handle_device_lookup(self, request: Request) -> Response:
        body = await read_json_object(request)
        hint = body.get("login_hint")
        message = body.get("binding_message")
        matches = [
            self.describe(tx) for tx in self.pending_requests()
            if (hint is None or tx.user_id == hint)
            and (message is None or tx.binding_message == message)
        ]
        return json_response(matches)

    async def handle_webhook_callback(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        auth_req_id = self.webhook_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if auth_req_id is None:
            return json_response(
                {"error": "invalid_token", "error_description": "unknown bearer token"}, 401,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        body = await read_json_object(request)
        status = body.get("status")
        if status not in ("SUCCEED", "UNAUTHORIZED", "CANCELLED"):
            raise invalid_request("status must be SUCCEED, UNAUTHORIZED or CANCELLED")
        tx = self.transactions.get(auth_req_id)
        if tx is None or not self.decide(tx, status == "SUCCEED"):
            return json_response(
                {"error": "conflict", "error_description": "request is no longer pending"}, 409
            )
        return Response(status_code=204)

    # ---------------------------------------------------------------- admin

    def set_notification_endpoint(self, client_id: str | None, url: str | None) -> None:
        targets = [self, *self.tenants.values()]
        for p in targets:
            if client_id is None:
                p.default_notification_endpoint = url
            elif url is None:
                p.notification_endpoints.pop(client_id, None)
            else:
                p.notification_endpoints[client_id] = url

    # ---------------------------------------------------------------- registration (RFC 7591)

    async def handle_register(self, request: Request) -> Response:
        try:
            try:
                meta = await read_json_object(request)
            except OAuthError as err:
                if err.status == 413:
                    raise
                raise OAuthError("invalid_client_metadata", err.description) from None
            client, response = self._register(meta)
        except OAuthError as err:
            return json_response(self.error_body(err), err.status, self.no_store)
        self.clients[client.client_id] = client
        self.registered += 1
        endpoint = response.get("backchannel_client_notification_endpoint")
        if isinstance(endpoint, str):
            self.notification_endpoints[client.client_id] = endpoint
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
                if "registration_without_mode_accepted" not in f:
                    raise bad("backchannel_token_delivery_mode is required for the CIBA grant")
                mode = "poll"
            if mode in DELIVERY_MODES:
                effective_mode = mode
            elif "registration_unadvertised_mode_accepted" not in f:
                raise bad("backchannel_token_delivery_mode must be poll, ping or push")
            if effective_mode in ("ping", "push") and endpoint is None:
                if "registration_ping_without_endpoint_accepted" not in f:
                    raise bad("backchannel_client_notification_endpoint is required")
            if self.fapi and effective_mode == "push" and "fapi_push_allowed" not in f:
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
                weak and "registration_signing_alg_none_accepted" in f
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
        if "registration_user_code_not_echoed" in f:
            del response["backchannel_user_code_parameter"]
        return client, response
