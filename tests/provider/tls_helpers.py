"""Helpers of the reference provider's TLS / mTLS / FAPI-CIBA tests.

In-process apps have no TLS layer: the ``x-test-client-cert: NAME`` header of a request makes
:class:`CertInjector` put that test-PKI certificate into the ASGI TLS extension, exactly where
the real server (``TlsH11Protocol``) puts the peer certificate. Independent of the harness's
protocol core, like ``provider_helpers``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import time
import tomllib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from provider_helpers import CIBA, DEVICE_TOKEN, JWT_BEARER, RECEIVER, REPO, Recorder
from starlette.types import ASGIApp, Receive, Scope, Send

from ciba_harness.provider import ProviderSettings, create_app, load_profile
from ciba_harness.provider.core import Provider
from ciba_harness.provider.pki import ensure_test_pki

TLS_PROFILE = REPO / "fixtures" / "profiles" / "reference-tls.toml"
PKI = ensure_test_pki()
TLS_RAW = tomllib.loads(TLS_PROFILE.read_text())
TLS_CLIENTS: dict[str, dict[str, Any]] = {c["client_id"]: c for c in TLS_RAW["clients"]}
ISSUER = "http://op.test"
MTLS_BASE = "http://mtls.op.test"
CERT_HEADER = "x-test-client-cert"


def _resolve(value: str) -> Path:
    if value.startswith("pki:"):
        return PKI.file(value[4:])
    return (TLS_PROFILE.parent / value).resolve()


TLS_KEYS: dict[str, Any] = {
    cid: load_pem_private_key(_resolve(c["private_key"]).read_bytes(), None)
    for cid, c in TLS_CLIENTS.items() if "private_key" in c
}
#: client_id -> test-PKI certificate name (for the x-test-client-cert header)
CLIENT_CERT: dict[str, str] = {
    cid: c["certificate"][4:].removesuffix(".pem")
    for cid, c in TLS_CLIENTS.items() if str(c.get("certificate", "")).startswith("pki:")
}


def thumbprint(name: str) -> str:
    cert = x509.load_pem_x509_certificate(PKI.cert(name).read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def load_tls_settings() -> ProviderSettings:
    return load_profile(TLS_PROFILE)


class CertInjector:
    """ASGI wrapper: ``x-test-client-cert: NAME`` -> the TLS extension with that certificate."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = dict(scope["headers"]).get(CERT_HEADER.encode())
            if name:
                pem = PKI.cert(name.decode()).read_text()
                scope = dict(scope)
                scope["extensions"] = {
                    **(scope.get("extensions") or {}), "tls": {"client_cert_chain": [pem]},
                }
        await self.app(scope, receive, send)


