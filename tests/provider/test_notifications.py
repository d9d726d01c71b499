"""Ping and push delivery (CIBA §10.2, §10.3, §12), webhook device channel, admin endpoints."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from provider_helpers import DEVICE_TOKEN, RECEIVER, Env, error_of, half_hash, make_env

from ciba_harness.provider import ProviderSettings

pytestmark = pytest.mark.asyncio


async def test_ping_on_approval(env: Env) -> None:
    api = env.api
    ack = await api.start("ping-basic", client_notification_token="tok-123")
    rid = ack["auth_req_id"]
    assert error_of(await api.token("ping-basic", rid)) == (400, "authorization_pending")
    await api.approve(rid)
    await env.idle()
    [call] = env.recorder.calls
    assert str(call.url) == f"{RECEIVER}/cb"
    assert call.method == "POST"
    assert call.headers["authorization"] == "Bearer tok-123"
    assert call.headers["content-type"] == "application/json"
    assert json.loads(call.content) == {"auth_req_id": rid}
    assert (await api.token("ping-basic", rid)).status_code == 200


async def test_ping_on_denial_and_not_on_expiry(env: Env) -> None:
    api = env.api
    rid = (await api.start("ping-basic"))["auth_req_id"]
    await api.deny(rid)
    expiring = (await api.start("ping-basic", requested_expiry="1"))["auth_req_id"]
    await env.idle()
    assert env.recorder.bodies() == [{"auth_req_id": rid}]
    assert error_of(await api.token("ping-basic", rid)) == (400, "access_denied")
    await asyncio.sleep(1.05)
    await env.idle()
    assert len(env.recorder.calls) == 1
    assert error_of(await api.token("ping-basic", expiring)) == (400, "expired_token")


async def test_no_ping_for_poll_clients_or_rejected_requests(env: Env) -> None:
    api = env.api
    rid = (await api.start("poll-basic"))["auth_req_id"]
    await api.approve(rid)
    await api.backchannel("ping-basic", binding_message="x" * 50)
    await env.idle()
    assert env.recorder.calls == []


async def test_ping_endpoint_from_admin_api(env: Env) -> None:
    api = env.api
    await api.set_endpoint("ping-basic", f"{RECEIVER}/ping-only")
    rid = (await api.start("ping-basic"))["auth_req_id"]
    await api.approve(rid)
    await env.idle()
    assert [str(c.url) for c in env.recorder.calls] == [f"{RECEIVER}/ping-only"]


async def test_admin_api_errors(env: Env) -> None:
    api = env.api
    path = "/admin/clients/ping-basic/notification-endpoint"
    assert (await api.device("POST", path, {"url": "http://example.com/cb"})).status_code == 400
    assert (await api.device("POST", path, {"url": "ftp://127.0.0.1/cb"})).status_code == 400
    assert (await api.device("POST", path, {"url": "https://rp.example/cb"})).status_code == 204
    assert (await api.device("POST", path, {"url": None})).status_code == 204
    assert (await api.device("POST", path, {"url": "https://x"}, token="no")).status_code == 401
    assert (await api.device("POST", "/admin/clients/nobody/notification-endpoint",
                             {"url": "https://x"})).status_code == 404
    assert (await api.device("POST", "/admin/notification-endpoint",
                             {"url": "http://localhost:1/cb"})).status_code == 204
    assert env.provider.default_notification_endpoint == "http://localhost:1/cb"


async def test_ping_does_not_follow_redirects_nor_retry(env: Env) -> None:
    api = env.api
    await api.set_endpoint("ping-basic", f"{RECEIVER}/redirect")
    rid = (await api.start("ping-basic"))["auth_req_id"]
    await api.approve(rid)
    await env.idle()
    assert [c.url.path for c in env.recorder.calls] == ["/redirect"]
    await api.set_endpoint("ping-basic", f"{RECEIVER}/fail")
    rid2 = (await api.start("ping-basic"))["auth_req_id"]
    await api.approve(rid2)
    await env.idle()
    assert [c.url.path for c in env.recorder.calls] == ["/redirect", "/fail"]
    assert [d.status for d in env.provider.deliveries] == [301, 500]
    # tokens stay available by polling
    assert (await api.token("ping-basic", rid2)).status_code == 200


async def test_unreachable_endpoint_is_recorded(settings: ProviderSettings) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with make_env(settings) as env:
        env.provider.outbound._transport = httpx.MockTransport(refuse)
        rid = (await env.api.start("ping-basic"))["auth_req_id"]
        await env.api.approve(rid)
        await env.idle()
        [delivery] = env.provider.deliveries
        assert delivery.status is None and delivery.error and "ConnectError" in delivery.error
        assert (await env.api.token("ping-basic", rid)).status_code == 200


async def test_push_tokens(env: Env) -> None:
    api = env.api
    ack = await api.start("push-basic", client_notification_token="push-tok",
                          acr_values="urn:acr:x")
    rid = ack["auth_req_id"]
    await api.approve(rid)
    await env.idle()
    [call] = env.recorder.calls
    assert call.headers["authorization"] == "Bearer push-tok"
    assert call.headers["content-type"] == "application/json"
    body = json.loads(call.content)
    assert body["auth_req_id"] == rid
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    claims = await api.verify_id_token(body["id_token"], "push-basic")
    assert claims["urn:openid:params:jwt:claim:auth_req_id"] == rid
    assert claims["at_hash"] == half_hash(body["access_token"])
    assert claims["urn:openid:params:jwt:claim:rt_hash"] == half_hash(body["refresh_token"])
    assert claims["acr"] == "urn:acr:x"
    info = await api.http.get("/userinfo",
                              headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.json() == {"sub": "alice"}


async def test_push_denial_and_expiry(env: Env) -> None:
    api = env.api
    denied = (await api.start("push-basic", client_notification_token="t1"))["auth_req_id"]
    await api.deny(denied)
    expiring = (await api.start("push-basic", client_notification_token="t2",
                                requested_expiry="1"))["auth_req_id"]
    await asyncio.sleep(1.1)
    await env.idle()
    bodies = {json.loads(c.content)["auth_req_id"]: (c.headers["authorization"],
                                                     json.loads(c.content))
              for c in env.recorder.calls}
    assert bodies[denied] == ("Bearer t1", {"error": "access_denied", "auth_req_id": denied})
    assert bodies[expiring] == ("Bearer t2", {"error": "expired_token", "auth_req_id": expiring})
    assert len(env.recorder.calls) == 2


async def test_push_transaction_failed(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no tokens today")

    monkeypatch.setattr(env.provider.tokens, "issue", broken)
    rid = (await env.api.start("push-basic"))["auth_req_id"]
    await env.api.approve(rid)
    await env.idle()
    assert env.recorder.bodies() == [{"error": "transaction_failed", "auth_req_id": rid}]


async def test_webhook_device_channel(settings: ProviderSettings) -> None:
    async with make_env(settings, device_webhook_url=f"{RECEIVER}/device") as env:
        api = env.api
        rid = (await api.start(binding_message="HOOK-1", acr_values="x"))["auth_req_id"]
        await env.idle()
        [call] = env.recorder.to("/device")
        payload = json.loads(call.content)
        assert payload == {"login_hint": "alice", "scope": "openid", "binding_message": "HOOK-1",
                           "acr_values": "x", "is_consent_required": True, "auth_req_id": rid}
        bearer = call.headers["authorization"]
        assert bearer.startswith("Bearer ") and len(bearer) > 40
        cb = "/ext/ciba/auth/callback"
        wrong = await api.http.post(cb, json={"status": "SUCCEED"},
                                    headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401
        bad = await api.http.post(cb, json={"status": "MAYBE"}, headers={"Authorization": bearer})
        assert bad.status_code == 400
        ok = await api.http.post(cb, json={"status": "SUCCEED"}, headers={"Authorization": bearer})
        assert ok.status_code == 204
        assert (await api.token("poll-basic", rid)).status_code == 200
        again = await api.http.post(cb, json={"status": "SUCCEED"},
                                    headers={"Authorization": bearer})
        assert again.status_code == 401

        rid2 = (await api.start())["auth_req_id"]
        await env.idle()
        bearer2 = env.recorder.to("/device")[-1].headers["authorization"]
        for status in ["CANCELLED"]:
            resp = await api.http.post(cb, json={"status": status},
                                       headers={"Authorization": bearer2})
            assert resp.status_code == 204
        assert error_of(await api.token("poll-basic", rid2)) == (400, "access_denied")


async def test_register(env: Env) -> None:
    api = env.api
    resp = await api.http.post("/register", json={
        "grant_types": ["urn:openid:params:grant-type:ciba"],
        "backchannel_token_delivery_mode": "ping",
        "backchannel_client_notification_endpoint": f"{RECEIVER}/dyn",
        "backchannel_user_code_parameter": False,
        "token_endpoint_auth_method": "client_secret_post",
        "client_name": "dyn",
    })
    assert resp.status_code == 201, resp.text
    meta = resp.json()
    assert meta["backchannel_user_code_parameter"] is False
    assert meta["client_name"] == "dyn" and meta["backchannel_token_delivery_mode"] == "ping"
    cid, secret = meta["client_id"], meta["client_secret"]
    fields = [("client_id", cid), ("client_secret", secret), ("scope", "openid"),
              ("login_hint", "alice"), ("client_notification_token", "dyn-token")]
    ack = await api.post_form("/backchannel", fields)
    assert ack.status_code == 200, ack.text
    rid = ack.json()["auth_req_id"]
    await api.approve(rid)
    await env.idle()
    [call] = env.recorder.to("/dyn")
    assert json.loads(call.content) == {"auth_req_id": rid}
    tok = await api.post_form("/token", [("client_id", cid), ("client_secret", secret),
                                         ("grant_type", "urn:openid:params:grant-type:ciba"),
                                         ("auth_req_id", rid)])
    assert tok.status_code == 200


async def test_register_private_key_jwt(env: Env) -> None:
    import jwt as pyjwt
    from provider_helpers import KEYS
    api = env.api
    jwk = pyjwt.algorithms.RSAAlgorithm.to_jwk(KEYS["poll-rs256"].public_key(), as_dict=True)
    resp = await api.http.post("/register", json={
        "grant_types": ["urn:openid:params:grant-type:ciba"],
        "backchannel_token_delivery_mode": "poll",
        "token_endpoint_auth_method": "private_key_jwt",
        "backchannel_authentication_request_signing_alg": "PS256",
        "backchannel_user_code_parameter": True,
        "jwks": {"keys": [jwk]},
    })
    assert resp.status_code == 201, resp.text
    meta = resp.json()
    assert meta["backchannel_user_code_parameter"] is True and "client_secret" not in meta
    cid = meta["client_id"]
    assertion = api.assertion(cid, alg="RS256", key=KEYS["poll-rs256"])
    request = api.request_object(cid, {"scope": "openid", "login_hint": "alice",
                                       "user_code": "4711"}, alg="PS256", key=KEYS["poll-rs256"])
    fields = [("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
              ("client_assertion", assertion), ("request", request)]
    ack = await api.post_form("/backchannel", fields)
    assert ack.status_code == 200, ack.text


@pytest.mark.parametrize(
    "meta",
    [
        {"grant_types": ["urn:openid:params:grant-type:ciba"]},
        {"grant_types": ["urn:openid:params:grant-type:ciba"],
         "backchannel_token_delivery_mode": "email"},
        {"grant_types": ["urn:openid:params:grant-type:ciba"],
         "backchannel_token_delivery_mode": "ping"},
        {"grant_types": ["urn:openid:params:grant-type:ciba"],
         "backchannel_token_delivery_mode": "push",
         "backchannel_client_notification_endpoint": "http://rp.example/cb"},
        {"grant_types": ["urn:openid:params:grant-type:ciba"],
         "backchannel_token_delivery_mode": "poll",
         "backchannel_authentication_request_signing_alg": "none"},
        {"grant_types": ["urn:openid:params:grant-type:ciba"],
         "backchannel_token_delivery_mode": "poll",
         "backchannel_authentication_request_signing_alg": "HS256"},
        {"grant_types": ["urn:openid:params:grant-type:ciba"],
         "backchannel_token_delivery_mode": "poll", "backchannel_user_code_parameter": "yes"},
        {"grant_types": "urn:openid:params:grant-type:ciba"},
        {"token_endpoint_auth_method": "private_key_jwt"},
        {"token_endpoint_auth_method": "tls_client_auth"},
        {"jwks": {"keys": [{"kty": "oct", "k": "AAAA"}]},
         "token_endpoint_auth_method": "private_key_jwt"},
        {"jwks_uri": "https://rp.example/jwks"},
        [],
    ],
)
async def test_register_errors(env: Env, meta: object) -> None:
    resp = await env.api.http.post("/register", json=meta)
    assert error_of(resp) == (400, "invalid_client_metadata"), resp.text


async def test_register_not_json(env: Env) -> None:
    resp = await env.api.http.post("/register", content=b"{oops",
                                   headers={"Content-Type": "application/json"})
    assert error_of(resp) == (400, "invalid_client_metadata")


async def test_device_token_is_required_everywhere(env: Env) -> None:
    api = env.api
    for method, path in [("GET", "/device/requests"), ("POST", "/device/requests/x/approve"),
                         ("POST", "/device/requests/x/deny"), ("POST", "/device/lookup"),
                         ("POST", "/admin/notification-endpoint")]:
        resp = await api.http.request(method, path, json={})
        assert resp.status_code == 401, path
    assert DEVICE_TOKEN
