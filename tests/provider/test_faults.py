"""Every fault of the catalogue changes an observable response, and only the intended ones.

Each scenario drives a fresh in-process provider through many requests and returns a flat dict
of deterministic observations (error codes, statuses, booleans; never random values). The
faultless provider's observations are computed once; for each fault the same scenarios run
against a provider with that single fault, and the keys whose observation differs must be
exactly those the table below expects (``*`` patterns allowed for collateral that is inherent,
e.g. no flow can complete when the acknowledgement lacks auth_req_id).
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from provider_helpers import (
    CIBA,
    DROP,
    ISSUER,
    JWT_BEARER,
    KEYS,
    RECEIVER,
    REPO,
    Api,
    Env,
    half_hash,
    login_hint_token,
    make_env,
    shannon_bits,
)
from tls_helpers import MTLS_BASE, FapiEnv, load_tls_settings, make_fapi_env, thumbprint

from ciba_harness.provider import FAULTS, ProviderSettings
from ciba_harness.provider.faults import (
    NO_FAULTS,
    SERVER_FAULTS,
    FaultError,
    Faults,
    faults_markdown,
)
from ciba_harness.provider.server import server_ssl_context

DESCRIPTION_RE = re.compile(r'^[\x20\x21\x23-\x5b\x5d-\x7e]*$')
SPEC = REPO.parent / "shared" / "spec" / "ciba-requirements.md"

Obs = dict[str, Any]
Scenario = Callable[[Env], Awaitable[Obs]]


def code_of(resp: httpx.Response) -> str | None:
    """The error code (JSON, or the text form of the error_not_json faults); None on 2xx."""
    if resp.status_code < 300:
        return None
    try:
        body = resp.json()
        return str(body.get("error"))
    except ValueError:
        m = re.match(r"error=([a-z_]+)", resp.text)
        return m.group(1) if m else f"HTTP {resp.status_code}"


def unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


# ------------------------------------------------------------------------------- scenarios


async def sc_discovery(env: Env) -> Obs:
    doc = await env.api.discovery()
    keys = ["issuer", "backchannel_authentication_endpoint",
            "backchannel_token_delivery_modes_supported",
            "backchannel_authentication_request_signing_alg_values_supported",
            "backchannel_user_code_parameter_supported", "grant_types_supported",
            "token_endpoint", "jwks_uri", "registration_endpoint",
            "token_endpoint_auth_methods_supported", "id_token_signing_alg_values_supported"]
    return {f"disc.{k}": json.dumps(doc.get(k)) for k in keys}


async def sc_ack(env: Env) -> Obs:
    api = env.api
    first = await api.backchannel()
    second = await api.backchannel()
    push = await api.backchannel("push-basic")
    b1, b2 = first.json(), second.json()
    rid = b1.get("auth_req_id", "")
    return {
        "ack.status": first.status_code,
        "ack.content_type": first.headers["content-type"],
        "ack.has_id": "auth_req_id" in b1,
        "ack.charset_ok": bool(re.match(r"^[A-Za-z0-9._-]+$", rid)),
        "ack.entropy_ok": len(rid) >= 16 and shannon_bits(rid) >= 128,
        "ack.distinct": b1.get("auth_req_id") != b2.get("auth_req_id"),
        "ack.expires_in_type": type(b1.get("expires_in")).__name__,
        "ack.interval_type": type(b1.get("interval")).__name__,
        "ack.push_interval": "interval" in push.json(),
    }


def _bc_cases(api: Api) -> dict[str, Callable[[], Awaitable[httpx.Response]]]:
    now = int(time.time())
    p = {"scope": "openid", "login_hint": "alice"}
    ro = api.request_object

    def bc(cid: str = "poll-basic", **kw: Any) -> Callable[[], Awaitable[httpx.Response]]:
        return lambda: api.backchannel(cid, **kw)

    def signed(**claims: Any) -> Callable[[], Awaitable[httpx.Response]]:
        return lambda: api.backchannel("poll-signed", request=ro("poll-signed", p, **claims))

    def assertion(**claims: Any) -> Callable[[], Awaitable[httpx.Response]]:
        return lambda: api.backchannel("poll-rs256", auth=False, extra=[
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", api.assertion("poll-rs256", **claims))])

    foreign_hint = jwt.encode({"iss": ISSUER, "aud": "poll-basic", "sub": "alice",
                               "exp": now + 60, "iat": now}, KEYS["poll-rs256"], algorithm="RS256")
    secret_jwt_request = ro("poll-secret-jwt", p, alg="HS256")
    basic_header = {"Authorization": api.auth("poll-basic")[0]["Authorization"]}
    return {
        "ok": bc(),
        "no_scope": bc(scope=DROP),
        "scope_reversed": bc(scope="profile openid"),
        "no_openid": bc(scope="profile"),
        "no_hint": bc(login_hint=DROP),
        "two_hints": bc(login_hint_token=login_hint_token()),
        "unknown_user": bc(login_hint="no-such-user-7f3a"),
        "blocked_user": bc(login_hint="mallory"),
        "foreign_id_token_hint": bc(login_hint=DROP, id_token_hint=foreign_hint),
        "expired_lht": bc(login_hint=DROP, login_hint_token=login_hint_token(exp=-5)),
        "malformed_lht": bc(login_hint=DROP, login_hint_token="garbage"),
        "ping_no_token": bc("ping-basic", client_notification_token=DROP),
        "ping_1024_token": bc("ping-basic", client_notification_token="a" * 1024),
        "unknown_param": bc(extra=[("x_probe", "1")]),
        "repeated_scope": bc(extra=[("scope", "openid")]),
        "bad_binding": bc(binding_message="x" * 50),
        "ping_bad_binding": bc("ping-basic", binding_message="x" * 50),
        "no_user_code": bc("poll-usercode", user_code=DROP),
        "wrong_user_code": bc("poll-usercode", user_code="0000"),
        "no_ciba": bc("no-ciba"),
        "bad_expiry": bc(requested_expiry="0"),
        "sreq_ok": signed(),
        "sreq_none": lambda: api.backchannel("poll-signed", request=ro("poll-signed", p,
                                                                       alg="none")),
        "sreq_hs256": lambda: api.backchannel("poll-secret-jwt", request=secret_jwt_request),
        "sreq_other_key": signed(key=KEYS["poll-second"]),
        "sreq_aud": signed(aud="https://elsewhere.example"),
        "sreq_iss": signed(iss="poll-second"),
        "sreq_exp_past": signed(exp=now - 10),
        "sreq_no_iat": signed(iat=DROP),
        "sreq_nbf_future": signed(nbf=now + 600),
        "sreq_no_nbf": signed(nbf=DROP),
        "sreq_no_jti": signed(jti=DROP),
        "sreq_unknown_claim": signed(x_probe="1"),
        "sreq_expiry_string": signed(requested_expiry="30"),
        "sreq_expiry_number": signed(requested_expiry=30),
        "sreq_alg_mismatch": signed(alg="PS256"),
        "sreq_unsigned": bc("poll-signed", signed=False),
        "sreq_encrypted": lambda: api.backchannel("poll-signed", request="a.b.c.d.e"),
        "no_auth": bc(auth=False),
        "client_id_only": bc(auth=False, extra=[("client_id", "poll-basic")]),
        "public_client": bc("public-client"),
        "wrong_basic": lambda: api.backchannel(auth=False, headers={
            "Authorization": "Basic cG9sbC1iYXNpYzp3cm9uZw=="}),
        "wrong_post_secret": bc("poll-post", auth=False, extra=[
            ("client_id", "poll-post"), ("client_secret", "wrong")]),
        "unknown_client": bc("poll-post", auth=False, extra=[
            ("client_id", "nobody"), ("client_secret", "wrong")]),
        "basic_as_post": bc("poll-basic", auth="client_secret_post"),
        "key_client_as_post": bc("poll-rs256", auth="client_secret_post"),
        "two_methods": bc("poll-basic", auth="client_secret_post", headers=basic_header),
        "assertion_ok": assertion(),
        "assertion_aud_endpoint": assertion(aud=f"{ISSUER}/backchannel"),
        "assertion_aud_wrong": assertion(aud="https://elsewhere.example"),
        "assertion_iss": assertion(iss="someone-else"),
        "assertion_expired": assertion(exp=now - 5),
        "assertion_other_key": assertion(key=KEYS["poll-second"]),
        "assertion_no_jti": assertion(jti=DROP),
    }


async def sc_backchannel(env: Env) -> Obs:
    obs: Obs = {}
    statuses: dict[str, int] = {}
    wrong_basic: httpx.Response | None = None
    no_scope: httpx.Response | None = None
    for name, send in _bc_cases(env.api).items():
        resp = await send()
        code = code_of(resp)
        obs[f"bc.{name}"] = code
        if code is not None:
            statuses.setdefault(code, resp.status_code)
        if name == "wrong_basic":
            wrong_basic = resp
        if name == "no_scope":
            no_scope = resp
    for code, status in statuses.items():
        obs[f"bc.status:{code}"] = status
    await env.idle()
    obs["bc.pings"] = len(env.recorder.calls)
    assert wrong_basic is not None and no_scope is not None
    obs["fmt.www"] = wrong_basic.headers.get("www-authenticate")
    obs["fmt.content_type"] = no_scope.headers["content-type"]
    try:
        body = no_scope.json()
    except ValueError:
        body = {}
    obs["fmt.description_ok"] = bool(DESCRIPTION_RE.match(body.get("error_description", "")))
    obs["fmt.error_uri"] = "error_uri" in body
    return obs


async def _id_token_obs(api: Api, prefix: str, token: str | None, cid: str, rid: str,
                        access: str, refresh: str, t0: float) -> Obs:
    if token is None:
        return {f"{prefix}.present": False}
    claims = unverified(token)
    try:
        await api.verify_id_token(token, cid, verify_exp=False, verify_aud=False,
                                  verify_iss=False)
        sig_ok = True
    except jwt.InvalidTokenError:
        sig_ok = False
    return {
        f"{prefix}.present": True,
        f"{prefix}.sig_ok": sig_ok,
        f"{prefix}.alg": jwt.get_unverified_header(token)["alg"],
        f"{prefix}.iss_ok": claims.get("iss") == api.issuer,
        f"{prefix}.aud_ok": claims.get("aud") == cid,
        f"{prefix}.exp_ok": claims.get("exp", 0) > time.time(),
        f"{prefix}.sub": claims.get("sub"),
        f"{prefix}.acr": claims.get("acr"),
        f"{prefix}.auth_time_ok": t0 - 2 <= claims.get("auth_time", 0) <= time.time() + 2,
        f"{prefix}.auth_req_id_ok": claims.get("urn:openid:params:jwt:claim:auth_req_id") == rid,
        f"{prefix}.at_hash_ok": claims.get("at_hash") == half_hash(access),
        f"{prefix}.rt_hash_ok":
            claims.get("urn:openid:params:jwt:claim:rt_hash") == half_hash(refresh),
    }


async def sc_token(env: Env) -> Obs:
    api = env.api
    obs: Obs = {}

    async def start(cid: str = "poll-basic", **kw: Any) -> str:
        rid: str = (await api.start(cid, **kw))["auth_req_id"]
        return rid

    rid = await start()
    obs["tk.missing_id"] = code_of(await api.token("poll-basic", None))
    obs["tk.content_type"] = (await api.token("poll-basic", None)).headers["content-type"]
    obs["tk.unknown_id"] = code_of(await api.token("poll-basic", "A" * 36))
    obs["tk.unsupported_grant"] = code_of(await api.token("poll-basic", rid,
                                                          grant_type=CIBA + "x"))
    wrong = await api.post_form("/token", [("grant_type", CIBA), ("auth_req_id", rid)],
                                {"Authorization": "Basic cG9sbC1iYXNpYzp3cm9uZw=="})
    obs["tk.wrong_basic"] = code_of(wrong)
    obs["tk.wrong_basic_www"] = wrong.headers.get("www-authenticate")
    obs["tk.non_ciba"] = code_of(await api.token("no-ciba", rid))
    obs["tk.unknown_param"] = code_of(await api.token("poll-basic", rid,
                                                      extra=[("x_probe", "1")]))
    env.provider.transactions[rid].last_poll = None
    obs["tk.pending"] = code_of(await api.token("poll-basic", rid))
    obs["tk.fast"] = code_of(await api.token("poll-basic", rid))
    await api.deny(rid)
    obs["tk.denied"] = code_of(await api.token("poll-basic", rid))

    push = await start("push-basic")
    obs["tk.push_poll"] = code_of(await api.token("push-basic", push))
    await api.deny(push)

    cross = await start()
    await api.approve(cross)
    obs["tk.cross"] = code_of(await api.token("poll-post", cross))
    obs["tk.owner_after_cross"] = code_of(await api.token("poll-basic", cross))

    t0 = time.time()
    rid = await start(acr_values="urn:acr:high urn:acr:low")
    await api.approve(rid)
    resp = await api.token("poll-basic", rid)
    body = resp.json()
    obs["tk.flow"] = code_of(resp)
    obs["tk.token_type"] = body.get("token_type")
    obs["tk.cache"] = (resp.headers.get("cache-control"), resp.headers.get("pragma"))
    obs["tk.again"] = code_of(await api.token("poll-basic", rid))
    obs.update(await _id_token_obs(api, "idt", body.get("id_token"), "poll-basic", rid,
                                   body.get("access_token", ""), body.get("refresh_token", ""),
                                   t0))
    _, second = await api.flow()
    first_sub = unverified(body["id_token"])["sub"] if "id_token" in body else None
    second_sub = unverified(second.json()["id_token"])["sub"] \
        if "id_token" in second.json() else None
    obs["idt.sub_stable"] = first_sub == second_sub
    obs["tk.id_token_hint"] = "no id_token"
    if "id_token" in body:
        hinted = await api.backchannel(login_hint=DROP, id_token_hint=body["id_token"])
        obs["tk.id_token_hint"] = code_of(hinted)
    return obs


async def sc_ping(env: Env) -> Obs:
    api, rec = env.api, env.recorder
    obs: Obs = {}
    rid = (await api.start("ping-basic", client_notification_token="ping-token"))["auth_req_id"]
    await api.approve(rid)
    await env.idle()
    calls = list(rec.calls)
    obs["ping.count"] = len(calls)
    obs["ping.authorization"] = calls[0].headers.get("authorization") if calls else None
    obs["ping.body"] = json.loads(calls[0].content) == {"auth_req_id": rid} if calls else None
    obs["ping.keys"] = sorted(json.loads(calls[0].content)) if calls else None
    rec.calls.clear()
    rid = (await api.start("ping-basic"))["auth_req_id"]
    await api.deny(rid)
    await env.idle()
    obs["ping.deny_count"] = len(rec.calls)
    rec.calls.clear()
    rid = (await api.start("poll-basic"))["auth_req_id"]
    await api.approve(rid)
    await env.idle()
    obs["ping.poll_client_count"] = len(rec.calls)
    rec.calls.clear()
    await api.set_endpoint("ping-basic", f"{RECEIVER}/redirect")
    rid = (await api.start("ping-basic"))["auth_req_id"]
    await api.approve(rid)
    await env.idle()
    obs["ping.redirect_paths"] = [c.url.path for c in rec.calls]
    return obs


async def sc_push(env: Env) -> Obs:
    api, rec = env.api, env.recorder
    obs: Obs = {}
    t0 = time.time()
    rid = (await api.start("push-basic", client_notification_token="push-token",
                           acr_values="urn:acr:x"))["auth_req_id"]
    await api.approve(rid)
    await env.idle()
    calls = list(rec.calls)
    obs["push.count"] = len(calls)
    obs["push.authorization"] = calls[0].headers.get("authorization") if calls else None
    body = json.loads(calls[0].content) if calls else {}
    obs["push.has_auth_req_id"] = body.get("auth_req_id") == rid
    obs["push.members"] = sorted(k for k in body if k != "auth_req_id")
    obs.update(await _id_token_obs(api, "pidt", body.get("id_token"), "push-basic", rid,
                                   body.get("access_token", ""), body.get("refresh_token", ""),
                                   t0))
    rec.calls.clear()
    rid = (await api.start("push-basic"))["auth_req_id"]
    await api.deny(rid)
    await env.idle()
    obs["push.deny"] = [json.loads(c.content) == {"error": "access_denied", "auth_req_id": rid}
                        for c in rec.calls]
    rec.calls.clear()
    await api.set_endpoint("push-basic", f"{RECEIVER}/redirect")
    rid = (await api.start("push-basic"))["auth_req_id"]
    await api.approve(rid)
    await env.idle()
    obs["push.redirect_paths"] = [c.url.path for c in rec.calls]
    return obs


async def sc_registration(env: Env) -> Obs:
    ciba = ["urn:openid:params:grant-type:ciba"]
    cases: dict[str, dict[str, Any]] = {
        "ok": {"grant_types": ciba, "backchannel_token_delivery_mode": "poll",
               "backchannel_user_code_parameter": True},
        "no_mode": {"grant_types": ciba},
        "bad_mode": {"grant_types": ciba, "backchannel_token_delivery_mode": "email"},
        "ping_no_endpoint": {"grant_types": ciba, "backchannel_token_delivery_mode": "ping"},
        "alg_none": {"grant_types": ciba, "backchannel_token_delivery_mode": "poll",
                     "backchannel_authentication_request_signing_alg": "none"},
        "alg_hs256": {"grant_types": ciba, "backchannel_token_delivery_mode": "poll",
                      "backchannel_authentication_request_signing_alg": "HS256"},
    }
    obs: Obs = {}
    for name, meta in cases.items():
        resp = await env.api.http.post("/register", json=meta)
        obs[f"reg.{name}"] = code_of(resp)
        if name == "ok":
            obs["reg.echo_user_code"] = resp.json().get("backchannel_user_code_parameter")
    return obs


async def sc_timing(env: Env) -> Obs:
    """Expiry: poll client (token endpoint) and push client (error push)."""
    api = env.api
    poll = (await api.start(requested_expiry="1"))["auth_req_id"]
    push = (await api.start("push-basic", requested_expiry="1"))["auth_req_id"]
    ping = (await api.start("ping-basic", requested_expiry="1"))["auth_req_id"]
    await asyncio.sleep(1.05)
    await env.idle()
    return {
        "time.poll_expired": code_of(await api.token("poll-basic", poll)),
        "time.ping_expired": code_of(await api.token("ping-basic", ping)),
        "time.push_expiry": [json.loads(c.content) == {"error": "expired_token",
                                                        "auth_req_id": push}
                             for c in env.recorder.calls],
    }


async def sc_fapi(env: FapiEnv) -> Obs:
    """The FAPI-CIBA mode (reference-tls.toml clients, certificates injected in-process)."""
    api = env.api
    now = int(time.time())
    doc = (await api.http.get("/.well-known/openid-configuration")).json()
    obs: Obs = {
        "f.modes": doc.get("backchannel_token_delivery_modes_supported"),
        "f.auth_methods": doc.get("token_endpoint_auth_methods_supported"),
        "f.request_algs": doc.get("backchannel_authentication_request_signing_alg_values_supported"),
        "f.bound": doc.get("tls_client_certificate_bound_access_tokens"),
        "f.aliases": sorted(doc.get("mtls_endpoint_aliases", {})),
        "f.id_algs": doc.get("id_token_signing_alg_values_supported"),
    }
    cases = {
        "ok": api.backchannel(),
        "mtls_ok": api.backchannel("poll-mtls"),
        "self_signed_ok": api.backchannel("poll-mtls-self"),
        "mtls_no_cert": api.backchannel("poll-mtls", cert=False),
        "mtls_other_cert": api.backchannel("poll-mtls", cert="client-b"),
        "unsigned": api.backchannel(signed=False),
        "no_binding": api.backchannel(params={"binding_message": None}),
        "rs256_request": api.backchannel(alg="RS256"),
        "rs256_assertion": api.backchannel(assertion_alg="RS256"),
        "lifetime_70": api.backchannel(nbf=now, exp=now + 4200),
        "nbf_70_past": api.backchannel(nbf=now - 4200, iat=now - 4200, exp=now + 300),
        "lifetime_60": api.backchannel(nbf=now - 1, exp=now + 3599),
        "future_10s": api.backchannel(nbf=now + 10, iat=now + 10),
        "secret_client": api.backchannel("poll-basic", signed=False),
    }
    for name, call in cases.items():
        obs[f"f.{name}"] = code_of(await call)
    push_reg = await api.http.post("/register", json={
        "grant_types": ["urn:openid:params:grant-type:ciba"],
        "backchannel_token_delivery_mode": "push", "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": "CN=dyn,O=ciba-harness test",
        "backchannel_client_notification_endpoint": f"{RECEIVER}/cb"})
    obs["f.push_reg"] = code_of(push_reg)
    rid, resp = await api.flow(params={"acr_values": "urn:acr:high"})
    body = resp.json()
    obs["f.flow"] = code_of(resp)
    access, refresh = body.get("access_token", ""), body.get("refresh_token", "")
    id_token = body.get("id_token")
    obs["f.acr"] = unverified(id_token).get("acr") if id_token else None
    obs["f.id_alg"] = jwt.get_unverified_header(id_token)["alg"] if id_token else None
    obs["f.entropy_ok"] = all(len(t) >= 22 and shannon_bits(t) >= 128 for t in (access, refresh))
    obs["f.userinfo_cert"] = (await api.userinfo(access, "client-c")).status_code
    obs["f.userinfo_nocert"] = (await api.userinfo(access, None)).status_code
    obs["f.userinfo_other_cert"] = (await api.userinfo(access, "client-d")).status_code
    cnf = (await api.introspect("poll-fapi", access)).json().get("cnf", {})
    obs["f.cnf"] = cnf.get("x5t#S256") == thumbprint("client-c")
    refreshed = (await api.refresh("poll-fapi", refresh)).json()
    obs["f.refresh_rotates"] = "refresh_token" in refreshed
    pending = (await api.backchannel()).json()["auth_req_id"]
    await api.approve(pending)
    obs["f.token_no_cert"] = code_of(await api.token("poll-fapi", pending, cert=False))
    mtls_rid, mtls_tokens = await api.flow("poll-mtls")
    obs["f.mtls_flow"] = code_of(mtls_tokens)
    return obs


def sc_tls(faults: frozenset[str]) -> Obs:
    context = server_ssl_context(load_tls_settings(), faults=faults)
    return {
        "tls.ciphers": sorted(c["name"] for c in context.get_ciphers()
                              if c["protocol"] != "TLSv1.3"),
        "tls.minimum": context.minimum_version.name,
    }


FAST_SCENARIOS: dict[str, Scenario] = {
    "disc": sc_discovery, "ack": sc_ack, "bc": sc_backchannel, "tk": sc_token,
    "ping": sc_ping, "push": sc_push, "reg": sc_registration,
}

# ------------------------------------------------------------------------------- expectations

ALL_IDT = "idt.*"
FLOWS = ("tk.*", "idt.*", "ping.*", "push.*", "pidt.*")

EXPECTED: dict[str, tuple[str, ...]] = {
    "discovery_bad_modes": ("disc.backchannel_token_delivery_modes_supported",),
    "discovery_missing_backchannel_endpoint": ("disc.backchannel_authentication_endpoint",),
    "discovery_signing_alg_none": (
        "disc.backchannel_authentication_request_signing_alg_values_supported",),
    "discovery_user_code_param_as_string": ("disc.backchannel_user_code_parameter_supported",),
    "discovery_no_ciba_grant": ("disc.grant_types_supported",),
    "discovery_issuer_mismatch": ("disc.issuer",),
    "registration_without_mode_accepted": ("reg.no_mode",),
    "registration_unadvertised_mode_accepted": ("reg.bad_mode",),
    "registration_ping_without_endpoint_accepted": ("reg.ping_no_endpoint",),
    "registration_signing_alg_none_accepted": ("reg.alg_none", "reg.alg_hs256"),
    "registration_user_code_not_echoed": ("reg.echo_user_code",),
    "missing_scope_accepted": ("bc.no_scope",),
    "scope_order_sensitive": ("bc.scope_reversed", "bc.status:invalid_scope?"),
    "no_hint_accepted": ("bc.no_hint",),
    "multiple_hints_accepted": ("bc.two_hints",),
    "unknown_user_wrong_error": ("bc.unknown_user",),
    "id_token_hint_not_verified": ("bc.foreign_id_token_hint",),
    "expired_login_hint_token_accepted": ("bc.expired_lht", "bc.status:expired_login_hint_token?"),
    "malformed_login_hint_token_wrong_error": ("bc.malformed_lht",),
    "missing_notification_token_accepted": ("bc.ping_no_token",),
    "long_notification_token_refused": ("bc.ping_1024_token",),
    "unknown_parameter_refused": ("bc.unknown_param",),
    "repeated_param_accepted": ("bc.repeated_scope",),
    "missing_user_code_accepted": ("bc.no_user_code", "bc.status:missing_user_code?"),
    "wrong_user_code_accepted": ("bc.wrong_user_code", "bc.status:invalid_user_code?"),
    "alg_none_request_accepted": ("bc.sreq_none",),
    "hs256_request_accepted": ("bc.sreq_hs256",),
    "request_signature_not_checked": ("bc.sreq_other_key",),
    "request_aud_not_checked": ("bc.sreq_aud",),
    "request_iss_not_checked": ("bc.sreq_iss",),
    "request_exp_not_checked": ("bc.sreq_exp_past",),
    "request_iat_not_required": ("bc.sreq_no_iat",),
    "request_nbf_not_checked": ("bc.sreq_nbf_future", "bc.sreq_no_nbf"),
    "request_jti_not_required": ("bc.sreq_no_jti",),
    "request_unknown_claim_refused": ("bc.sreq_unknown_claim",),
    "requested_expiry_string_refused": ("bc.sreq_expiry_string",),
    "unsigned_accepted_for_signing_client": ("bc.sreq_unsigned",),
    "request_alg_mismatch_accepted": ("bc.sreq_alg_mismatch",),
    "no_client_auth_accepted": ("bc.no_auth", "bc.client_id_only"),
    "basic_401_without_www_authenticate": ("fmt.www",),
    "post_secret_not_checked": ("bc.wrong_post_secret",),
    "assertion_endpoint_aud_refused": ("bc.assertion_aud_endpoint",),
    "assertion_aud_not_checked": ("bc.assertion_aud_wrong",),
    "assertion_iss_not_checked": ("bc.assertion_iss",),
    "expired_assertion_accepted": ("bc.assertion_expired",),
    "assertion_signature_not_checked": ("bc.assertion_other_key",),
    "public_client_accepted": ("bc.public_client",),
    "wrong_auth_method_accepted": ("bc.basic_as_post", "bc.key_client_as_post"),
    "multiple_auth_methods_accepted": ("bc.two_methods",),
    "ack_status_201": ("ack.status",),
    "ack_content_type_text": ("ack.content_type",),
    "ack_without_auth_req_id": ("ack.has_id", "ack.charset_ok", "ack.entropy_ok",
                                "ack.distinct?", "sc_*.crash", *FLOWS),
    "auth_req_id_bad_charset": ("ack.charset_ok",),
    "auth_req_id_low_entropy": ("ack.entropy_ok",),
    "auth_req_id_reused": ("ack.distinct",),
    "expires_in_as_string": ("ack.expires_in_type",),
    "interval_as_string": ("ack.interval_type",),
    "push_interval_in_ack": ("ack.push_interval",),
    "error_not_json": ("fmt.content_type", "fmt.description_ok?"),
    "error_extra_chars": ("fmt.description_ok",),
    "error_uri_bad_chars": ("fmt.error_uri",),
    "invalid_request_wrong_status": ("bc.status:invalid_request",),
    "expired_login_hint_token_wrong_status": ("bc.status:expired_login_hint_token",),
    "unknown_user_wrong_status": ("bc.status:unknown_user_id",),
    "non_ciba_client_can_request": ("bc.no_ciba", "bc.status:unauthorized_client?"),
    "unauthorized_client_wrong_status": ("bc.status:unauthorized_client",),
    "missing_user_code_wrong_status": ("bc.status:missing_user_code",),
    "invalid_user_code_wrong_status": ("bc.status:invalid_user_code",),
    "binding_message_error_wrong_status": ("bc.status:invalid_binding_message",),
    "invalid_client_status_403": ("bc.status:invalid_client",),
    "access_denied_wrong_status": ("bc.status:access_denied",),
    "ping_for_rejected_request": ("bc.pings",),
    "missing_auth_req_id_wrong_error": ("tk.missing_id",),
    "unknown_auth_req_id_pending": ("tk.unknown_id",),
    "cross_client_redeem": ("tk.cross", "tk.owner_after_cross"),
    "pending_as_invalid_grant": ("tk.pending", "tk.unknown_param"),
    "fast_poll_wrong_error": ("tk.fast",),
    "never_expires": ("time.poll_expired",),
    "denial_as_pending": ("tk.denied",),
    "token_missing_id_token": ("idt.present", "idt.*", "tk.id_token_hint"),
    "token_cacheable": ("tk.cache",),
    "reusable_auth_req_id": ("tk.again",),
    "push_client_can_poll": ("tk.push_poll",),
    "non_ciba_client_can_poll": ("tk.non_ciba",),
    "unsupported_grant_wrong_error": ("tk.unsupported_grant",),
    "token_invalid_client_no_www_authenticate": ("tk.wrong_basic_www",),
    "token_error_not_json": ("tk.content_type",),
    "token_unknown_param_refused": ("tk.unknown_param",),
    "token_type_wrong": ("tk.token_type",),
    "ping_not_sent_on_denial": ("ping.deny_count",),
    "ping_without_bearer": ("ping.authorization",),
    "ping_wrong_bearer": ("ping.authorization",),
    "ping_extra_members": ("ping.body", "ping.keys"),
    "ping_follows_redirect": ("ping.redirect_paths",),
    "ping_twice": ("ping.count", "ping.deny_count", "ping.redirect_paths"),
    "ping_on_poll_client": ("ping.poll_client_count",),
    "push_without_bearer": ("push.authorization",),
    "push_missing_auth_req_id": ("push.has_auth_req_id",),
    "push_missing_auth_req_id_claim": ("pidt.auth_req_id_ok",),
    "push_bad_at_hash": ("pidt.at_hash_ok",),
    "push_missing_rt_hash": ("pidt.rt_hash_ok",),
    "push_id_token_bad_signature": ("pidt.sig_ok",),
    "push_follows_redirect": ("push.redirect_paths",),
    "push_denial_as_expired": ("push.deny",),
    "push_error_wrong_code": ("time.push_expiry",),
    "push_twice": ("push.count", "push.deny", "push.redirect_paths"),
    "id_token_wrong_iss": ("idt.iss_ok",),
    "id_token_wrong_aud": ("idt.aud_ok",),
    "id_token_bad_signature": ("idt.sig_ok",),
    "id_token_expired": ("idt.exp_ok",),
    "id_token_wrong_alg": ("idt.alg",),
    "id_token_missing_acr": ("idt.acr",),
    "auth_time_before_request": ("idt.auth_time_ok",),
    "id_token_wrong_auth_req_id_claim": ("idt.auth_req_id_ok",),
    "id_token_bad_at_hash": ("idt.at_hash_ok",),
    "sub_not_stable": ("idt.sub", "idt.sub_stable"),
    # FAPI-CIBA mode (observed with sc_fapi / sc_tls; plain CIBA mode must not change)
    "fapi_binding_message_optional": ("f.no_binding",),
    "fapi_push_allowed": ("f.modes", "f.push_reg"),
    "fapi_unsigned_request_accepted": ("f.unsigned",),
    "fapi_request_lifetime_unlimited": ("f.lifetime_70", "f.nbf_70_past"),
    "fapi_id_token_missing_acr": ("f.acr",),
    "fapi_rs256_request_accepted": ("f.rs256_request",),
    "fapi_rs256_assertion_accepted": ("f.rs256_assertion",),
    "fapi_secret_client_auth_accepted": ("f.secret_client",),
    "fapi_token_not_certificate_bound": ("f.token_no_cert", "f.userinfo_nocert",
                                         "f.userinfo_other_cert", "f.cnf"),
    "fapi_future_jwt_refused": ("f.future_10s",),
    "fapi_refresh_token_rotated": ("f.refresh_rotates",),
    "fapi_access_token_low_entropy": ("f.entropy_ok",),
    "tls_weak_cipher_accepted": ("tls.ciphers",),
}


def _needs_timing(name: str) -> bool:
    return any(p.startswith("time.") for p in EXPECTED[name])


def _fapi_side(name: str) -> bool:
    """Observed in FAPI-CIBA mode / on the TLS server (the FAPI and TLS-server faults)."""
    return FAULTS[name].profile == "fapi-ciba"


async def _observe_fapi(faults: frozenset[str]) -> Obs:
    async with make_fapi_env(load_tls_settings(), faults) as env:
        try:
            obs = await sc_fapi(env)
        except Exception as exc:  # a scenario that cannot run is an observation too
            obs = {"sc_fapi.crash": f"{type(exc).__name__}: {exc}"}
    obs.update(sc_tls(faults))
    return obs


_FAPI_BASELINE: list[Obs] = []


async def fapi_baseline() -> Obs:
    if not _FAPI_BASELINE:
        _FAPI_BASELINE.append(await _observe_fapi(frozenset()))
    return _FAPI_BASELINE[0]


async def _observe(settings: ProviderSettings, faults: frozenset[str], timing: bool) -> Obs:
    async def one(scenario: Scenario) -> Obs:
        async with make_env(settings, faults) as env:
            try:
                return await scenario(env)
            except Exception as exc:  # a scenario that cannot run is an observation too
                return {f"{scenario.__name__}.crash": f"{type(exc).__name__}"}
    scenarios = list(FAST_SCENARIOS.values()) + ([sc_timing] if timing else [])
    results = await asyncio.gather(*(one(s) for s in scenarios))
    merged: Obs = {}
    for r in results:
        merged.update(r)
    return merged


_BASELINE: dict[bool, Obs] = {}


async def baseline(settings: ProviderSettings, timing: bool) -> Obs:
    if timing not in _BASELINE:
        _BASELINE[timing] = await _observe(settings, frozenset(), timing)
    return _BASELINE[timing]


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(key, p.rstrip("?")) for p in patterns)


# ------------------------------------------------------------------------------- tests


def test_every_fault_has_an_expectation() -> None:
    assert set(EXPECTED) == set(FAULTS)


@pytest.mark.asyncio
async def test_faultless_baseline_is_sane(settings: ProviderSettings) -> None:
    obs = await baseline(settings, timing=False)
    assert not any(k.endswith(".crash") for k in obs), obs
    assert obs["bc.ok"] is None and obs["bc.no_scope"] == "invalid_request"
    assert obs["tk.flow"] is None and obs["idt.sig_ok"] is True
    assert obs["ping.count"] == 1 and obs["push.count"] == 1
    assert obs["pidt.at_hash_ok"] is True and obs["push.deny"] == [True]


@pytest.mark.asyncio
async def test_faultless_fapi_baseline_is_sane() -> None:
    obs = await fapi_baseline()
    assert not any(k.endswith(".crash") for k in obs), obs
    assert obs["f.ok"] is None and obs["f.mtls_ok"] is None and obs["f.self_signed_ok"] is None
    assert obs["f.mtls_no_cert"] == obs["f.mtls_other_cert"] == "invalid_client"
    assert obs["f.unsigned"] == obs["f.no_binding"] == obs["f.rs256_request"] == "invalid_request"
    assert obs["f.lifetime_70"] == obs["f.nbf_70_past"] == "invalid_request"
    assert obs["f.lifetime_60"] is None and obs["f.future_10s"] is None
    assert obs["f.rs256_assertion"] == obs["f.secret_client"] == "invalid_client"
    assert obs["f.modes"] == ["poll", "ping"] and obs["f.push_reg"] == "invalid_client_metadata"
    assert obs["f.flow"] is None and obs["f.mtls_flow"] is None and obs["f.acr"] == "urn:acr:high"
    assert obs["f.id_alg"] == "PS256" and obs["f.entropy_ok"] is True and obs["f.cnf"] is True
    assert (obs["f.userinfo_cert"], obs["f.userinfo_nocert"], obs["f.userinfo_other_cert"]) == (
        200, 401, 401)
    assert obs["f.refresh_rotates"] is False and obs["f.token_no_cert"] == "invalid_request"
    assert obs["f.aliases"] == ["backchannel_authentication_endpoint", "introspection_endpoint",
                                "token_endpoint", "userinfo_endpoint"]
    assert obs["tls.minimum"] == "TLSv1_2" and len(obs["tls.ciphers"]) == 4
    assert MTLS_BASE


@pytest.mark.asyncio
@pytest.mark.parametrize("name", sorted(FAULTS))
async def test_fault_changes_exactly_its_observations(
    settings: ProviderSettings, name: str
) -> None:
    if _fapi_side(name):
        good = await fapi_baseline()
        bad = await _observe_fapi(frozenset({name}))
        changed = sorted(k for k in set(good) | set(bad) if good.get(k) != bad.get(k))
        patterns = EXPECTED[name]
        missing = [p for p in patterns if "*" not in p and not p.endswith("?")
                   and p not in changed]
        unexpected = [k for k in changed if not _matches(k, patterns)]
        assert not missing, f"{name}: no observable difference at {missing}"
        assert not unexpected, (
            f"{name}: also changed {[(k, good.get(k), bad.get(k)) for k in unexpected]}"
        )
        return
    timing = _needs_timing(name)
    good = await baseline(settings, timing)
    bad = await _observe(settings, frozenset({name}), timing)
    changed = sorted(k for k in set(good) | set(bad) if good.get(k) != bad.get(k))
    patterns = EXPECTED[name]
    required = [p for p in patterns if not p.endswith("?") and "*" not in p]
    missing = [p for p in required if p not in changed]
    unexpected = [k for k in changed if not _matches(k, patterns)]
    assert not missing, f"{name}: no observable difference at {missing}"
    assert not unexpected, (
        f"{name}: also changed {[(k, good.get(k), bad.get(k)) for k in unexpected]}"
    )


@pytest.mark.asyncio
async def test_fapi_faults_leave_plain_ciba_mode_alone(settings: ProviderSettings) -> None:
    """All FAPI and TLS-server faults at once change nothing in plain CIBA mode."""
    fapi = frozenset(name for name in FAULTS if _fapi_side(name))
    good = await baseline(settings, False)
    bad = await _observe(settings, fapi, False)
    changed = sorted(k for k in set(good) | set(bad) if good.get(k) != bad.get(k))
    assert not changed, f"FAPI faults change plain CIBA mode at {changed}"


def test_requirements_exist_in_the_catalogue() -> None:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} not available")
    ids = set(re.findall(r"^\| ((?:FAPI-)?CIBA-[A-Z]*-?\d+) \|", SPEC.read_text(), re.MULTILINE))
    unknown = {f.name: f.requirement for f in FAULTS.values() if f.requirement not in ids}
    assert not unknown


def test_docs_fault_table_is_in_sync() -> None:
    doc = (REPO / "docs" / "faults.md").read_text()
    assert faults_markdown() in doc, "regenerate: python -m ciba_harness.provider --faults-markdown"


def test_catalogue_shape() -> None:
    for name, fault in FAULTS.items():
        assert fault.name == name and re.match(r"^[a-z0-9_]+$", name)
        assert fault.description and "\n" not in fault.description


def test_fault_switches_are_typed_fields_of_the_catalogue() -> None:
    """One bool field per catalogue entry: naming a fault switches on that field alone."""
    assert list(FAULTS) == [f.name for f in dataclasses.fields(Faults)]
    assert NO_FAULTS.names == frozenset()
    for name in ("missing_scope_accepted", "push_twice"):
        flags = Faults.of([name])
        assert getattr(flags, name) is True and flags.names == {name}
    assert Faults.of(Faults.of(["ping_twice"])) == Faults.of(["ping_twice"])
    assert SERVER_FAULTS == {"tls_weak_cipher_accepted"}
    assert FAULTS["tls_weak_cipher_accepted"].server_level
    assert not FAULTS["ping_twice"].server_level


def test_unknown_fault_names_are_refused_with_a_suggestion() -> None:
    with pytest.raises(FaultError) as raised:
        Faults.of(["ping_twice", "zzz", "missing_scope_acepted"])
    assert raised.value.unknown == ("missing_scope_acepted", "zzz")
    assert str(raised.value) == (
        "unknown fault: missing_scope_acepted (did you mean 'missing_scope_accepted'?), zzz"
    )
    assert isinstance(raised.value, ValueError)
