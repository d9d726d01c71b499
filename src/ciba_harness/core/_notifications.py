"""Ping and push callbacks judged as data (CIBA §10.2, §10.3, §12), and the inbox that
correlates them by auth_req_id. Servers (asyncio for pytest, gevent for Locust) feed it.

The inbox is keyed by client_notification_token, which the client knows before it has an
auth_req_id; the bearer token is how the provider names the transaction in a callback.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ciba_harness.core._codes import PUSH_ERROR_CODES

__all__ = ["Notification", "EndpointBehaviour", "NotificationInbox", "MAX_NOTIFICATION_BYTES"]

MAX_NOTIFICATION_BYTES = 64 * 1024
_TOKEN_MEMBERS = {"access_token", "token_type", "id_token"}


@dataclass(frozen=True)
class EndpointBehaviour:
    """How the client endpoint answers; tests make it fail on purpose (CIBA-PING-05..07)."""

    status: int = 204
    body: bytes = b""
    content_type: str | None = None
    delay: float = 0.0
    redirect_to: str | None = None


@dataclass
class Notification:
    """One callback as received, with the rules it broke (requirement, message)."""

    path: str
    bearer: str | None
    content_type: str
    body: bytes
    arrived_at: float  # time.monotonic()
    arrived_wall: float
    payload: dict[str, Any] | None = None
    kind: str = "unknown"  # ping | push_tokens | push_error | unknown
    auth_req_id: str | None = None
    violations: list[tuple[str, str]] = field(default_factory=list)
    answered: int = 204

    def describe(self) -> str:
        members = sorted(self.payload) if self.payload else []
        return (
            f"{self.kind} callback to {self.path} (members {members}, "
            f"bearer {'present' if self.bearer else 'missing'}, answered {self.answered})"
        )


class NotificationInbox:
    """Thread-safe store of expected and received callbacks; waiters block with a timeout."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._expected: dict[str, str] = {}  # notification token -> mode (ping | push)
        self._behaviours: dict[str, EndpointBehaviour] = {}
        self._received: list[Notification] = []
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
        header_map = {k.lower(): v for k, v in headers}
        authorization = header_map.get("authorization", "")
        scheme, _, credential = authorization.partition(" ")
        bearer = credential.strip() if scheme.lower() == "bearer" and credential.strip() else None
        content_type = header_map.get("content-type", "").split(";")[0].strip().lower()
        note = Notification(
            path, bearer, content_type, body[:MAX_NOTIFICATION_BYTES], time.monotonic(), time.time()
        )
        with self._lock:
            mode = self._expected.get(bearer or "")
            behaviour = self._behaviours.get(bearer or "", EndpointBehaviour())
        _judge(note, mode, body)
        note.answered = 401 if mode is None else (400 if note.payload is None else behaviour.status)
        with self._lock:
            self._received.append(note)
            if mode is None:
                self.rejected += 1
            self._lock.notify_all()
        return note

    # --- waiting and reading ---
    def received(
        self, *, token: str | None = None, auth_req_id: str | None = None, path: str | None = None
    ) -> list[Notification]:
        with self._lock:
            return [
                n
                for n in self._received
                if (token is None or n.bearer == token)
                and (auth_req_id is None or n.auth_req_id == auth_req_id)
                and (path is None or n.path == path)
            ]

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
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [
                    n
                    for n in self._received
                    if (token is None or n.bearer == token)
                    and (auth_req_id is None or n.auth_req_id == auth_req_id)
                    and (path is None or n.path == path)
                ]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._lock.wait(remaining)

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
            self._received = [n for n in self._received if n.bearer != token]

    def clear(self) -> None:
        with self._lock:
            self._received.clear()


def _judge(note: Notification, mode: str | None, body: bytes) -> None:
    if len(body) > MAX_NOTIFICATION_BYTES:
        note.violations.append(("CIBA-PING-03", f"callback body of {len(body)} bytes"))
        return
    try:
        payload = json.loads(body.decode("utf-8")) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: not judged JSON
        payload = None
    if not isinstance(payload, dict):
        note.violations.append(
            (
                "CIBA-PING-03" if mode != "push" else "CIBA-PUSH-02",
                "callback body is not a JSON object",
            )
        )
        return
    note.payload = payload
    value = payload.get("auth_req_id")
    note.auth_req_id = value if isinstance(value, str) else None
    if note.content_type != "application/json":
        note.violations.append(
            (
                "CIBA-PING-03" if mode != "push" else "CIBA-PUSH-01",
                f"content type {note.content_type or '(none)'}",
            )
        )
    if note.bearer is None:
        note.violations.append(
            (
                "CIBA-PING-02" if mode != "push" else "CIBA-PUSH-01",
                "no Bearer client_notification_token",
            )
        )
    if "error" in payload:
        note.kind = "push_error"
        if payload.get("error") not in PUSH_ERROR_CODES:
            note.violations.append(("CIBA-PUSH-11", f"error {payload.get('error')!r} not allowed"))
        if note.auth_req_id is None:
            note.violations.append(("CIBA-PUSH-11", "error push without auth_req_id"))
    elif _TOKEN_MEMBERS & set(payload):
        note.kind = "push_tokens"
        if note.auth_req_id is None:
            note.violations.append(("CIBA-PUSH-02", "token push without auth_req_id"))
    else:
        note.kind = "ping"
        if set(payload) != {"auth_req_id"} or note.auth_req_id is None:
            note.violations.append(
                ("CIBA-PING-03", f"ping members {sorted(payload)}, expected only auth_req_id")
            )
    if mode == "ping" and note.kind != "ping":
        note.violations.append(("CIBA-PING-03", f"a ping client received a {note.kind} callback"))
    if mode == "push" and note.kind == "ping":
        note.violations.append(("CIBA-PUSH-02", "a push client received a ping"))
