"""Every registered check of checks/_backchannel, _delivery, _fapi, _idtoken (and the fuzz
judging's checks in strategies/_judging) on a passing
and a failing input: it holds on the first and raises the right CheckFailure subclass naming
the right requirement on the second. (checks/_responses is tabled in
tests/core/test_core_checks.py; tests/checks/test_every_check_is_tested.py makes sure no
registered check is missing from both tables.)"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from check_table import BadCase, Case, assert_breaks, assert_holds, case_ids
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ciba_harness import (
    AUTH_REQ_ID_CLAIM,
    RT_HASH_CLAIM,
    CheckFailure,
    Exchange,
    HttpRequest,
    HttpResponse,
    InvalidIdToken,
    InvalidMember,
    Jwks,
    MalformedResponse,
    MissingMember,
    NotificationViolation,
    UnexpectedStatus,
    UnexpectedSuccess,
    WrongErrorCode,
    sign_jwt,
    token_hash,
)
from ciba_harness.checks import (
    _backchannel as bc,
    _delivery as dl,
    _fapi as fapi,
    _idtoken as idt,
    _responses as r,
)
from ciba_harness.client._inbox import NotificationInbox
from ciba_harness.core._notifications import (
    MAX_NOTIFICATION_BYTES,
    Notification,
    parse_notification,
)
from ciba_harness.core._tls import TlsProbe
from ciba_harness.strategies import _judging as fuzz

ISSUER = "https://op.example.com"
CLIENT = "poll-rs256"
ACCESS = "SlAV32hkKG-access-token-value"
REFRESH = "8xLOxBtZp8-refresh-token-value"
AUTH_REQ_ID = "1c266114-a1be-4252-8ad1-04986c5b9ac1"
NOW = 1_800_000_000
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWKS = Jwks({"keys": [{**RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1"}]})


def ex(status: int, body: Any = None, *, content_type: str = "application/json", **headers: str) -> Exchange:
    raw = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
    response = HttpResponse(status, (("Content-Type", content_type), *headers.items()), raw)
    return Exchange(HttpRequest("POST", f"{ISSUER}/token"), response=response)


NO_ANSWER = Exchange(HttpRequest("POST", f"{ISSUER}/token"), response=None, error="timeout")


def note(payload: Any, *, bearer: str | None = "tok", content_type: str = "application/json") -> Notification:
    headers = [("Content-Type", content_type)]
    if bearer is not None:
        headers.append(("Authorization", f"Bearer {bearer}"))
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_notification("/cb", headers, body)


PING = note({"auth_req_id": AUTH_REQ_ID})
PUSH_TOKENS = note({"auth_req_id": AUTH_REQ_ID, "access_token": ACCESS, "token_type": "Bearer", "id_token": "x.y.z"})
PUSH_ERROR = note({"auth_req_id": AUTH_REQ_ID, "error": "access_denied"})


def id_token(key: Any = KEY, alg: str = "RS256", **changes: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "user-alice",
        "iat": NOW - 10,
        "exp": NOW + 300,
        "at_hash": token_hash(ACCESS, "RS256"),
        RT_HASH_CLAIM: token_hash(REFRESH, "RS256"),
        AUTH_REQ_ID_CLAIM: AUTH_REQ_ID,
    }
    for name, value in changes.items():
        name = {"auth_req_id": AUTH_REQ_ID_CLAIM, "rt_hash": RT_HASH_CLAIM}.get(name, name)
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return sign_jwt(claims, key, alg, {"kid": "k1"})


GOOD_TOKEN = id_token()
DOCUMENT = {
    "issuer": ISSUER,
    "backchannel_authentication_endpoint": f"{ISSUER}/bc-authorize",
    "backchannel_token_delivery_modes_supported": ["poll", "ping"],
    "grant_types_supported": ["urn:openid:params:grant-type:ciba"],
    "backchannel_authentication_request_signing_alg_values_supported": ["PS256", "ES256"],
    "backchannel_user_code_parameter_supported": True,
    "mtls_endpoint_aliases": {"backchannel_authentication_endpoint": "https://mtls.op.example.com/bc"},
    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    "tls_client_certificate_bound_access_tokens": True,
    "id_token_encryption_alg_values_supported": ["RSA-OAEP"],
}
ACK = ex(200, {"auth_req_id": AUTH_REQ_ID, "expires_in": 120})
PENDING = ex(400, {"error": "authorization_pending"})
TOKENS = ex(200, {"access_token": ACCESS, "token_type": "Bearer", "id_token": GOOD_TOKEN})
STRONG = "Gx3kLp9QzR2vT7yWbN4mH8cJ6fD1sA5e"


def inbox_with(token: str) -> NotificationInbox:
    inbox = NotificationInbox()
    inbox.expect(token, "ping")
    inbox.receive("/cb", [("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")], b'{"auth_req_id": "a"}')
    return inbox


GOOD: list[Case] = [
    # --- _backchannel ---
    (bc.accepted, (ACK,), {"requirement": "R-1"}),
    (bc.no_acknowledgement, (ex(405, b"Method Not Allowed", content_type="text/plain"),), {}),
    (bc.no_acknowledgement, (ex(200, {"status": "ok"}),), {}),
    (bc.invalid_value_refused, (ex(400, {"error": "invalid_request"}),), {}),
    (bc.invalid_value_refused, (NO_ANSWER,), {}),
    (bc.auth_req_ids_unique, (["a", "b", "c"],), {}),
    (bc.auth_req_ids_unique, (["c"],), {"issued_before": {"a", "b"}}),
    (bc.no_notifications, (inbox_with("seen"), ["other"]), {}),
    (bc.delivery_modes_valid, (DOCUMENT,), {}),
    (bc.backchannel_endpoint_https, (DOCUMENT,), {}),
    (bc.backchannel_endpoint_https, ({"backchannel_authentication_endpoint": "http://127.0.0.1:8080/bc"},), {}),
    (bc.request_signing_algs_listed, (DOCUMENT,), {}),
    (bc.request_signing_algs_listed, ({},), {}),
    (bc.request_signing_algs_asymmetric, (DOCUMENT,), {}),
    (bc.user_code_parameter_boolean, (DOCUMENT,), {}),
    (bc.ciba_grant_advertised, (DOCUMENT,), {}),
    (bc.ciba_grant_advertised, ({"backchannel_token_delivery_modes_supported": ["push"]},), {}),
    (bc.mtls_alias_valid, (DOCUMENT,), {}),
    (bc.issuer_matches, (DOCUMENT, ISSUER + "/"), {}),
    # --- _delivery: token endpoint ---
    (dl.token_error_is, (PENDING, {"authorization_pending"}), {"requirement": "R-2"}),
    (dl.token_error_is, (ex(401, {"error": "invalid_client"}), {"invalid_client"}), {"requirement": "R-2", "statuses": (400, 401)}),
    (dl.fast_poll_answer_allowed, (ex(400, {"error": "slow_down"}),), {}),
    (dl.fast_poll_answer_allowed, (ex(503, b"", content_type="text/plain", **{"Retry-After": "5"}),), {}),
    (dl.single_redemption, ([TOKENS, ex(400, {"error": "invalid_grant"})],), {}),
    (dl.token_endpoint_uses_tls, (f"{ISSUER}/token",), {}),
    # --- _delivery: callbacks ---
    (dl.callback_arrived, ([PING],), {"requirement": "R-3", "what": "ping", "waited": 5}),
    (dl.no_callback_for_flow, ([],), {"requirement": "R-3", "title": "no callback"}),
    (dl.callback_count_at_most, ([PING], 1), {"requirement": "R-3", "title": "one"}),
    (dl.callback_bearer_is, (PING, "tok"), {"requirement": "R-3"}),
    (dl.callback_is_json, (PING,), {"requirement": "R-3"}),
    (dl.callback_has_bearer, (PING,), {"requirement": "R-3"}),
    (dl.callback_size_within, (PING,), {"requirement": "R-3"}),
    (dl.callback_body_is_json_object, (PING,), {"requirement": "R-3"}),
    (dl.callback_content_type_json, (note({"auth_req_id": "a"}, content_type="application/json"),), {"requirement": "R-3"}),
    (dl.callback_names_auth_req_id, (PUSH_TOKENS,), {"requirement": "R-3"}),
    (dl.callback_kind_fits_mode, (PING, "ping"), {"requirement": "R-3"}),
    (dl.callback_kind_fits_mode, (PUSH_ERROR, "push"), {"requirement": "R-3"}),
    (dl.ping_body_only_auth_req_id, (PING, AUTH_REQ_ID), {}),
    (dl.ping_body_only_auth_req_id, (PING,), {}),
    (dl.push_token_payload, (PUSH_TOKENS, AUTH_REQ_ID), {}),
    (dl.push_error_code_allowed, (PUSH_ERROR,), {}),
    (dl.push_error_is, (PUSH_ERROR, "access_denied", AUTH_REQ_ID), {"requirement": "R-3"}),
    # --- _idtoken: claims details ---
    (idt.id_token_alg_is, (GOOD_TOKEN, {"RS256", "PS256"}), {}),
    (idt.acr_present, ({"acr": "urn:mace:incommon:iap:silver"},), {}),
    (idt.auth_time_within, ({"auth_time": NOW}, NOW - 5, NOW + 5), {"skew": 1}),
    (idt.auth_time_within, ({},), {"earliest": 0, "latest": 0, "skew": 1}),
    (idt.same_subject, ("user-alice", "user-alice"), {}),
    (idt.claim_present, ({"auth_time": NOW}, "auth_time"), {"requirement": "R-4"}),
    (idt.nonce_absent, ({"sub": "x"},), {}),
    # --- _fapi ---
    (fapi.push_not_advertised, (DOCUMENT,), {}),
    (fapi.poll_advertised, (DOCUMENT,), {}),
    (fapi.metadata_algs_fapi, (DOCUMENT, "backchannel_authentication_request_signing_alg_values_supported"), {}),
    (fapi.metadata_algs_fapi, ({}, "id_token_signing_alg_values_supported"), {}),
    (fapi.fapi_auth_method_advertised, (DOCUMENT,), {}),
    (fapi.bound_tokens_advertised, (DOCUMENT,), {}),
    (fapi.no_rsa1_5, (DOCUMENT,), {}),
    (fapi.string_array_if_present, (DOCUMENT, "grant_types_supported"), {"requirement": "R-5"}),
    (fapi.string_array_if_present, (DOCUMENT, "absent"), {"requirement": "R-5"}),
    (fapi.member_echoed, ({"token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method", "private_key_jwt"), {"requirement": "R-5"}),
    (fapi.token_entropy, ({"access_token": STRONG, "refresh_token": STRONG[::-1]},), {}),
    (fapi.refresh_not_rotated, (REFRESH, {"access_token": ACCESS}), {}),
    (fapi.refresh_not_rotated, (REFRESH, {"refresh_token": REFRESH}), {}),
    (fapi.cnf_matches, ({"cnf": {"x5t#S256": "thumb"}}, "thumb"), {}),
    (fapi.handshake_refused, (TlsProbe("op", 443, "TLSv1.1", established=False, error="refused"),), {"requirement": "R-6"}),
    (fapi.handshake_established, (TlsProbe("op", 443, "TLSv1.2", established=True, version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256"),), {"requirement": "R-6"}),
    # --- _idtoken ---
    (idt.id_token_is_asymmetric_jws, (GOOD_TOKEN,), {}),
    (idt.id_token_signature_verifies, (GOOD_TOKEN, JWKS), {}),
    (idt.id_token_issuer_is, (GOOD_TOKEN, ISSUER), {}),
    (idt.id_token_audience_is, (GOOD_TOKEN, CLIENT), {}),
    (idt.id_token_audience_is, (id_token(aud=[CLIENT, "api"], azp=CLIENT), CLIENT), {}),
    (idt.id_token_has_subject, (GOOD_TOKEN,), {}),
    (idt.id_token_times_valid, (GOOD_TOKEN, NOW), {}),
    (idt.id_token_times_valid, (id_token(exp=NOW - 30), NOW), {"skew": 60}),
    (idt.id_token_auth_req_id_is, (GOOD_TOKEN, AUTH_REQ_ID), {}),
    (idt.id_token_auth_req_id_is, (id_token(auth_req_id=None), "other"), {}),
    (idt.id_token_at_hash_matches, (GOOD_TOKEN, ACCESS), {"mandatory": True}),
    (idt.id_token_at_hash_matches, (id_token(at_hash=None), ACCESS), {}),
    (idt.id_token_rt_hash_matches, (GOOD_TOKEN, REFRESH), {"mandatory": True}),
    (idt.id_token_rt_hash_matches, (id_token(rt_hash=None), REFRESH), {}),
    # --- strategies/_judging ---
    (r.not_server_error, (ex(503, b"", content_type="text/plain", **{"Retry-After": "1"}),), {"requirement": "R-7", "retry_after_ok": True}),
    (fuzz.fuzz_guess_not_pending, (ex(400, {"error": "invalid_grant"}),), {}),
]

BAD: list[BadCase] = [
    # --- _backchannel ---
    (bc.accepted, (ex(400, {"error": "invalid_request"}),), {"requirement": "R-1"}, UnexpectedStatus, "R-1"),
    (bc.accepted, (NO_ANSWER,), {"requirement": "R-1"}, UnexpectedStatus, "R-1"),
    (bc.no_acknowledgement, (ACK,), {}, UnexpectedSuccess, "CIBA-AUTH-02"),
    (bc.invalid_value_refused, (ACK,), {}, UnexpectedSuccess, "CIBA-AUTH-21"),
    (bc.auth_req_ids_unique, (["a", "b", "a"],), {}, InvalidMember, "CIBA-ACK-06"),
    (bc.auth_req_ids_unique, (["b"],), {"issued_before": {"a", "b"}}, InvalidMember, "CIBA-ACK-06"),
    (bc.no_notifications, (inbox_with("seen"), ["seen"]), {}, NotificationViolation, "CIBA-AERR-15"),
    (bc.delivery_modes_valid, ({},), {}, MissingMember, "CIBA-DISC-01"),
    (bc.delivery_modes_valid, ({"backchannel_token_delivery_modes_supported": ["poll", "fax"]},), {}, InvalidMember, "CIBA-DISC-01"),
    (bc.backchannel_endpoint_https, ({},), {}, MissingMember, "CIBA-DISC-02"),
    (bc.backchannel_endpoint_https, ({"backchannel_authentication_endpoint": "/bc"},), {}, InvalidMember, "CIBA-DISC-02"),
    (bc.backchannel_endpoint_https, ({"backchannel_authentication_endpoint": "http://op.example.com/bc"},), {}, InvalidMember, "CIBA-DISC-02"),
    (bc.backchannel_endpoint_https, ({"backchannel_authentication_endpoint": "http://127.0.0.1/bc"},), {"allow_loopback_http": False}, InvalidMember, "CIBA-DISC-02"),
    (bc.request_signing_algs_listed, ({"backchannel_authentication_request_signing_alg_values_supported": "PS256"},), {}, InvalidMember, "CIBA-DISC-03"),
    (bc.request_signing_algs_asymmetric, ({"backchannel_authentication_request_signing_alg_values_supported": ["PS256", "HS256"]},), {}, InvalidMember, "CIBA-DISC-04"),
    (bc.user_code_parameter_boolean, ({"backchannel_user_code_parameter_supported": "true"},), {}, InvalidMember, "CIBA-DISC-05"),
    (bc.ciba_grant_advertised, ({**DOCUMENT, "grant_types_supported": ["authorization_code"]},), {}, MissingMember, "CIBA-DISC-06"),
    (bc.mtls_alias_valid, ({"mtls_endpoint_aliases": {"backchannel_authentication_endpoint": "http://mtls/bc"}},), {}, InvalidMember, "CIBA-DISC-08"),
    (bc.issuer_matches, (DOCUMENT, "https://other.example.com"), {}, InvalidMember, "CIBA-DISC-09"),
    # --- _delivery: token endpoint ---
    (dl.token_error_is, (TOKENS, {"authorization_pending"}), {"requirement": "R-2"}, UnexpectedSuccess, "R-2"),
    (dl.token_error_is, (NO_ANSWER, {"authorization_pending"}), {"requirement": "R-2"}, UnexpectedStatus, "R-2"),
    (dl.token_error_is, (ex(500, b"oops", content_type="text/plain"), {"x"}), {"requirement": "R-2"}, UnexpectedStatus, "R-2"),
    (dl.token_error_is, (ex(400, b"<html>", content_type="text/html"), {"x"}), {"requirement": "R-2"}, MalformedResponse, "CIBA-TOKEN-21"),
    (dl.token_error_is, (ex(400, {"message": "no"}), {"x"}), {"requirement": "R-2"}, MissingMember, "CIBA-TOKEN-21"),
    (dl.token_error_is, (PENDING, {"slow_down"}), {"requirement": "R-2"}, WrongErrorCode, "R-2"),
    (dl.token_error_is, (ex(401, {"error": "authorization_pending"}), {"authorization_pending"}), {"requirement": "R-2"}, UnexpectedStatus, "R-2"),
    (dl.fast_poll_answer_allowed, (ex(503, b"", content_type="text/plain"),), {}, MissingMember, "CIBA-TOKEN-06"),
    (dl.fast_poll_answer_allowed, (ex(400, {"error": "invalid_grant"}),), {}, WrongErrorCode, "CIBA-TOKEN-06"),
    (dl.single_redemption, ([TOKENS, TOKENS],), {}, UnexpectedSuccess, "CIBA-TOKEN-16"),
    (dl.token_endpoint_uses_tls, ("http://op.example.com/token",), {}, InvalidMember, "CIBA-SEC-02"),
    # --- _delivery: callbacks ---
    (dl.callback_arrived, ([],), {"requirement": "R-3", "what": "ping", "waited": 5}, NotificationViolation, "R-3"),
    (dl.no_callback_for_flow, ([PING],), {"requirement": "R-3", "title": "no callback"}, NotificationViolation, "R-3"),
    (dl.callback_count_at_most, ([PING, PING], 1), {"requirement": "R-3", "title": "one"}, NotificationViolation, "R-3"),
    (dl.callback_bearer_is, (note({"auth_req_id": "a"}, bearer=None), "tok"), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.callback_bearer_is, (PING, "another"), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.callback_is_json, (note({"auth_req_id": "a"}, content_type="text/plain"),), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.callback_is_json, (note(b"{not json"),), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.callback_has_bearer, (note({"auth_req_id": "a"}, bearer=None),), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.callback_size_within, (note(b"x" * (MAX_NOTIFICATION_BYTES + 1)),), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.callback_body_is_json_object, (note([1, 2]),), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.callback_content_type_json, (note({"auth_req_id": "a"}, content_type="text/plain"),), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.callback_names_auth_req_id, (note({"access_token": ACCESS, "token_type": "Bearer"}),), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.callback_kind_fits_mode, (PUSH_TOKENS, "ping"), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.callback_kind_fits_mode, (PING, "push"), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.ping_body_only_auth_req_id, (note({"auth_req_id": AUTH_REQ_ID, "x": 1}), AUTH_REQ_ID), {}, NotificationViolation, "CIBA-PING-03"),
    (dl.ping_body_only_auth_req_id, (PING, "another"), {}, NotificationViolation, "CIBA-PING-03"),
    (dl.ping_body_only_auth_req_id, (note({"auth_req_id": 7}),), {}, NotificationViolation, "CIBA-PING-03"),
    (dl.push_token_payload, (PUSH_TOKENS, "another"), {}, NotificationViolation, "CIBA-PUSH-02"),
    (dl.push_token_payload, (note({"auth_req_id": AUTH_REQ_ID, "access_token": ACCESS}), AUTH_REQ_ID), {}, NotificationViolation, "CIBA-PUSH-02"),
    (dl.push_token_payload, (note({"auth_req_id": AUTH_REQ_ID, "access_token": ACCESS, "token_type": "mac", "id_token": "x"}), AUTH_REQ_ID), {}, NotificationViolation, "CIBA-PUSH-02"),
    (dl.push_error_code_allowed, (note({"auth_req_id": AUTH_REQ_ID, "error": "server_error"}),), {}, NotificationViolation, "CIBA-PUSH-11"),
    (dl.push_error_code_allowed, (note({"error": "access_denied"}),), {}, NotificationViolation, "CIBA-PUSH-11"),
    (dl.push_error_is, (PUSH_ERROR, "expired_token", AUTH_REQ_ID), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    (dl.push_error_is, (PUSH_ERROR, "access_denied", "another"), {"requirement": "R-3"}, NotificationViolation, "R-3"),
    # --- _idtoken: claims details ---
    (idt.id_token_alg_is, (GOOD_TOKEN, {"PS256"}), {}, InvalidIdToken, "CIBA-IDT-02"),
    (idt.id_token_alg_is, ("not-a-jws",), {"algs": {"RS256"}}, InvalidIdToken, "CIBA-IDT-02"),
    (idt.acr_present, ({},), {}, InvalidIdToken, "CIBA-IDT-03"),
    (idt.auth_time_within, ({"auth_time": NOW + 100}, NOW - 5, NOW + 5), {"skew": 1}, InvalidIdToken, "CIBA-IDT-04"),
    (idt.auth_time_within, ({"auth_time": "now"}, NOW - 5, NOW + 5), {"skew": 1}, InvalidIdToken, "CIBA-IDT-04"),
    (idt.same_subject, ("user-alice", "user-bob"), {}, InvalidIdToken, "CIBA-IDT-09"),
    (idt.claim_present, ({}, "auth_time"), {"requirement": "R-4"}, InvalidIdToken, "R-4"),
    (idt.nonce_absent, ({"nonce": "n"},), {}, InvalidIdToken, "CIBA-IDT-05"),
    # --- _fapi ---
    (fapi.push_not_advertised, ({"backchannel_token_delivery_modes_supported": ["poll", "push"]},), {}, InvalidMember, "FAPI-CIBA-03"),
    (fapi.poll_advertised, ({"backchannel_token_delivery_modes_supported": ["ping"]},), {}, MissingMember, "FAPI-CIBA-04"),
    (fapi.metadata_algs_fapi, ({"x": ["RS256"]}, "x"), {}, InvalidMember, "FAPI-CIBA-18"),
    (fapi.metadata_algs_fapi, ({}, "x"), {"must_list": True}, MissingMember, "FAPI-CIBA-18"),
    (fapi.fapi_auth_method_advertised, ({"token_endpoint_auth_methods_supported": ["client_secret_basic"]},), {}, MissingMember, "FAPI-CIBA-20"),
    (fapi.bound_tokens_advertised, ({},), {}, InvalidMember, "FAPI-CIBA-21"),
    (fapi.no_rsa1_5, ({"request_object_encryption_alg_values_supported": ["RSA1_5"]},), {}, InvalidMember, "FAPI-CIBA-19"),
    (fapi.string_array_if_present, ({"x": [1]}, "x"), {"requirement": "R-5"}, InvalidMember, "R-5"),
    (fapi.member_echoed, ({}, "token_endpoint_auth_method", "private_key_jwt"), {"requirement": "R-5"}, InvalidMember, "R-5"),
    (fapi.token_entropy, ({"access_token": "aaaaaaaaaaaaaaaaaaaaaaaa"},), {}, InvalidMember, "FAPI-CIBA-26"),
    (fapi.token_entropy, ({"refresh_token": "short"},), {}, InvalidMember, "FAPI-CIBA-26"),
    (fapi.refresh_not_rotated, (REFRESH, {"refresh_token": "rotated"}), {}, InvalidMember, "FAPI-CIBA-25"),
    (fapi.cnf_matches, ({"cnf": {"x5t#S256": "other"}}, "thumb"), {}, InvalidMember, "FAPI-CIBA-21"),
    (fapi.cnf_matches, ({}, "thumb"), {}, InvalidMember, "FAPI-CIBA-21"),
    (fapi.handshake_refused, (TlsProbe("op", 443, "TLSv1.1", established=True, version="TLSv1.1", cipher="AES128-SHA"),), {"requirement": "R-6"}, UnexpectedSuccess, "R-6"),
    (fapi.handshake_established, (TlsProbe("op", 443, "TLSv1.2", established=False, error="certificate verify failed"),), {"requirement": "R-6"}, InvalidMember, "R-6"),
    (fapi.handshake_established, (TlsProbe("op", 443, "TLSv1", established=True, version="TLSv1.1"),), {"requirement": "R-6"}, InvalidMember, "R-6"),
    # --- _idtoken ---
    (idt.id_token_is_asymmetric_jws, ("a.b",), {}, InvalidIdToken, "CIBA-IDT-01"),
    (idt.id_token_is_asymmetric_jws, (sign_jwt({"sub": "x"}, b"k" * 32, "HS256"),), {"requirement": "CIBA-PUSH-06"}, InvalidIdToken, "CIBA-PUSH-06"),
    (idt.id_token_signature_verifies, (id_token(OTHER_KEY), JWKS), {}, InvalidIdToken, "CIBA-IDT-01"),
    (idt.id_token_signature_verifies, (GOOD_TOKEN, Jwks()), {}, InvalidIdToken, "CIBA-IDT-01"),
    (idt.id_token_issuer_is, (id_token(iss="https://evil.example.com"), ISSUER), {}, InvalidIdToken, "CIBA-IDT-01"),
    (idt.id_token_audience_is, (id_token(aud="other"), CLIENT), {}, InvalidIdToken, "CIBA-IDT-01"),
    (idt.id_token_audience_is, (id_token(aud=[CLIENT, "api"]), CLIENT), {}, InvalidIdToken, "CIBA-IDT-01"),
    (idt.id_token_has_subject, (id_token(sub=""),), {}, InvalidIdToken, "CIBA-IDT-01"),
    (idt.id_token_times_valid, (id_token(exp=None), NOW), {}, InvalidIdToken, "CIBA-IDT-01"),
    (idt.id_token_times_valid, (id_token(exp=NOW - 3600), NOW), {}, InvalidIdToken, "CIBA-IDT-01"),
    (idt.id_token_times_valid, (id_token(iat=NOW + 3600), NOW), {}, InvalidIdToken, "CIBA-IDT-01"),
    (idt.id_token_auth_req_id_is, (GOOD_TOKEN, "another"), {}, InvalidIdToken, "CIBA-IDT-06"),
    (idt.id_token_auth_req_id_is, (id_token(auth_req_id=None), AUTH_REQ_ID), {"mandatory": True, "requirement": "CIBA-PUSH-03"}, InvalidIdToken, "CIBA-PUSH-03"),
    (idt.id_token_at_hash_matches, (GOOD_TOKEN, "another-access-token"), {}, InvalidIdToken, "CIBA-IDT-07"),
    (idt.id_token_at_hash_matches, (id_token(at_hash=None), ACCESS), {"mandatory": True, "requirement": "CIBA-PUSH-04"}, InvalidIdToken, "CIBA-PUSH-04"),
    (idt.id_token_rt_hash_matches, (GOOD_TOKEN, "another-refresh-token"), {}, InvalidIdToken, "CIBA-IDT-07"),
    (idt.id_token_rt_hash_matches, (id_token(rt_hash=None), REFRESH), {"mandatory": True, "requirement": "CIBA-PUSH-05"}, InvalidIdToken, "CIBA-PUSH-05"),
    # --- strategies/_judging ---
    (r.not_server_error, (NO_ANSWER,), {"requirement": "R-7"}, UnexpectedStatus, "R-7"),
    (r.not_server_error, (ex(503, b"", content_type="text/plain", **{"Retry-After": "1"}),), {"requirement": "R-7"}, UnexpectedStatus, "R-7"),
    (fuzz.fuzz_guess_not_pending, (PENDING,), {}, CheckFailure, "CIBA-TOKEN-03"),
]


@pytest.mark.parametrize("case", GOOD, ids=case_ids(GOOD))
def test_check_holds(case: Case) -> None:
    assert_holds(case)


@pytest.mark.parametrize("case", BAD, ids=case_ids(BAD))
def test_check_breaks(case: BadCase) -> None:
    assert_breaks(case)


def test_id_token_failures_mask_the_token() -> None:
    token = id_token(iss="https://evil.example.com")
    with pytest.raises(InvalidIdToken) as info:
        idt.id_token_issuer_is(token, ISSUER)
    assert token in info.value.secrets


def test_times_hold_for_a_fresh_token_on_the_real_clock() -> None:
    # the tables use a fixed NOW; the check reads no clock of its own
    now = int(time.time())
    idt.id_token_times_valid(id_token(iat=now, exp=now + 60), time.time())
