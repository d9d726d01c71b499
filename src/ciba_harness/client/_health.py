"""Whole-run bounds: endpoint health breakers and the run budget, shared by a whole session.

A provider whose backchannel endpoint hangs costs every test one request timeout; a suite of
200 tests then takes many minutes to say "the endpoint is down". A breaker per endpoint counts
consecutive *transport* failures (no answer, refused, reset, no complete answer, a 5xx whose
body is not JSON); after `threshold` of them it opens, and every later request to that
endpoint fails at once with the cause, the test where the streak began and its first exchange.
Failures of requests that were already in flight when the last counted failure ended add to
the failure count but not to the streak: concurrent requests (early-started tests, xdist
workers) caught by one stall are one piece of evidence, not `threshold` of them.
While open, one request now and then is let through as a probe (after `probe_after` seconds,
then twice as long after each failed probe, at most a minute): a success closes the breaker
again. An answer of any kind (a 400 with the wrong error code, an HTML page
with status 200) is a verdict for one request and never counts.

The notification breaker does the same for ping and push: a wait for an expected callback
that ends with nothing at all received counts as a failure; later waits then fail at once,
naming the receiver URL the provider was told.

The run budget (`[budgets] run_timeout`, `--ciba-run-timeout`) is a wall-clock deadline for the
whole session: once it has passed, every test still to run and every request still to be sent
fails with "run budget exhausted", and the reports are written as usual.

State lives in a small JSON file in a session temporary directory, so pytest-xdist workers
share it (the controller hands them its path): writes are atomic (`os.replace`) and
read-modify-write happens under an exclusive `flock`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ciba_harness.core._errors import CibaHarnessError, TransportError
from ciba_harness.core._http import Exchange

__all__ = [
    "EndpointUnavailable",
    "NOTIFICATION",
    "RunBudgetExhausted",
    "SessionHealth",
    "active_health",
    "guarded_callback_wait",
    "is_transport_failure",
    "set_active_health",
]

T = TypeVar("T")
NOTIFICATION = "notification"
DEFAULT_THRESHOLD = 3
MAX_PROBE_WAIT = 60.0  # seconds
_EVIDENCE_LIMIT = 4000  # characters of the first failing exchange kept in the state file


class EndpointUnavailable(TransportError):
    """An endpoint's breaker is open: the request was not sent (or the wait not made)."""

    def __init__(self, message: str, *, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        #: the first failing exchange of the streak (redacted, `Exchange.to_dict()` form)
        self.evidence = [evidence] if evidence else []


class RunBudgetExhausted(CibaHarnessError):
    """The whole run's wall-clock budget has passed."""


def is_transport_failure(exchange: Exchange) -> bool:
    """No usable answer at the transport level: the endpoint, not one request, is in trouble.

    Requests the harness itself could not send (its own URL limits) and answers of any kind
    other than a 5xx without a JSON body do not count."""
    if exchange.response is None:
        return exchange.error is not None and not exchange.error.startswith(
            "the request cannot be sent"
        )
    if exchange.response.status >= 500:
        return exchange.response.json_object() is None
    return False


def _cause(exchange: Exchange) -> str:
    if exchange.response is None:
        return str(exchange.error)
    return f"HTTP {exchange.response.status} with a body that is not JSON"


@dataclass
class _Snapshot:
    key: tuple[int, int, int]
    state: dict[str, Any]


class SessionHealth:
    """The breakers and the run budget of one session (one per process; same file for all
    xdist workers of a run)."""

    def __init__(
        self,
        path: Path,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        probe_after: float = 5.0,
        run_timeout: float | None = None,
        run_deadline: float | None = None,
    ) -> None:
        self.path = path
        self.threshold = threshold
        self.probe_after = probe_after
        self.run_timeout = run_timeout
        self._tests = threading.local()  # the running test of each thread
        self.receiver_url: str | None = None  # where the provider was told to send callbacks
        self._snapshot: _Snapshot | None = None
        if not path.exists():
            deadline = run_deadline
            if deadline is None and run_timeout is not None:
                deadline = time.time() + run_timeout
            self._write({"run_deadline": deadline, "run_timeout": run_timeout, "breakers": {}})

    @property
    def test(self) -> str:
        """The running test (node id) of this thread, named in a breaker's cause."""
        return str(getattr(self._tests, "nodeid", ""))

    @test.setter
    def test(self, nodeid: str) -> None:
        self._tests.nodeid = nodeid

    @classmethod
    def in_new_directory(cls, **options: Any) -> SessionHealth:
        directory = Path(tempfile.mkdtemp(prefix="ciba-health-"))
        return cls(directory / "health.json", **options)

    def remove(self) -> None:
        """Delete the state file and its folder (the controller, at session end)."""
        for name in (self.path, self._lock_path):
            with contextlib.suppress(OSError):
                name.unlink()
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()

    # --- the run budget ---
    @property
    def run_deadline(self) -> float | None:
        deadline = self._read().get("run_deadline")
        return float(deadline) if isinstance(deadline, int | float) else None

    def budget_message(self) -> str | None:
        """The reason to stop, once the run budget has passed; else None."""
        deadline = self.run_deadline
        if deadline is None or time.time() < deadline:
            return None
        timeout = self._read().get("run_timeout")
        shown = f" = {timeout:g} s" if isinstance(timeout, int | float) else ""
        return (
            f"run budget exhausted ([budgets] run_timeout{shown}, or --ciba-run-timeout): "
            "the remaining tests were not run"
        )

    def check_budget(self) -> None:
        message = self.budget_message()
        if message is not None:
            raise RunBudgetExhausted(message)

    # --- endpoint breakers ---
    def before(self, endpoint: str) -> None:
        """Raise when the run budget is out or `endpoint`'s breaker is open (unless this is
        the half-open probe)."""
        self.check_budget()
        breaker = self._read()["breakers"].get(endpoint)
        if breaker is None or breaker.get("state") != "open":
            return
        if time.time() - float(breaker.get("last_attempt", 0)) >= self._probe_wait(breaker):
            probing = False

            def claim_probe(state: dict[str, Any]) -> None:
                nonlocal probing
                current = state["breakers"].get(endpoint, {})
                if time.time() - float(current.get("last_attempt", 0)) >= self._probe_wait(current):
                    current["last_attempt"] = time.time()
                    current["probes"] = int(current.get("probes", 0)) + 1
                    current["probe_round"] = int(current.get("probe_round", 0)) + 1
                    probing = True

            self._update(claim_probe)
            if probing:
                return

        def count_refusal(state: dict[str, Any]) -> None:
            current = state["breakers"].get(endpoint, {})
            current["short_circuited"] = int(current.get("short_circuited", 0)) + 1

        self._update(count_refusal)
        raise EndpointUnavailable(self.describe(endpoint, breaker), evidence=breaker.get("evidence"))

    def _probe_wait(self, breaker: dict[str, Any]) -> float:
        """Seconds between probes: each failed probe doubles it (a dead endpoint costs a few
        request timeouts per run, not one every few seconds)."""
        rounds = int(breaker.get("probe_round", 0))
        return float(min(MAX_PROBE_WAIT, self.probe_after * 2**rounds))

    def after(self, endpoint: str, exchange: Exchange) -> None:
        """Count one exchange with `endpoint`: a transport failure or a success."""
        if is_transport_failure(exchange):
            self.failure(endpoint, _cause(exchange), exchange.to_dict(),
                         sent_at=exchange.started_at,
                         ended_at=exchange.started_at + exchange.elapsed)
        else:
            self.success(endpoint)

    def failure(
        self,
        endpoint: str,
        cause: str,
        evidence: dict[str, Any] | None = None,
        *,
        url: str | None = None,
        sent_at: float | None = None,
        ended_at: float | None = None,
    ) -> None:
        """Count one transport failure; `sent_at`/`ended_at` (the exchange's clock) tell a
        request sent after the streak's last failure ended from one in flight beside it."""
        test = self.test

        def count(state: dict[str, Any]) -> None:
            breaker = state["breakers"].setdefault(endpoint, _closed(endpoint))
            breaker["failures"] = int(breaker.get("failures", 0)) + 1
            breaker["last_attempt"] = time.time()
            streak_end = breaker.get("streak_end")
            consecutive = int(breaker.get("consecutive", 0))
            if consecutive and sent_at is not None and streak_end is not None \
                    and sent_at < float(streak_end):
                breaker["overlapping"] = int(breaker.get("overlapping", 0)) + 1
                return  # in flight with a failure already counted: the same stall
            if ended_at is not None:
                breaker["streak_end"] = ended_at
            if consecutive == 0:
                breaker["since_test"] = test
                breaker["cause"] = cause[:500]
                breaker["evidence"] = _cut(evidence)
                if url is not None:
                    breaker["url"] = url
            breaker["consecutive"] = consecutive + 1
            breaker["last_cause"] = cause[:500]
            if breaker["state"] != "open" and consecutive + 1 >= self.threshold:
                breaker["state"] = "open"
                breaker["opened_at"] = time.time()
                breaker["opened_in"] = test
                breaker["times_opened"] = int(breaker.get("times_opened", 0)) + 1

        self._update(count)

    def success(self, endpoint: str) -> None:
        breaker = self._read()["breakers"].get(endpoint)
        if breaker is None or (
            breaker.get("state") != "open" and int(breaker.get("consecutive", 0)) == 0
        ):
            return  # nothing to change: no write on the healthy path

        def close(state: dict[str, Any]) -> None:
            current = state["breakers"].setdefault(endpoint, _closed(endpoint))
            if current.get("state") == "open":
                current["closed_at"] = time.time()
                current["closed_in"] = self.test
                current["probe_round"] = 0  # a later opening probes at the first pace again
            current["state"] = "closed"
            current["consecutive"] = 0
            current.pop("streak_end", None)

        self._update(close)

    # --- notifications (ping and push callbacks) ---
    def before_wait(self) -> None:
        """Before waiting for an expected callback: raise when no notification ever arrives."""
        self.before(NOTIFICATION)

    def after_wait(self, *, received: bool, waited: float) -> None:
        """After the wait: nothing at all received in `waited` seconds counts as a failure."""
        if received:
            self.success(NOTIFICATION)
        else:
            self.failure(
                NOTIFICATION,
                f"no callback at all arrived within {waited:g} s",
                url=self.receiver_url,
            )

    # --- reading ---
    def describe(self, endpoint: str, breaker: dict[str, Any]) -> str:
        count = int(breaker.get("consecutive", 0))
        since = breaker.get("since_test") or "the session start"
        if endpoint == NOTIFICATION:
            return (
                f"no notification ever arrived since {since}: {breaker.get('cause')} "
                f"({count} consecutive waits); the provider was told to call "
                f"{breaker.get('url') or 'the receiver'}"
            )
        return (
            f"{endpoint} endpoint unavailable since {since}: {breaker.get('cause')} "
            f"({count} consecutive failures)"
        )

    def states(self) -> dict[str, dict[str, Any]]:
        """Each breaker's state for the report (evidence left out: it is in the failures)."""
        breakers = self._read()["breakers"]
        shown: dict[str, dict[str, Any]] = {}
        for endpoint, breaker in sorted(breakers.items()):
            entry = {k: v for k, v in breaker.items() if k != "evidence"}
            if breaker.get("state") == "open":
                entry["message"] = self.describe(endpoint, breaker)
            shown[endpoint] = entry
        return shown

    def report(self) -> dict[str, Any]:
        """results.json `endpoint_health`: the breakers and the run budget."""
        state = self._read()
        return {
            "threshold": self.threshold,
            "probe_after": self.probe_after,
            "run_timeout": state.get("run_timeout"),
            "run_budget_exhausted": self.budget_message() is not None,
            "breakers": self.states(),
        }

    # --- the file ---
    @property
    def _lock_path(self) -> Path:
        return self.path.with_suffix(".lock")

    def _read(self) -> dict[str, Any]:
        try:
            status = os.stat(self.path)
        except OSError:
            return {"run_deadline": None, "run_timeout": None, "breakers": {}}
        key = (status.st_ino, status.st_mtime_ns, status.st_size)
        if self._snapshot is not None and self._snapshot.key == key:
            return self._snapshot.state
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"run_deadline": None, "run_timeout": None, "breakers": {}}
        if not isinstance(state, dict):
            return {"run_deadline": None, "run_timeout": None, "breakers": {}}
        self._snapshot = _Snapshot(key, state)
        return state

    def _write(self, state: dict[str, Any]) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(state), encoding="utf-8")
        os.replace(temporary, self.path)
        self._snapshot = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _update(self, change: Any) -> None:
        with self._locked():
            self._snapshot = None
            state = json.loads(json.dumps(self._read()))  # a private copy to change
            state.setdefault("breakers", {})
            change(state)
            self._write(state)


