"""The state machine's model of one transaction, without a provider: what a poll must get
from the state and the clock, how the client follows the answer, which invariants break."""

from __future__ import annotations

from dataclasses import dataclass

from ciba_harness import (
    SLOW_DOWN_INCREMENT,
    Exchange,
    HttpRequest,
    default_profile_path,
    load_config,
)
from ciba_harness.core._requests import Acknowledgement
from ciba_harness.strategies._transactions import EXPIRY_MARGIN, RATE_MARGIN, RECORD_KEPT, Tx

CONFIG = load_config(default_profile_path())


@dataclass
class FakeFlow:
    exchange: Exchange
    acknowledgement: Acknowledgement | None
    auth_req_id: str = "id-1"


def transaction(*, expires_in: int | None = 60, interval: float = 5.0, **changes: object) -> Tx:
    flow = FakeFlow(Exchange(HttpRequest("POST", "https://op.example/backchannel")), None)
    tx = Tx(label="tx1", client=CONFIG.clients[0], flow=flow, sent_at=100.0, acked_at=100.5,
            expires_in=expires_in, interval=interval, intervals=[interval])
    for name, value in changes.items():
        setattr(tx, name, value)
    return tx


def test_a_pending_poll_must_be_pending_and_a_second_one_at_once_is_too_fast() -> None:
    tx = transaction()
    first = tx.forecast_poll(101.0, 101.1)
    assert (first.state, first.codes, first.requirement, first.too_fast) == (
        "pending", frozenset({"authorization_pending"}), "CIBA-TOKEN-05", False)
    assert tx.forecast_poll(101.2, 101.3).too_fast
    later = 101.3 + tx.interval + RATE_MARGIN
    assert not tx.forecast_poll(later, later + 0.1).too_fast


def test_around_expiry_both_answers_then_only_expired_token() -> None:
    tx = transaction(expires_in=10)
    maybe = tx.forecast_poll(110.2, 110.3)  # within EXPIRY_MARGIN of 100 + 10 .. 100.5 + 10
    assert maybe.codes == {"authorization_pending", "expired_token"}
    assert tx.state == "pending"
    gone = tx.forecast_poll(110.5 + EXPIRY_MARGIN + 0.1, 112.0)
    assert (gone.state, gone.codes, gone.requirement) == (
        "expired", frozenset({"expired_token"}), "CIBA-TOKEN-12")
    forgotten = tx.forecast_poll(110.5 + EXPIRY_MARGIN + RECORD_KEPT + 0.1, 113.0)
    assert forgotten.codes == {"expired_token", "invalid_grant"}


def test_a_redeemed_id_must_get_invalid_grant_and_counts_as_replayed() -> None:
    tx = transaction(state="redeemed")
    forecast = tx.forecast_poll(101.0, 101.1)
    assert (forecast.codes, forecast.requirement) == (frozenset({"invalid_grant"}), "CIBA-TOKEN-16")
    assert tx.replayed


def test_the_client_follows_the_answer() -> None:
    tx = transaction()
    tx.follow("slow_down")
    assert tx.interval == 5.0 + SLOW_DOWN_INCREMENT and tx.intervals == [5.0, tx.interval]
    tx.follow("expired_token")
    assert (tx.state, tx.reported) == ("expired", True)
    other = transaction()
    other.follow("invalid_request")
    assert other.state == "abandoned"


def test_invariants() -> None:
    assert transaction().violations() == []
    twice = transaction(approved_at=101.0, token_times=[102.0, 103.0], state="redeemed")
    assert [row for row, _ in twice.violations()] == ["CIBA-TOKEN-16"]
    unapproved = transaction(token_times=[102.0])
    assert [row for row, _ in unapproved.violations()] == ["CIBA-TOKEN-05"]
    denied = transaction(approved_at=101.0, token_times=[102.0], state="denied")
    assert [row for row, _ in denied.violations()] == ["CIBA-TOKEN-13"]
    shrinking = transaction(intervals=[5.0, 4.0])
    assert [row for row, _ in shrinking.violations()] == ["CIBA-TOKEN-06"]
