"""The scenarios' behaviour, on the protocol core: one `FlowRunner` per simulated user.

Requests are built by the core's builders, polling is the core's `Poller`, callbacks are
judged by the core's inbox, ID tokens by the core's validator; this module only decides what
a user does next and what gets measured. All waiting goes through `sleep` (gevent's, in
Locust), and every loop is bounded by the transaction's expiry and a poll count.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import gevent

from ciba_harness.checks._backchannel import auth_req_ids_unique
from ciba_harness.checks._idtoken import validate_id_token
from ciba_harness.checks._registry import CheckRunner
from ciba_harness.checks._responses import (
    missing_token_members,
    token_members_present,
    token_type_bearer,
)
from ciba_harness.client._drivers import DeviceContext, EmbeddedDriver, WebhookDriver
from ciba_harness.core._clientauth import ClientAuthentication
from ciba_harness.core._config import ClientConfig
from ciba_harness.core._errors import InvalidIdToken
from ciba_harness.core._http import HttpResponse
from ciba_harness.core._idtoken import IdTokenExpectations
from ciba_harness.core._notifications import Notification
from ciba_harness.core._poller import Poller, PollResult, PollStatus
from ciba_harness.core._requests import (
    Acknowledgement,
    BackchannelParams,
    RequestObjectSpec,
    build_backchannel_request,
    build_refresh_request,
    error_code,
    login_hint_token as login_hint_token_for,
    parse_acknowledgement,
)
from ciba_harness.load._context import LoadContext
from ciba_harness.load._metrics import CibaError
from ciba_harness.load._profiles import FlowProfile, Outcome
from ciba_harness.load._transport import OK, Judgement, LocustTransport, error_for

__all__ = ["FlowRunner", "POLL_MARGIN"]

POLL_MARGIN = 0.01  # s added to every wait: the provider measures gaps on arrival, not on send
GRACE = 5.0  # s past expires_in before a still-pending transaction counts as not expired
MAX_POLLS = 10_000
ROW = {"approve": "time_to_tokens", "deny": "denied", "expire": "expired"}
EXPECTED_CODE = {"deny": "access_denied", "expire": "expired_token"}
INVALID_KINDS = ("unknown_user", "missing_scope", "bad_client")


@dataclass
class Ended:
    """How a flow ended: tokens, or an error code (None for tokens)."""

    code: str | None
    tokens: dict[str, object] | None = None
    polls: int = 0
    error: CibaError | None = None  # set when the harness already knows it is a failure


@dataclass(order=True)
class _Pending:
    due: float
    serial: int
    poller: Poller = field(compare=False)
    last_sent: float = field(compare=False)
    deadline: float = field(compare=False)
    eager: bool = field(compare=False, default=False)
    early: bool = field(compare=False, default=False)  # the next poll is the deliberate early one


class FlowRunner:
    def __init__(
        self,
        context: LoadContext,
        transport: LocustTransport,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = gevent.sleep,
    ) -> None:
        self.ctx = context
        self.transport = transport
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.id_tokens: dict[str, str] = {}  # client_id -> last ID token (for id_token_hint)
        self.profile_suffix = ""  # named-profile users: "time_to_tokens <mode> <profile>"
        self._storm_index = self.rng.randrange(1 << 16)
        self._client_index = self.rng.randrange(1 << 16)
        self._pending: list[_Pending] = []
        self._serial = 0
        self._logged_in: tuple[ClientConfig, dict[str, object]] | None = None

    # --- building requests -------------------------------------------------------------------
    def params(
        self,
        client: ClientConfig,
        profile: FlowProfile,
        *,
        token: str | None = None,
        expiry: int | None = None,
    ) -> BackchannelParams:
        users = self.ctx.config.users
        login_hint = users.login_hint
        if users.second_login_hint and not client.user_code_required and self.rng.random() < 0.5:
            login_hint = users.second_login_hint  # two users; the user code is the first one's
        login_hint_token = id_token_hint = None
        if profile.hint == "login_hint_token":
            login_hint_token = login_hint_token_for(users, "valid", user=login_hint, client=client)
        elif profile.hint == "id_token_hint":
            id_token_hint = self.id_tokens.get(client.client_id)
        return BackchannelParams(
            scope="openid",
            login_hint=None if login_hint_token or id_token_hint else login_hint,
            login_hint_token=login_hint_token,
            id_token_hint=id_token_hint,
            binding_message=f"Code {self.rng.randrange(10000):04d}" if profile.binding_message else None,
            requested_expiry=expiry,
            client_notification_token=token,
            user_code=users.user_code if client.user_code_required else None,
        )

    # --- the backchannel request -------------------------------------------------------------
    def backchannel(
        self,
        client: ClientConfig,
        params: BackchannelParams,
        *,
        name: str = "backchannel",
    ) -> tuple[Acknowledgement | None, CibaError | None]:
        signed = RequestObjectSpec() if client.sign_requests else None
        request = build_backchannel_request(client, self.ctx.metadata, params, signed=signed)
        found: list[Acknowledgement] = []
        failure: list[CibaError] = []

        def judge(response: HttpResponse) -> Judgement:
            ack = parse_acknowledgement(response, received_at=time.monotonic())
            if ack is None:
                error = (
                    CibaError("malformed_acknowledgement", status=200)
                    if response.status == 200
                    else error_for(response)
                )
                failure.append(error)
                return Judgement(error)
            found.append(ack)
            return OK

        response = self.transport.fire(request, name=name, judge=judge)
        self.ctx.counters.backchannel += 1
        if response is None:
            return None, CibaError("transport_error")
        if not found:
            return None, failure[0] if failure else CibaError("malformed_acknowledgement")
        ack = found[0]
        # CIBA-ACK-06 by the conformance suite's check, against every id this process has seen
        repeated = CheckRunner().failure(
            auth_req_ids_unique, [ack.auth_req_id], issued_before=self.ctx.tracker
        )
        self.ctx.tracker.add(ack.auth_req_id, forward=self.ctx.forward_ids)
        if repeated is not None:
            self.ctx.sink.failure("duplicate_auth_req_id", CibaError("duplicate_auth_req_id"))
        return ack, None

    # --- the user's decision -----------------------------------------------------------------
    def decide(
        self, ack: Acknowledgement, action: Literal["approve", "deny"], delay: float,
        params: BackchannelParams, *, provider_delay: bool,
    ) -> float | None:
        """Send the decision; returns the monotonic time it was sent (None if it failed).

        With the embedded driver and `provider_delay` the provider waits `delay` itself (the
        user's greenlet goes on polling); otherwise this sleeps first (the webhook driver
        sleeps inside `decision_request`)."""
        driver = self.ctx.driver
        server_side = provider_delay and isinstance(driver, EmbeddedDriver)
        if not server_side and not isinstance(driver, WebhookDriver) and delay > 0:
            self.sleep(delay)
        context = DeviceContext(
            ack.auth_req_id,
            login_hint=params.login_hint,
            binding_message=params.binding_message,
            delay=delay if server_side or isinstance(driver, WebhookDriver) else 0.0,
        )
        try:
            request = driver.decision_request(action, context)
        except TimeoutError:
            self.ctx.sink.failure(f"device {action}", CibaError("device_call_failed", cause="timeout"))
            return None
        if request is None:
            return time.monotonic()
        sent = time.monotonic()
        response = self.transport.fire(
            request, name=f"device {action}", judge=_device_judge
        )
        if response is None or response.status >= 300:
            return None
        return sent

    def decide_later(
        self, ack: Acknowledgement, action: Literal["approve", "deny"], delay: float,
        params: BackchannelParams,
    ) -> None:
        """The decision in the background, for poll flows (the user greenlet polls meanwhile)."""
        if isinstance(self.ctx.driver, EmbeddedDriver):
            self.decide(ack, action, delay, params, provider_delay=True)
        else:
            gevent.spawn(self.decide, ack, action, delay, params, provider_delay=False)

    # --- token requests ----------------------------------------------------------------------
    def token(self, poller: Poller, expected: str | None) -> tuple[PollResult | None, HttpResponse | None]:
        results: list[PollResult] = []

        def judge(response: HttpResponse) -> Judgement:
            result = poller.handle(response)
            results.append(result)
            if result.status is PollStatus.PENDING:
                return Judgement(None, "token pending")
            if result.status is PollStatus.SLOW_DOWN:
                return Judgement(None, "token slow_down")
            if result.status is PollStatus.RETRY_LATER:
                return Judgement(None, "token retry_later")
            if result.status is PollStatus.TOKENS:
                return Judgement(_token_problem(result.tokens))
            if result.error == expected:
                return OK
            return Judgement(CibaError(result.error or "malformed_error", status=response.status))

        response = self.transport.fire(poller.request(), name="token", judge=judge)
        return (results[0] if results else None), response

    def poll_until_done(
        self, poller: Poller, *, mode: str, expected: str | None, expires_in: float,
        eager: bool = False,
    ) -> Ended:
        """Poll at the interval (honouring slow_down and Retry-After) until a final answer."""
        last_sent = time.monotonic()
        deadline = last_sent + expires_in + GRACE
        max_polls = min(MAX_POLLS, math.ceil(expires_in / max(poller.interval, 0.1)) + 50)
        early = eager
        while poller.polls < max_polls:
            required = poller.delay()
            wait = required / 2 if early else required + POLL_MARGIN
            due = last_sent + wait
            now = time.monotonic()
            if due > now:
                self.sleep(due - now)
            now = time.monotonic()
            if not early and now - last_sent < required - 0.001:
                self.ctx.sink.failure(f"interval {mode}", CibaError("interval_not_honoured"))
            early = False
            if now > deadline:
                return Ended("not_expired", polls=poller.polls, error=CibaError("not_expired"))
            last_sent = now
            result, response = self.token(poller, expected)
            if result is None:
                return Ended("transport_error", polls=poller.polls, error=CibaError("transport_error"))
            if result.status is PollStatus.SLOW_DOWN:
                self.ctx.sink.measure(f"slow_down {mode}", poller.interval * 1000.0)
                continue
            if result.status in (PollStatus.PENDING, PollStatus.RETRY_LATER):
                continue
            if result.status is PollStatus.TOKENS:
                return Ended(None, result.tokens, poller.polls, error=_token_problem(result.tokens))
            return Ended(result.error, polls=poller.polls)
        return Ended("not_expired", polls=poller.polls, error=CibaError("not_expired"))

    # --- whole flows -------------------------------------------------------------------------
    def flow(self, profile: FlowProfile, mode: str, *, started: float | None = None) -> None:
        """One CIBA flow from the backchannel request to tokens (or the denial / expiry)."""
        client = self.flow_client(mode)
        if client is None:
            self.ctx.sink.failure(f"{ROW['approve']} {mode}", CibaError("mode_not_configured", mode=mode))
            self.sleep(1.0)
            return
        outcome = profile.outcome(self.rng)
        self.ctx.counters.started += 1
        self._logged_in = None
        if mode == "poll":
            self._poll_flow(client, profile, outcome, started)
        else:
            self._notified_flow(client, profile, outcome, mode, started)
        if self._logged_in is not None and self.rng.random() < profile.refresh_share:
            logged_client, tokens = self._logged_in
            refresh_token = tokens.get("refresh_token")
            if isinstance(refresh_token, str):
                # later, as the logged-in session would; the user goes on with its next flow
                gevent.spawn_later(profile.refresh_after.sample(self.rng), self.refresh,
                                   logged_client, refresh_token)

    def flow_client(self, mode: str) -> ClientConfig | None:
        """The next client of this mode: users take turns over the client authentication
        methods of the profile (--ciba-flow-clients)."""
        clients = self.ctx.flow_clients.get(mode)
        if not clients:
            return self.ctx.clients.get(mode)
        self._client_index += 1
        return clients[self._client_index % len(clients)]

    def refresh(self, client: ClientConfig, refresh_token: str) -> None:
        """One refresh-token grant after a login (RFC 6749 section 6): a new access token."""
        request = build_refresh_request(client, self.ctx.metadata, refresh_token)

        def judge(response: HttpResponse) -> Judgement:
            if response.status != 200:
                return Judgement(error_for(response))
            document = response.json_object()
            if document is None or not isinstance(document.get("access_token"), str):
                return Judgement(CibaError("malformed_token_response", member="access_token"))
            return OK

        self.transport.fire(request, name="token refresh", judge=judge)

    def _poll_flow(
        self, client: ClientConfig, profile: FlowProfile, outcome: Outcome, started: float | None
    ) -> None:
        expiry = profile.expire_after if outcome == "expire" else profile.requested_expiry
        params = self.params(client, profile, expiry=expiry)
        t0 = started if started is not None else time.monotonic()
        ack, error = self.backchannel(client, params)
        if ack is None:
            self._finish("poll", outcome, t0, Ended(error.code if error else None, error=error))
            return
        if outcome != "expire":
            self.decide_later(ack, outcome, profile.approval_delay.sample(self.rng), params)
        poller = Poller(client, self.ctx.metadata, ack)
        ended = self.poll_until_done(
            poller, mode="poll", expected=EXPECTED_CODE.get(outcome),
            expires_in=float(ack.expires_in or expiry or 120),
        )
        self._finish("poll", outcome, t0, ended, client=client, ack=ack)

    def _notified_flow(
        self, client: ClientConfig, profile: FlowProfile, outcome: Outcome, mode: str,
        started: float | None,
    ) -> None:
        inbox, receiver = self.ctx.inbox, self.ctx.receiver
        assert inbox is not None and receiver is not None
        expiry = profile.expire_after if outcome == "expire" else profile.requested_expiry
        token = receiver.new_token()
        inbox.open(token, mode)
        try:
            params = self.params(client, profile, token=token, expiry=expiry)
            t0 = started if started is not None else time.monotonic()
            ack, error = self.backchannel(client, params)
            if ack is None:
                self._finish(mode, outcome, t0, Ended(error.code if error else None, error=error))
                return
            expires_in = float(ack.expires_in or expiry or 120)
            budget = self.ctx.config.budgets.max_wait
            if outcome == "expire":
                if mode == "ping":
                    # no ping is due for an expiry: wait it out, then the token endpoint says so
                    self.sleep(max(0.0, ack.received_at + expires_in + 0.5 - time.monotonic()))
                    result, _ = self.token(Poller(client, self.ctx.metadata, ack), "expired_token")
                    ended = _ended_from(result, 1)
                else:
                    note = inbox.wait(token, expires_in + GRACE + budget)
                    ended = self._push_outcome(note, ack)
                self._finish(mode, outcome, t0, ended, client=client, ack=ack)
                return
            decided_at = self.decide(
                ack, outcome, profile.approval_delay.sample(self.rng), params, provider_delay=False
            )
            if decided_at is None:
                self._finish(mode, outcome, t0, Ended("device_call_failed", error=CibaError("device_call_failed")))
                return
            note = inbox.wait(token, budget)
            if note is None:
                self._finish(mode, outcome, t0, Ended("notification_timeout", error=CibaError("notification_timeout")))
                return
            self._notification_measured(note, mode, decided_at)
            if mode == "ping":
                result, _ = self.token(Poller(client, self.ctx.metadata, ack), EXPECTED_CODE.get(outcome))
                ended = _ended_from(result, 1)
            else:
                ended = self._push_outcome(note, ack)
            self._finish(mode, outcome, t0, ended, client=client, ack=ack, finished=note.arrived_at if mode == "push" else None)
        finally:
            inbox.close(token)

    def _notification_measured(self, note: Notification, mode: str, decided_at: float) -> None:
        self.ctx.counters.notifications += 1
        error = None
        if note.violations:
            requirement, _ = note.violations[0]
            error = CibaError("notification_violation", requirement=requirement)
        latency = max(0.0, note.arrived_at - decided_at) * 1000.0
        self.ctx.sink.measure(f"notification_latency {mode}", latency, length=len(note.body), error=error)

    def _push_outcome(self, note: Notification | None, ack: Acknowledgement) -> Ended:
        if note is None:
            return Ended("notification_timeout", error=CibaError("notification_timeout"))
        payload = note.payload or {}
        if note.kind == "push_tokens":
            problem = _token_problem(payload)
            if problem is None and payload.get("auth_req_id") != ack.auth_req_id:
                problem = CibaError("malformed_token_response", member="auth_req_id")
            return Ended(None, payload, error=problem)
        if note.kind == "push_error":
            code = payload.get("error")
            return Ended(code if isinstance(code, str) else "malformed_error")
        return Ended("notification_violation", error=CibaError("notification_violation", kind=note.kind))

    def _finish(
        self,
        mode: str,
        outcome: Outcome,
        t0: float,
        ended: Ended,
        *,
        client: ClientConfig | None = None,
        ack: Acknowledgement | None = None,
        finished: float | None = None,
    ) -> None:
        elapsed = ((finished if finished is not None else time.monotonic()) - t0) * 1000.0
        row = f"{ROW[outcome]} {mode}"
        if self.profile_suffix:
            row += f" {self.profile_suffix}"
        counters = self.ctx.counters
        error = ended.error
        if error is None:
            if outcome == "approve" and ended.code is not None:
                error = CibaError(ended.code)
            elif outcome != "approve" and ended.code != EXPECTED_CODE[outcome]:
                error = CibaError(ended.code or "unexpected_outcome", expected=EXPECTED_CODE[outcome])
        if error is None and ended.tokens is not None and client is not None and ack is not None:
            self.check_id_token(ended.tokens, client, ack, mode)
            if outcome == "approve":
                self._logged_in = (client, ended.tokens)
        self.ctx.sink.measure(row, elapsed, length=ended.polls, error=error)
        if mode == "poll" and ended.polls:
            self.ctx.sink.count("polls_per_flow poll", ended.polls)
        if error is not None:
            counters.failed += 1
        elif outcome == "approve":
            counters.tokens += 1
        elif outcome == "deny":
            counters.denied += 1
        else:
            counters.expired += 1

    # --- ID tokens (sampled) -----------------------------------------------------------------
    def check_id_token(
        self, tokens: dict[str, object], client: ClientConfig, ack: Acknowledgement, mode: str
    ) -> None:
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            return
        self.id_tokens[client.client_id] = id_token
        if self.rng.random() >= self.ctx.settings.id_token_sample:
            return
        started = time.monotonic()
        if self.ctx.jwks.refresh_needed(id_token):
            self.ctx.refresh_jwks()
        access = tokens.get("access_token")
        refresh = tokens.get("refresh_token")
        expect = IdTokenExpectations(
            issuer=self.ctx.metadata.issuer,
            client_id=client.client_id,
            access_token=access if isinstance(access, str) else None,
            refresh_token=refresh if isinstance(refresh, str) else None,
            auth_req_id=ack.auth_req_id,
            push=mode == "push",
        )
        error = None
        try:
            validate_id_token(id_token, self.ctx.jwks, expect)
        except InvalidIdToken as exc:
            error = CibaError("invalid_id_token", requirement=exc.requirement)
        self.ctx.sink.measure(
            f"id_token {mode}", (time.monotonic() - started) * 1000.0, length=len(id_token), error=error
        )

    # --- the backchannel storm ---------------------------------------------------------------
    def storm_once(self, profile: FlowProfile) -> None:
        label, client = self.ctx.storm_clients[self._storm_index % len(self.ctx.storm_clients)]
        self._storm_index += 1
        expiry = profile.expire_after
        if self.rng.random() < self.ctx.settings.invalid_share:
            self.invalid_backchannel(client, profile)
            return
        self.backchannel(client, self.params(client, profile, expiry=expiry), name=f"backchannel {label}")

    def invalid_backchannel(self, client: ClientConfig, profile: FlowProfile) -> None:
        """A request the provider must refuse, with the error code it must give."""
        kind = self.rng.choice(INVALID_KINDS)
        params = self.params(client, profile, expiry=profile.expire_after)
        auth = None
        if kind == "unknown_user":
            params = BackchannelParams(
                scope="openid", login_hint=self.ctx.config.users.unknown_login_hint,
                requested_expiry=params.requested_expiry, user_code=params.user_code,
            )
            expected, status = "unknown_user_id", 400
        elif kind == "missing_scope":
            params = BackchannelParams(
                scope=None, login_hint=params.login_hint, requested_expiry=params.requested_expiry,
                user_code=params.user_code,
            )
            expected, status = "invalid_request", 400
        else:
            if client.auth_method in {"client_secret_jwt", "private_key_jwt"}:
                auth = ClientAuthentication(assertion_claims={"aud": "https://wrong-audience.invalid/"})
            else:
                auth = ClientAuthentication(secret="not-the-secret-0000")
            expected, status = "invalid_client", 401
        signed = RequestObjectSpec() if client.sign_requests else None
        request = build_backchannel_request(client, self.ctx.metadata, params, auth=auth, signed=signed)

        def judge(response: HttpResponse) -> Judgement:
            if response.status == 200:
                return Judgement(CibaError("unexpected_success", expected=expected))
            code = error_code(response)
            if code == expected and response.status == status:
                return OK
            return Judgement(CibaError(code or "malformed_error", expected=expected, status=response.status))

        self.transport.fire(request, name="backchannel invalid", judge=judge)
        self.ctx.counters.backchannel += 1

    # --- token endpoint polling --------------------------------------------------------------
    def polling_step(self, hold: Callable[[random.Random], float], keep: int) -> None:
        """Keep `keep` transactions pending and send the next due poll (one per call)."""
        client = self.ctx.clients["poll"]
        profile = self.ctx.generic_profile
        assert profile is not None
        while len(self._pending) < keep:
            params = self.params(client, profile)
            ack, _ = self.backchannel(client, params)
            if ack is None:
                self.sleep(1.0)  # the failure is recorded; do not spin on a broken provider
                return
            self.decide_later(ack, "approve", hold(self.rng), params)
            poller = Poller(client, self.ctx.metadata, ack)
            now = time.monotonic()
            eager = self.rng.random() < self.ctx.settings.eager_share
            self._serial += 1
            heapq.heappush(self._pending, _Pending(
                now + poller.delay() + POLL_MARGIN, self._serial, poller, now,
                now + float(ack.expires_in or 120) + GRACE, eager,
            ))
        item = heapq.heappop(self._pending)
        now = time.monotonic()
        if item.due > now:
            self.sleep(item.due - now)
        now = time.monotonic()
        if not item.early and now - item.last_sent < item.poller.delay() - 0.001:
            self.ctx.sink.failure("interval polling", CibaError("interval_not_honoured"))
        if now > item.deadline:
            self.ctx.sink.failure("polls_per_flow polling", CibaError("not_expired"))
            return
        item.last_sent = now
        result, _ = self.token(item.poller, None)
        if result is None:
            return  # transport failure recorded on the token row; drop the transaction
        if result.status is PollStatus.SLOW_DOWN:
            self.ctx.sink.measure("slow_down polling", item.poller.interval * 1000.0)
        if result.status in (PollStatus.PENDING, PollStatus.SLOW_DOWN, PollStatus.RETRY_LATER):
            item.early = item.eager and item.poller.polls == 1
            wait = item.poller.delay() / 2 if item.early else item.poller.delay() + POLL_MARGIN
            item.due = now + wait
            heapq.heappush(self._pending, item)
            return
        if result.status is PollStatus.TOKENS and result.tokens is not None:
            self.ctx.sink.count("polls_per_flow polling", item.poller.polls)
            self.ctx.counters.tokens += 1
            self.check_id_token(result.tokens, client, item.poller.acknowledgement, "poll")
            return
        self.ctx.counters.failed += 1
        self.ctx.sink.count(
            "polls_per_flow polling", item.poller.polls, error=CibaError(result.error or "malformed_error")
        )


def _device_judge(response: HttpResponse) -> Judgement:
    if response.status < 300:
        return OK
    return Judgement(CibaError("device_call_failed", status=response.status))


def _token_problem(tokens: dict[str, object] | None) -> CibaError | None:
    """The conformance suite's token checks (CIBA-TOKEN-14, -25) as a load failure naming the
    first broken member."""
    if tokens is None:
        return CibaError("malformed_token_response", member="body")
    runner = CheckRunner()
    if runner.failure(token_members_present, tokens) is not None:
        return CibaError("malformed_token_response", member=missing_token_members(tokens)[0])
    if runner.failure(token_type_bearer, tokens) is not None:
        return CibaError("malformed_token_response", member="token_type")
    return None


def _ended_from(result: PollResult | None, polls: int) -> Ended:
    if result is None:
        return Ended("transport_error", polls=polls, error=CibaError("transport_error"))
    if result.status is PollStatus.TOKENS:
        problem = _token_problem(result.tokens)
        return Ended(None, result.tokens, polls, error=problem)
    return Ended(result.error or result.status.value, polls=polls)
