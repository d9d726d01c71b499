"""Backchannel authentication endpoint (CIBA §7): client authentication, parameters, signed
requests, acknowledgement, errors."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
from provider_helpers import (
    AUTH_REQ_ID_RE,
    DROP,
    ISSUER,
    JWT_BEARER,
    KEYS,
    Api,
    Env,
    error_of,
    login_hint_token,
    shannon_bits,
    unsigned_jwt,
)

pytestmark = pytest.mark.asyncio

DESCRIPTION_RE = re.compile(r'^[\x20\x21\x23-\x5b\x5d-\x7e]*$')


def assert_error(resp: Any, status: int, error: str) -> None:
    assert (resp.status_code, resp.json().get("error")) == (status, error), resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) <= {"error", "error_description"}
    assert DESCRIPTION_RE.match(body.get("error_description", ""))


# ------------------------------------------------------------------------ acknowledgement


@pytest.mark.parametrize("cid", ["poll-basic", "poll-post", "poll-secret-jwt", "poll-rs256",
                                 "poll-ps256", "poll-es256", "poll-second", "poll-signed",
                                 "ping-basic", "push-basic", "poll-usercode"])
async def test_each_client_gets_an_acknowledgement(api: Api, cid: str) -> None:
    resp = await api.backchannel(cid)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["cache-control"] == "no-store"
    assert resp.headers["pragma"] == "no-cache"
    body = resp.json()
    assert re.match(AUTH_REQ_ID_RE, body["auth_req_id"])
    assert len(body["auth_req_id"]) >= 27 and shannon_bits(body["auth_req_id"]) >= 128
    assert body["expires_in"] == 120 and type(body["expires_in"]) is int
    if cid == "push-basic":
        assert "interval" not in body
    else:
        assert body["interval"] == 1 and type(body["interval"]) is int


async def test_ids_are_distinct(api: Api) -> None:
    ids = {(await api.start())["auth_req_id"] for _ in range(20)}
    assert len(ids) == 20


async def test_requested_expiry_sets_expires_in(api: Api) -> None:
    assert (await api.start(requested_expiry="30"))["expires_in"] == 30


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "3601", "99999999999"])
async def test_bad_requested_expiry(api: Api, value: str) -> None:
    assert_error(await api.backchannel(requested_expiry=value), 400, "invalid_request")


async def test_unknown_parameters_and_scopes_are_ignored(env: Env) -> None:
    api = env.api
    ack = await api.start(scope="openid bogus profile", extra=[("x_harness_probe", "1")])
    rid = ack["auth_req_id"]
    await api.approve(rid)
    body = (await api.token("poll-basic", rid)).json()
    assert body["scope"] == "openid profile"


async def test_scope_order_does_not_matter(api: Api) -> None:
    assert (await api.backchannel(scope="profile openid")).status_code == 200


async def test_poll_client_notification_token_is_ignored(api: Api) -> None:
    assert (await api.backchannel(client_notification_token="x" * 2000)).status_code == 200


async def test_acr_values_and_binding_message_accepted(api: Api) -> None:
    resp = await api.backchannel(acr_values="urn:acr:high urn:acr:low", binding_message="W4SCT")
    assert resp.status_code == 200


# ------------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"scope": DROP}, "invalid_request"),
        ({"scope": "profile"}, "invalid_request"),
        ({"login_hint": DROP}, "invalid_request"),
        ({"login_hint": "no-such-user-7f3a"}, "unknown_user_id"),
        ({"login_hint_token": "LHT"}, "invalid_request"),  # two hints
        ({"id_token_hint": "a.b.c"}, "invalid_request"),  # two hints
        ({"binding_message": "x" * 21}, "invalid_binding_message"),
        ({"binding_message": "caf\u00e9"}, "invalid_binding_message"),
        ({"binding_message": "line\nbreak"}, "invalid_binding_message"),
        ({"requested_expiry": "0"}, "invalid_request"),
    ],
)
async def test_parameter_errors(api: Api, overrides: dict[str, Any], error: str) -> None:
    if overrides.get("login_hint_token") == "LHT":
        overrides["login_hint_token"] = login_hint_token()
    assert_error(await api.backchannel(**overrides), 400, error)


async def test_empty_values_count_as_absent(api: Api) -> None:
    assert_error(await api.backchannel(scope=""), 400, "invalid_request")
    assert (await api.backchannel(binding_message="")).status_code == 200


async def test_all_three_hints(api: Api) -> None:
    resp = await api.backchannel(login_hint_token=login_hint_token(), id_token_hint="a.b.c")
    assert_error(resp, 400, "invalid_request")


async def test_repeated_parameter(api: Api) -> None:
    assert_error(await api.backchannel(extra=[("scope", "openid")]), 400, "invalid_request")
    assert_error(await api.backchannel(extra=[("login_hint", "alice")]), 400, "invalid_request")


async def test_blocked_user_is_access_denied(api: Api) -> None:
    assert_error(await api.backchannel(login_hint="mallory"), 403, "access_denied")


@pytest.mark.parametrize("cid", ["ping-basic", "push-basic"])
async def test_notification_token_required(api: Api, cid: str) -> None:
    assert_error(await api.backchannel(cid, client_notification_token=DROP), 400, "invalid_request")


async def test_notification_token_limits(api: Api) -> None:
    assert (await api.backchannel("ping-basic", client_notification_token="a" * 1024)).status_code \
        == 200
    assert_error(await api.backchannel("ping-basic", client_notification_token="a" * 1025), 400,
                 "invalid_request")
    assert_error(await api.backchannel("ping-basic", client_notification_token="a b"), 400,
                 "invalid_request")


async def test_user_code(api: Api) -> None:
    assert_error(await api.backchannel("poll-usercode", user_code=DROP), 400, "missing_user_code")
    assert_error(await api.backchannel("poll-usercode", user_code="0000"), 400, "invalid_user_code")
    # bob has no user code: every code is wrong
    assert_error(await api.backchannel("poll-usercode", login_hint="bob"), 400,
                 "invalid_user_code")
    # other clients: ignored
    assert (await api.backchannel(user_code="whatever")).status_code == 200


async def test_login_hint_token(api: Api) -> None:
    assert (await api.backchannel(login_hint=DROP, login_hint_token=login_hint_token())
            ).status_code == 200
    assert (await api.backchannel(login_hint=DROP, login_hint_token=login_hint_token(exp=None))
            ).status_code == 200
    assert_error(await api.backchannel(login_hint=DROP, login_hint_token=login_hint_token(exp=-5)),
                 400, "expired_login_hint_token")
    assert_error(await api.backchannel(login_hint=DROP,
                                       login_hint_token=login_hint_token(sub="nobody")),
                 400, "unknown_user_id")
    for bad in ["not-a-jwt", login_hint_token(key="another-key-0123456789abcdef0123456789")]:
        assert_error(await api.backchannel(login_hint=DROP, login_hint_token=bad), 400,
                     "invalid_request")


async def test_id_token_hint(api: Api) -> None:
    _, tokens = await api.flow("poll-basic", login_hint="bob")
    hint = tokens.json()["id_token"]
    ack = await api.start(login_hint=DROP, id_token_hint=hint)
    rid = ack["auth_req_id"]
    await api.approve(rid)
    claims = await api.verify_id_token((await api.token("poll-basic", rid)).json()["id_token"],
                                       "poll-basic")
    assert claims["sub"] == "bob"
    # issued to another client
    assert_error(await api.backchannel("poll-post", login_hint=DROP, id_token_hint=hint), 400,
                 "unknown_user_id")
    # foreign signer
    now = int(time.time())
    import jwt
    foreign = jwt.encode({"iss": ISSUER, "aud": "poll-basic", "sub": "alice", "exp": now + 60,
                          "iat": now}, KEYS["poll-rs256"], algorithm="RS256")
    assert_error(await api.backchannel(login_hint=DROP, id_token_hint=foreign), 400,
                 "unknown_user_id")
    assert_error(await api.backchannel(login_hint=DROP, id_token_hint="garbage"), 400,
                 "invalid_request")


# ------------------------------------------------------------------------ transport


async def test_get_is_405(api: Api) -> None:
    resp = await api.http.get("/backchannel")
    assert resp.status_code == 405 and resp.json()["error"] == "invalid_request"


async def test_json_body_is_invalid_request(api: Api) -> None:
    resp = await api.http.post("/backchannel", json={"scope": "openid", "login_hint": "alice"},
                               headers=api.auth("poll-basic")[0])
    assert_error(resp, 400, "invalid_request")


async def test_huge_body(api: Api) -> None:
    resp = await api.backchannel(binding_message="x" * 70_000)
    assert resp.status_code == 413 and resp.json()["error"] == "invalid_request"


async def test_malformed_form(api: Api) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", **api.auth("poll-basic")[0]}
    for body in [b"scope=%ff%fe&login_hint=alice", b"\xff\xfe", b"a=" + b"&a=" * 300]:
        resp = await api.http.post("/backchannel", content=body, headers=headers)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"


# ------------------------------------------------------------------------ client authentication


async def test_no_client_authentication(api: Api) -> None:
    assert_error(await api.backchannel(auth=False), 401, "invalid_client")
    assert_error(await api.backchannel(auth=False, extra=[("client_id", "poll-basic")]), 401,
                 "invalid_client")


async def test_public_client_never_gets_an_id(api: Api) -> None:
    assert_error(await api.backchannel("public-client"), 401, "invalid_client")


async def test_wrong_basic_secret_has_www_authenticate(api: Api) -> None:
    cred = base64.b64encode(b"poll-basic:wrong").decode()
    resp = await api.backchannel(auth=False, headers={"Authorization": f"Basic {cred}"})
    assert_error(resp, 401, "invalid_client")
    assert resp.headers["www-authenticate"] == 'Basic realm="ciba"'
    resp = await api.backchannel(auth=False, headers={"Authorization": "Basic %%%"})
    assert_error(resp, 401, "invalid_client")
    assert "www-authenticate" in resp.headers


async def test_wrong_post_secret_and_unknown_client(api: Api) -> None:
    resp = await api.backchannel(auth=False, extra=[("client_id", "poll-post"),
                                                    ("client_secret", "nope")])
    assert_error(resp, 401, "invalid_client")
    assert "www-authenticate" not in resp.headers
    resp = await api.backchannel(auth=False, extra=[("client_id", "nobody"),
                                                    ("client_secret", "nope")])
    assert_error(resp, 401, "invalid_client")


async def test_registered_method_only(api: Api) -> None:
    assert_error(await api.backchannel("poll-basic", auth="client_secret_post"), 401,
                 "invalid_client")
    assert_error(await api.backchannel("poll-post", auth="client_secret_basic"), 401,
                 "invalid_client")
    assert_error(await api.backchannel("poll-rs256", auth="client_secret_post"), 401,
                 "invalid_client")


async def test_two_mechanisms(api: Api) -> None:
    headers, _ = api.auth("poll-basic")
    resp = await api.backchannel("poll-basic", extra=[("client_secret", "poll-basic-secret")],
                                 headers=headers)
    assert_error(resp, 400, "invalid_request")


async def test_non_ciba_client(api: Api) -> None:
    assert_error(await api.backchannel("no-ciba"), 400, "unauthorized_client")


@pytest.mark.parametrize("aud", ["issuer", "token", "backchannel", "list"])
async def test_assertion_audiences_accepted(api: Api, aud: str) -> None:
    value: Any = {"issuer": ISSUER, "token": f"{ISSUER}/token",
                  "backchannel": f"{ISSUER}/backchannel", "list": ["x", ISSUER]}[aud]
    fields = [("client_assertion_type", JWT_BEARER),
              ("client_assertion", api.assertion("poll-rs256", aud=value))]
    resp = await api.backchannel("poll-rs256", auth=False, extra=fields)
    assert resp.status_code == 200, resp.text


def _assertion_cases(api: Api) -> dict[str, list[tuple[str, str]]]:
    now = int(time.time())
    a = api.assertion
    cases = {
        "wrong aud": a("poll-rs256", aud="https://elsewhere.example"),
        "expired": a("poll-rs256", exp=now - 1),
        "no exp": a("poll-rs256", exp=DROP),
        "no jti": a("poll-rs256", jti=DROP),
        "future iat": a("poll-rs256", iat=now + 600),
        "iss != sub": a("poll-rs256", iss="poll-second"),
        "other key": a("poll-rs256", key=KEYS["poll-second"]),
        "wrong alg": a("poll-rs256", alg="PS256"),
        "hs256 for key client": a("poll-rs256", alg="HS256",
                                  key="poll-basic-secret-6c1f0e2a-0123456789"),
        "unknown client": a("nobody", key=KEYS["poll-rs256"], alg="RS256"),
        "garbage": "not.a.jwt",
        "none": unsigned_jwt({"iss": "poll-rs256", "sub": "poll-rs256", "aud": ISSUER,
                              "exp": now + 60, "jti": "x"}),
        "secret jwt wrong secret": a("poll-secret-jwt", key="wrong-secret-0123456789abcdef0123"),
    }
    return {name: [("client_assertion_type", JWT_BEARER), ("client_assertion", value)]
            for name, value in cases.items()}


async def test_assertion_errors(api: Api) -> None:
    for name, fields in _assertion_cases(api).items():
        cid = "poll-secret-jwt" if "secret jwt" in name else "poll-rs256"
        resp = await api.backchannel(cid, auth=False, extra=fields)
        assert error_of(resp) == (401, "invalid_client"), name
    resp = await api.backchannel("poll-rs256", auth=False,
                                 extra=[("client_assertion_type", "urn:other"),
                                        ("client_assertion", api.assertion("poll-rs256"))])
    assert error_of(resp) == (401, "invalid_client")
    resp = await api.backchannel("poll-rs256", auth=False,
                                 extra=[("client_assertion_type", JWT_BEARER)])
    assert error_of(resp) == (401, "invalid_client")


async def test_assertion_client_id_mismatch(api: Api) -> None:
    fields = [("client_id", "poll-second"), ("client_assertion_type", JWT_BEARER),
              ("client_assertion", api.assertion("poll-rs256"))]
    assert error_of(await api.backchannel("poll-rs256", auth=False, extra=fields)) == (
        401, "invalid_client")


async def test_assertion_replay_refused(api: Api) -> None:
    assertion = api.assertion("poll-rs256")
    fields = [("client_assertion_type", JWT_BEARER), ("client_assertion", assertion)]
    assert (await api.backchannel("poll-rs256", auth=False, extra=fields)).status_code == 200
    assert error_of(await api.backchannel("poll-rs256", auth=False, extra=fields)) == (
        401, "invalid_client")


# ------------------------------------------------------------------------ signed requests


def _claims_ok(api: Api) -> dict[str, Any]:
    return {"scope": "openid", "login_hint": "alice"}


async def test_signed_request_accepted(api: Api) -> None:
    for cid in ["poll-signed", "poll-rs256", "poll-ps256", "poll-es256"]:
        req = api.request_object(cid, _claims_ok(api))
        assert (await api.backchannel(cid, request=req)).status_code == 200, cid


async def test_signed_request_requested_expiry_string_or_number(api: Api) -> None:
    for value in [30, "30"]:
        req = api.request_object("poll-signed", {**_claims_ok(api), "requested_expiry": value})
        resp = await api.backchannel("poll-signed", request=req)
        assert resp.json()["expires_in"] == 30


async def test_signed_request_unknown_claims_ignored(api: Api) -> None:
    req = api.request_object("poll-signed", {**_claims_ok(api), "x_probe": {"a": 1}})
    assert (await api.backchannel("poll-signed", request=req)).status_code == 200


def _bad_requests(api: Api) -> dict[str, str]:
    now = int(time.time())
    p = _claims_ok(api)
    ro = api.request_object
    return {
        "alg none": ro("poll-signed", p, alg="none"),
        "hs256": ro("poll-signed", p, alg="HS256", key="some-shared-secret-0123456789abcdef"),
        "other key": ro("poll-signed", p, key=KEYS["poll-second"]),
        "bad signature": ro("poll-signed", p)[:-4] + "AAAA",
        "aud missing": ro("poll-signed", p, aud=DROP),
        "aud wrong": ro("poll-signed", p, aud=f"{ISSUER}/backchannel"),
        "iss missing": ro("poll-signed", p, iss=DROP),
        "iss other": ro("poll-signed", p, iss="poll-second"),
        "exp missing": ro("poll-signed", p, exp=DROP),
        "exp past": ro("poll-signed", p, exp=now - 10),
        "iat missing": ro("poll-signed", p, iat=DROP),
        "nbf missing": ro("poll-signed", p, nbf=DROP),
        "nbf future": ro("poll-signed", p, nbf=now + 600),
        "nbf too old": ro("poll-signed", p, nbf=now - 4000, iat=now - 4000),
        "lifetime too long": ro("poll-signed", p, exp=now + 4000),
        "jti missing": ro("poll-signed", p, jti=DROP),
        "registered alg differs": ro("poll-signed", p, alg="PS256"),
        "encrypted": "a.b.c.d.e",
        "garbage": "garbage",
        "scope not a string": ro("poll-signed", {**p, "scope": ["openid"]}),
        "requested_expiry bool": ro("poll-signed", {**p, "requested_expiry": True}),
        "no hint": ro("poll-signed", {"scope": "openid"}),
    }


async def test_signed_request_errors(api: Api) -> None:
    for name, req in _bad_requests(api).items():
        resp = await api.backchannel("poll-signed", request=req)
        assert error_of(resp) == (400, "invalid_request"), name


async def test_signed_request_jti_replay(api: Api) -> None:
    req = api.request_object("poll-signed", _claims_ok(api))
    assert (await api.backchannel("poll-signed", request=req)).status_code == 200
    assert error_of(await api.backchannel("poll-signed", request=req)) == (400, "invalid_request")


async def test_signing_client_must_sign(api: Api) -> None:
    assert error_of(await api.backchannel("poll-signed", signed=False)) == (400, "invalid_request")


async def test_secret_client_cannot_sign(api: Api) -> None:
    req = api.request_object("poll-basic", _claims_ok(api), alg="RS256", key=KEYS["poll-rs256"])
    assert error_of(await api.backchannel("poll-basic", request=req)) == (400, "invalid_request")


async def test_parameters_outside_the_request_object(api: Api) -> None:
    req = api.request_object("poll-signed", _claims_ok(api))
    resp = await api.backchannel("poll-signed", request=req, extra=[("scope", "openid")])
    assert error_of(resp) == (400, "invalid_request")


async def test_request_uri_refused(api: Api) -> None:
    resp = await api.backchannel(extra=[("request_uri", "https://unreachable.invalid/r")])
    assert error_of(resp) == (400, "invalid_request")
