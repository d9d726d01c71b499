"""The notification inbox: expected and received ping / push callbacks, correlated by
client_notification_token, with waiters that block until a callback arrives or time runs out.
Servers (asyncio for pytest, gevent for Locust) feed it; every callback is parsed by the core
(`parse_notification`) and judged by the registered checks (`callback_violations`).

The inbox is keyed by client_notification_token, which the client knows before it has an
auth_req_id; the bearer token is how the provider names the transaction in a callback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from ciba_harness.checks._delivery import callback_violations
from ciba_harness.checks._registry import CheckRunner
from ciba_harness.core._notifications import EndpointBehaviour, Notification, parse_notification

__all__ = ["NotificationInbox"]


def _matches(
    note: Notification, token: str | None, auth_req_id: str | None, path: str | None
) -> bool:
    """Every criterion given (not None) holds."""
    return (
        (token is None or note.bearer == token)
        and (auth_req_id is None or note.auth_req_id == auth_req_id)
        and (path is None or note.path == path)
    )


class NotificationInbox:
    """Thread-safe store of expected and received callbacks; waiters block with a timeout."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._expected: dict[str, str] = {}  # notification token -> mode (ping | push)
        self._behaviours: dict[str, EndpointBehaviour] = {}
        self._received: list[Notification] = []
        # bearer token -> callbacks whose sender hung up before the receiver read the body
        self._abandoned: dict[str, int] = {}
        self.rejected = 0

    # --- the client side (what a test declares before it starts a flow) ---
    def expect(self, token: str, mode: str, behaviour: EndpointBehaviour | None = None) -> None:
        with self._lock:
            self._expected[token] = mode
            if behaviour is not None:
                self._behaviours[token] = behaviour

    def behaviour_for(self, bearer: str | None) -> EndpointBehaviour:
        with self._lock:
            return self._behaviours.get(bearer or "", EndpointBehaviour())

    # --- the server side ---
    def receive(self, path: str, headers: Iterable[tuple[str, str]], body: bytes) -> Notification:
        """Judge one callback, store it, wake waiters. The caller answers with `.answered`."""
        note = parse_notification(path, headers, body)
        bearer = note.bearer
        with self._lock:
            mode = self._expected.get(bearer or "")
            behaviour = self._behaviours.get(bearer or "", EndpointBehaviour())
        # a runner per callback: its outcomes live on the note (a long run keeps no list)
        note.violations = callback_violations(CheckRunner(), note, mode)
        note.answered = 401 if mode is None else (400 if note.payload is None else behaviour.status)
        with self._lock:
            self._received.append(note)
            if mode is None:
                self.rejected += 1
            self._lock.notify_all()
        return note

    def abandon(self, bearer: str | None) -> None:
        """A callback whose sender closed the connection before its body was read: nothing
        to judge, but the flow's wait can then say what happened (see `abandoned`). One
        without a bearer token names no flow."""
        if bearer is None:
            return
        with self._lock:
            self._abandoned[bearer] = self._abandoned.get(bearer, 0) + 1

    def abandoned(self, token: str | None) -> int:
        """How many callbacks bearing `token` were abandoned by their sender before being read."""
        with self._lock:
            return self._abandoned.get(token, 0) if token else 0

    # --- waiting and reading ---
    def received(
        self, *, token: str | None = None, auth_req_id: str | None = None, path: str | None = None
    ) -> list[Notification]:
        with self._lock:
            return [n for n in self._received if _matches(n, token, auth_req_id, path)]

    def wait_for(
        self,
        *,
        token: str | None = None,
        auth_req_id: str | None = None,
        path: str | None = None,
        timeout: float,
        count: int = 1,
    ) -> list[Notification]:
        """Block until `count` matching callbacks arrived or `timeout` passed; returns them."""
        return self._wait(lambda n: _matches(n, token, auth_req_id, path), timeout, count)

    def wait_for_flow(
        self,
        *,
        token: str | None,
        auth_req_id: str | None,
        path: str | None = None,
        timeout: float,
        count: int = 1,
    ) -> list[Notification]:
        """Like `wait_for`, but a callback belongs to the flow when its bearer token OR its
        auth_req_id names it: a provider that breaks one of the two (no bearer, wrong bearer,
        no auth_req_id member) still has its callback found, so the test can judge that."""

        def belongs(n: Notification) -> bool:
            named = (token is not None and n.bearer == token) or (
                auth_req_id is not None and n.auth_req_id == auth_req_id
            )
            return named and (path is None or n.path == path)

        return self._wait(belongs, timeout, count)

    def _wait(
        self, belongs: Callable[[Notification], bool], timeout: float, count: int
    ) -> list[Notification]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [n for n in self._received if belongs(n)]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._lock.wait(remaining)

    def forget(self, token: str) -> None:
        """Drop a finished transaction's expectation, behaviour and callbacks (long load runs)."""
        with self._lock:
            self._expected.pop(token, None)
            self._behaviours.pop(token, None)
            self._abandoned.pop(token, None)
            self._received = [n for n in self._received if n.bearer != token]

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._abandoned.clear()
