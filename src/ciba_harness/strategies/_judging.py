"""The fuzz suite's judgement of one answer: what any conformant provider does with any
generated request (CIBA §7.1, §10.1, §11, §13), as registered checks run in a fixed order.

A wrong method or a non-form body may get any refusal in any form (recorded, not judged);
an HTTP-level status (wrong method, too large, rate limit) is a refusal whatever its body;
every other error is JSON with a code the spec registers for the endpoint, sent with the
status the spec pairs with that code (`checks._backchannel.ERROR_STATUS`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from ciba_harness.checks._backchannel import ERROR_STATUS, describe_refusal, no_acknowledgement
from ciba_harness.checks._choices import record_choice
from ciba_harness.checks._registry import CheckRunner, check
from ciba_harness.checks._responses import (
    ack_auth_req_id_charset,
    error_body_well_formed,
    error_code_is,
    fail,
    not_server_error,
    refused,
    status_is,
)
from ciba_harness.core._codes import BACKCHANNEL_ERROR_CODES, TOKEN_ERROR_CODES
from ciba_harness.core._http import Exchange
from ciba_harness.core._requests import error_code, parse_acknowledgement
from ciba_harness.strategies._cases import BackchannelCase, TokenCase

__all__ = [
    "HTTP_LEVEL",
    "KEPT_EXCHANGES",
    "RecordingClient",
    "TOKEN_ERROR_STATUS",
    "fuzz_guess_not_pending",
    "judge_backchannel",
    "judge_error",
    "judge_token",
    "judge_transport",
    "keep_last_exchanges",
]

#: statuses an HTTP layer answers before any OAuth processing (wrong method, body too large,
#: unsupported media type, URI or headers too long, a gateway's rate limit, RFC 6585 §4): a
#: refusal whatever the body holds
HTTP_LEVEL = frozenset({405, 411, 413, 414, 415, 429, 431})
#: token endpoint: error code -> (requirement that fixes its status, allowed statuses)
TOKEN_ERROR_STATUS: Mapping[str, tuple[str, frozenset[int]]] = {
    "invalid_client": ("CIBA-TOKEN-20", frozenset({400, 401})),
}
KEPT_EXCHANGES = 12  # the report keeps the last exchanges of a test


class Recorded(Protocol):
    exchanges: list[Exchange]


class RecordingClient(Protocol):
    """A client that records its exchanges (client._client.CibaClient)."""

    @property
    def recorder(self) -> Recorded: ...


def keep_last_exchanges(client: RecordingClient) -> None:
    """Forget all but the last exchanges: thousands of fuzz exchanges need not stay in memory."""
    del client.recorder.exchanges[:-KEPT_EXCHANGES]


# --- checks of the fuzz suite ---------------------------------------------------------------


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


# --- judging one exchange -------------------------------------------------------------------


def judge_error(
    runner: CheckRunner,
    exchange: Exchange,
    *,
    codes: Collection[str],
    statuses: Mapping[str, tuple[str, frozenset[int]]],
    envelope: str,
) -> None:
    """A registered error code, in a JSON error body, with the status the spec pairs it with."""
    runner(error_body_well_formed, exchange, requirement=envelope, allow_extra_members=True)
    runner(error_code_is, exchange, codes, requirement=envelope)
    code = error_code(exchange.response)
    assert code is not None
    row, allowed = statuses.get(code, (envelope, frozenset({400})))
    runner(status_is, exchange, allowed, requirement=row)


def judge_transport(runner: CheckRunner, exchange: Exchange) -> None:
    """A wrong HTTP method or a non-form body (CIBA §7.1 defines only form POSTs): any
    refusal in any form passes and is recorded; only an auth_req_id is wrong (CIBA-AUTH-02)."""
    runner(no_acknowledgement, exchange)
    record_choice("wrong_method_answer", describe_refusal(exchange),
                  f"{exchange.request.method} {exchange.request.header('content-type') or 'no body'}")


def judge_backchannel(runner: CheckRunner, exchange: Exchange, case: BackchannelCase) -> str | None:
    """Check one backchannel exchange; returns the auth_req_id it issued, if any."""
    runner(not_server_error, exchange, requirement="CIBA-AERR-01")
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
            statuses=ERROR_STATUS,
            envelope="CIBA-AERR-01",
        )
    return None


def judge_token(runner: CheckRunner, exchange: Exchange, case: TokenCase) -> None:
    """Check one token exchange: refused, a registered error, never pending for a guess."""
    runner(not_server_error, exchange, requirement="CIBA-TOKEN-21", retry_after_ok=True)
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
        statuses=TOKEN_ERROR_STATUS,
        envelope="CIBA-TOKEN-21",
    )
    if case.is_guess:
        runner(fuzz_guess_not_pending, exchange)
