"""Keys and clients of the provider: the signing key and JWKS, the pre-registered clients with
their parsed keys and certificates (shared by all tenants), the ID token signer of one
instance (policies id_token_alg, jwks_rotation)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.requests import Request

from ciba_harness.provider import jose
from ciba_harness.provider.policies import ROTATE_EVERY_ID_TOKENS, ProviderPolicy
from ciba_harness.provider.protocol import FAPI, FAPI_ALGS
from ciba_harness.provider.settings import ProviderSettings

#: jwks_rotation: how many signing keys a provider remembers (for its own id_token_hint checks)
MAX_SIGNING_KEYS = 50


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


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True



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
