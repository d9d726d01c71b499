"""Client drivers: how the harness makes the client under test start a flow, and how it
learns what the client concluded.

Contract (docs/client-conformance.md): the harness asks for a flow with ``login_hint``,
``binding_message``, ``mode`` (poll, ping, push) and ``outcome_url``. The client reports
``{"outcome": "tokens", "sub": "<sub of the ID token>"}`` or
``{"outcome": "refused", "reason": "<why>"}``, either as the answer to the call (HTTP 200, or
a JSON line on a command's stdout) or later by POSTing that object to ``outcome_url``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from ciba_harness.core._errors import CibaHarnessError

__all__ = ["ClientDriver", "CommandClientDriver", "FlowOutcome", "FlowRequest",
           "HttpClientDriver", "parse_outcome"]


@dataclass(frozen=True)
class FlowRequest:
    login_hint: str
    binding_message: str
    mode: str
    outcome_url: str

    def values(self) -> dict[str, str]:
        return {"login_hint": self.login_hint, "binding_message": self.binding_message,
                "mode": self.mode, "outcome_url": self.outcome_url}


@dataclass(frozen=True)
class FlowOutcome:
    """What the client concluded: tokens (for `sub`), refused (for `reason`), or nothing."""

    outcome: str  # tokens, refused, none
    sub: str | None = None
    reason: str = ""
    concluded: float = field(default_factory=time.monotonic)

    def describe(self) -> str:
        if self.outcome == "tokens":
            return f"got tokens for sub {self.sub!r}"
        if self.outcome == "refused":
            return f"refused: {self.reason}"
        return f"no conclusion ({self.reason})"


def parse_outcome(value: Any) -> FlowOutcome | None:
    """The outcome object of the contract, or None when `value` is not one."""
    if not isinstance(value, dict) or value.get("outcome") not in ("tokens", "refused"):
        return None
    if value["outcome"] == "tokens":
        sub = value.get("sub")
        return FlowOutcome("tokens", sub=str(sub) if sub is not None else None)
    return FlowOutcome("refused", reason=str(value.get("reason", ""))[:300])


class ClientDriver(Protocol):
    name: str

    def start_flow(self, flow: FlowRequest, timeout: float) -> FlowOutcome | None:
        """Make the client run one flow; its outcome, or None when it will call back."""


@dataclass
class HttpClientDriver:
    """POST the flow request as JSON to `url`; a 200 JSON answer is the outcome, a 202
    means the client will POST it to outcome_url."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    name: str = "http"
    # No keep-alive: the client under test may close idle connections at any moment.
    _http: httpx.Client = field(
        default_factory=lambda: httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)),
        repr=False,
    )

    def start_flow(self, flow: FlowRequest, timeout: float) -> FlowOutcome | None:
        try:
            response = self._http.post(self.url, json=flow.values(), headers=self.headers,
                                       timeout=timeout)
        except httpx.HTTPError as exc:
            raise CibaHarnessError(
                f"client driver: POST {self.url} failed: {type(exc).__name__}: {exc}"
            ) from None
        if response.status_code == 202:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        outcome = parse_outcome(body)
        if outcome is None:
            raise CibaHarnessError(
                f"client driver: POST {self.url} answered {response.status_code} without an "
                "outcome object ({\"outcome\": \"tokens\" | \"refused\", ...})"
            )
        return outcome


@dataclass
class CommandClientDriver:
    """Run a command line built from `template` ({login_hint}, {binding_message}, {mode},
    {outcome_url} filled in per argument, no shell). The last JSON outcome line of its stdout
    is the outcome; without one the harness waits for a POST to outcome_url."""

    template: str
    name: str = "command"

    def command(self, flow: FlowRequest) -> list[str]:
        values = flow.values()
        args = []
        for arg in shlex.split(self.template):
            for key, value in values.items():
                arg = arg.replace("{" + key + "}", value)
            args.append(arg)
        return args

    def start_flow(self, flow: FlowRequest, timeout: float) -> FlowOutcome | None:
        args = self.command(flow)
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CibaHarnessError(f"client driver: {args[0]!r} failed: {exc}") from None
        for line in reversed(done.stdout.splitlines()):
            try:
                outcome = parse_outcome(json.loads(line))
            except ValueError:
                continue
            if outcome is not None:
                return outcome
        return None