def _closed(endpoint: str) -> dict[str, Any]:
    return {"endpoint": endpoint, "state": "closed", "consecutive": 0, "failures": 0}


def _cut(evidence: dict[str, Any] | None) -> dict[str, Any] | None:
    if evidence is None:
        return None
    if len(json.dumps(evidence)) <= _EVIDENCE_LIMIT:
        return evidence
    response = evidence.get("response") or {}
    return {**evidence, "response": {**response, "body": str(response.get("body", ""))[:1000]}}


_active: SessionHealth | None = None


def set_active_health(health: SessionHealth | None) -> None:
    """The session's health of this process (for helpers without a client at hand)."""
    global _active
    _active = health


def active_health() -> SessionHealth | None:
    return _active


def guarded_callback_wait(inbox: Any, wait: Callable[[], list[T]], *, timeout: float) -> list[T]:
    """Wait for an *expected* callback through the session's notification breaker: fails at
    once while no notification ever arrives; a wait during which the receiver got nothing at
    all counts against the breaker, anything received (even a wrong callback) for it."""
    health = active_health()
    if health is None:
        return wait()
    health.before_wait()
    before = len(inbox.received())
    found = wait()
    received = bool(found) or len(inbox.received()) != before
    health.after_wait(received=received, waited=timeout)
    return found
