"""Client authentication at the backchannel, token and introspection endpoints: HTTP Basic,
client_secret_post, JWT assertions (RFC 7523), mTLS (RFC 8705 §2) and public clients."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from urllib.parse import unquote_plus

from cryptography import x509
from starlette.requests import Request

from ciba_harness.provider import jose
from ciba_harness.provider.errors import invalid_client, invalid_request
from ciba_harness.provider.faults import NO_FAULTS, Faults
from ciba_harness.provider.forms import Form
from ciba_harness.provider.keys import Client, cert_thumbprint, dn_key, issued_by, peer_certificate
from ciba_harness.provider.protocol import (
    ASSERTION_ALGS_KEY,
    ASSERTION_ALGS_SECRET,
    FAPI_ALGS,
    JWT_BEARER,
    SECRET_METHODS,
    is_number,
)
from ciba_harness.provider.settings import MTLS_METHODS
from ciba_harness.provider.state import Part


class ClientAuthenticator(Part):
    """Who the client is. The CIBA-CAUTH faults apply at the backchannel endpoint only."""

    def authenticate(self, request: Request, form: Form, *, backchannel: bool) -> Client:
        """Client authentication shared by the backchannel and token endpoints.

        The CIBA-CAUTH faults apply to the backchannel endpoint only.
        """
        f = self.faults if backchannel else NO_FAULTS
        header = request.headers.get("authorization")
        basic: str | None = None
        if header is not None:
            scheme, _, cred = header.strip().partition(" ")
            if scheme.lower() == "basic":
                basic = cred.strip()
        has_post = "client_secret" in form
        has_assertion = "client_assertion" in form or "client_assertion_type" in form
        used = (basic is not None) + has_post + has_assertion
        if used > 1 and not f.multiple_auth_methods_accepted:
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
            not self.faults.fapi_secret_client_auth_accepted
        ):
            # FAPI-CIBA-20: private_key_jwt, tls_client_auth, self_signed_tls_client_auth only
            raise invalid_client(
                "FAPI-CIBA: shared-secret client authentication is not allowed",
                basic=basic is not None,
            )
        return client

    def _auth_without_credentials(self, request: Request, form: Form, f: Faults) -> Client:
        """No secret, no assertion: mTLS (RFC 8705 §2), a public client, or nothing."""
        client_id = form.get("client_id")
        client = self.state.clients.get(client_id) if client_id else None
        if client is not None and client.auth_method in MTLS_METHODS:
            self._auth_mtls(client, peer_certificate(request))
            return client
        if client is not None and client.auth_method == "none":
            if f.public_client_accepted:
                return client
            raise invalid_client("public clients cannot use this endpoint")
        if f.no_client_auth_accepted:
            if client is not None:
                return client
            if client_id is None and self.keys.default_client_id is not None:
                return self.state.clients[self.keys.default_client_id]
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
        if not any(issued_by(cert, ca) for ca in self.keys.client_cas):
            raise invalid_client("the TLS client certificate is not issued by a trusted CA")

    def _check_method(self, client: Client, method: str, f: Faults, basic: bool) -> None:
        if client.auth_method != method and not f.wrong_auth_method_accepted:
            raise invalid_client(
                f"client is registered for {client.auth_method}, not {method}", basic=basic
            )

    def _check_secret(
        self, client: Client, secret: str, f: Faults, basic: bool, skip: bool = False
    ) -> None:
        if client.secret is None:
            if f.wrong_auth_method_accepted:
                return  # method mismatch tolerated by the fault, nothing to compare with
            raise invalid_client("client has no secret", basic=basic)
        if skip:
            return
        if not hmac.compare_digest(client.secret, secret.encode("utf-8", "surrogatepass")):
            raise invalid_client("client authentication failed", basic=basic)

    def _auth_basic(self, cred: str, form: Form, f: Faults) -> Client:
        try:
            decoded = base64.b64decode(cred, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise invalid_client("malformed Basic credentials", basic=True) from None
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise invalid_client("malformed Basic credentials", basic=True)
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        client = self.state.clients.get(client_id)
        if client is None:
            raise invalid_client("client authentication failed", basic=True)
        form_id = form.get("client_id")
        if form_id is not None and form_id != client_id:
            raise invalid_client("client_id does not match the credentials", basic=True)
        if client.auth_method == "none":
            if f.public_client_accepted:
                return client
            raise invalid_client("public clients cannot use this endpoint", basic=True)
        self._check_method(client, "client_secret_basic", f, True)
        self._check_secret(client, secret, f, True)
        return client

    def _auth_post(self, form: Form, f: Faults) -> Client:
        client_id = form.get("client_id")
        client = self.state.clients.get(client_id) if client_id else None
        if client is None:
            raise invalid_client("client authentication failed")
        self._check_method(client, "client_secret_post", f, False)
        self._check_secret(
            client, form.get("client_secret") or "", f, False,
            skip=f.post_secret_not_checked,
        )
        return client

    def _auth_assertion(self, form: Form, f: Faults) -> Client:
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
        if f.assertion_iss_not_checked:
            known = self.state.clients
            client_id = next(
                (x for x in (form_id, sub, iss) if isinstance(x, str) and x in known), None
            )
        else:
            if not isinstance(iss, str) or iss != sub:
                raise invalid_client("assertion iss and sub must both be the client_id")
            if form_id is not None and form_id != iss:
                raise invalid_client("client_id does not match the assertion")
            client_id = iss
        client = self.state.clients.get(client_id) if client_id else None
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
            if alg == "RS256" and self.faults.fapi_rs256_assertion_accepted:
                allowed = ("RS256",)
            else:
                allowed = tuple(a for a in allowed if a in FAPI_ALGS)
        if alg not in allowed:
            raise invalid_client(f"client assertion alg {alg[:20]} not accepted for this client")
        if not f.assertion_signature_not_checked:
            keys: tuple[jose.VerifyKey, ...] = (
                (client.secret,) if method == "client_secret_jwt" and client.secret else client.keys
            )
            if not any(jose.verify(jws, k) for k in keys):
                raise invalid_client("client assertion signature invalid")
        if not f.assertion_aud_not_checked:
            accepted = (
                (self.issuer,) if f.assertion_endpoint_aud_refused
                else (self.issuer, self.state.token_endpoint, self.state.backchannel_endpoint)
                + self.state.mtls_audiences()
            )
            aud = claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if not any(isinstance(a, str) and a in accepted for a in auds):
                raise invalid_client("client assertion aud does not identify this provider")
        now = time.time()
        exp = claims.get("exp")
        if not is_number(exp):
            raise invalid_client("client assertion exp missing")
        if exp <= now and not f.expired_assertion_accepted:
            raise invalid_client("client assertion expired")
        skew = self.state.clock_skew
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and (not is_number(value) or value > now + skew):
                raise invalid_client(f"client assertion {name} invalid or in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise invalid_client("client assertion jti missing")
        key = (client.client_id, jti)
        if key in self.state.assertion_jtis:
            raise invalid_client("client assertion jti replayed")
        keep_until = time.monotonic() + min(max(exp - now, 0.0), 86400.0) + skew
        self.state.assertion_jtis[key] = keep_until
        self.state.remember("aj", key, keep_until)
        return client
