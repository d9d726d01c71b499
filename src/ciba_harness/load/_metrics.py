"""CIBA metrics as Locust request events, the CibaError failure type, and run-wide checks.

Locust only knows requests: a name, a type, a response time in ms, a length and an optional
exception. CIBA's own measures are sent through the same event with `request_type="CIBA"`
so they appear in the UI, the CSV files and the HTML report beside the HTTP rows:

=============================  ==============================  ===========================
name                           response time column            content size column
=============================  ==============================  ===========================
``time_to_tokens <mode>``      ms from backchannel request     polls in the flow
                               to valid tokens in hand
``notification_latency <m>``   ms from the approval to the     bytes of the callback
                               ping / push arriving
``polls_per_flow <mode>``      **count** of token requests     count of token requests
                               of the flow (not ms)
``slow_down <mode>``           the raised interval, ms         0
``denied <mode>``              ms until the denial was known   polls in the flow
``expired <mode>``             ms until the expiry was known   polls in the flow
``id_token <mode>``            ms spent validating (sampled)   bytes of the ID token
``arrival_lag``                ms a flow started after its     0
                               scheduled arrival (open model)
``duplicate_auth_req_id``      0 (failures only)               0
``notification_unexpected``    0 (failures only)               bytes of the callback
=============================  ==============================  ===========================

Failures carry a `CibaError` whose repr Locust writes to failures.csv as
``CibaError('<code>')`` or ``CibaError('<code>', key='value', ...)``: the code is the CIBA /
OAuth error code the provider sent (``expired_token``, ``access_denied``, ...) or one of the
harness's own codes listed in `HARNESS_CODES`.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CIBA_REQUEST_TYPE",
    "HARNESS_CODES",
    "CibaError",
    "EventSink",
    "AuthReqIdTracker",
    "FlowCounters",
    "metric_name",
    "parse_failure",
]

CIBA_REQUEST_TYPE = "CIBA"

# Codes the harness itself reports (the provider's own error codes are passed through as-is).
HARNESS_CODES = {
    "duplicate_auth_req_id": "an auth_req_id was issued twice in the run (CIBA-ACK-06)",
    "invalid_id_token": "a sampled ID token failed validation (requirement in `requirement`)",
    "malformed_acknowledgement": "a 200 from the backchannel endpoint without an auth_req_id",
    "malformed_token_response": "a 200 from the token endpoint without the token members",
    "malformed_error": "an error answer without a JSON `error` member (http status in `status`)",
    "notification_timeout": "no ping / push arrived in time for an approved or denied flow",
    "notification_violation": "a ping / push broke a rule (requirement in `requirement`)",
    "unexpected_notification": "a callback for no flow this process started",
    "duplicate_notification": "a second callback for a flow that had already received one",
    "not_expired": "a transaction still pending well after its expires_in",
    "unexpected_success": "a deliberately invalid request was accepted",
    "unexpected_outcome": "the flow ended in another way than the user decided",
    "interval_not_honoured": "the load client polled before the interval (a harness bug)",
    "device_call_failed": "the device driver could not approve or deny",
    "transport_error": "no HTTP answer (connection refused, reset, timeout)",
}


class CibaError(Exception):
    """A CIBA failure under load; `code` is what failures.csv groups by.

    Keep `details` low-cardinality (requirement IDs, expected codes, HTTP statuses): Locust
    groups failures by the repr, so an auth_req_id in it would make one row per flow.
    """

    def __init__(self, code: str, **details: str | int) -> None:
        self.code = code
        self.details = dict(sorted(details.items()))
        super().__init__(code)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.details.items())
        return f"CibaError({self.code!r}{extra})"

    def __str__(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.details.items())
        return f"{self.code} {extra}".rstrip()


def parse_failure(error_text: str) -> str | None:
    """The CIBA code in a failures.csv `Error` cell (``CibaError('x', ...)`` -> ``x``)."""
    prefix = "CibaError('"
    start = error_text.find(prefix)
    if start < 0:
        return None
    end = error_text.find("'", start + len(prefix))
    return error_text[start + len(prefix) : end] if end > 0 else None


def metric_name(metric: str, mode: str | None = None) -> str:
    return f"{metric} {mode}" if mode else metric


class EventSink:
    """Fires CIBA measures through Locust's request event (`events.request.fire`)."""

    def __init__(self, fire: Callable[..., Any]) -> None:
        self._fire = fire

    def measure(
        self,
        name: str,
        value_ms: float,
        *,
        length: int = 0,
        error: BaseException | None = None,
    ) -> None:
        self._fire(
            request_type=CIBA_REQUEST_TYPE,
            name=name,
            response_time=value_ms,
            response_length=length,
            exception=error,
            context={},
        )

    def count(self, name: str, value: int, *, error: BaseException | None = None) -> None:
        """A count-valued row (polls_per_flow): the count goes in both columns (see module doc)."""
        self.measure(name, float(value), length=value, error=error)

    def failure(self, name: str, error: CibaError, *, length: int = 0) -> None:
        self.measure(name, 0.0, length=length, error=error)


