"""The fuzz suite's judgement of single answers, without a provider: a choice the specs allow
passes (and is recorded), a broken rule still fails (issue 12)."""

from __future__ import annotations

import json

import pytest

from ciba_harness import (
    BackchannelParams,
    CheckFailure,
    CheckRunner,
    Exchange,
    HttpRequest,
    HttpResponse,
    default_profile_path,
    load_config,
)
from ciba_harness.checks._choices import recorded_choices, reset_choices
from ciba_harness.strategies import BackchannelCase, TokenCase, classify
from ciba_harness.strategies._judging import judge_backchannel, judge_token

ISSUER = "https://op.example"
CONFIG = load_config(default_profile_path()).with_issuer(ISSUER)


def answer(method: str, status: int, body: bytes, content_type: str) -> Exchange:
    return Exchange(
        HttpRequest(method, f"{ISSUER}/backchannel"),
        response=HttpResponse(status, (("Content-Type", content_type),), body),
    )


def backchannel_case(**changes: object) -> BackchannelCase:
    made = BackchannelCase(
        client=CONFIG.client("poll-basic"),
        params=BackchannelParams(scope="openid", login_hint="alice"),
    )
    for name, value in changes.items():
        object.__setattr__(made, name, value)
    object.__setattr__(made, "all_breaks", classify(made, CONFIG))
    return made


@pytest.fixture(autouse=True)
def _fresh_choices():
    reset_choices()
    yield
    reset_choices()


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (404, b"Not Found", "text/plain"),
        (405, b"<html>Method Not Allowed</html>", "text/html"),
        (400, b"", "text/plain"),
        (404, b'{"message": "no route"}', "application/json"),
    ],
)
def test_wrong_method_may_get_any_4xx_with_any_body(status: int, body: bytes, content_type: str):
    """GET to the backchannel endpoint: any 4xx, any body, is a refusal (CIBA-AUTH-02)."""
    case = backchannel_case(method="GET")
    assert case.breaks == "CIBA-AUTH-02"
    exchange = answer("GET", status, body, content_type)
    assert judge_backchannel(CheckRunner(), exchange, case) is None
    assert [c["latitude"] for c in recorded_choices()] == ["wrong_method_answer"]


def test_json_body_may_get_a_plain_refusal():
    case = backchannel_case(body_format="json")
    exchange = answer("POST", 400, b"Bad Request", "text/plain")
    assert judge_backchannel(CheckRunner(), exchange, case) is None


def test_wrong_method_with_an_auth_req_id_fails():
    case = backchannel_case(method="GET")
    ack = json.dumps({"auth_req_id": "abcDEF0123456789abcdef", "expires_in": 60}).encode()
    exchange = answer("GET", 200, ack, "application/json")
    with pytest.raises(CheckFailure) as raised:
        judge_backchannel(CheckRunner(), exchange, case)
    assert raised.value.requirement == "CIBA-AUTH-02"


def test_a_post_form_error_must_still_be_json():
    """A malformed POST answered with a plain-text 400 is still judged (CIBA-AERR-01)."""
    case = backchannel_case(params=BackchannelParams(scope="openid"))  # no hint
    exchange = answer("POST", 400, b"Bad Request", "text/plain")
    with pytest.raises(CheckFailure) as raised:
        judge_backchannel(CheckRunner(), exchange, case)
    assert raised.value.requirement == "CIBA-AERR-01"


def test_token_json_body_may_get_a_plain_refusal():
    case = TokenCase(client=CONFIG.client("poll-basic"), auth_req_id="x" * 24, body_format="json")
    exchange = answer("POST", 400, b"unsupported body", "text/plain")
    judge_token(CheckRunner(), exchange, case)
    assert [c["latitude"] for c in recorded_choices()] == ["wrong_method_answer"]
