"""Generated requests (Hypothesis): properties that hold for any conformant provider.

Backchannel endpoint (CIBA §7.1, §13) and token endpoint (§10.1, §11):
* never a 5xx, never a hang (every request is answered within budgets.request_timeout);
* every error is JSON with an `error` code the spec registers for that endpoint, sent with
  the HTTP status the spec gives that code;
* no auth_req_id for a request that breaks a MUST, no tokens for a guessed auth_req_id and
  never `authorization_pending` for one;
* every issued auth_req_id uses the allowed characters, they carry enough entropy, and the
  provider still accepts a valid request after the run.

A failure is shrunk to a minimal request; its report names the requirement and ends with a
curl reproducer of that minimal request. Budgets: --ciba-fuzz-profile (docs/fuzzing.md).
"""

from __future__ import annotations

from collections.abc import Collection

import pytest
from hypothesis import event, given, note

from ciba_harness import (
    BACKCHANNEL_ERROR_CODES,
    TOKEN_ERROR_CODES,
    CheckRunner,
    Exchange,
    UnexpectedStatus,
    check,
    error_code,
    parse_acknowledgement,
)
from ciba_harness.checks._backchannel import describe_refusal, no_acknowledgement
from ciba_harness.checks._choices import record_choice
from ciba_harness.checks._responses import (
    ack_auth_req_id_charset,
    auth_req_id_entropy,
    error_body_well_formed,
    error_code_is,
    fail,
    refused,
    status_is,
)
from ciba_harness.pytest_plugin import require_client
from ciba_harness.strategies import (
    BACKCHANNEL_REQUIREMENTS,
    TOKEN_REQUIREMENTS,
    BackchannelCase,
    TokenCase,
    backchannel_cases,
    redacted,
    token_cases,
)

