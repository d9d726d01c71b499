"""Client checks on recorded runs built by hand: each one holds on a faithful recording and
breaks, under its own requirement, on the defect it is about."""

from __future__ import annotations

import pytest

from ciba_harness.checks._registry import CHECKS
from ciba_harness.core._errors import CheckFailure
from ciba_harness.rp import _checks as c
from ciba_harness.rp._behaviours import BEHAVIOURS
from ciba_harness.rp._catalogue import client_catalogue
from ciba_harness.rp._driver import FlowOutcome
from ciba_harness.rp._provider import (
    CIBA_GRANT,
    Callback,
    ClientRegistration,
    RecordedRequest,
    Recording,
    Transaction,
)

POLL = ClientRegistration("rp-poll", "s", "poll")
PING = ClientRegistration("rp-ping", "s", "ping", notification_endpoint="http://127.0.0.1:1/n")


def run_with(behaviour: str = "poll_faithful") -> Recording:
    return Recording(BEHAVIOURS[behaviour], started=100.0, outcome_token="t")


def txn(client: ClientRegistration = POLL, *, interval: int | None = 1, token: str | None = None,
        expires_in: int = 30) -> Transaction:
    return Transaction("id-1", client, "alice", "Code 1", token, acked_at=100.0,
                       expires_in=expires_in, interval=interval, sub="sub-alice")


def backchannel(**params: str) -> RecordedRequest:
    fields = {"scope": "openid", "login_hint": "alice", **params}
    return RecordedRequest("backchannel", "POST", "/bc-authorize", 100.0,
                           "application/x-www-form-urlencoded", "form",
                           {k: [v] for k, v in fields.items()}, auth_ok=True, finished=100.01)


def poll(at: float, error: str | None = None, *, finished: float | None = None,
         grant: str = CIBA_GRANT) -> RecordedRequest:
    record = RecordedRequest("token", "POST", "/token", at, "application/x-www-form-urlencoded",
                             "form", {"grant_type": [grant], "auth_req_id": ["id-1"]},
                             auth_ok=True, finished=finished if finished is not None else at + 0.01)
    record.answer = {"error": error} if error else {"access_token": "x"}
    return record


