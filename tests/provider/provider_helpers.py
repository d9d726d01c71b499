"""Helpers of the reference provider's tests: a small CIBA client built on httpx and PyJWT.

Deliberately independent of the harness's protocol core (the provider is its oracle).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import secrets
import time
import tomllib
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from starlette.applications import Starlette

from ciba_harness.provider import ProviderSettings, create_app
from ciba_harness.provider.core import Provider

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "fixtures" / "profiles" / "reference.toml"
RAW = tomllib.loads(PROFILE.read_text())
CLIENTS: dict[str, dict[str, Any]] = {c["client_id"]: c for c in RAW["clients"]}
KEYS: dict[str, Any] = {
    cid: load_pem_private_key((PROFILE.parent / c["private_key"]).read_bytes(), None)
    for cid, c in CLIENTS.items() if "private_key" in c
}
DEVICE_TOKEN: str = RAW["device"]["token"]
HINT_KEY: str = RAW["users"]["login_hint_token_hs256_key"]
USER_CODE: str = RAW["users"]["user_code"]
CIBA = "urn:openid:params:grant-type:ciba"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ISSUER = "http://op.test"
RECEIVER = "http://127.0.0.1:9"
AUTH_REQ_ID_RE = r"^[A-Za-z0-9._-]+$"
DROP = object()  # marks a default claim/parameter to leave out


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def half_hash(value: str) -> str:
    return b64url(hashlib.sha256(value.encode()).digest()[:16])


def shannon_bits(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) * n


def login_hint_token(sub: str = "alice", exp: int | None = 300, key: str = HINT_KEY) -> str:
    claims: dict[str, Any] = {"sub": sub}
    if exp is not None:
        claims["exp"] = int(time.time()) + exp
    return jwt.encode(claims, key, algorithm="HS256")


def unsigned_jwt(claims: Mapping[str, Any]) -> str:
    head = b64url(json.dumps({"alg": "none"}).encode())
    return f"{head}.{b64url(json.dumps(claims).encode())}."


@dataclass
class Recorder:
    """Stands in for the network of outbound calls (httpx.MockTransport)."""

    calls: list[httpx.Request] = field(default_factory=list)
    status: int = 204

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if request.url.path.endswith("/redirect"):
            return httpx.Response(301, headers={"Location": f"{RECEIVER}/target"})
        if request.url.path.endswith("/fail"):
            return httpx.Response(500)
        return httpx.Response(self.status)

    def to(self, path_suffix: str) -> list[httpx.Request]:
        return [c for c in self.calls if c.url.path.endswith(path_suffix)]

    def bodies(self, path_suffix: str = "") -> list[dict[str, Any]]:
        return [json.loads(c.content) for c in self.to(path_suffix)]


class Api:
    """A CIBA client for one issuer, talking through ``http``."""

    def __init__(self, http: httpx.AsyncClient, issuer: str = ISSUER):
        self.http = http
        self.issuer = issuer.rstrip("/")
        self.prefix = urlsplit(self.issuer).path

    # ------------------------------------------------------------------ JWTs

    def assertion(
        self, cid: str, *, alg: str | None = None, key: Any = None, **claims: Any
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": cid, "sub": cid, "aud": self.issuer, "exp": now + 60, "iat": now,
            "jti": secrets.token_urlsafe(12),
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not DROP}
        c = CLIENTS.get(cid, {})
        if alg is None:
            alg = c.get("signing_alg") or ("HS256" if c.get("auth_method") == "client_secret_jwt"
                                           else "RS256")
        if key is None:
            key = c["client_secret"] if alg.startswith("HS") else KEYS[cid]
        return jwt.encode(body, key, algorithm=alg)

    def request_object(
        self, cid: str, params: Mapping[str, Any], *, alg: str | None = None, key: Any = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": cid, "aud": self.issuer, "exp": now + 300, "iat": now, "nbf": now,
            "jti": secrets.token_urlsafe(12),
        }
        body.update(params)
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not DROP}
        c = CLIENTS.get(cid, {})
        alg = alg or c.get("request_signing_alg") or c.get("signing_alg") or "RS256"
        if alg == "none":
            return unsigned_jwt(body)
        if key is None:
            key = c["client_secret"] if alg.startswith("HS") else KEYS[cid]
        return jwt.encode(body, key, algorithm=alg)

    # ------------------------------------------------------------------ client auth

    def auth(
        self, cid: str, method: str | None = None
    ) -> tuple[dict[str, str], list[tuple[str, str]]]:
        c = CLIENTS.get(cid, {"auth_method": "client_secret_basic", "client_secret": "x"})
        method = method or c["auth_method"]
        if method == "client_secret_basic":
            cred = f"{quote(cid, safe='')}:{quote(c.get('client_secret', 'x'), safe='')}"
            return {"Authorization": "Basic " + base64.b64encode(cred.encode()).decode()}, []
        if method == "client_secret_post":
            return {}, [("client_id", cid), ("client_secret", c.get("client_secret", "x"))]
        if method in ("private_key_jwt", "client_secret_jwt"):
            return {}, [("client_assertion_type", JWT_BEARER),
                        ("client_assertion", self.assertion(cid))]
        if method == "none":
            return {}, [("client_id", cid)]
        raise ValueError(method)

    def default_params(self, cid: str) -> dict[str, Any]:
        c = CLIENTS[cid]
        params: dict[str, Any] = {"scope": "openid", "login_hint": "alice"}
        if c.get("delivery_mode") in ("ping", "push"):
            params["client_notification_token"] = secrets.token_urlsafe(24)
        if c.get("user_code_required"):
            params["user_code"] = USER_CODE
        return params

    # ------------------------------------------------------------------ requests

    async def post_form(
        self, path: str, fields: Iterable[tuple[str, str]],
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self.http.post(
            self.prefix + path, content=urlencode(list(fields)).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        )

    async def backchannel(
        self, cid: str = "poll-basic", *, auth: str | None | bool = None,
        extra: Iterable[tuple[str, str]] = (), headers: Mapping[str, str] | None = None,
        signed: bool | None = None, request: str | None = None, **overrides: Any,
    ) -> httpx.Response:
        """``overrides``: parameter values (DROP removes a default one)."""
        params = self.default_params(cid) if cid in CLIENTS else {"scope": "openid",
                                                                  "login_hint": "alice"}
        params.update(overrides)
        params = {k: v for k, v in params.items() if v is not DROP}
        if auth is False:
            auth_headers, auth_fields = {}, []
        else:
            auth_headers, auth_fields = self.auth(cid, auth if isinstance(auth, str) else None)
        if signed is None:
            signed = bool(CLIENTS.get(cid, {}).get("sign_requests"))
        fields: list[tuple[str, str]] = list(auth_fields)
        if request is not None:
            fields.append(("request", request))
        elif signed:
            fields.append(("request", self.request_object(cid, params)))
        else:
            fields += [(k, str(v)) for k, v in params.items()]
        fields += list(extra)
        return await self.post_form("/backchannel", fields, {**auth_headers, **(headers or {})})

    async def start(self, cid: str = "poll-basic", **overrides: Any) -> dict[str, Any]:
        resp = await self.backchannel(cid, **overrides)
        assert resp.is_success, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def token(
        self, cid: str, auth_req_id: str | None, *, grant_type: str = CIBA,
        auth: str | None | bool = None, extra: Iterable[tuple[str, str]] = (),
    ) -> httpx.Response:
        if auth is False:
            auth_headers, auth_fields = {}, []
        else:
            auth_headers, auth_fields = self.auth(cid, auth if isinstance(auth, str) else None)
        fields = [("grant_type", grant_type), *auth_fields]
        if auth_req_id is not None:
            fields.append(("auth_req_id", auth_req_id))
        fields += list(extra)
        return await self.post_form("/token", fields, auth_headers)

    async def device(self, method: str, path: str, body: Any = None,
                     token: str = DEVICE_TOKEN) -> httpx.Response:
        return await self.http.request(
            method, self.prefix + path, json=body,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def approve(self, auth_req_id: str, delay: float | None = None) -> httpx.Response:
        body = None if delay is None else {"delay": delay}
        return await self.device("POST", f"/device/requests/{auth_req_id}/approve", body)

    async def deny(self, auth_req_id: str, delay: float | None = None) -> httpx.Response:
        body = None if delay is None else {"delay": delay}
        return await self.device("POST", f"/device/requests/{auth_req_id}/deny", body)

    async def flow(self, cid: str = "poll-basic", **overrides: Any) -> tuple[str, httpx.Response]:
        """Start, approve, redeem: (auth_req_id, token response)."""
        ack = await self.start(cid, **overrides)
        rid = ack["auth_req_id"]
        assert (await self.approve(rid)).status_code == 200
        return rid, await self.token(cid, rid)

    async def discovery(self) -> dict[str, Any]:
        resp = await self.http.get(self.prefix + "/.well-known/openid-configuration")
        assert resp.status_code == 200
        doc: dict[str, Any] = resp.json()
        return doc

    async def jwks(self) -> dict[str, Any]:
        doc: dict[str, Any] = (await self.http.get(self.prefix + "/jwks")).json()
        return doc

    async def set_endpoint(self, cid: str, url: str) -> None:
        resp = await self.device(
            "POST", f"/admin/clients/{cid}/notification-endpoint", {"url": url}
        )
        assert resp.status_code == 204, resp.text

    async def verify_id_token(self, token: str, cid: str, **options: Any) -> dict[str, Any]:
        """Decode and verify an ID token with the provider's JWKS; raises on failure."""
        keys = (await self.jwks())["keys"]
        header = jwt.get_unverified_header(token)
        jwk = next(k for k in keys if k["kid"] == header["kid"])
        key = jwt.PyJWK(jwk).key
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[header["alg"]], audience=cid, issuer=self.issuer,
            options={"require": ["exp", "iat", "sub"], **options},
        )
        return claims


def error_of(resp: httpx.Response) -> tuple[int, str | None]:
    try:
        body = resp.json()
    except ValueError:
        return resp.status_code, None
    return resp.status_code, body.get("error") if isinstance(body, dict) else None


@dataclass
class Env:
    app: Starlette
    api: Api
    recorder: Recorder
    provider: Provider

    async def idle(self) -> None:
        await self.provider.wait_idle()


@contextlib.asynccontextmanager
async def make_env(
    settings: ProviderSettings, faults: Iterable[str] = (), **kwargs: Any
) -> AsyncIterator[Env]:
    recorder = Recorder()
    app = create_app(settings, issuer=ISSUER, faults=frozenset(faults),
                     http_transport=httpx.MockTransport(recorder), **kwargs)
    provider: Provider = app.state.provider
    provider.default_notification_endpoint = f"{RECEIVER}/cb"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=ISSUER) as http:
        env = Env(app, Api(http, ISSUER), recorder, provider)
        yield env
        for p in (provider, *provider.tenants.values()):
            assert p.server_errors == 0, "a request reached the catch-all 500 handler"
            for task in list(p.tasks):
                task.cancel()