pytestmark = [
    pytest.mark.fuzz,
    # Generated request objects sign with short secrets on purpose.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

#: statuses an HTTP layer answers before any OAuth processing (wrong method, body too large,
#: unsupported media type, URI or headers too long, a gateway's rate limit, RFC 6585 §4): a
#: refusal whatever the body holds
HTTP_LEVEL = frozenset({405, 411, 413, 414, 415, 429, 431})
#: CIBA §13: error code -> (allowed statuses, requirement row)
BACKCHANNEL_STATUS: dict[str, tuple[frozenset[int], str]] = {
    "invalid_request": (frozenset({400}), "CIBA-AERR-04"),
    "invalid_scope": (frozenset({400}), "CIBA-AERR-05"),
    "expired_login_hint_token": (frozenset({400}), "CIBA-AERR-06"),
    "unknown_user_id": (frozenset({400}), "CIBA-AERR-07"),
    "unauthorized_client": (frozenset({400}), "CIBA-AERR-08"),
    "missing_user_code": (frozenset({400}), "CIBA-AERR-09"),
    "invalid_user_code": (frozenset({400}), "CIBA-AERR-10"),
    "invalid_binding_message": (frozenset({400}), "CIBA-AERR-11"),
    "invalid_client": (frozenset({400, 401}), "CIBA-AERR-12"),  # 400 tolerated
    "access_denied": (frozenset({403}), "CIBA-AERR-13"),
}
BACKCHANNEL_PROPERTIES = (
    "CIBA-AERR-01",
    *sorted({row for _, row in BACKCHANNEL_STATUS.values()}),
    "CIBA-ACK-01",
    "CIBA-ACK-03",
    "CIBA-ACK-04",
    "CIBA-ACK-05",
    "CIBA-ACK-06",
)
TOKEN_PROPERTIES = (
    "CIBA-TOKEN-20",
    "CIBA-TOKEN-21",
    "CIBA-SEC-05",
    # the check after the run: a valid request is acknowledged, its first poll pending
    "CIBA-ACK-01",
    "CIBA-ACK-03",
    "CIBA-TOKEN-05",
)
ENTROPY_SAMPLES = 8  # auth_req_id values judged together (topped up with valid requests)


# --- checks of this suite --------------------------------------------------------------------


@check(title="The provider answers, below 500")
def fuzz_answered(exchange: Exchange, *, requirement: str, retry_after_ok: bool = False) -> None:
    """An answer within the request timeout, never a 5xx (503 + Retry-After if allowed).

    Generic: every request gets an answer below 500 (CIBA §13 lists no 5xx, CIBA-AERR-16;
    §10.1 allows 503 + Retry-After at the token endpoint)."""
    response = exchange.response
    if response is None:
        raise UnexpectedStatus(
            requirement=requirement,
            title="No answer (hang, reset or refused connection)",
            expected="an HTTP answer within budgets.request_timeout",
            actual=exchange.error,
            exchanges=[exchange],
        )
    if response.status >= 500:
        if retry_after_ok and response.status == 503 and response.header("retry-after"):
            return
        raise UnexpectedStatus(
            requirement=requirement,
            title="Server error",
            expected="a registered error (4xx) or success",
            actual=f"HTTP {response.status}: {response.text(200)!r}",
            exchanges=[exchange],
        )


@check("CIBA-TOKEN-03", title="A guessed auth_req_id is unknown, never pending")
def fuzz_guess_not_pending(exchange: Exchange, *, requirement: str = "CIBA-TOKEN-03") -> None:
    """A never-issued auth_req_id gets no authorization_pending / slow_down (CIBA-SEC-05).

    CIBA §11: an unknown auth_req_id is invalid_grant; authorization_pending would make ids
    guessable (CIBA-SEC-05)."""
    code = error_code(exchange.response)
    if code in {"authorization_pending", "slow_down"}:
        raise fail(
            requirement,
            "A never-issued auth_req_id is treated as a pending request",
            expected="invalid_grant (or another refusal)",
            actual=code,
            exchanges=[exchange],
        )


@check("CIBA-ACK-06", title="Each accepted request gets its own auth_req_id")
def fuzz_distinct_auth_req_ids(ids: list[str], *, requirement: str = "CIBA-ACK-06") -> None:
    """No auth_req_id is issued twice.

    CIBA §7.3 (implied): each accepted request gets its own auth_req_id."""
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise fail(
            requirement,
            "The same auth_req_id was issued for different requests",
            expected=f"{len(ids)} distinct values",
            actual=f"{len(repeated)} value(s) issued more than once",
        )


# --- judging one exchange ----------------------------------------------------------------------


def judge_error(
    runner: CheckRunner,
    exchange: Exchange,
    *,
    codes: Collection[str],
    statuses: dict[str, tuple[frozenset[int], str]],
    envelope: str,
) -> None:
    """A registered error code, in a JSON error body, with the status the spec pairs it with."""
    runner(error_body_well_formed, exchange, requirement=envelope, allow_extra_members=True)
    runner(error_code_is, exchange, codes, requirement=envelope)
    code = error_code(exchange.response)
    assert code is not None
    allowed, row = statuses.get(code, (frozenset({400}), envelope))
    runner(status_is, exchange, allowed, requirement=row)


def judge_transport(runner: CheckRunner, exchange: Exchange) -> None:
    """A wrong HTTP method or a non-form body (CIBA §7.1 defines only form POSTs): any
    refusal in any form passes and is recorded; only an auth_req_id is wrong (CIBA-AUTH-02)."""
    runner(no_acknowledgement, exchange)
    record_choice("wrong_method_answer", describe_refusal(exchange),
                  f"{exchange.request.method} {exchange.request.header('content-type') or 'no body'}")


def judge_backchannel(runner: CheckRunner, exchange: Exchange, case: BackchannelCase) -> str | None:
    """Check one backchannel exchange; returns the auth_req_id it issued, if any."""
    runner(fuzz_answered, exchange, requirement="CIBA-AERR-01")
    assert exchange.response is not None
    status = exchange.response.status
    if case.method != "POST" or case.body_format != "form":
        judge_transport(runner, exchange)
        return None
    if 200 <= status < 300:
        if case.breaks is not None:
            runner(refused, exchange, requirement=case.breaks)
        ack = parse_acknowledgement(exchange.response)
        if ack is None:
            return None
        runner(ack_auth_req_id_charset, exchange)
        return ack.auth_req_id
    if status not in HTTP_LEVEL:
        judge_error(
            runner,
            exchange,
            codes=BACKCHANNEL_ERROR_CODES,
            statuses=BACKCHANNEL_STATUS,
            envelope="CIBA-AERR-01",
        )
    return None


def judge_token(runner: CheckRunner, exchange: Exchange, case: TokenCase) -> None:
    runner(fuzz_answered, exchange, requirement="CIBA-TOKEN-21", retry_after_ok=True)
    assert exchange.response is not None
    status = exchange.response.status
    runner(refused, exchange, requirement=case.breaks)
    if case.body_format != "form" and status < 500:
        # RFC 6749 §3.2 defines only form POSTs: any refusal in any form (CIBA-TOKEN-22).
        record_choice("wrong_method_answer", describe_refusal(exchange), "token endpoint, JSON body")
        return
    if status in HTTP_LEVEL or status == 503:
        return
    judge_error(
        runner,
        exchange,
        codes=TOKEN_ERROR_CODES,
        statuses={"invalid_client": (frozenset({400, 401}), "CIBA-TOKEN-20")},
        envelope="CIBA-TOKEN-21",
    )
    if case.is_guess:
        runner(fuzz_guess_not_pending, exchange)


def _trim(ciba) -> None:
    # The report keeps the last exchanges; thousands of fuzz exchanges need not stay in memory.
    del ciba.recorder.exchanges[:-12]


# --- properties --------------------------------------------------------------------------------


@pytest.mark.requirement(*BACKCHANNEL_PROPERTIES, *BACKCHANNEL_REQUIREMENTS)
def test_backchannel_requests(ciba, ciba_config, ciba_metadata, ciba_fuzz):
    """Generated authentication requests: no 5xx, registered errors, no auth_req_id for a broken MUST."""
    poll_client = require_client(ciba_config, ciba_metadata, mode="poll")
    issued: list[str] = []
    budget = ciba_fuzz.budget()

    @ciba_fuzz.settings
    @given(case=backchannel_cases(ciba_config, ciba_metadata))
    def run(case: BackchannelCase) -> None:
        if budget.exhausted():
            return  # past the time budget: skip (not assume(): the clock is no input)
        event(f"breaks {case.breaks or 'nothing'}")
        # The request the strategy built (and classified) when it drew the case.
        request = case.request or case.build(ciba.metadata)
        exchange = ciba.send(request, label="fuzz backchannel", client=case.client)
        _trim(ciba)
        status = exchange.response.status if exchange.response else exchange.error
        event(f"status {status}")
        note(redacted(f"case breaks {case.breaks or 'no MUST'}; answered {status}", case))
        with budget.watch():
            auth_req_id = judge_backchannel(CheckRunner(), exchange, case)
        if auth_req_id is not None:
            issued.append(auth_req_id)

    budget.run(run)
    # The provider stays responsive: valid requests still succeed (CIBA-ACK-01), and the ids
    # issued during and after the run are distinct and unguessable (CIBA-ACK-06, CIBA-ACK-05).
    while len(issued) < ENTROPY_SAMPLES:
        flow = ciba.start(poll_client)
        issued.append(flow.auth_req_id)
    ciba.check(fuzz_distinct_auth_req_ids, issued)
    ciba.check(auth_req_id_entropy, sorted(set(issued)))


@pytest.mark.requirement(*TOKEN_PROPERTIES, *TOKEN_REQUIREMENTS)
def test_token_requests(ciba, ciba_config, ciba_metadata, ciba_fuzz):
    """Generated token requests with guessed auth_req_ids: refused, registered errors, never pending."""
    poll_client = require_client(ciba_config, ciba_metadata, mode="poll")
    budget = ciba_fuzz.budget()

    @ciba_fuzz.settings
    @given(case=token_cases(ciba_config, ciba_metadata))
    def run(case: TokenCase) -> None:
        if budget.exhausted():
            return  # past the time budget: skip (not assume(): the clock is no input)
        event(f"breaks {case.breaks}")
        exchange = ciba.send(case.build(ciba.metadata), label="fuzz token", client=case.client)
        _trim(ciba)
        status = exchange.response.status if exchange.response else exchange.error
        event(f"status {status}")
        note(redacted(f"case breaks {case.breaks}; answered {status}", case))
        with budget.watch():
            judge_token(CheckRunner(), exchange, case)

    budget.run(run)
    # Still responsive: a valid request is acknowledged and its first poll is pending.
    flow = ciba.start(poll_client)
    exchange = ciba.token(poll_client, flow.auth_req_id)
    ciba.expect_error(
        exchange, {"authorization_pending", "slow_down"}, requirement="CIBA-TOKEN-05"
    )
