"""Token endpoint (CIBA §10.1, §11), ID token, refresh grant, userinfo."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
from provider_helpers import (
    CIBA,
    DEVICE_TOKEN,
    Api,
    Env,
    error_of,
    half_hash,
)

pytestmark = pytest.mark.asyncio


async def test_poll_flow_tokens(api: Api) -> None:
    t0 = time.time()
    ack = await api.start(acr_values="urn:acr:high urn:acr:low", scope="openid profile")
    rid = ack["auth_req_id"]
    assert error_of(await api.token("poll-basic", rid)) == (400, "authorization_pending")
    assert (await api.approve(rid)).status_code == 200
    resp = await api.token("poll-basic", rid)
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store" and resp.headers["pragma"] == "no-cache"
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert body["scope"] == "openid profile"
    assert len(body["access_token"]) >= 27 and body["refresh_token"]
    claims = await api.verify_id_token(body["id_token"], "poll-basic")
    assert claims["sub"] == "alice"
    assert claims["at_hash"] == half_hash(body["access_token"])
    assert claims["urn:openid:params:jwt:claim:rt_hash"] == half_hash(body["refresh_token"])
    assert claims["urn:openid:params:jwt:claim:auth_req_id"] == rid
    assert claims["acr"] == "urn:acr:high"
    assert t0 - 1 <= claims["auth_time"] <= time.time() + 1
    assert "nonce" not in claims
    # redeemed once
    assert error_of(await api.token("poll-basic", rid)) == (400, "invalid_grant")
    # userinfo
    info = await api.http.get("/userinfo",
                              headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200 and info.json() == {"sub": "alice"}
    assert (await api.http.get("/userinfo", headers={"Authorization": "Bearer nope"})
            ).status_code == 401


@pytest.mark.parametrize("cid", ["poll-post", "poll-secret-jwt", "poll-rs256", "poll-ps256",
                                 "poll-es256", "poll-signed", "ping-basic"])
async def test_every_auth_method_redeems(api: Api, cid: str) -> None:
    _, resp = await api.flow(cid)
    assert resp.status_code == 200, resp.text
    await api.verify_id_token(resp.json()["id_token"], cid)


async def test_sub_is_stable(api: Api) -> None:
    subs = set()
    for _ in range(2):
        _, resp = await api.flow()
        subs.add((await api.verify_id_token(resp.json()["id_token"], "poll-basic"))["sub"])
    assert subs == {"alice"}


async def test_no_acr_without_acr_values(api: Api) -> None:
    _, resp = await api.flow()
    assert "acr" not in await api.verify_id_token(resp.json()["id_token"], "poll-basic")


async def test_denied(api: Api) -> None:
    rid = (await api.start())["auth_req_id"]
    assert (await api.deny(rid)).status_code == 200
    assert error_of(await api.token("poll-basic", rid)) == (400, "access_denied")
    assert error_of(await api.token("poll-basic", rid)) == (400, "access_denied")


async def test_expired(api: Api) -> None:
    rid = (await api.start(requested_expiry="1"))["auth_req_id"]
    await asyncio.sleep(1.05)
    assert error_of(await api.token("poll-basic", rid)) == (400, "expired_token")
    assert error_of(await api.token("poll-basic", rid)) == (400, "expired_token")
    assert (await api.approve(rid)).status_code == 409


async def test_slow_down_raises_the_interval(env: Env) -> None:
    api = env.api
    rid = (await api.start())["auth_req_id"]
    assert error_of(await api.token("poll-basic", rid)) == (400, "authorization_pending")
    resp = await api.token("poll-basic", rid)
    assert error_of(resp) == (400, "slow_down")
    assert env.provider.transactions[rid].interval == 6
    # the slow_down answer counted as a request: polling right away is still too fast
    assert error_of(await api.token("poll-basic", rid)) == (400, "slow_down")
    assert env.provider.transactions[rid].interval == 11


async def test_poll_at_interval_is_fine(env: Env) -> None:
    api = env.api
    rid = (await api.start())["auth_req_id"]
    assert error_of(await api.token("poll-basic", rid)) == (400, "authorization_pending")
    env.provider.transactions[rid].last_poll -= 0.9  # type: ignore[operator]
    assert error_of(await api.token("poll-basic", rid)) == (400, "authorization_pending")


async def test_approved_answer_is_immediate_even_if_fast(api: Api) -> None:
    rid = (await api.start())["auth_req_id"]
    await api.token("poll-basic", rid)
    await api.approve(rid)
    assert (await api.token("poll-basic", rid)).status_code == 200


async def test_token_errors(api: Api) -> None:
    rid = (await api.start())["auth_req_id"]
    assert error_of(await api.token("poll-basic", None)) == (400, "invalid_request")
    assert error_of(await api.token("poll-basic", "x" * 36)) == (400, "invalid_grant")
    assert error_of(await api.token("poll-basic", rid, grant_type=CIBA + "x")) == (
        400, "unsupported_grant_type")
    resp = await api.post_form("/token", [("auth_req_id", rid)], api.auth("poll-basic")[0])
    assert error_of(resp) == (400, "invalid_request")
    # unknown parameters are ignored
    assert error_of(await api.token("poll-basic", rid, extra=[("x_probe", "1")])) == (
        400, "authorization_pending")
    # repeated parameter
    resp = await api.token("poll-basic", rid, extra=[("auth_req_id", rid)])
    assert error_of(resp) == (400, "invalid_request")


async def test_cross_client_is_invalid_grant_without_side_effects(env: Env) -> None:
    api = env.api
    rid = (await api.start())["auth_req_id"]
    await api.approve(rid)
    for _ in range(3):
        assert error_of(await api.token("poll-post", rid)) == (400, "invalid_grant")
    assert env.provider.transactions[rid].last_poll is None
    assert (await api.token("poll-basic", rid)).status_code == 200


async def test_push_and_non_ciba_clients_cannot_poll(api: Api) -> None:
    rid = (await api.start("push-basic"))["auth_req_id"]
    assert error_of(await api.token("push-basic", rid)) == (400, "unauthorized_client")
    assert error_of(await api.token("no-ciba", rid)) == (400, "unauthorized_client")


async def test_token_client_auth(api: Api) -> None:
    rid = (await api.start())["auth_req_id"]
    cred = base64.b64encode(b"poll-basic:wrong").decode()
    resp = await api.post_form("/token", [("grant_type", CIBA), ("auth_req_id", rid)],
                               {"Authorization": f"Basic {cred}"})
    assert error_of(resp) == (401, "invalid_client")
    assert resp.headers["www-authenticate"] == 'Basic realm="ciba"'
    resp = await api.token("poll-basic", rid, auth=False)
    assert error_of(resp) == (401, "invalid_client")
    resp = await api.token("public-client", rid)
    assert error_of(resp) == (401, "invalid_client")
    resp = await api.token("poll-basic", rid, auth="client_secret_post")
    assert error_of(resp) == (401, "invalid_client")


async def test_concurrent_redemption_gives_tokens_once(api: Api) -> None:
    rid = (await api.start())["auth_req_id"]
    await api.approve(rid)
    results = await asyncio.gather(*(api.token("poll-basic", rid) for _ in range(10)))
    assert sorted(r.status_code for r in results) == [200] + [400] * 9
    assert {error_of(r)[1] for r in results if r.status_code == 400} == {"invalid_grant"}


async def test_refresh_grant(api: Api) -> None:
    _, resp = await api.flow()
    refresh = resp.json()["refresh_token"]
    new = await api.token("poll-basic", None, grant_type="refresh_token",
                          extra=[("refresh_token", refresh)])
    assert new.status_code == 200, new.text
    body = new.json()
    assert body["token_type"] == "Bearer" and "refresh_token" not in body
    assert body["access_token"] != resp.json()["access_token"]
    again = await api.token("poll-basic", None, grant_type="refresh_token",
                            extra=[("refresh_token", refresh)])
    assert again.status_code == 200  # no rotation
    assert error_of(await api.token("poll-post", None, grant_type="refresh_token",
                                    extra=[("refresh_token", refresh)])) == (400, "invalid_grant")
    assert error_of(await api.token("poll-basic", None, grant_type="refresh_token")) == (
        400, "invalid_request")


async def test_delayed_approval(env: Env) -> None:
    api = env.api
    rid = (await api.start())["auth_req_id"]
    resp = await api.approve(rid, delay=0.5)
    assert resp.status_code == 202
    assert error_of(await api.token("poll-basic", rid)) == (400, "authorization_pending")
    await env.idle()
    assert (await api.token("poll-basic", rid)).status_code == 200


async def test_device_api(env: Env) -> None:
    api = env.api
    rid = (await api.start(binding_message="BM-1", acr_values="a b"))["auth_req_id"]
    listing = (await api.device("GET", "/device/requests")).json()
    entry = next(e for e in listing if e["auth_req_id"] == rid)
    assert entry["login_hint"] == "alice" and entry["client_id"] == "poll-basic"
    assert entry["binding_message"] == "BM-1" and entry["scope"] == "openid"
    assert entry["acr_values"] == "a b" and isinstance(entry["created_at"], float)
    found = (await api.device("POST", "/device/lookup",
                              {"login_hint": "alice", "binding_message": "BM-1"})).json()
    assert [e["auth_req_id"] for e in found] == [rid]
    assert (await api.device("POST", "/device/lookup", {"login_hint": "bob"})).json() == []
    assert (await api.device("GET", "/device/requests", token="wrong")).status_code == 401
    assert (await api.approve("unknown")).status_code == 404
    assert (await api.approve(rid, delay=-1)).status_code == 400
    assert (await api.approve(rid)).status_code == 200
    assert (await api.deny(rid)).status_code == 409
    assert (await api.approve(rid)).status_code == 409
    assert rid not in [e["auth_req_id"]
                       for e in (await api.device("GET", "/device/requests")).json()]
    resp = await api.http.post(f"/device/requests/{rid}/approve", content=b"{nope",
                               headers={"Authorization": f"Bearer {DEVICE_TOKEN}"})
    assert resp.status_code == 400


async def test_state_is_purged_after_retention(env: Env) -> None:
    api, p = env.api, env.provider
    _, tokens = await api.flow()
    pending = (await api.start())["auth_req_id"]
    assert p.transactions and p.access_tokens and p.refresh_tokens and p.pending
    p.purge(time.monotonic() + 10**6)
    assert not p.transactions and not p.access_tokens and not p.refresh_tokens
    assert not p.pending and not p.assertion_jtis
    assert error_of(await api.token("poll-basic", pending)) == (400, "invalid_grant")
    info = await api.http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
    assert info.status_code == 401