def _digest(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


@dataclass
class AuthReqIdTracker:
    """Every auth_req_id of the run, as 64-bit digests; reports the ones seen twice.

    Each load process checks its own ids at once. In a distributed run each worker also
    hands its first sightings to the master (`drain()` at every stats report), which checks
    them across workers with `merge()`. The store is capped (`limit` digests, about 100 bytes
    each) so a soak cannot exhaust memory; `saturated` tells when the cap was reached.
    """

    limit: int = 5_000_000
    seen: set[int] = field(default_factory=set)
    pending: list[int] = field(default_factory=list)
    duplicates: int = 0
    saturated: bool = False

    def __contains__(self, auth_req_id: object) -> bool:
        """Seen before (for `auth_req_ids_unique(..., issued_before=tracker)`)."""
        return isinstance(auth_req_id, str) and _digest(auth_req_id) in self.seen

    def add(self, auth_req_id: str, *, forward: bool = False) -> bool:
        """Record an id; True when it had been seen before (a duplicate)."""
        digest = _digest(auth_req_id)
        if digest in self.seen:
            self.duplicates += 1
            return True
        if len(self.seen) < self.limit:
            self.seen.add(digest)
        else:
            self.saturated = True
        if forward:
            self.pending.append(digest)
        return False

    def drain(self) -> list[int]:
        out, self.pending = self.pending, []
        return out

    def merge(self, digests: Iterable[int]) -> int:
        """Add digests from a worker; returns how many were already known (cross-worker)."""
        found = 0
        for digest in digests:
            if digest in self.seen:
                found += 1
            elif len(self.seen) < self.limit:
                self.seen.add(digest)
            else:
                self.saturated = True
        self.duplicates += found
        return found


@dataclass
class FlowCounters:
    """Per-process tallies printed at the end of a run (and used by the distributed test)."""

    started: int = 0
    tokens: int = 0
    denied: int = 0
    expired: int = 0
    failed: int = 0
    backchannel: int = 0
    notifications: int = 0
    forwarded: int = 0
    started_at: float = field(default_factory=time.monotonic)

    def summary(self) -> str:
        return (
            f"flows started {self.started}, tokens {self.tokens}, denied {self.denied}, "
            f"expired {self.expired}, failed {self.failed}, backchannel requests "
            f"{self.backchannel}, notifications {self.notifications} "
            f"(forwarded {self.forwarded})"
        )


class RecentTokens:
    """Bounded memory of finished notification tokens, to tell duplicates from strangers."""

    def __init__(self, size: int = 20_000) -> None:
        self._order: deque[str] = deque()
        self._set: set[str] = set()
        self._size = size

    def add(self, token: str) -> None:
        if token in self._set:
            return
        self._order.append(token)
        self._set.add(token)
        while len(self._order) > self._size:
            self._set.discard(self._order.popleft())

    def __contains__(self, token: object) -> bool:
        return token in self._set
