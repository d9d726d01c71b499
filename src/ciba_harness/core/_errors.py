"""Exceptions of ciba-harness.

Two families, kept apart because they mean different things in a report:

* CibaHarnessError: the harness could not do its job (a problem on our or the user's side)
  * ConfigError: the provider description is wrong (file, key, what is wrong); exit code 2
  * TransportError: no usable HTTP answer (unreachable, timeout, reset); names the cause
  * ProviderSetupError: the provider cannot be tested as configured (e.g. no backchannel endpoint)
* CheckFailure (an AssertionError): the provider broke a requirement
  * UnexpectedStatus, WrongErrorCode, MissingMember, InvalidMember, MalformedResponse,
    UnexpectedSuccess, InvalidIdToken, NotificationViolation, Timeout

Every CheckFailure carries the requirement ID, what was expected, what came back, the
exchanges that show it (redacted) and ends with "Reproduce with:" and a curl command.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

from ciba_harness.core._http import Exchange, _mask_members, redact, to_curl

__all__ = [
    "hide_check_failure_frames",
    "Severity",
    "CibaHarnessError",
    "ConfigError",
    "TransportError",
    "ProviderSetupError",
    "CheckFailure",
    "UnexpectedStatus",
    "WrongErrorCode",
    "MissingMember",
    "InvalidMember",
    "MalformedResponse",
    "UnexpectedSuccess",
    "InvalidIdToken",
    "NotificationViolation",
    "ResponseTimeout",
]


class Severity(enum.StrEnum):
    """How a broken check counts. The caller chooses, not the check."""

    FAILURE = "failure"
    WARNING = "warning"
    INFO = "info"


def hide_check_failure_frames(excinfo: Any) -> bool:
    """The `__tracebackhide__` of the harness's helper modules: pytest leaves their frames out
    of a check failure's traceback (the test's own line shows where); a harness bug keeps them."""
    return bool(excinfo.errisinstance(CheckFailure))


class CibaHarnessError(Exception):
    """The harness could not do its job; not a verdict on the provider."""


class ConfigError(CibaHarnessError):
    """A mistake in the provider description. `problems` holds every mistake of the file
    (this one first); `line` is where in the file, when known."""

    def __init__(
        self, message: str, *, file: str | None = None, key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.key = key
        self.message = message
        self.line = line
        self.problems: list[ConfigError] = [self]
        super().__init__(message)

    def __str__(self) -> str:
        key = f"key '{self.key}'" if self.key else None
        if self.file and self.line:  # file:line: as compilers write it
            return f"{self.file}:{self.line}: {key + ': ' if key else ''}{self.message}"
        where = ", ".join(p for p in (self.file, key) if p)
        return f"{where}: {self.message}" if where else self.message


class TransportError(CibaHarnessError):
    def __init__(self, message: str, *, exchange: Exchange | None = None) -> None:
        self.exchange = exchange
        super().__init__(message)


class ProviderSetupError(CibaHarnessError):
    """The provider or its configuration makes a test impossible (e.g. no CIBA endpoint)."""


class CheckFailure(AssertionError):
    """A requirement of the spec is broken. Fields are keyword-only and typed."""

    kind = "check failure"

    def __init__(
        self,
        *,
        requirement: str,
        title: str,
        message: str = "",
        expected: Any = None,
        actual: Any = None,
        exchanges: Sequence[Exchange] = (),
        severity: Severity = Severity.FAILURE,
        secrets: Iterable[str] = (),
    ) -> None:
        self.requirement = requirement
        self.title = title
        self.message = message
        self.expected = expected
        self.actual = actual
        self.exchanges = list(exchanges)
        self.severity = severity
        self.secrets = frozenset(secrets)
        super().__init__(self.render())

    @property
    def unique_key(self) -> tuple[str, str, str]:
        return (type(self).__name__, self.requirement, self.title)

    def render(self) -> str:
        lines = [f"[{self.requirement}] {self.title}"]
        if self.message:
            lines += [f"  {line}" for line in self._shown(self.message).splitlines()]
        if self.expected is not None:
            lines.append(f"  Expected: {self._shown(self.expected)}")
        if self.actual is not None:
            lines.append(f"  Received: {self._shown(self.actual)}")
        for exchange in self.exchanges:
            lines.append("")
            lines += [f"  {line}" for line in exchange.describe(self.secrets).splitlines()]
        if self.exchanges:
            lines += [
                "",
                "Reproduce with:",
                "",
                f"  {to_curl(self.exchanges[-1].request, self.secrets)}",
            ]
        return "\n".join(lines)

    def _shown(self, value: Any) -> str:
        """A detail as text, with token members and every known secret masked (a detail may
        quote a whole response body)."""
        secrets = self.secrets | {s for e in self.exchanges for s in e.request.secrets}
        return redact(str(_mask_members(value)), secrets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "requirement": self.requirement,
            "title": self.title,
            "message": self._shown(self.message),
            "expected": None if self.expected is None else self._shown(self.expected),
            "actual": None if self.actual is None else self._shown(self.actual),
            "severity": self.severity.value,
            "exchanges": [e.to_dict(self.secrets) for e in self.exchanges],
        }


class UnexpectedStatus(CheckFailure):
    kind = "unexpected HTTP status"


class WrongErrorCode(CheckFailure):
    kind = "wrong error code"


class MissingMember(CheckFailure):
    kind = "missing member"


class InvalidMember(CheckFailure):
    kind = "invalid member"


class MalformedResponse(CheckFailure):
    kind = "malformed response"


class UnexpectedSuccess(CheckFailure):
    kind = "accepted what must be refused"


class InvalidIdToken(CheckFailure):
    kind = "invalid ID token"


class NotificationViolation(CheckFailure):
    kind = "notification violation"


class ResponseTimeout(CheckFailure):
    kind = "no answer in time"
