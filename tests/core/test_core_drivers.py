"""_drivers: the requests each device driver makes (or does not make)."""

from __future__ import annotations

import io
import json
import threading
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
from waiting import LOAD_SLACK

from ciba_harness import (
    DeviceConfig,
    DeviceContext,
    EmbeddedDriver,
    Exchange,
    HttpHookDriver,
    ManualDriver,
    WebhookDriver,
    make_driver,
)
from ciba_harness.core._config import HttpCallTemplate

CONTEXT = DeviceContext("auth-req-1", login_hint="alice smith", binding_message="T1 & 0042", delay=1.5)


def test_embedded_driver_request() -> None:
    driver = EmbeddedDriver("https://op.example.com", "device-token-123")
    for action in ("approve", "deny"):
        request = driver.decision_request(action, CONTEXT)  # type: ignore[arg-type]
        assert request.method == "POST"
        assert request.url == f"https://op.example.com/device/requests/auth-req-1/{action}"
        assert request.header("authorization") == "Bearer device-token-123"
        assert request.header("content-type") == "application/json"
        assert json.loads(request.body) == {"delay": 1.5}
        assert "device-token-123" in request.secrets
        assert "device-token-123" not in Exchange(request).describe()


def hook_driver() -> HttpHookDriver:
    approve = HttpCallTemplate(
        method="put",
        url="https://op.example.com/test-hook/{auth_req_id}/{action}?user={login_hint}&msg={binding_message}",
        headers={"Authorization": "Bearer hook-secret", "X-Request": "{auth_req_id}"},
        json={"id": "{auth_req_id}", "decision": "{action}", "nested": [{"msg": "{binding_message}"}], "n": 5},
    )
    deny = HttpCallTemplate(
        method="POST",
        url="https://op.example.com/test-hook",
        form={"auth_req_id": "{auth_req_id}", "allow": "no", "user": "{login_hint}"},
    )
    return HttpHookDriver(approve, deny, frozenset({"configured-secret"}))


def test_http_hook_driver_json_template() -> None:
    request = hook_driver().decision_request("approve", CONTEXT)
    assert request.method == "PUT"
    url = urlsplit(request.url)
    assert url.path == "/test-hook/auth-req-1/approve"
    # Placeholder values are encoded for the URL: the message's "&" does not split the query.
    assert dict(parse_qsl(url.query)) == {"user": "alice smith", "msg": "T1 & 0042"}
    assert request.header("x-request") == "auth-req-1"
    assert request.header("content-type") == "application/json"
    assert json.loads(request.body) == {
        "id": "auth-req-1",
        "decision": "approve",
        "nested": [{"msg": "T1 & 0042"}],
        "n": 5,
    }
    assert {"Bearer hook-secret", "configured-secret"} <= request.secrets
    assert "hook-secret" not in Exchange(request).describe()


def test_http_hook_driver_form_template() -> None:
    request = hook_driver().decision_request("deny", CONTEXT)
    assert request.method == "POST"
    assert request.url == "https://op.example.com/test-hook"
    assert request.header("content-type") == "application/x-www-form-urlencoded"
    assert request.form_fields() == [
        ("auth_req_id", "auth-req-1"),
        ("allow", "no"),
        ("user", "alice smith"),
    ]


def test_http_hook_driver_without_optional_values() -> None:
    request = hook_driver().decision_request("approve", DeviceContext("id-2"))
    assert dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True)) == {"user": "", "msg": ""}


def test_webhook_driver_correlates_by_auth_req_id() -> None:
    driver = WebhookDriver("https://op.example.com/ext/ciba/auth/callback", wait_timeout=1)
    driver.record("bearer-other", {"auth_req_id": "other"})
    driver.record("bearer-1", {"auth_req_id": "auth-req-1"})
    request = driver.decision_request("approve", DeviceContext("auth-req-1"))
    assert request.url == "https://op.example.com/ext/ciba/auth/callback"
    assert request.header("authorization") == "Bearer bearer-1"
    assert json.loads(request.body) == {"status": "SUCCEED"}
    assert "bearer-1" in request.secrets
    deny = driver.decision_request("deny", DeviceContext("auth-req-1"))
    assert json.loads(deny.body) == {"status": "UNAUTHORIZED"}


def test_webhook_driver_prefers_the_call_naming_the_auth_req_id() -> None:
    """Two flows with one binding message: the later call of the other flow must not take this
    flow's decision (its bearer token was already used: the provider answers 401)."""
    driver = WebhookDriver("https://op/cb", wait_timeout=1)
    driver.record("bearer-a", {"auth_req_id": "a", "binding_message": "same"})
    driver.record("bearer-b", {"auth_req_id": "b", "binding_message": "same"})
    request = driver.decision_request("approve", DeviceContext("a", binding_message="same"))
    assert request.header("authorization") == "Bearer bearer-a"


def test_webhook_driver_correlates_by_binding_message_and_waits() -> None:
    driver = WebhookDriver("https://op/cb", wait_timeout=30)
    # The provider's call arrives while the driver waits; it names no auth_req_id.
    threading.Timer(0.1, driver.record, ("bearer-2", {"binding_message": "T1 & 0042"})).start()
    started = time.monotonic()
    request = driver.decision_request("approve", DeviceContext("unknown-id", binding_message="T1 & 0042"))
    assert request.header("authorization") == "Bearer bearer-2"
    assert time.monotonic() - started < 0.1 + LOAD_SLACK  # woken by the call, not the 30 s


def test_webhook_driver_times_out_with_a_clear_message() -> None:
    driver = WebhookDriver("https://op/cb", wait_timeout=0.2)
    driver.record("bearer-x", {"auth_req_id": "someone-else", "binding_message": "other"})
    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        driver.decision_request("approve", DeviceContext("auth-req-9", binding_message="B9"))
    assert 0.15 <= time.monotonic() - started < 0.2 + LOAD_SLACK
    assert "did not call the authentication-device endpoint" in str(info.value)
    assert "B9" in str(info.value)


def test_manual_driver_prints_and_sends_nothing() -> None:
    out = io.StringIO()
    assert ManualDriver(out).decision_request("deny", CONTEXT) is None
    text = out.getvalue()
    assert "DENY" in text and "alice smith" in text and "T1 & 0042" in text


def test_make_driver() -> None:
    embedded = make_driver(DeviceConfig(token="tok"), "https://op")
    assert isinstance(embedded, EmbeddedDriver) and embedded.token == "tok"
    template = HttpCallTemplate("POST", "https://op/hook")
    http = make_driver(DeviceConfig(driver="http", approve=template, deny=template), "https://op", frozenset({"s"}))
    assert isinstance(http, HttpHookDriver) and http.secrets == {"s"}
    webhook = make_driver(DeviceConfig(driver="webhook"), "https://op")
    assert isinstance(webhook, WebhookDriver)
    assert webhook.callback_url == "https://op/ext/ciba/auth/callback"
    assert isinstance(make_driver(DeviceConfig(driver="manual"), "https://op"), ManualDriver)
