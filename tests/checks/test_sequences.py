"""The sequences in checks/ that run registered checks through a runner: callback_violations
(the inbox's judgement of every callback) and CheckRunner.failure, which they rely on."""

from __future__ import annotations

import json

import pytest

from ciba_harness import CheckRunner, Severity
from ciba_harness.checks._delivery import callback_violations, ping_body_only_auth_req_id
from ciba_harness.checks._registry import CheckOutcome
from ciba_harness.core._notifications import MAX_NOTIFICATION_BYTES, parse_notification


def received(body: bytes, *, bearer: str | None = "tok", content_type: str = "application/json"):  # type: ignore[no-untyped-def]
    headers = [("Content-Type", content_type)]
    if bearer:
        headers.append(("Authorization", f"Bearer {bearer}"))
    return parse_notification("/cb", headers, body)


def rules(body: bytes, mode: str | None, **kwargs: str | None) -> list[str]:
    return [rule for rule, _ in callback_violations(CheckRunner(), received(body, **kwargs), mode)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "mode", "kwargs", "expected"),
    [
        (b'{"auth_req_id": "a"}', "ping", {}, []),
        (b'{"auth_req_id": "a"}', None, {}, []),
        (b"x" * (MAX_NOTIFICATION_BYTES + 1), "push", {}, ["CIBA-PING-03"]),
        (b"[1]", "ping", {}, ["CIBA-PING-03"]),
        (b"[1]", "push", {}, ["CIBA-PUSH-02"]),
        (b'{"auth_req_id": "a"}', "ping", {"content_type": "text/plain"}, ["CIBA-PING-03"]),
        (b'{"auth_req_id": "a"}', "ping", {"bearer": None}, ["CIBA-PING-02"]),
        (b'{"auth_req_id": "a", "error": "access_denied"}', "push", {"bearer": None, "content_type": "text/plain"}, ["CIBA-PUSH-01", "CIBA-PUSH-01"]),
        (b'{"auth_req_id": "a", "error": "nope"}', "ping", {}, ["CIBA-PUSH-11", "CIBA-PING-03"]),
        (b'{"error": "access_denied"}', "push", {}, ["CIBA-PUSH-11"]),
        (b'{"access_token": "t", "token_type": "Bearer"}', "push", {}, ["CIBA-PUSH-02"]),
        (b'{"auth_req_id": "a"}', "push", {}, ["CIBA-PUSH-02"]),
        (b"{}", "push", {}, ["CIBA-PING-03", "CIBA-PUSH-02"]),
    ],
)
def test_callback_violations(body: bytes, mode: str | None, kwargs: dict[str, str | None], expected: list[str]) -> None:
    assert rules(body, mode, **kwargs) == expected


def test_the_oversized_body_names_its_size() -> None:
    note = received(json.dumps({"pad": "x" * MAX_NOTIFICATION_BYTES}).encode())
    ((rule, message),) = callback_violations(CheckRunner(), note, "ping")
    assert rule == "CIBA-PING-03" and "bytes" in message and note.payload is None


def test_callback_violations_records_every_check_it_ran() -> None:
    runner = CheckRunner()
    callback_violations(runner, received(b'{"auth_req_id": "a"}'), "ping")
    assert [o.check for o in runner.outcomes] == [
        "callback_size_within",
        "callback_body_is_json_object",
        "callback_content_type_json",
        "callback_has_bearer",
        "ping_body_only_auth_req_id",
        "callback_kind_fits_mode",
    ]
    assert all(o.passed and o.severity is Severity.INFO for o in runner.outcomes)


def test_failure_returns_the_failure_and_never_raises_even_when_strict() -> None:
    runner = CheckRunner(strict=True, mandatory={"CIBA-PING-03"})
    failure = runner.failure(ping_body_only_auth_req_id, received(b'{"auth_req_id": "a", "x": 1}'))
    assert failure is not None and failure.requirement == "CIBA-PING-03"
    assert runner.failure(ping_body_only_auth_req_id, received(b'{"auth_req_id": "a"}')) is None
    assert [(o.passed, o.severity) for o in runner.outcomes] == [(False, Severity.INFO), (True, Severity.INFO)]


def test_a_runner_may_keep_its_outcomes_elsewhere() -> None:
    seen: list[CheckOutcome] = []

    class Forwarding(CheckRunner):
        def record(self, outcome: CheckOutcome) -> None:
            seen.append(outcome)

    runner = Forwarding()
    assert runner(ping_body_only_auth_req_id, received(b'{"auth_req_id": "a"}')) is True
    assert runner.outcomes == [] and [o.check for o in seen] == ["ping_body_only_auth_req_id"]
