"""Each policy of the reference provider changes what docs/policies.md says, and only under it.

Every scenario observes one behaviour; it runs against the default provider and against the
provider under the policy, and the two observations must be the documented ones.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from provider_helpers import (
    AUTH_REQ_ID_RE,
    CLIENTS,
    DROP,
    ISSUER,
    PROFILE,
    RECEIVER,
    REPO,
    Api,
    Env,
    error_of,
    login_hint_token,
    make_env,
)

from ciba_harness.provider import ProfileError, ProviderSettings, create_app, start_provider
from ciba_harness.provider.policies import (
    COMBINATIONS,
    POLICIES,
    PolicyError,
    ProviderPolicy,
    policies_markdown,
    resolve_policies,
)
from ciba_harness.provider.settings import settings_from_dict

Observe = Callable[[Env], Awaitable[Any]]


async def _claims(env: Env, **overrides: Any) -> dict[str, Any]:
    _, resp = await env.api.flow(**overrides)
    assert resp.status_code == 200, resp.text
    return await env.api.verify_id_token(resp.json()["id_token"], "poll-basic")


async def refresh_rotation(env: Env) -> tuple[int, bool, int]:
    _, resp = await env.api.flow()
    old = resp.json()["refresh_token"]
    first = await env.api.token("poll-basic", None, grant_type="refresh_token",
                                extra=[("refresh_token", old)])
    again = await env.api.token("poll-basic", None, grant_type="refresh_token",
                                extra=[("refresh_token", old)])
    return first.status_code, "refresh_token" in first.json(), again.status_code


async def granted_scope(env: Env) -> str:
    _, resp = await env.api.flow(scope="openid frobnicate")
    scope: str = resp.json()["scope"]
    return scope


async def unknown_scope_answer(env: Env) -> tuple[int, str | None]:
    return error_of(await env.api.backchannel(scope="openid frobnicate"))


async def scope_without_openid(env: Env) -> tuple[int, str | None]:
    return error_of(await env.api.backchannel(scope="profile"))


async def empty_repeat(env: Env) -> tuple[int, str | None]:
    return error_of(await env.api.backchannel(extra=[("scope", "")]))


async def ack_has_interval(env: Env) -> bool:
    return "interval" in await env.api.start()


async def fast_poll(env: Env) -> str | None:
    rid = (await env.api.start())["auth_req_id"]
    await env.api.token("poll-basic", rid)
    return error_of(await env.api.token("poll-basic", rid))[1]


async def long_after_expiry(env: Env) -> tuple[str | None, str | None]:
    rid = (await env.api.start())["auth_req_id"]
    tx = env.provider.transactions[rid]
    tx.expires_at = time.monotonic() - 0.5  # just expired: inside the window
    soon = error_of(await env.api.token("poll-basic", rid))[1]
    tx.expires_at = time.monotonic() - 30  # long expired
    return soon, error_of(await env.api.token("poll-basic", rid))[1]


async def polls_after_denial(env: Env) -> tuple[str | None, str | None]:
    rid = (await env.api.start())["auth_req_id"]
    assert (await env.api.deny(rid)).status_code == 200
    first = error_of(await env.api.token("poll-basic", rid))[1]
    return first, error_of(await env.api.token("poll-basic", rid))[1]


async def invalid_client_statuses(env: Env) -> tuple[int, int]:
    post = await env.api.post_form("/backchannel", [
        ("client_id", "poll-post"), ("client_secret", "wrong"), ("scope", "openid"),
        ("login_hint", "alice")])
    basic = await env.api.backchannel("poll-basic", headers={"Authorization": "Basic eDp5"})
    return post.status_code, basic.status_code


async def register_without_redirect_uris(env: Env) -> tuple[int, int]:
    meta: dict[str, Any] = {"grant_types": ["urn:openid:params:grant-type:ciba"],
                            "backchannel_token_delivery_mode": "poll"}
    plain = await env.api.http.post("/register", json=meta)
    ciba_only = await env.api.http.post("/register", json={**meta, "response_types": []})
    assert plain.status_code == 201 or plain.json()["error"] == "invalid_redirect_uri"
    return plain.status_code, ciba_only.status_code


async def binding_message_with_space(env: Env) -> tuple[int, str | None]:
    return error_of(await env.api.backchannel(binding_message="hello world"))


async def user_code_of_other_client(env: Env) -> tuple[int, str | None]:
    return error_of(await env.api.backchannel("poll-basic", user_code="0000"))


async def error_has_description(env: Env) -> bool:
    resp = await env.api.backchannel(scope="profile")
    return "error_description" in resp.json()


def claim_present(name: str) -> Observe:
    async def observe(env: Env) -> bool:
        return name in await _claims(env, acr_values="urn:acr:one")
    return observe


async def refresh_token_issued(env: Env) -> tuple[bool, bool]:
    _, plain = await env.api.flow()
    _, offline = await env.api.flow(scope="openid offline_access")
    return "refresh_token" in plain.json(), "refresh_token" in offline.json()


async def wrong_method_body(env: Env) -> tuple[int, str]:
    resp = await env.api.http.get("/backchannel")
    return resp.status_code, resp.headers["content-type"].split(";")[0]


async def id_token_kids(env: Env) -> tuple[int, int, bool]:
    """(distinct kids over 7 ID tokens, keys in the JWKS, every token verified right away)."""
    kids, verified = set(), True
    for _ in range(7):
        _, resp = await env.api.flow()
        token = resp.json()["id_token"]
        kids.add(jwt.get_unverified_header(token)["kid"])
        try:
            await env.api.verify_id_token(token, "poll-basic")
        except (jwt.PyJWTError, StopIteration):
            verified = False
    return len(kids), len((await env.api.jwks())["keys"]), verified


def client_signed_hint(cid: str = "poll-basic", user: str = "alice") -> str:
    secret = CLIENTS[cid]["client_secret"]
    claims = {"sub_id": {"format": "opaque", "id": user}, "exp": int(time.time()) + 300}
    return jwt.encode(claims, secret, algorithm="HS256")


async def hint_formats(env: Env) -> tuple[int, int]:
    provider_format = await env.api.backchannel(login_hint=DROP,
                                                login_hint_token=login_hint_token())
    client_format = await env.api.backchannel(login_hint=DROP,
                                              login_hint_token=client_signed_hint())
    return provider_format.status_code, client_format.status_code


async def pragma(env: Env) -> str | None:
    _, resp = await env.api.flow()
    value: str | None = resp.headers.get("pragma")
    return value


async def id_token_alg(env: Env) -> tuple[str, list[str], str | None]:
    claims_ok = await _claims(env)  # verifies against the JWKS
    assert claims_ok["sub"] == "alice"
    _, resp = await env.api.flow()
    header = jwt.get_unverified_header(resp.json()["id_token"])
    registered = await env.api.http.post("/register", json={
        "grant_types": ["urn:openid:params:grant-type:ciba"],
        "backchannel_token_delivery_mode": "poll", "response_types": []})
    return (header["alg"], (await env.api.discovery())["id_token_signing_alg_values_supported"],
            registered.json().get("id_token_signed_response_alg"))


async def token_type(env: Env) -> str:
    _, resp = await env.api.flow()
    value: str = resp.json()["token_type"]
    return value


async def response_members(env: Env) -> tuple[bool, bool]:
    ack = await env.api.start()
    _, resp = await env.api.flow()
    standard_ack = {"auth_req_id", "expires_in", "interval"}
    standard_token = {"access_token", "token_type", "expires_in", "refresh_token", "id_token",
                      "scope"}
    return set(ack) > standard_ack, set(resp.json()) > standard_token


async def userinfo_after_replay(env: Env) -> int:
    rid, resp = await env.api.flow()
    access = resp.json()["access_token"]
    assert error_of(await env.api.token("poll-basic", rid)) == (400, "invalid_grant")
    info = await env.api.http.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
    return info.status_code


async def notified_on_expiry(cid: str, env: Env) -> int:
    """Notifications for a request of ``cid`` that expires unanswered (1 s)."""
    rid = (await env.api.start(cid, requested_expiry="1"))["auth_req_id"]
    await asyncio.sleep(1.4)
    await env.idle()
    return sum(1 for body in env.recorder.bodies() if body.get("auth_req_id") == rid)


async def ping_on_expiry(env: Env) -> int:
    return await notified_on_expiry("ping-basic", env)


async def push_on_expiry(env: Env) -> int:
    return await notified_on_expiry("push-basic", env)


async def poll_client_notification_token(env: Env) -> tuple[int, str | None]:
    return error_of(await env.api.backchannel("poll-basic", client_notification_token="abc"))


async def register_http_endpoint(env: Env) -> tuple[int, int]:
    meta: dict[str, Any] = {"grant_types": ["urn:openid:params:grant-type:ciba"],
                            "backchannel_token_delivery_mode": "ping", "response_types": []}
    http = await env.api.http.post("/register", json={
        **meta, "backchannel_client_notification_endpoint": "http://127.0.0.1:9/cb"})
    https = await env.api.http.post("/register", json={
        **meta, "backchannel_client_notification_endpoint": "https://rp.test/cb"})
    return http.status_code, https.status_code


async def expires_in_of_request(env: Env) -> int:
    value: int = (await env.api.start(requested_expiry="30"))["expires_in"]
    return value


async def auth_req_id_shape(env: Env) -> tuple[bool, bool]:
    rid: str = (await env.api.start())["auth_req_id"]
    return "." in rid, bool(re.fullmatch(AUTH_REQ_ID_RE, rid))


async def attempts_after_failure(env: Env) -> int:
    """Ping attempts for a request whose notification endpoint answers 500."""
    await env.api.set_endpoint("ping-basic", f"{RECEIVER}/fail")
    rid = (await env.api.start("ping-basic"))["auth_req_id"]
    assert (await env.api.approve(rid)).status_code == 200
    await env.idle()
    return sum(1 for d in env.provider.deliveries if d.auth_req_id == rid)


async def scope_member(env: Env) -> tuple[bool, bool]:
    """(scope in the token response as requested, ... when an unknown value was dropped)."""
    _, same = await env.api.flow()
    _, narrowed = await env.api.flow(scope="openid frobnicate")
    return "scope" in same.json(), "scope" in narrowed.json()


async def access_token_shape(env: Env) -> tuple[str | None, int]:
    _, resp = await env.api.flow()
    access = resp.json()["access_token"]
    typ = jwt.get_unverified_header(access)["typ"] if access.count(".") == 2 else None
    info = await env.api.http.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
    return typ, info.status_code


async def refresh_id_token(env: Env) -> str | None:
    """The sub of the ID token the refresh grant returns (None: no ID token)."""
    _, resp = await env.api.flow()
    refreshed = await env.api.token("poll-basic", None, grant_type="refresh_token",
                                    extra=[("refresh_token", resp.json()["refresh_token"])])
    token = refreshed.json().get("id_token")
    if token is None:
        return None
    sub: str = (await env.api.verify_id_token(token, "poll-basic"))["sub"]
    return sub


async def error_uri(env: Env) -> str | None:
    value: str | None = (await env.api.backchannel(scope="profile")).json().get("error_uri")
    return value


#: policy -> (observation, under the default, under the policy)
SCENARIOS: dict[str, tuple[Observe, Any, Any]] = {
    "refresh_token_rotation": (refresh_rotation, (200, False, 200), (200, True, 400)),
    "unknown_scope_kept": (granted_scope, "openid", "openid frobnicate"),
    "unknown_scope_refused": (unknown_scope_answer, (200, None), (400, "invalid_scope")),
    "scope_without_openid_invalid_scope": (
        scope_without_openid, (400, "invalid_request"), (400, "invalid_scope")),
    "empty_params_omitted": (empty_repeat, (400, "invalid_request"), (200, None)),
    "no_interval": (ack_has_interval, True, False),
    "never_slow_down": (fast_poll, "slow_down", "authorization_pending"),
    "expired_token_window": (
        long_after_expiry, ("expired_token", "expired_token"), ("expired_token", "invalid_grant")),
    "invalid_grant_after_denial": (
        polls_after_denial, ("access_denied", "access_denied"), ("access_denied", "invalid_grant")),
    "invalid_client_400": (invalid_client_statuses, (401, 401), (400, 401)),
    "registration_requires_redirect_uris": (register_without_redirect_uris, (201, 201), (400, 201)),
    "strict_binding_message": (
        binding_message_with_space, (200, None), (400, "invalid_binding_message")),
    "user_code_any_client": (user_code_of_other_client, (200, None), (400, "invalid_user_code")),
    "no_error_description": (error_has_description, True, False),
    "no_at_hash": (claim_present("at_hash"), True, False),
    "no_rt_hash": (claim_present("urn:openid:params:jwt:claim:rt_hash"), True, False),
    "no_auth_req_id_claim": (claim_present("urn:openid:params:jwt:claim:auth_req_id"), True, False),
    "no_acr": (claim_present("acr"), True, False),
    "refresh_token_only_with_offline_access": (refresh_token_issued, (True, True), (False, True)),
    "plain_text_wrong_method": (
        wrong_method_body, (405, "application/json"), (405, "text/plain")),
    "jwks_rotation_keep_old": (id_token_kids, (1, 1, True), (3, 2, True)),
    "jwks_rotation_drop_old": (id_token_kids, (1, 1, True), (3, 1, True)),
    "login_hint_token_client_signed": (hint_formats, (200, 400), (400, 200)),
    "no_pragma": (pragma, "no-cache", None),
    "id_token_ps256": (id_token_alg, ("RS256", ["RS256"], None), ("PS256", ["PS256"], "PS256")),
    "id_token_es256": (id_token_alg, ("RS256", ["RS256"], None), ("ES256", ["ES256"], "ES256")),
    "token_type_lowercase": (token_type, "Bearer", "bearer"),
    "extra_response_members": (response_members, (False, False), (True, True)),
    "replay_revokes_tokens": (userinfo_after_replay, 200, 401),
    "ping_on_expiry": (ping_on_expiry, 0, 1),
    "no_push_on_expiry": (push_on_expiry, 1, 0),
    "poll_notification_token_refused": (
        poll_client_notification_token, (200, None), (400, "invalid_request")),
    "https_notification_endpoints_only": (register_http_endpoint, (201, 201), (400, 201)),
    "requested_expiry_ignored": (expires_in_of_request, 30, 120),
    "auth_req_id_dotted": (auth_req_id_shape, (False, True), (True, True)),
    "notification_retry": (attempts_after_failure, 1, 2),
    "no_scope_when_as_requested": (scope_member, (True, True), (False, True)),
    "jwt_access_tokens": (access_token_shape, (None, 200), ("at+jwt", 200)),
    "id_token_on_refresh": (refresh_id_token, None, "alice"),
    "error_uri": (error_uri, None, "https://errors.example/ciba#invalid_request"),
}


def test_every_policy_has_a_scenario() -> None:
    in_process = {name for name, p in POLICIES.items() if not p.server_level}
    assert set(SCENARIOS) == in_process


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.asyncio
async def test_policy_changes_only_its_behaviour(settings: ProviderSettings, name: str) -> None:
    observe, default, changed = SCENARIOS[name]
    async with make_env(settings) as env:
        assert await observe(env) == default, "default behaviour changed"
    async with make_env(settings, policies=[name]) as env:
        assert await observe(env) == changed


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
@pytest.mark.asyncio
async def test_combinations_apply_each_member(settings: ProviderSettings, combination: str) -> None:
    members = COMBINATIONS[combination]
    policy = resolve_policies([combination])
    assert policy == resolve_policies(members)
    for name in members:
        assert getattr(policy, POLICIES[name].field) == POLICIES[name].value
    sample = {"strictest": "unknown_scope_refused", "most-lenient": "no_interval"}[combination]
    observe, _, changed = SCENARIOS[sample]
    async with make_env(settings, policies=[combination]) as env:
        assert await observe(env) == changed


def _closed_within(port: int, seconds: float) -> bool:
    """Send one keep-alive request, then wait up to ``seconds`` for the server to close."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /jwks HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        conn.settimeout(seconds)
        try:
            return conn.recv(1) == b""
        except TimeoutError:
            return False