def broken(function: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(CheckFailure) as caught:
        function(*args, **kwargs)  # type: ignore[operator]
    return caught.value.requirement


def test_every_client_check_names_a_client_requirement_and_a_spec_sentence() -> None:
    client_checks = {n: i for n, i in CHECKS.items() if i.function.__module__ == c.__name__}
    assert len(client_checks) >= 20
    for name, info in client_checks.items():
        assert info.requirement is None or info.requirement in client_catalogue(), name
        doc = info.function.__doc__ or ""
        assert "§" in doc or "RFC" in doc or "FAPI" in doc, name


def test_authentication_request_shape() -> None:
    run = run_with()
    run.requests.append(backchannel())
    for check in (c.rp_auth_request_is_form_post, c.rp_scope_has_openid, c.rp_exactly_one_hint,
                  c.rp_client_authenticated):
        check(run)
    run.requests[0].encoding = "json"
    assert broken(c.rp_auth_request_is_form_post, run) == "CIBA-RP-01"
    run = run_with()
    run.requests.append(backchannel(scope="profile", id_token_hint="x"))
    assert broken(c.rp_scope_has_openid, run) == "CIBA-RP-02"
    assert broken(c.rp_exactly_one_hint, run) == "CIBA-RP-03"
    run.requests[0].auth_ok = False
    assert broken(c.rp_client_authenticated, run) == "CIBA-RP-04"
    c.rp_binding_message_sent(run, [])
    assert broken(c.rp_binding_message_sent, run, ["Code 9"]) == "CIBA-RP-08"


def test_notification_token_rules() -> None:
    run = run_with("ping_faithful")
    run.transactions.append(txn(PING, token="A" * 10 + "b7_-Zq9" * 5))
    c.rp_notification_token_syntax(run)
    run.transactions[0].notification_token = "x" * 1025
    assert broken(c.rp_notification_token_syntax, run) == "CIBA-RP-05"
    run.transactions[0].notification_token = "not a b64token!"
    assert broken(c.rp_notification_token_syntax, run) == "CIBA-RP-05"
    run.transactions[0].notification_token = "000042"
    assert broken(c.rp_notification_token_entropy, run) == "CIBA-RP-06"
    run.transactions[0].notification_token = "8c6f3e0a-3f1e-4b8e-9a51-0c2f6d7b9e11"  # 122 bits
    assert broken(c.rp_notification_token_entropy, run) == "CIBA-RP-06"
    run.transactions[0].notification_token = "ab" * 40  # long but repetitive
    assert broken(c.rp_notification_token_entropy, run) == "CIBA-RP-06"
    run.transactions[0].notification_token = "Jx1fQ2bWm9Tz0VqL7rNc3Yp8KdHs5GaE6uOi4XkRtBw"
    c.rp_notification_token_entropy(run)
    c.rp_notification_token_fresh(["a", "b"])
    assert broken(c.rp_notification_token_fresh, ["a", "b", "a"]) == "CIBA-RP-07"


def test_interval_rules() -> None:
    run = run_with()
    run.transactions.append(txn(interval=1))
    run.requests += [poll(100.1, "authorization_pending"), poll(101.1, "authorization_pending"),
                     poll(102.1)]
    c.rp_poll_interval_kept(run)
    run.requests[1].arrived = 100.5
    assert broken(c.rp_poll_interval_kept, run) == "CIBA-RP-12"
    run = run_with("poll_interval_absent")
    run.transactions.append(txn(interval=None))
    run.requests += [poll(100.1, "authorization_pending"), poll(105.2)]
    c.rp_default_interval_kept(run)
    run.requests[1].arrived = 101.2
    assert broken(c.rp_default_interval_kept, run) == "CIBA-RP-13"


def test_slow_down_is_judged_against_the_clients_own_pace() -> None:
    run = run_with("poll_slow_down")
    run.transactions.append(txn(interval=1))
    run.requests += [poll(100.0, "authorization_pending"), poll(101.0, "slow_down"),
                     poll(107.0)]
    c.rp_slow_down_honoured(run)
    run.requests[2].arrived = 102.0  # kept the 1 s interval
    assert broken(c.rp_slow_down_honoured, run) == "CIBA-RP-14"
    # A client polling every 0.2 s that adds 5 s after slow_down breaks CIBA-RP-12 only.
    run.requests[:] = [poll(100.0, "authorization_pending"), poll(100.2, "slow_down"),
                       poll(105.4)]
    c.rp_slow_down_honoured(run)
    assert broken(c.rp_poll_interval_kept, run) == "CIBA-RP-12"


def test_expiry_terminal_errors_and_overlap() -> None:
    run = run_with("poll_expired")
    run.transactions.append(txn(expires_in=2))
    run.requests += [poll(100.1, "authorization_pending"), poll(101.1, "authorization_pending")]
    c.rp_no_poll_after_expiry(run)
    run.requests.append(poll(103.1, "authorization_pending"))
    assert broken(c.rp_no_poll_after_expiry, run) == "CIBA-RP-15"
    run = run_with("poll_denied")
    run.transactions.append(txn())
    run.requests += [poll(100.1, "access_denied")]
    c.rp_no_poll_after_terminal_error(run)
    run.requests.append(poll(101.1, "invalid_grant"))
    assert broken(c.rp_no_poll_after_terminal_error, run) == "CIBA-RP-16"
    run = run_with("ping_twice")
    run.transactions.append(txn(PING))
    run.requests += [poll(100.0, finished=100.3), poll(100.4, "invalid_grant")]
    c.rp_no_overlapping_token_requests(run)
    run.requests[1].arrived = 100.05
    assert broken(c.rp_no_overlapping_token_requests, run) == "CIBA-RP-17"
    run.requests[1].params["grant_type"] = ["client_credentials"]
    assert broken(c.rp_token_request_well_formed, run) == "CIBA-RP-10"


def test_callback_rules() -> None:
    run = run_with("ping_wrong_bearer")
    run.transactions.append(txn(PING))
    run.callbacks += [Callback("ping", "wrong_bearer", "id-1", 100.2, 100.21, 401),
                      Callback("ping", "valid", "id-1", 100.9, 100.91, 204)]
    run.requests.append(poll(100.95))
    c.rp_wrong_bearer_ping_ignored(run)
    c.rp_invalid_bearer_answered_401(run)
    c.rp_callback_answered_204(run)
    run.requests.insert(0, poll(100.25, "authorization_pending"))
    assert broken(c.rp_wrong_bearer_ping_ignored, run) == "CIBA-RP-21"
    run.callbacks[0].status = 400
    assert broken(c.rp_invalid_bearer_answered_401, run) == "CIBA-RP-22"
    run.callbacks[1].status = 202
    assert broken(c.rp_callback_answered_204, run) == "CIBA-RP-20"
    c.rp_callback_answered_204(run, {"id-1": 100.5})  # sent after the client concluded
    run.callbacks.append(Callback("ping", "unknown_auth_req_id", "other", 100.3, 100.31, 401))
    c.rp_foreign_ping_ignored(run)
    run.requests.append(poll(100.4))
    run.requests[-1].params["auth_req_id"] = ["other"]
    assert broken(c.rp_foreign_ping_ignored, run) == "CIBA-RP-23"


def test_outcome_checks() -> None:
    tokens = FlowOutcome("tokens", sub="sub-alice")
    refused = FlowOutcome("refused", reason="aud")
    c.rp_tokens_accepted(tokens, "sub-alice")
    assert broken(c.rp_tokens_accepted, refused, "sub-alice") == "CIBA-RP-48"
    c.rp_tokens_refused(refused, what="x", requirement="CIBA-RP-45")
    assert broken(c.rp_tokens_refused, tokens, what="x", requirement="CIBA-RP-45") == "CIBA-RP-45"
    assert broken(c.rp_tokens_refused, FlowOutcome("none"), what="x",
                  requirement="CIBA-RP-44") == "CIBA-RP-44"
    c.rp_forged_push_refused(tokens, "sub-alice")
    assert broken(c.rp_forged_push_refused, FlowOutcome("tokens", sub="mallory"),
                  "sub-alice") == "CIBA-RP-30"
    run = run_with("push_denied")
    run.callbacks.append(Callback("push", "error", "id-1", 100.0, answered=100.01, status=204))
    c.rp_push_error_ends_flow(run, FlowOutcome("refused", concluded=100.5))
    assert broken(c.rp_push_error_ends_flow, run,
                  FlowOutcome("refused", concluded=104.5)) == "CIBA-RP-34"
