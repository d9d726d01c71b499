"""Bad input never reaches the catch-all 500 handler and never hangs: fuzzed forms, garbage
JWTs, odd headers and bodies on every endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from provider_helpers import DEVICE_TOKEN, ISSUER, JWT_BEARER, b64url
from starlette.applications import Starlette

from ciba_harness.provider import ProviderSettings, create_app
from ciba_harness.provider.core import Provider

NAMES = ["scope", "login_hint", "login_hint_token", "id_token_hint", "binding_message",
         "user_code", "requested_expiry", "client_notification_token", "acr_values", "request",
         "request_uri", "client_id", "client_secret", "client_assertion",
         "client_assertion_type", "grant_type", "auth_req_id", "refresh_token"]
CLAIM_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
    st.text(max_size=20), st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
CLAIMS = st.dictionaries(
    st.sampled_from(["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "login_hint",
                     "requested_expiry", "alg", "kid", "binding_message", "x"]),
    CLAIM_VALUES, max_size=8,
)


@st.composite
def jwt_like(draw: Any) -> str:
    header = draw(CLAIMS)
    if draw(st.booleans()):
        header["alg"] = draw(st.sampled_from(["none", "HS256", "RS256", "PS256", "ES256",
                                              "RS512", "EdDSA", ""]))
    parts = [b64url(json.dumps(header).encode()), b64url(json.dumps(draw(CLAIMS)).encode()),
             b64url(draw(st.binary(max_size=80)))]
    shape = draw(st.sampled_from(["jws", "two", "five", "bad64", "notjson"]))
    if shape == "two":
        return ".".join(parts[:2])
    if shape == "five":
        return ".".join(parts + parts[:2])
    if shape == "bad64":
        return "%%%." + parts[1] + ".***"
    if shape == "notjson":
        return b64url(b"[1,2]") + "." + b64url(b"\xff\xfe") + "." + parts[2]
    return ".".join(parts)


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
VALUES = st.one_of(TEXT, jwt_like(), st.sampled_from(
    ["openid", "alice", "urn:openid:params:grant-type:ciba", JWT_BEARER, "refresh_token",
     "poll-basic", "1", "0", "-1", "99999999999999999999"]))
FIELDS = st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=10)
AUTHS = st.sampled_from([
    None, "Basic cG9sbC1iYXNpYzpwb2xsLWJhc2ljLXNlY3JldC02YzFmMGUyYQ==", "Basic !!!",
    "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
    "Basic " + base64.b64encode(b"nocolon").decode(),
    "Bearer x", "Basic", "", "Digest abc",
])


@pytest.fixture(scope="module")
def app(settings: ProviderSettings) -> Iterator[Starlette]:
    application = create_app(settings, issuer=ISSUER, http_transport=httpx.MockTransport(
        lambda r: httpx.Response(204)))
    yield application
    provider: Provider = application.state.provider
    assert provider.server_errors == 0


def call(app: Starlette, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=ISSUER) as http:
            return await asyncio.wait_for(http.request(method, path, **kwargs), 5)
    return asyncio.run(go())


def assert_spec_error(resp: httpx.Response) -> None:
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        body = resp.json()
        assert isinstance(body.get("error"), str)


@hsettings(max_examples=200, deadline=None, database=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=FIELDS, auth=AUTHS, path=st.sampled_from(["/backchannel", "/token"]))
def test_fuzzed_forms(app: Starlette, fields: list[tuple[str, str]], auth: str | None,
                      path: str) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if auth is not None:
        headers["Authorization"] = auth
    resp = call(app, "POST", path, content=urlencode(fields).encode(), headers=headers)
    assert_spec_error(resp)


@hsettings(max_examples=60, deadline=None, database=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=jwt_like(), where=st.sampled_from(
    ["client_assertion", "request", "id_token_hint", "login_hint_token"]))
def test_garbage_jwts(app: Starlette, token: str, where: str) -> None:
    data = {"scope": "openid", where: token}
    if where == "client_assertion":
        data["client_assertion_type"] = JWT_BEARER
        headers = {}
    else:
        headers = {"Authorization": "Basic cG9sbC1iYXNpYzpwb2xsLWJhc2ljLXNlY3JldC02YzFmMGUyYQ=="}
        if where == "request":
            data.pop("scope")
            headers = {}
            data.update(client_assertion_type=JWT_BEARER, client_assertion=token)
    resp = call(app, "POST", "/backchannel", data=data, headers=headers)
    assert_spec_error(resp)


BODIES: list[tuple[str, bytes]] = [
    ("application/json", b'{"scope": "openid"}'),
    ("text/plain", b"scope=openid"),
    ("application/x-www-form-urlencoded; charset=latin-1", b"scope=openid"),
    ("application/x-www-form-urlencoded", b"\x00\x01\x02"),
    ("application/x-www-form-urlencoded", b"=&=&&&=="),
    ("application/x-www-form-urlencoded", b"%"),
    ("application/x-www-form-urlencoded", b"a" * 70_000),
    ("multipart/form-data; boundary=x", b"--x--"),
    ("", b""),
]


@pytest.mark.parametrize("path", ["/backchannel", "/token", "/register", "/device/lookup",
                                  "/ext/ciba/auth/callback", "/userinfo",
                                  "/admin/notification-endpoint",
                                  "/device/requests/x/approve"])
@pytest.mark.parametrize(("ctype", "body"), BODIES)
def test_odd_bodies(app: Starlette, path: str, ctype: str, body: bytes) -> None:
    headers = {"Authorization": f"Bearer {DEVICE_TOKEN}"}
    if ctype:
        headers["Content-Type"] = ctype
    resp = call(app, "POST", path, content=body, headers=headers)
    assert_spec_error(resp)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
@pytest.mark.parametrize("path", ["/backchannel", "/token", "/register", "/jwks"])
def test_wrong_methods(app: Starlette, method: str, path: str) -> None:
    resp = call(app, method, path)
    if path == "/jwks" and method in ("GET", "HEAD"):
        assert resp.status_code == 200
    else:
        assert resp.status_code == 405
        if method != "HEAD":
            assert resp.json()["error"] == "invalid_request"


def test_lying_content_length(app: Starlette) -> None:
    resp = call(app, "POST", "/backchannel", content=b"scope=openid",
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "Content-Length": "99999999"})
    assert resp.status_code in (400, 413)
