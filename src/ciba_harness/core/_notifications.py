"""Ping and push callbacks as data (CIBA §10.2, §10.3, §12): the payload model and its parsing.

`parse_notification` turns one received POST into a `Notification` (bearer, content type,
payload, kind). Judging it is the checks' business (`checks._delivery.callback_violations`);
the inbox that stores and waits for callbacks is `client._inbox.NotificationInbox`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Notification",
    "EndpointBehaviour",
    "MAX_NOTIFICATION_BYTES",
    "TOKEN_MEMBERS",
    "bearer_credential",
    "parse_notification",
]

MAX_NOTIFICATION_BYTES = 64 * 1024
#: members that make a callback a token push (CIBA §10.3.1)
TOKEN_MEMBERS = frozenset({"access_token", "token_type", "id_token"})


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
    body: bytes  # at most MAX_NOTIFICATION_BYTES of it
    arrived_at: float  # time.monotonic()
    arrived_wall: float
    payload: dict[str, Any] | None = None
    kind: str = "unknown"  # ping | push_tokens | push_error | unknown
    auth_req_id: str | None = None
    violations: list[tuple[str, str]] = field(default_factory=list)
    answered: int = 204
    size: int = 0  # bytes received, before truncation

    def describe(self) -> str:
        members = sorted(self.payload) if self.payload else []
        return (
            f"{self.kind} callback to {self.path} (members {members}, "
            f"bearer {'present' if self.bearer else 'missing'}, answered {self.answered})"
        )


def bearer_credential(authorization: str) -> str | None:
    """The credential of an `Authorization: Bearer ...` header value (None: not a bearer)."""
    scheme, _, credential = authorization.partition(" ")
    return credential.strip() if scheme.lower() == "bearer" and credential.strip() else None


def parse_notification(path: str, headers: Iterable[tuple[str, str]], body: bytes) -> Notification:
    """One callback as data: the Bearer credential, the media type, and (for a body within
    MAX_NOTIFICATION_BYTES that is a JSON object) the payload, its auth_req_id and its kind."""
    header_map = {k.lower(): v for k, v in headers}
    bearer = bearer_credential(header_map.get("authorization", ""))
    content_type = header_map.get("content-type", "").split(";")[0].strip().lower()
    note = Notification(
        path,
        bearer,
        content_type,
        body[:MAX_NOTIFICATION_BYTES],
        time.monotonic(),
        time.time(),
        size=len(body),
    )
    if len(body) > MAX_NOTIFICATION_BYTES:
        return note
    try:
        payload = json.loads(body.decode("utf-8")) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: not judged JSON
        payload = None
    if not isinstance(payload, dict):
        return note
    note.payload = payload
    value = payload.get("auth_req_id")
    note.auth_req_id = value if isinstance(value, str) else None
    if "error" in payload:
        note.kind = "push_error"
    elif TOKEN_MEMBERS & set(payload):
        note.kind = "push_tokens"
    else:
        note.kind = "ping"
    return note
