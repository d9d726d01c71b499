"""Device drivers: who approves or denies on the user's behalf.

A driver turns a decision into an HTTP request (data); the caller's transport sends it.
* embedded: the reference provider's device control API
* http: a templated call to a provider's test hook ({auth_req_id}, {login_hint},
  {binding_message}, {action} placeholders)
* webhook: the harness hosts the authentication-device endpoint the provider calls when a
  request starts (Keycloak's authentication channel); the decision goes to the callback URL
  with the bearer token that call carried
* manual: prints what a human must do and sends nothing
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TextIO
from urllib.parse import quote

from ciba_harness.core._config import DeviceConfig, HttpCallTemplate
from ciba_harness.core._http import HttpRequest, form_body

__all__ = [
    "Decision",
    "DeviceContext",
    "DeviceDriver",
    "EmbeddedDriver",
    "HttpHookDriver",
    "WebhookDriver",
    "ManualDriver",
    "make_driver",
]

Decision = Literal["approve", "deny"]


@dataclass(frozen=True)
class DeviceContext:
    auth_req_id: str
    login_hint: str | None = None
    binding_message: str | None = None
    delay: float = 0.0


class DeviceDriver(Protocol):
    name: str

    def decision_request(self, action: Decision, context: DeviceContext) -> HttpRequest | None:
        """The request that makes the decision, or None when nothing is to be sent."""


@dataclass
class EmbeddedDriver:
    issuer: str
    token: str
    name: str = "embedded"

    def decision_request(self, action: Decision, context: DeviceContext) -> HttpRequest:
        url = f"{self.issuer}/device/requests/{context.auth_req_id}/{action}"
        body = json.dumps({"delay": context.delay}).encode()
        headers = (("Authorization", f"Bearer {self.token}"), ("Content-Type", "application/json"))
        return HttpRequest("POST", url, headers, body, frozenset({self.token}))


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _fill_json(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _fill(value, values)
    if isinstance(value, dict):
        return {k: _fill_json(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_json(v, values) for v in value]
    return value


@dataclass
class HttpHookDriver:
    approve: HttpCallTemplate
    deny: HttpCallTemplate
    secrets: frozenset[str] = frozenset()
    name: str = "http"

    def decision_request(self, action: Decision, context: DeviceContext) -> HttpRequest:
        template = self.approve if action == "approve" else self.deny
        values = {
            "auth_req_id": context.auth_req_id,
            "login_hint": context.login_hint or "",
            "binding_message": context.binding_message or "",
            "action": action,
        }
        headers = [(k, _fill(v, values)) for k, v in template.headers.items()]
        body = b""
        if template.json is not None:
            body = json.dumps(_fill_json(template.json, values)).encode()
            headers.append(("Content-Type", "application/json"))
        elif template.form is not None:
            body = form_body((k, _fill(v, values)) for k, v in template.form.items())
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        secret_values = self.secrets | {v for k, v in headers if k.lower() == "authorization"}
        # In the URL the values are percent-encoded: a binding message with "&" or "/" must
        # not change the query or the path.
        url_values = {k: quote(v, safe="") for k, v in values.items()}
        return HttpRequest(
            template.method.upper(),
            _fill(template.url, url_values),
            tuple(headers),
            body,
            frozenset(secret_values),
        )


@dataclass
class WebhookCall:
    """What the provider sent to the harness's authentication-device endpoint."""

    bearer: str
    payload: dict[str, Any]
    arrived_at: float


@dataclass
class WebhookDriver:
    """Answers through the provider's callback URL with the bearer token of its device call."""

    callback_url: str
    wait_timeout: float = 10.0
    name: str = "webhook"
    max_calls: int = 100_000  # calls remembered (a load run makes one per flow)
    _calls: deque[WebhookCall] = field(default_factory=deque)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    # the latest call per auth_req_id / binding message: O(1) per decision under load
    _by_id: dict[str, WebhookCall] = field(default_factory=dict)
    _by_message: dict[str, WebhookCall] = field(default_factory=dict)

    def record(self, bearer: str, payload: dict[str, Any]) -> None:
        with self._lock:
            call = WebhookCall(bearer, payload, time.monotonic())
            self._calls.append(call)
            for index, key in ((self._by_id, "auth_req_id"), (self._by_message, "binding_message")):
                value = payload.get(key)
                if isinstance(value, str) and value:
                    index[value] = call
            while len(self._calls) > self.max_calls:
                old = self._calls.popleft()
                for index, key in ((self._by_id, "auth_req_id"), (self._by_message, "binding_message")):
                    value = old.payload.get(key)
                    if isinstance(value, str) and index.get(value) is old:
                        del index[value]
            self._lock.notify_all()

    def _find(self, context: DeviceContext) -> WebhookCall | None:
        # A call naming this auth_req_id is exact; the binding message only serves providers
        # that do not send the id (another flow may have used the same message).
        by_id = self._by_id.get(context.auth_req_id)
        if by_id is not None or not context.binding_message:
            return by_id
        return self._by_message.get(context.binding_message)

    def decision_request(self, action: Decision, context: DeviceContext) -> HttpRequest:
        deadline = time.monotonic() + self.wait_timeout
        with self._lock:
            call = self._find(context)
            while call is None and time.monotonic() < deadline:
                self._lock.wait(deadline - time.monotonic())
                call = self._find(context)
        if call is None:
            raise TimeoutError(
                f"the provider did not call the authentication-device endpoint for "
                f"{context.binding_message or context.auth_req_id} within {self.wait_timeout:.0f} s"
            )
        if context.delay:
            time.sleep(context.delay)
        status = "SUCCEED" if action == "approve" else "UNAUTHORIZED"
        headers = (("Authorization", f"Bearer {call.bearer}"), ("Content-Type", "application/json"))
        return HttpRequest(
            "POST",
            self.callback_url,
            headers,
            json.dumps({"status": status}).encode(),
            frozenset({call.bearer}),
        )


@dataclass
class ManualDriver:
    """A human decides on a real device; the harness only says what to do."""

    out: TextIO = field(default_factory=lambda: sys.stderr)
    name: str = "manual"

    def decision_request(self, action: Decision, context: DeviceContext) -> None:
        self.out.write(
            f"\n[ciba-harness] On the device of user {context.login_hint!r}: {action.upper()} the "
            f"request showing binding message {context.binding_message!r}.\n"
        )
        self.out.flush()
        return None


def make_driver(
    config: DeviceConfig, issuer: str, secrets: frozenset[str] = frozenset()
) -> DeviceDriver:
    if config.driver == "embedded":
        return EmbeddedDriver(issuer, config.token or "")
    if config.driver == "http":
        assert config.approve is not None and config.deny is not None
        return HttpHookDriver(config.approve, config.deny, secrets)
    if config.driver == "webhook":
        return WebhookDriver(callback_url=f"{issuer}/ext/ciba/auth/callback")
    return ManualDriver()