class FapiApi:
    """A client of the FAPI-mode provider: signed requests, PS256 assertions, certificates."""

    def __init__(self, http: httpx.AsyncClient):
        self.http = http
        self.issuer = ISSUER

    def assertion(self, cid: str, *, alg: str = "PS256", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": cid, "sub": cid, "aud": self.issuer, "exp": now + 60, "iat": now,
                "jti": secrets.token_urlsafe(12), **claims}
        return jwt.encode(body, TLS_KEYS[cid], algorithm=alg)

    def request_object(self, cid: str, params: Mapping[str, Any], *, alg: str | None = None,
                       **claims: Any) -> str:
        now = int(time.time())
        c = TLS_CLIENTS[cid]
        body: dict[str, Any] = {"iss": cid, "aud": self.issuer, "exp": now + 300, "iat": now,
                                "nbf": now, "jti": secrets.token_urlsafe(12), **params, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, TLS_KEYS[cid], algorithm=alg or c.get("signing_alg", "PS256"))

    def auth_fields(self, cid: str, *, assertion_alg: str = "PS256") -> list[tuple[str, str]]:
        method = TLS_CLIENTS[cid]["auth_method"]
        if method == "private_key_jwt":
            return [("client_assertion_type", JWT_BEARER),
                    ("client_assertion", self.assertion(cid, alg=assertion_alg))]
        if method == "client_secret_post":
            return [("client_id", cid), ("client_secret", TLS_CLIENTS[cid]["client_secret"])]
        return [("client_id", cid)]

    def headers(self, cid: str, cert: bool | str = True) -> dict[str, str]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        name = CLIENT_CERT.get(cid) if cert is True else (cert or None)
        if name:
            headers[CERT_HEADER] = name
        if TLS_CLIENTS[cid]["auth_method"] == "client_secret_basic":
            cred = f"{cid}:{TLS_CLIENTS[cid]['client_secret']}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
        return headers

    async def post(self, path: str, fields: Iterable[tuple[str, str]],
                   headers: Mapping[str, str]) -> httpx.Response:
        return await self.http.post(path, content=urlencode(list(fields)).encode(),
                                    headers=dict(headers))

    async def backchannel(
        self, cid: str = "poll-fapi", *, signed: bool = True, alg: str | None = None,
        assertion_alg: str = "PS256", cert: bool | str = True, params: Mapping[str, Any] | None
        = None, **claims: Any,
    ) -> httpx.Response:
        p: dict[str, Any] = {"scope": "openid", "login_hint": "alice",
                             "binding_message": "W4SCT"}
        if TLS_CLIENTS[cid].get("delivery_mode") in ("ping", "push"):
            p["client_notification_token"] = secrets.token_urlsafe(24)
        p.update(params or {})
        p = {k: v for k, v in p.items() if v is not None}
        fields = self.auth_fields(cid, assertion_alg=assertion_alg)
        if signed:
            fields.append(("request", self.request_object(cid, p, alg=alg, **claims)))
        else:
            fields += [(k, str(v)) for k, v in p.items()]
        return await self.post("/backchannel", fields, self.headers(cid, cert))

    async def token(self, cid: str, rid: str, *, cert: bool | str = True) -> httpx.Response:
        fields = [("grant_type", CIBA), ("auth_req_id", rid), *self.auth_fields(cid)]
        return await self.post("/token", fields, self.headers(cid, cert))

    async def refresh(self, cid: str, refresh_token: str) -> httpx.Response:
        fields = [("grant_type", "refresh_token"), ("refresh_token", refresh_token),
                  *self.auth_fields(cid)]
        return await self.post("/token", fields, self.headers(cid))

    async def introspect(self, cid: str, token: str) -> httpx.Response:
        return await self.post("/introspect", [("token", token), *self.auth_fields(cid)],
                               self.headers(cid))

    async def userinfo(self, token: str, cert: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        if cert:
            headers[CERT_HEADER] = cert
        return await self.http.get("/userinfo", headers=headers)

    async def approve(self, rid: str) -> None:
        resp = await self.http.post(f"/device/requests/{rid}/approve",
                                    headers={"Authorization": f"Bearer {DEVICE_TOKEN}"})
        assert resp.status_code == 200, resp.text

    async def flow(self, cid: str = "poll-fapi", **kw: Any) -> tuple[str, httpx.Response]:
        resp = await self.backchannel(cid, **kw)
        assert resp.status_code == 200, resp.text
        rid: str = resp.json()["auth_req_id"]
        await self.approve(rid)
        return rid, await self.token(cid, rid)


@dataclass
class FapiEnv:
    api: FapiApi
    provider: Provider
    recorder: Recorder


@contextlib.asynccontextmanager
async def make_fapi_env(
    settings: ProviderSettings, faults: Iterable[str] = (), profile: str = "fapi-ciba"
) -> AsyncIterator[FapiEnv]:
    recorder = Recorder()
    app = create_app(settings, issuer=ISSUER, faults=frozenset(faults), profile=profile,
                     mtls_base=MTLS_BASE, http_transport=httpx.MockTransport(recorder))
    provider: Provider = app.state.provider
    provider.default_notification_endpoint = f"{RECEIVER}/cb"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=CertInjector(app)),
                                 base_url=ISSUER) as http:
        yield FapiEnv(FapiApi(http), provider, recorder)
        assert provider.server_errors == 0, "a request reached the catch-all 500 handler"
        for task in list(provider.tasks):
            task.cancel()
