"""A stateful model of the CIBA transaction (Hypothesis RuleBasedStateMachine), poll mode.

Rules start transactions (some with a short requested_expiry), poll early, poll after the
interval, approve, deny, let expire, redeem, redeem again, redeem with another client and
refresh. The model predicts every answer of the token endpoint from the transaction's state
and from time (interval, expiry), and the invariants hold across all steps: one redemption
per auth_req_id, no tokens before approval, none after denial or expiry, and the interval
only grows. A failure is shrunk to the shortest sequence of steps that still breaks it.

Time: `let_expire` waits until the transaction has surely expired, and a "patient" program
waits for the interval before polling again; both within the profile's slept-time budget.
Otherwise polls go out at once, and the model allows slow_down for those that are too fast.
Hypothesis shrinks toward impatient programs; when shrinking, programs sleep only if the
failing program had slept, for at most the profile's machine_shrink_sleep seconds.

The model of one transaction (its state, the answers it allows, its invariants) is
`strategies._transactions`; this module drives it: rules, sleeping, checks.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from hypothesis import note, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from ciba_harness.checks._choices import record_choice
from ciba_harness.checks._registry import CheckRunner
from ciba_harness.checks._responses import (
    ack_expires_in,
    ack_interval,
    error_body_well_formed,
    error_code_is,
    fail,
    not_server_error,
    refused,
    status_is,
    token_response_complete,
)
from ciba_harness.core._config import ClientConfig
from ciba_harness.core._discovery import ProviderMetadata
from ciba_harness.core._http import Exchange, HttpRequest
from ciba_harness.core._requests import build_refresh_request, error_code
from ciba_harness.strategies._judging import RecordingClient, keep_last_exchanges
from ciba_harness.strategies._transactions import (
    DEFAULT_INTERVAL,
    EXPIRY_MARGIN,
    RATE_MARGIN,
    RECORD_KEPT,
    MachineFlow,
    Tx,
)

__all__ = ["MachineBudget", "MachineClient", "make_machine"]

MAX_TRANSACTIONS = 3  # per program: steps go to what happens to them, not to starting more


class MachineClient(RecordingClient, Protocol):
    """What the machine uses of the test's client (client._client.CibaClient)."""

    @property
    def metadata(self) -> ProviderMetadata: ...
    def start(self, client: ClientConfig, *, requested_expiry: int = ...) -> MachineFlow: ...
    def token(self, client: ClientConfig, auth_req_id: str | None, *, label: str = ...) -> Exchange: ...
    def send(
        self, request: HttpRequest, *, label: str = ..., client: ClientConfig | None = ...
    ) -> Exchange: ...
    def approve(self, flow: Any, /) -> object: ...
    def deny(self, flow: Any, /) -> object: ...


class MachineBudget(Protocol):
    """The time budgets of the machine (pytest_plugin._fuzz.Budget)."""

    @property
    def seconds(self) -> float: ...
    def offer(self, error: BaseException, size: float = ..., note: str = ...) -> None: ...
    def may_sleep(self) -> bool: ...