def test_keep_alive_1s_closes_idle_connections(settings: ProviderSettings) -> None:
    # uvicorn's default idle timeout is 5 s: open after 2.5 s; under the policy closed by 3.5 s
    with start_provider(settings) as default:
        assert not _closed_within(default.port, 2.5)
    with start_provider(settings, policies=["keep_alive_1s"]) as short:
        assert short.app.state.provider.policy.keep_alive_timeout == 1.0
        assert _closed_within(short.port, 3.5)


def test_unknown_policy_names_are_refused_with_a_suggestion(settings: ProviderSettings) -> None:
    suggestion = r"unknown policy 'no_intervall' \(did you mean 'no_interval'\?\)"
    with pytest.raises(PolicyError, match=suggestion):
        resolve_policies(["no_intervall"])
    with pytest.raises(PolicyError, match="conflict"):
        resolve_policies(["unknown_scope_kept", "unknown_scope_refused"])
    with pytest.raises(ValueError, match="unknown policy"):
        create_app(settings, issuer="http://x", policies=["nope"])
    with pytest.raises(ValueError, match="unknown policy"):
        start_provider(settings, policies=["strictes"])
    assert resolve_policies(None) == ProviderPolicy() == resolve_policies([])


def test_profile_key_policies(tmp_path: Path) -> None:
    import tomllib

    raw = tomllib.loads(PROFILE.read_text())
    raw["reference_provider"]["policies"] = ["no_interval", "no_pragma"]
    settings = settings_from_dict(raw, PROFILE.parent)
    assert settings.policies == ("no_interval", "no_pragma")
    app = create_app(settings, issuer="http://x", policies=["strictest"])
    policy = app.state.provider.policy
    assert policy.ack_interval is False and policy.rotate_refresh_tokens is True
    raw["reference_provider"]["policies"] = ["no_intervl"]
    with pytest.raises(ProfileError, match="did you mean 'no_interval'"):
        settings_from_dict(raw, PROFILE.parent)


