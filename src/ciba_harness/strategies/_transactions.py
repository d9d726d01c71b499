"""The model the state machine checks the provider against: what the client knows of one CIBA
transaction, and what the token endpoint must answer it given its state and the clock
(CIBA §10.1, §11; the interval and slow_down, CIBA-TOKEN-06; expiry, CIBA-TOKEN-12)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ciba_harness.core._config import ClientConfig
from ciba_harness.core._http import Exchange
from ciba_harness.core._poller import SLOW_DOWN_INCREMENT
from ciba_harness.core._requests import Acknowledgement

__all__ = [
    "DEFAULT_INTERVAL",
    "EXPIRY_MARGIN",
    "RATE_MARGIN",
    "RECORD_KEPT",
    "MachineFlow",
    "PollForecast",
    "Tx",
]

RATE_MARGIN = 0.25  # s: a poll this much later than the interval is surely not too fast
EXPIRY_MARGIN = 0.5  # s: around expires_in both pending and expired_token are right
RECORD_KEPT = 1.0  # s after that: an OP may have dropped the record (invalid_grant)
DEFAULT_INTERVAL = 5.0  # CIBA-ACK-10


class MachineFlow(Protocol):
    """What the model reads of a started transaction (client._client.Flow)."""

    @property
    def exchange(self) -> Exchange: ...
    @property
    def acknowledgement(self) -> Acknowledgement | None: ...
    @property
    def auth_req_id(self) -> str: ...


@dataclass(frozen=True)
class PollForecast:
    """What the owner's poll must get: tokens in state "approved" (unless `codes` says it
    may already have expired), else one of the error `codes`; `requirement` is the row a
    wrong answer breaks. `too_fast`: the poll came sooner than the interval allows."""

    state: str
    codes: frozenset[str]
    requirement: str
    too_fast: bool


@dataclass(eq=False)
class Tx:
    """The model of one transaction: what the client knows and what it has seen."""

    label: str
    client: ClientConfig
    flow: MachineFlow
    sent_at: float  # monotonic, before the authentication request was sent
    acked_at: float  # monotonic, when its acknowledgement arrived
    expires_in: int | None
    interval: float
    state: str = "pending"  # pending approved denied expired redeemed abandoned
    reported: bool = False  # the terminal error was already answered once
    last_sent: float | None = None
    last_received: float | None = None
    approved_at: float | None = None
    intervals: list[float] = field(default_factory=list)
    token_times: list[float] = field(default_factory=list)
    refresh_token: str | None = None  # the newest one: the client follows rotation
    replayed: bool = False  # its auth_req_id was presented again after redemption

    @property
    def auth_req_id(self) -> str:
        return self.flow.auth_req_id

    def __repr__(self) -> str:
        return self.label

    def expiry(self, sent: float, received: float) -> str:
        """'alive', 'maybe' or 'expired' for a request sent and answered at these times."""
        if self.expires_in is None:
            return "alive"
        earliest = self.sent_at + self.expires_in  # the OP counts from when it got the request
        latest = self.acked_at + self.expires_in
        if received < earliest - EXPIRY_MARGIN:
            return "alive"
        if sent > latest + EXPIRY_MARGIN:
            return "expired"
        return "maybe"

    def forecast_poll(self, sent: float, received: float) -> PollForecast:
        """The owner polled (sent, answered at these times): note it, and say what the answer
        must be. A pending transaction past its expiry is expired from now on."""
        too_fast = (
            self.last_received is not None
            and sent - self.last_received < self.interval + RATE_MARGIN
        )
        self.last_sent, self.last_received = sent, received
        expiry = self.expiry(sent, received)
        if self.state == "pending" and expiry == "expired":
            self.state = "expired"
        state = self.state
        codes: set[str]
        if state == "pending":
            codes = {"authorization_pending"}
            requirement = "CIBA-TOKEN-05"
            if expiry == "maybe":
                codes.add("expired_token")
        elif state == "approved":
            codes = {"expired_token"} if expiry != "alive" else set()
            requirement = "CIBA-TOKEN-14"
        elif state == "expired":
            codes = {"expired_token"} | ({"invalid_grant"} if self.reported else set())
            if self.expires_in is not None and sent > self.acked_at + self.expires_in + (
                EXPIRY_MARGIN + RECORD_KEPT
            ):
                # Long after expiry the OP may have forgotten the request: an unknown
                # auth_req_id is invalid_grant (CIBA §11, RFC 6749 §5.2). Right after
                # expiry expired_token is still due (test_expired_token_after_expiry).
                codes.add("invalid_grant")
            requirement = "CIBA-TOKEN-12"
        elif state == "denied":
            codes = {"access_denied"} | ({"invalid_grant"} if self.reported else set())
            requirement = "CIBA-TOKEN-13"
        else:  # redeemed
            codes = {"invalid_grant"}
            requirement = "CIBA-TOKEN-16"
            self.replayed = True  # the OP may now revoke the tokens issued
        return PollForecast(state, frozenset(codes), requirement, too_fast)

    def follow(self, code: str | None) -> None:
        """The client follows the error code its poll got."""
        if code == "slow_down":
            self.interval += SLOW_DOWN_INCREMENT  # CIBA-TOKEN-06, for this and later polls
            self.intervals.append(self.interval)
        elif code == "invalid_request":
            self.state = "abandoned"
        elif code == "expired_token":
            self.state, self.reported = "expired", True
        elif code in {"access_denied", "invalid_grant"}:
            self.reported = True

    def violations(self) -> list[tuple[str, str]]:
        """The model's invariants this transaction breaks, as (requirement, what): one
        redemption per auth_req_id, no tokens before approval, none after denial or expiry,
        the interval only grows."""
        out: list[tuple[str, str]] = []
        if len(self.token_times) > 1:
            out.append(("CIBA-TOKEN-16", f"{self.label} redeemed twice"))
        if self.token_times and (
            self.approved_at is None or min(self.token_times) < self.approved_at
        ):
            out.append(("CIBA-TOKEN-05", f"{self.label}: tokens, not approved"))
        if self.token_times and self.state in {"denied", "expired"}:
            row = "CIBA-TOKEN-13" if self.state == "denied" else "CIBA-TOKEN-12"
            out.append((row, f"{self.label}: tokens after {self.state}"))
        if self.intervals != sorted(self.intervals) or self.intervals[0] <= 0:
            out.append(("CIBA-TOKEN-06", f"{self.label}: {self.intervals}"))
        return out
