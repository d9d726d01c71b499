"""checks/_responses: every registered check passes on a good response and raises the right CheckFailure
subclass with the right requirement ID on a bad one; CheckRunner applies the severity."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from check_table import BadCase, Case, assert_breaks, assert_holds, case_ids
from core_helpers import exchange_of, json_response

from ciba_harness import (
    CHECKS,
    CheckFailure,
    CheckRunner,
    Exchange,
    HttpResponse,
    InvalidMember,
    MalformedResponse,
    MissingMember,
    Severity,
    UnexpectedStatus,
    UnexpectedSuccess,
    WrongErrorCode,
    estimate_entropy_bits,
)
from ciba_harness.checks import _responses as checks
from ciba_harness.checks._registry import check

GOOD_ACK = {"auth_req_id": "1c266114-a1be-4252-8ad1-04986c5b9ac1", "expires_in": 120, "interval": 2}
GOOD_TOKENS = {
    "access_token": "G5kXH2wHvUra0sHlDy1iTkDJgsgUO1bN",
    "token_type": "Bearer",
    "id_token": "eyJhbGciOiJSUzI1NiJ9.e30.sig",
    "expires_in": 3600,
}


def ex(status: int, body: Any = None, *, content_type: str = "application/json", **headers: str) -> Exchange:
    if isinstance(body, bytes):
        response = HttpResponse(status, (("Content-Type", content_type), *headers.items()), body)
    else:
        response = json_response(status, body if body is not None else {}, **headers)
        if content_type != "application/json":
            response = HttpResponse(
                status, (("Content-Type", content_type), *headers.items()), response.body
            )
    return exchange_of(response)


NO_ANSWER = exchange_of(None, error="no answer within 5 s")
ERROR_400 = ex(400, {"error": "invalid_request", "error_description": "missing login_hint"})


# (check, args, kwargs) that hold; (check, args, kwargs, failure class, requirement) that break.
GOOD: list[Case] = [
    (checks.error_code_is, (ERROR_400, {"invalid_request"}), {"requirement": "R-1"}),
    (checks.status_is, (ERROR_400, {400, 401}), {"requirement": "R-1"}),
    (checks.not_server_error, (ERROR_400,), {"requirement": "R-1"}),
    (checks.refused, (ERROR_400,), {"requirement": "R-1"}),
    (checks.refused, (ex(302, b"", content_type="text/html"),), {"requirement": "R-1"}),
    (checks.error_body_well_formed, (ERROR_400,), {"requirement": "R-1"}),
    (
        checks.error_body_well_formed,
        (ex(400, {"error": "x", "extra": 1}),),
        {"requirement": "R-1", "allow_extra_members": True},
    ),
    (checks.error_charset, (ERROR_400,), {"requirement": "R-1"}),
    (
        checks.error_charset,
        (ex(400, {"error": "x", "error_uri": "https://op/errors#x"}),),
        {"requirement": "R-1"},
    ),
    (checks.error_description_charset, (ERROR_400,), {}),
    (checks.error_description_charset, (ex(400, b"<html>", content_type="text/html"),), {}),
    (checks.error_uri_charset, (ex(400, {"error": "x", "error_uri": "https://op/errors#x"}),), {}),
    (checks.error_uri_charset, (NO_ANSWER,), {}),
    (checks.www_authenticate_present, (ex(401, {"error": "invalid_client"}, **{"WWW-Authenticate": "Basic"}),), {"requirement": "R-1"}),
    (checks.www_authenticate_present, (ERROR_400,), {"requirement": "R-1"}),
    (checks.no_store, (ex(200, GOOD_TOKENS, **{"Cache-Control": "No-Store"}),), {"requirement": "R-1"}),
    (
        checks.no_store,
        (ex(200, GOOD_TOKENS, **{"Cache-Control": "no-store", "Pragma": "no-cache"}),),
        {"requirement": "R-1", "pragma": True},
    ),
    (checks.ack_status_ok, (ex(200, GOOD_ACK),), {}),
    (checks.ack_is_json, (ex(200, GOOD_ACK, content_type="application/json; charset=UTF-8"),), {}),
    (checks.ack_has_auth_req_id, (ex(200, GOOD_ACK),), {}),
    (checks.ack_auth_req_id_charset, (ex(200, {"auth_req_id": "aZ09._-"}),), {}),
    (checks.ack_expires_in, (ex(200, GOOD_ACK),), {}),
    (checks.ack_interval, (ex(200, GOOD_ACK),), {}),
    (checks.ack_interval, (ex(200, {"auth_req_id": "x", "expires_in": 1}),), {}),
    (checks.ack_no_interval_for_push, (ex(200, {"auth_req_id": "x", "expires_in": 1}),), {}),
    (checks.auth_req_id_entropy, ([secrets.token_urlsafe(24) for _ in range(40)],), {}),
    (checks.token_response_complete, (ex(200, GOOD_TOKENS),), {}),
    (checks.token_response_complete, (ex(200, {"access_token": "a", "token_type": "Bearer"}),), {"openid": False}),
    (checks.token_members_present, (GOOD_TOKENS,), {}),
    (checks.token_members_present, ({"access_token": "a", "token_type": "Bearer"},), {"openid": False}),
    (checks.token_type_bearer, ({"token_type": "bearer"},), {}),
    (checks.token_type_bearer, ({"token_type": "DPoP"},), {}),
]

BAD: list[BadCase] = [
    (checks.error_code_is, (ex(200, GOOD_ACK), {"invalid_request"}), {"requirement": "R-1"}, UnexpectedSuccess, "R-1"),
    (checks.error_code_is, (ERROR_400, {"unknown_user_id"}), {"requirement": "R-2"}, WrongErrorCode, "R-2"),
    (checks.error_code_is, (ex(400, b"<html>", content_type="text/html"), {"x"}), {"requirement": "R-3"}, MalformedResponse, "R-3"),
    (checks.error_code_is, (NO_ANSWER, {"x"}), {"requirement": "R-3"}, MalformedResponse, "R-3"),
    (checks.status_is, (ERROR_400, {200}), {"requirement": "R-4"}, UnexpectedStatus, "R-4"),
    (checks.status_is, (NO_ANSWER, {200}), {"requirement": "R-4"}, UnexpectedStatus, "R-4"),
    (checks.not_server_error, (ex(502, b"", content_type="text/plain"),), {"requirement": "R-5"}, UnexpectedStatus, "R-5"),
    (checks.not_server_error, (NO_ANSWER,), {"requirement": "R-5"}, UnexpectedStatus, "R-5"),
    (checks.refused, (ex(200, GOOD_ACK),), {"requirement": "R-6"}, UnexpectedSuccess, "R-6"),
    (checks.error_body_well_formed, (ex(400, {"error": "x"}, content_type="text/plain"),), {"requirement": "R-7"}, MalformedResponse, "R-7"),
    (checks.error_body_well_formed, (ex(400, {"message": "bad"}),), {"requirement": "R-7"}, MissingMember, "R-7"),
    (checks.error_body_well_formed, (ex(400, {"error": ""}),), {"requirement": "R-7"}, MissingMember, "R-7"),
    (checks.error_body_well_formed, (ex(400, {"error": "x", "trace": "..."}),), {"requirement": "R-7"}, InvalidMember, "R-7"),
    (checks.error_body_well_formed, (ex(400, [1, 2]),), {"requirement": "R-7"}, MalformedResponse, "R-7"),
    (checks.error_charset, (ex(400, {"error": "x", "error_description": 'say "no"'}),), {"requirement": "R-8"}, InvalidMember, "R-8"),
    (checks.error_charset, (ex(400, {"error": "x", "error_description": "café"}),), {"requirement": "R-8"}, InvalidMember, "R-8"),
    (checks.error_charset, (ex(400, {"error": "x", "error_description": "bad\n"}),), {"requirement": "R-8"}, InvalidMember, "R-8"),
    (checks.error_charset, (ex(400, {"error": "x", "error_uri": "https://op/x\n"}),), {"requirement": "R-8"}, InvalidMember, "R-8"),
    (checks.error_charset, (ex(400, {"error": "x", "error_description": 5}),), {"requirement": "R-8"}, InvalidMember, "R-8"),
    (checks.error_charset, (ex(400, {"error": "x", "error_uri": "https://op/a b"}),), {"requirement": "R-8"}, InvalidMember, "R-8"),
    (checks.error_description_charset, (ex(400, {"error": "x", "error_description": 'say "no"'}),), {}, InvalidMember, "CIBA-AERR-02"),
    (checks.error_description_charset, (ex(400, {"error": "x", "error_description": "bad\n"}),), {}, InvalidMember, "CIBA-AERR-02"),
    (checks.error_uri_charset, (ex(400, {"error": "x", "error_uri": "https://op/a b"}),), {}, InvalidMember, "CIBA-AERR-03"),
    (checks.error_uri_charset, (ex(400, {"error": "x", "error_uri": 7}),), {}, InvalidMember, "CIBA-AERR-03"),
    (checks.www_authenticate_present, (ex(401, {"error": "invalid_client"}),), {"requirement": "R-9"}, MissingMember, "R-9"),
    (checks.no_store, (ex(200, GOOD_TOKENS),), {"requirement": "R-10"}, MissingMember, "R-10"),
    (checks.no_store, (ex(200, GOOD_TOKENS, **{"Cache-Control": "no-store"}),), {"requirement": "R-10", "pragma": True}, MissingMember, "R-10"),
    (checks.ack_status_ok, (ex(400, {"error": "invalid_request"}),), {}, UnexpectedStatus, "CIBA-ACK-01"),
    (checks.ack_is_json, (ex(200, GOOD_ACK, content_type="text/plain"),), {}, MalformedResponse, "CIBA-ACK-02"),
    (checks.ack_is_json, (ex(200, b"not json"),), {}, MalformedResponse, "CIBA-ACK-02"),
    (checks.ack_is_json, (NO_ANSWER,), {}, MalformedResponse, "CIBA-ACK-02"),
    (checks.ack_has_auth_req_id, (ex(200, {"expires_in": 120}),), {}, MissingMember, "CIBA-ACK-03"),
    (checks.ack_has_auth_req_id, (ex(200, {"auth_req_id": ""}),), {}, MissingMember, "CIBA-ACK-03"),
    (checks.ack_has_auth_req_id, (ex(200, {"auth_req_id": 42}),), {}, MissingMember, "CIBA-ACK-03"),
    (checks.ack_auth_req_id_charset, (ex(200, {"auth_req_id": "a+b/c="}),), {}, InvalidMember, "CIBA-ACK-04"),
    (checks.ack_auth_req_id_charset, (ex(200, {"auth_req_id": "abc\n"}),), {}, InvalidMember, "CIBA-ACK-04"),
    (checks.ack_expires_in, (ex(200, {"auth_req_id": "x", "expires_in": "120"}),), {}, InvalidMember, "CIBA-ACK-07"),
    (checks.ack_expires_in, (ex(200, {"auth_req_id": "x", "expires_in": 0}),), {}, InvalidMember, "CIBA-ACK-07"),
    (checks.ack_expires_in, (ex(200, {"auth_req_id": "x", "expires_in": 1.5}),), {}, InvalidMember, "CIBA-ACK-07"),
    (checks.ack_expires_in, (ex(200, {"auth_req_id": "x", "expires_in": True}),), {}, InvalidMember, "CIBA-ACK-07"),
    (checks.ack_expires_in, (ex(200, {"auth_req_id": "x"}),), {}, InvalidMember, "CIBA-ACK-07"),
    (checks.ack_expires_in, (ex(200, {"auth_req_id": "x", "expires_in": 2 * 365 * 86400}),), {}, InvalidMember, "CIBA-ACK-07"),
    (checks.ack_interval, (ex(200, {"auth_req_id": "x", "interval": "5"}),), {}, InvalidMember, "CIBA-ACK-08"),
    (checks.ack_interval, (ex(200, {"auth_req_id": "x", "interval": -1}),), {}, InvalidMember, "CIBA-ACK-08"),
    (checks.ack_interval, (ex(200, {"auth_req_id": "x", "interval": None}),), {}, InvalidMember, "CIBA-ACK-08"),
    (checks.ack_interval, (ex(200, {"auth_req_id": "x", "interval": 86400}),), {}, InvalidMember, "CIBA-ACK-08"),
    (checks.ack_no_interval_for_push, (ex(200, GOOD_ACK),), {}, InvalidMember, "CIBA-ACK-09"),
    (checks.auth_req_id_entropy, (["same-id-1234567890"] * 2,), {}, InvalidMember, "CIBA-ACK-05"),
    (checks.auth_req_id_entropy, ([f"{i:040d}" for i in range(40)],), {}, InvalidMember, "CIBA-ACK-05"),
    (checks.token_response_complete, (ex(400, {"error": "authorization_pending"}),), {}, UnexpectedStatus, "CIBA-TOKEN-14"),
    (checks.token_response_complete, (ex(200, {"access_token": "a", "token_type": "Bearer"}),), {}, MissingMember, "CIBA-TOKEN-14"),
    (checks.token_response_complete, (ex(200, {**GOOD_TOKENS, "access_token": ""}),), {}, MissingMember, "CIBA-TOKEN-14"),
    (checks.token_response_complete, (ex(200, {**GOOD_TOKENS, "expires_in": "3600"}),), {}, InvalidMember, "CIBA-TOKEN-14"),
    (checks.token_response_complete, (ex(200, b"tokens!"),), {}, MalformedResponse, "CIBA-TOKEN-14"),
    (checks.token_members_present, ({"access_token": "a", "token_type": "Bearer"},), {}, MissingMember, "CIBA-TOKEN-14"),
    (checks.token_members_present, ({**GOOD_TOKENS, "token_type": 1},), {"requirement": "CIBA-PUSH-02"}, MissingMember, "CIBA-PUSH-02"),
    (checks.token_type_bearer, ({"token_type": "mac"},), {}, InvalidMember, "CIBA-TOKEN-25"),
    (checks.token_type_bearer, ({},), {}, InvalidMember, "CIBA-TOKEN-25"),
]


@pytest.mark.parametrize("case", GOOD, ids=case_ids(GOOD))
def test_check_holds(case: Case) -> None:
    assert_holds(case)


@pytest.mark.parametrize("case", BAD, ids=case_ids(BAD))
def test_check_breaks(case: BadCase) -> None:
    assert_breaks(case)


def test_requirement_can_be_overridden_per_call() -> None:
    with pytest.raises(InvalidMember) as info:
        checks.ack_no_interval_for_push(ex(200, GOOD_ACK), requirement="CIBA-PUSH-13")
    assert info.value.requirement == "CIBA-PUSH-13"


def test_every_core_check_is_covered() -> None:
    core = {name for name, info in CHECKS.items() if info.function.__module__ == checks.__name__}
    assert core == {c[0].__name__ for c in GOOD} == {c[0].__name__ for c in BAD}


def test_registry_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="registered twice"):

        @check("X")
        def status_is() -> None:  # same name as the core check
            """Duplicate."""


def test_failure_renders_evidence_and_a_reproducer() -> None:
    with pytest.raises(CheckFailure) as info:
        checks.status_is(ERROR_400, {200}, requirement="CIBA-ACK-01")
    text = str(info.value)
    assert "Expected: 200" in text and "Received: 400" in text
    assert "< 400" in text
    assert "Reproduce with:" in text and "curl -i -X POST" in text
    data = info.value.to_dict()
    assert data["kind"] == "UnexpectedStatus"
    assert data["requirement"] == "CIBA-ACK-01"
    assert data["exchanges"][0]["response"]["status"] == 400


# --- CheckRunner -----------------------------------------------------------------------------


def test_runner_records_a_pass() -> None:
    runner = CheckRunner()
    assert runner(checks.ack_status_ok, ex(200, GOOD_ACK)) is True
    (outcome,) = runner.outcomes
    assert outcome.passed and outcome.requirement == "CIBA-ACK-01"
    assert outcome.check == "ack_status_ok" and outcome.severity is Severity.FAILURE
    runner(checks.status_is, ERROR_400, {400}, requirement="CIBA-AERR-01")
    assert runner.outcomes[-1].requirement == "CIBA-AERR-01"


def test_runner_raises_a_failure() -> None:
    runner = CheckRunner()
    with pytest.raises(UnexpectedStatus):
        runner(checks.ack_status_ok, ERROR_400)
    (outcome,) = runner.outcomes
    assert not outcome.passed
    assert outcome.severity is Severity.FAILURE
    assert outcome.requirement == "CIBA-ACK-01"
    assert isinstance(outcome.failure, UnexpectedStatus)
    assert runner.warnings() == []


def test_runner_lets_a_warning_through() -> None:
    runner = CheckRunner()
    assert runner(checks.ack_no_interval_for_push, ex(200, GOOD_ACK), severity=Severity.WARNING) is False
    (outcome,) = runner.outcomes
    assert not outcome.passed and outcome.severity is Severity.WARNING
    assert outcome.requirement == "CIBA-ACK-09"
    assert outcome.failure is not None and outcome.failure.severity is Severity.WARNING
    assert runner.warnings() == [outcome]


def test_runner_lets_info_through() -> None:
    runner = CheckRunner(strict=True)
    assert runner(checks.ack_no_interval_for_push, ex(200, GOOD_ACK), severity=Severity.INFO) is False
    assert runner.outcomes[0].severity is Severity.INFO


def test_strict_runner_turns_warnings_into_failures() -> None:
    runner = CheckRunner(strict=True)
    with pytest.raises(InvalidMember) as info:
        runner(checks.ack_no_interval_for_push, ex(200, GOOD_ACK), severity=Severity.WARNING)
    (outcome,) = runner.outcomes
    assert outcome.severity is Severity.FAILURE
    assert info.value.severity is Severity.FAILURE  # the raised failure says what it counted as
    assert runner.warnings() == []


def test_runner_accepts_unregistered_functions() -> None:
    def ad_hoc(value: int) -> None:
        if value < 0:
            raise checks.fail("CIBA-X-01", "negative")

    runner = CheckRunner()
    assert runner(ad_hoc, 1)
    assert runner.outcomes[0].requirement == "unspecified"
    with pytest.raises(CheckFailure):
        runner(ad_hoc, -1)
    assert runner.outcomes[1].requirement == "CIBA-X-01"


# --- entropy ---------------------------------------------------------------------------------


def test_entropy_of_random_160_bit_ids() -> None:
    for _ in range(5):
        ids = [secrets.token_urlsafe(20) for _ in range(60)]
        assert estimate_entropy_bits(ids) >= 140


def test_entropy_of_counters_is_low() -> None:
    assert estimate_entropy_bits([str(100000 + i) for i in range(60)]) < 40
    assert estimate_entropy_bits([f"{i:032d}" for i in range(60)]) < 40
    assert estimate_entropy_bits([f"txn-{i:08x}-0000-0000" for i in range(60)]) < 40


def test_entropy_of_random_prefix_plus_counter_is_low() -> None:
    prefix = secrets.token_urlsafe(20)
    assert estimate_entropy_bits([f"{prefix}{i}" for i in range(60)]) < 40
    assert estimate_entropy_bits([f"{prefix}.{i:06d}" for i in range(60)]) < 40


def test_entropy_edge_cases() -> None:
    assert estimate_entropy_bits([]) == 0.0
    assert estimate_entropy_bits(["", ""]) == 0.0
    assert estimate_entropy_bits(["aaaa"]) == 0.0
    assert estimate_entropy_bits(["abcd"]) == pytest.approx(8.0)


def test_missing_token_members_keeps_the_order_of_the_required_ones() -> None:
    assert checks.missing_token_members({"token_type": "Bearer"}) == ["access_token", "id_token"]
    assert checks.missing_token_members({"access_token": "", "token_type": "x"}, openid=False) == ["access_token"]
    assert checks.missing_token_members(GOOD_TOKENS) == []


def test_runner_at_runs_a_check_at_the_given_severity() -> None:
    runner = CheckRunner()
    assert runner.at(Severity.WARNING, checks.ack_no_interval_for_push, ex(200, GOOD_ACK)) is False
    assert runner.at(Severity.INFO, checks.ack_status_ok, ex(200, GOOD_ACK)) is True
    assert [(o.severity, o.passed) for o in runner.outcomes] == [
        (Severity.WARNING, False),
        (Severity.INFO, True),
    ]
    with pytest.raises(UnexpectedStatus):
        runner.at(Severity.FAILURE, checks.ack_status_ok, ERROR_400)


def test_runner_refuses_a_severity_keyword_that_is_no_severity() -> None:
    with pytest.raises(TypeError, match="Severity"):
        CheckRunner()(checks.ack_status_ok, ex(200, GOOD_ACK), severity="warning")  # type: ignore[call-arg]