def test_cli_policy_options() -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ciba_harness.provider", *args],
                              capture_output=True, text=True, cwd=REPO, timeout=30)

    listing = cli("--list-policies")
    assert listing.returncode == 0
    assert all(name in listing.stdout for name in (*POLICIES, *COMBINATIONS))
    bad = cli("--policy", "never_slowdown")
    assert bad.returncode == 2 and "did you mean 'never_slow_down'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_cli_serves_the_policy_over_http() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ciba_harness.provider", "--port", "0", "--policy", "no_interval"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        issuer = proc.stdout.readline().split()[-1]
        assert proc.stdout.readline().strip() == "policies: no_interval"
        secret = CLIENTS["poll-basic"]["client_secret"]
        ack = httpx.post(f"{issuer}/backchannel", auth=("poll-basic", secret),
                         data={"scope": "openid", "login_hint": "alice"}, timeout=10)
        assert ack.status_code == 200 and "interval" not in ack.json()
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_docs_table_is_current() -> None:
    doc = (REPO / "docs" / "policies.md").read_text()
    assert policies_markdown() in doc, (
        "regenerate: python -m ciba_harness.provider --policies-markdown"
    )


def test_fault_tenants_inherit_the_policy(settings: ProviderSettings) -> None:
    app = create_app(settings, issuer="http://x", fault_tenants=True, policies=["no_interval"])
    assert all(not t.policy.ack_interval for t in app.state.tenants.values())


@pytest.mark.asyncio
async def test_policy_tenants_serve_each_policy_alone(settings: ProviderSettings) -> None:
    async with make_env(settings, policy_tenants=True) as env:
        tenant = Api(env.api.http, f"{ISSUER}/policy/no_interval")
        assert (await tenant.discovery())["issuer"] == f"{ISSUER}/policy/no_interval"
        assert "interval" not in await tenant.start()
        assert "interval" in await env.api.start()
        strict = Api(env.api.http, f"{ISSUER}/policy/strictest")
        assert error_of(await strict.backchannel(scope="openid frobnicate")) == (
            400, "invalid_scope")
        missing = await env.api.http.get("/policy/nope/jwks")
        assert missing.status_code == 404 and missing.json()["error_description"] == (
            "unknown policy")
        assert "policy/keep_alive_1s" not in env.provider.tenants