def make_machine(
    ciba: MachineClient,
    clients: tuple[ClientConfig, ...],
    *,
    requested_expiry: int,
    budget: MachineBudget,
    max_wait: float,
) -> type[RuleBasedStateMachine]:
    """The state machine bound to this session's client, clients and budgets."""
    by_name = {c.name: c for c in clients}
    names = st.sampled_from([c.name for c in clients])
    # Short transactions: poll clients (expiry is observed by polling; ping ones are pinged).
    poll_names = st.sampled_from([c.name for c in clients if c.delivery_mode == "poll"])
    counter = iter(range(1, 10**9))
    # Whether the first failing program had slept. Shrinking replays sleep only then: a
    # failure found without sleeping is shrunk without sleeping (fast, and as it was found).
    first_failure: dict[str, bool] = {}
    # Seconds slept by all programs while generating, against the profile's budget (slept
    # time, not wall time: a slow machine gets the same sleeps).
    sleeping = {"interval": 0.0, "expiry": 0.0}

    class CibaTransactions(RuleBasedStateMachine):
        pending = Bundle("pending")
        expiring = Bundle("expiring")
        approved = Bundle("approved")
        redeemed = Bundle("redeemed")
        finished = Bundle("finished")

        def __init__(self) -> None:
            super().__init__()
            self.runner = CheckRunner()
            self.txs: list[Tx] = []
            self.patient = False
            self.slept = 0.0
            self.program: list[str] = []  # the steps so far, for a failure Hypothesis can't replay

        # --- helpers -------------------------------------------------------------------------

        @contextmanager
        def watch(self) -> Iterator[None]:
            try:
                yield
            except BaseException as error:
                first_failure.setdefault("slept", self.slept > 0)
                steps = "".join(f"\n    state.{step}" for step in self.program)
                budget.offer(error, len(self.program), f"\nIts steps:{steps}")
                raise

        def check(self, function: Any, *args: Any, **kwargs: Any) -> None:
            with self.watch():
                self.runner(function, *args, **kwargs)

        def sleep_until(self, moment: float, *, expiry: bool = False) -> None:
            """Sleep until `moment` if this program may: for expiry always, for the interval
            only in a patient program; within the slept-time budget while generating; while
            shrinking, only if the failure being shrunk had slept (and not for too long)."""
            wait = moment - time.monotonic()
            if wait <= 0 or self.slept + wait > max_wait:
                return
            if first_failure:
                if not first_failure["slept"] or not budget.may_sleep():
                    return
            elif expiry and sleeping["expiry"] + wait > budget.seconds:
                return
            elif not expiry and (not self.patient or sleeping["interval"] > budget.seconds / 4):
                return  # interval waits get a quarter of the budget on top
            time.sleep(wait)
            note(f"slept {wait:.2f} s")
            self.slept += wait
            if not first_failure:
                sleeping["expiry" if expiry else "interval"] += wait

        def other(self, client: ClientConfig) -> ClientConfig:
            return next(c for c in clients if c.client_id != client.client_id)

        def start_flow(self, name: str, *, short: bool) -> Tx:
            client = by_name[name]
            overrides = {"requested_expiry": requested_expiry} if short else {}
            sent = time.monotonic()
            with self.watch():
                # CIBA-ACK-01, CIBA-ACK-03; CIBA-ACK-06: the client fails an auth_req_id
                # issued before in the session (the provider keeps its state across programs).
                flow = ciba.start(client, **overrides)
            ack = flow.acknowledgement
            assert ack is not None
            self.check(ack_expires_in, flow.exchange)
            self.check(ack_interval, flow.exchange)
            tx = Tx(
                label=f"tx{next(counter)}",
                client=client,
                flow=flow,
                sent_at=sent,
                acked_at=ack.received_at,
                expires_in=ack.expires_in,
                interval=float(ack.interval or DEFAULT_INTERVAL),
            )
            tx.intervals.append(tx.interval)
            self.txs.append(tx)
            note(f"{tx.label}: {client.name}, expires_in {ack.expires_in}, interval {ack.interval}")
            return tx

        def poll_owner(self, tx: Tx) -> Exchange | None:
            """The owner polls; the model predicts the answer and follows it."""
            if tx.state == "abandoned":
                return None  # CIBA-TOKEN-07: nothing more after invalid_request
            sent = time.monotonic()
            exchange = ciba.token(tx.client, tx.auth_req_id, label=f"poll {tx.label}")
            received = time.monotonic()
            keep_last_exchanges(ciba)
            forecast = tx.forecast_poll(sent, received)
            state, codes, requirement = forecast.state, forecast.codes, forecast.requirement
            too_fast = forecast.too_fast
            response = exchange.response
            if response is not None and response.status == 200:
                tx.token_times.append(received)
                if state != "approved":
                    self.check(refused, exchange, requirement=requirement)
                self.check(token_response_complete, exchange)
                body = response.json_object() or {}
                refresh = body.get("refresh_token")
                tx.refresh_token = refresh if isinstance(refresh, str) and refresh else None
                record_choice("refresh_token_issued", "yes" if tx.refresh_token else "no",
                              f"CIBA grant, scope {body.get('scope', '(as requested)')!r}")
                tx.state = "redeemed"
                return exchange
            if response is not None and response.status == 503 and response.header("retry-after"):
                return exchange  # CIBA-TOKEN-08: the OP may shed load
            self.check(not_server_error, exchange, requirement="CIBA-TOKEN-21")
            self.check(
                error_body_well_formed, exchange, requirement="CIBA-TOKEN-21",
                allow_extra_members=True,
            )
            code = error_code(response)
            if state in {"expired", "denied"} and tx.reported and code in codes:
                # CIBA §11 says nothing of polls after the terminal error.
                record_choice("after_expiry" if state == "expired" else "after_denial",
                              f"{code} again" if code != "invalid_grant" else "invalid_grant",
                              "poll after the terminal error was answered once")
            if state == "expired" and not tx.reported and code == "invalid_grant":
                record_choice("after_expiry", "invalid_grant once the record is dropped",
                              f"first poll more than {EXPIRY_MARGIN + RECORD_KEPT:g} s after "
                              "expiry")
            if too_fast and state == "pending" and code in {"slow_down", "authorization_pending"}:
                record_choice("slow_down", f"{code} for a fast poll",
                              "poll sooner than the interval")
            allowed = codes | ({"slow_down", "invalid_request"} if too_fast else set())
            if too_fast and state == "pending" and code not in codes:
                requirement = "CIBA-TOKEN-06"
            if state == "approved" and code not in allowed:
                self.check(status_is, exchange, {200}, requirement=requirement)
            self.check(error_code_is, exchange, allowed, requirement=requirement)
            self.check(status_is, exchange, {400}, requirement="CIBA-TOKEN-21")
            tx.follow(code)
            return exchange

        def poll_as_other(self, tx: Tx) -> None:
            """Another client presents this auth_req_id: invalid_grant, nothing changes."""
            other = self.other(tx.client)
            if tx.state == "redeemed":
                tx.replayed = True
            exchange = ciba.token(other, tx.auth_req_id, label=f"poll {tx.label} as {other.name}")
            keep_last_exchanges(ciba)
            if exchange.response is not None and exchange.response.status == 200:
                tx.token_times.append(time.monotonic())
            self.check(refused, exchange, requirement="CIBA-TOKEN-04")
            self.check(not_server_error, exchange, requirement="CIBA-TOKEN-21")
            self.check(
                error_body_well_formed, exchange, requirement="CIBA-TOKEN-21",
                allow_extra_members=True,
            )
            self.check(error_code_is, exchange, {"invalid_grant"}, requirement="CIBA-TOKEN-04")

        def decide(self, tx: Tx, action: str) -> None:
            alive = tx.expiry(time.monotonic(), time.monotonic() + 1.0) == "alive"
            if tx.state != "pending" or not alive:
                return  # too late to decide: the model keeps its state
            with self.watch():
                if action == "approve":
                    ciba.approve(tx.flow)
                else:
                    ciba.deny(tx.flow)
            tx.state = "approved" if action == "approve" else "denied"
            if action == "approve":
                tx.approved_at = time.monotonic()

        # --- rules ---------------------------------------------------------------------------

        @initialize(target=pending, client=names, patient=st.booleans())
        @_step
        def begin(self, client: str, patient: bool) -> Tx:
            # A patient program waits for the interval before polling again (within the
            # budget); an impatient one polls at once and may get slow_down.
            self.patient = patient
            return self.start_flow(client, short=False)

        @precondition(lambda self: len(self.txs) < MAX_TRANSACTIONS)
        @rule(target=pending, client=names)
        @_step
        def start(self, client: str) -> Tx:
            return self.start_flow(client, short=False)

        @precondition(lambda self: len(self.txs) < MAX_TRANSACTIONS)
        @rule(target=expiring, client=poll_names)
        @_step
        def start_short(self, client: str) -> Tx:
            return self.start_flow(client, short=True)

        @rule(tx=pending)
        @_step
        def poll(self, tx: Tx) -> None:
            """Poll early (before any decision): a patient program waits for the interval
            first, an impatient one polls at once, maybe too fast."""
            if tx.last_received is not None:
                self.sleep_until(tx.last_received + tx.interval + RATE_MARGIN)
            self.poll_owner(tx)

        @rule(target=finished, tx=consumes(expiring))
        @_step
        def let_expire(self, tx: Tx) -> Tx:
            if tx.expires_in is not None:
                moment = tx.acked_at + tx.expires_in + EXPIRY_MARGIN
                if tx.last_received is not None:
                    moment = max(moment, tx.last_received + tx.interval + RATE_MARGIN)
                self.sleep_until(moment, expiry=True)
            self.poll_owner(tx)
            return tx

        @rule(target=approved, tx=consumes(pending))
        @_step
        def approve(self, tx: Tx) -> Tx:
            self.decide(tx, "approve")
            return tx

        @rule(target=finished, tx=consumes(pending))
        @_step
        def deny(self, tx: Tx) -> Tx:
            self.decide(tx, "deny")
            return tx

        @rule(tx=pending)
        @_step
        def poll_pending_with_other_client(self, tx: Tx) -> None:
            self.poll_as_other(tx)

        @rule(tx=approved)
        @_step
        def poll_approved_with_other_client(self, tx: Tx) -> None:
            self.poll_as_other(tx)

        @rule(target=redeemed, tx=consumes(approved))
        @_step
        def redeem(self, tx: Tx) -> Tx:
            exchange = self.poll_owner(tx)
            if tx.state == "approved" and error_code(exchange.response if exchange else None) in {
                "slow_down",
                None,
            }:
                # Polled too fast, or shed: wait the interval (if this program may) and retry.
                if tx.last_received is not None:
                    self.sleep_until(tx.last_received + tx.interval + RATE_MARGIN)
                self.poll_owner(tx)
            return tx

        @rule(tx=redeemed)
        @_step
        def redeem_again(self, tx: Tx) -> None:
            self.poll_owner(tx)

        @rule(tx=redeemed)
        @_step
        def redeem_with_other_client(self, tx: Tx) -> None:
            self.poll_as_other(tx)

        @rule(tx=redeemed)
        @_step
        def refresh(self, tx: Tx) -> None:
            if tx.state != "redeemed" or tx.refresh_token is None:
                return
            request = build_refresh_request(tx.client, ciba.metadata, tx.refresh_token)
            exchange = ciba.send(request, label=f"refresh {tx.label}", client=tx.client)
            keep_last_exchanges(ciba)
            response = exchange.response
            if tx.replayed and error_code(response) == "invalid_grant":
                # replaying a redeemed auth_req_id may revoke the tokens issued from it
                # (RFC 6749 §4.1.2 for codes): a choice, not a failure.
                record_choice("token_revocation_on_reuse", "revoked", "refresh refused after "
                              "the auth_req_id was replayed")
                tx.refresh_token = None
                return
            # The refresh_token of CIBA-TOKEN-14 works: a new access token, no ID token needed.
            self.check(token_response_complete, exchange, openid=False)
            body = (response.json_object() if response is not None else None) or {}
            rotated = body.get("refresh_token")
            if isinstance(rotated, str) and rotated and rotated != tx.refresh_token:
                # RFC 6749 §6: a new refresh token MAY be issued; the client then MUST discard
                # the old one (which the OP may revoke): follow the new one.
                tx.refresh_token = rotated
                record_choice("refresh_token_rotation", "rotated",
                              "refresh grant returned a new refresh token")
            else:
                record_choice("refresh_token_rotation", "not rotated",
                              "refresh grant returned no new refresh token")

        @rule(tx=finished)
        @_step
        def poll_finished(self, tx: Tx) -> None:
            self.poll_owner(tx)

        # --- invariants ----------------------------------------------------------------------

        @invariant()
        def model_invariants(self) -> None:
            """One redemption per auth_req_id, no tokens before approval, none after denial
            or expiry, the interval only grows."""
            for tx in self.txs:
                for requirement, what in tx.violations():
                    self.check(_violation, requirement, what)

    return CibaTransactions


def _step(function: Callable[..., Any]) -> Callable[..., Any]:
    """Log the step in the program (shown if a failure cannot be replayed and shrunk)."""

    @functools.wraps(function)
    def logged(self: Any, **arguments: Any) -> Any:
        shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        self.program.append(f"{function.__name__}({shown})")
        return function(self, **arguments)

    return logged



def _violation(requirement: str, what: str) -> None:
    """An invariant of the model does not hold."""
    raise fail(requirement, "Model invariant broken", actual=what)

