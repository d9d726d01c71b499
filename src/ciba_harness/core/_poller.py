"""The client side of poll mode as a state machine without I/O (CIBA §7.3, §10.1, §11).

A transport asks `Poller.delay()` how long to wait, sends `Poller.request()`, and hands the
response to `Poller.handle()`. The same object drives pytest flows and Locust users.
"""

from __future__ import annotations

import datetime
import email.utils
import enum
import time
from dataclasses import dataclass, field
from typing import Any

from ciba_harness.core._clientauth import ClientAuthentication
from ciba_harness.core._config import ClientConfig
from ciba_harness.core._discovery import ProviderMetadata
from ciba_harness.core._http import HttpRequest, HttpResponse
from ciba_harness.core._requests import Acknowledgement, build_token_request, error_code

__all__ = ["DEFAULT_INTERVAL", "SLOW_DOWN_INCREMENT", "PollStatus", "PollResult", "Poller"]

DEFAULT_INTERVAL = 5.0  # CIBA-ACK-10: without `interval` the client waits 5 s
SLOW_DOWN_INCREMENT = 5.0  # CIBA-TOKEN-06: add at least 5 s on slow_down


class PollStatus(enum.StrEnum):
    PENDING = "authorization_pending"
    SLOW_DOWN = "slow_down"
    RETRY_LATER = "retry_later"  # 503 with Retry-After (CIBA-TOKEN-08)
    TOKENS = "tokens"
    FAILED = "failed"  # a terminal error code (access_denied, expired_token, ...)


@dataclass(frozen=True)
class PollResult:
    status: PollStatus
    error: str | None = None
    tokens: dict[str, Any] | None = None


@dataclass
class Poller:
    client: ClientConfig
    metadata: ProviderMetadata
    acknowledgement: Acknowledgement
    auth: ClientAuthentication | None = None
    interval: float = field(init=False)
    polls: int = field(default=0, init=False)
    slow_downs: int = field(default=0, init=False)
    retry_after: float | None = field(default=None, init=False)
    history: list[PollStatus] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.interval = float(self.acknowledgement.interval or DEFAULT_INTERVAL)

    def delay(self) -> float:
        """Seconds to wait before the next token request (from the moment the last was sent)."""
        if self.retry_after is not None:
            return max(self.retry_after, self.interval)
        return self.interval

    def request(self) -> HttpRequest:
        return build_token_request(
            self.client, self.metadata, self.acknowledgement.auth_req_id, auth=self.auth
        )

    def handle(self, response: HttpResponse) -> PollResult:
        self.polls += 1
        self.retry_after = None
        if response.status == 200:
            body = response.json_object()
            result = (
                PollResult(PollStatus.TOKENS, tokens=body)
                if body is not None
                else PollResult(PollStatus.FAILED, error="malformed_token_response")
            )
        elif response.status == 503:
            self.retry_after = _retry_after(response.header("retry-after"))
            result = PollResult(PollStatus.RETRY_LATER)
        else:
            code = error_code(response)
            if code == "authorization_pending":
                result = PollResult(PollStatus.PENDING, error=code)
            elif code == "slow_down":
                self.slow_downs += 1
                self.interval += SLOW_DOWN_INCREMENT
                result = PollResult(PollStatus.SLOW_DOWN, error=code)
            else:
                result = PollResult(PollStatus.FAILED, error=code or f"http_{response.status}")
        self.history.append(result.status)
        return result


def _retry_after(value: str | None) -> float:
    """Seconds from Retry-After: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return DEFAULT_INTERVAL
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_INTERVAL
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - time.time())
