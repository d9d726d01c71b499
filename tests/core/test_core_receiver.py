"""_notifications and _receiver: callbacks judged as data, and the real receiver on a loopback
socket (statuses, behaviours, oversized and malformed bodies, a flood of concurrent posts)."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from waiting import LOAD_SLACK, wait_until

from ciba_harness import (
    CibaHarnessError,
    EndpointBehaviour,
    NotificationInbox,
    NotificationReceiver,
    WebhookDriver,
)
from ciba_harness.client._receiver import bind_socket
from ciba_harness.core._notifications import MAX_NOTIFICATION_BYTES

JSON = {"Content-Type": "application/json"}


def token() -> str:
    return secrets.token_urlsafe(24)


def rules(note: object) -> list[str]:
    return [requirement for requirement, _ in note.violations]  # type: ignore[attr-defined]


# --- the inbox, without a server -------------------------------------------------------------


def receive(inbox: NotificationInbox, bearer: str | None, payload: object, content_type: str = "application/json"):  # type: ignore[no-untyped-def]
    headers = [("Content-Type", content_type)]
    if bearer is not None:
        headers.append(("Authorization", f"Bearer {bearer}"))
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return inbox.receive("/cb", headers, body)


@pytest.mark.parametrize(
    ("mode", "payload", "kind", "expected_rules"),
    [
        ("ping", {"auth_req_id": "a1"}, "ping", []),
        ("ping", {"auth_req_id": "a1", "extra": 1}, "ping", ["CIBA-PING-03"]),
        ("ping", {"auth_req_id": 7}, "ping", ["CIBA-PING-03"]),
        ("ping", {}, "ping", ["CIBA-PING-03"]),
        ("ping", {"auth_req_id": "a1", "access_token": "t"}, "push_tokens", ["CIBA-PING-03"]),
        (
            "push",
            {"auth_req_id": "a1", "access_token": "t", "token_type": "Bearer", "id_token": "x"},
            "push_tokens",
            [],
        ),
        ("push", {"access_token": "t", "token_type": "Bearer"}, "push_tokens", ["CIBA-PUSH-02"]),
        ("push", {"auth_req_id": "a1", "error": "access_denied"}, "push_error", []),
        ("push", {"auth_req_id": "a1", "error": "expired_token", "error_description": "late"}, "push_error", []),
        ("push", {"auth_req_id": "a1", "error": "server_error"}, "push_error", ["CIBA-PUSH-11"]),
        ("push", {"error": "access_denied"}, "push_error", ["CIBA-PUSH-11"]),
        ("push", {"auth_req_id": "a1"}, "ping", ["CIBA-PUSH-02"]),
    ],
)
def test_classification(mode: str, payload: dict[str, object], kind: str, expected_rules: list[str]) -> None:
    inbox = NotificationInbox()
    bearer = token()
    inbox.expect(bearer, mode)
    note = receive(inbox, bearer, payload)
    assert note.kind == kind
    assert rules(note) == expected_rules
    assert note.answered == 204
    assert note.bearer == bearer
    assert inbox.received(token=bearer) == [note]


def test_inbox_judges_content_type_and_bearer() -> None:
    inbox = NotificationInbox()
    bearer = token()
    inbox.expect(bearer, "ping")
    note = receive(inbox, bearer, {"auth_req_id": "a"}, content_type="text/plain")
    assert rules(note) == ["CIBA-PING-03"]
    missing = receive(inbox, None, {"auth_req_id": "a"})
    assert missing.answered == 401 and "CIBA-PING-02" in rules(missing)
    assert inbox.rejected == 1
    basic = inbox.receive("/cb", [("Authorization", f"Basic {bearer}"), ("Content-Type", "application/json")], b'{"auth_req_id":"a"}')
    assert basic.bearer is None and basic.answered == 401


def test_inbox_answers_as_the_behaviour_says() -> None:
    inbox = NotificationInbox()
    bearer = token()
    inbox.expect(bearer, "ping", EndpointBehaviour(status=503))
    assert receive(inbox, bearer, {"auth_req_id": "a"}).answered == 503
    assert receive(inbox, bearer, b"{not json").answered == 400
    assert inbox.behaviour_for("unknown") == EndpointBehaviour()


def test_wait_for_times_out_quietly() -> None:
    inbox = NotificationInbox()
    started = time.monotonic()
    assert inbox.wait_for(token="nobody", timeout=0.2) == []
    assert 0.15 <= time.monotonic() - started < 0.2 + LOAD_SLACK


def test_wait_for_wakes_up_on_arrival() -> None:
    import threading

    inbox = NotificationInbox()
    bearer = token()
    inbox.expect(bearer, "ping")
    threading.Timer(0.1, lambda: receive(inbox, bearer, {"auth_req_id": "a"})).start()
    started = time.monotonic()
    found = inbox.wait_for(auth_req_id="a", timeout=30)
    assert len(found) == 1 and time.monotonic() - started < 0.1 + LOAD_SLACK  # not the 30 s


# --- the receiver on a real socket -----------------------------------------------------------


@pytest.fixture(scope="module")
def webhook() -> WebhookDriver:
    return WebhookDriver(callback_url="https://op.example.com/callback", wait_timeout=0.2)


@pytest.fixture(scope="module")
def receiver(webhook: WebhookDriver) -> Iterator[NotificationReceiver]:
    with NotificationReceiver(NotificationInbox(), webhook=webhook) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def bearer(value: str) -> dict[str, str]:
    return {**JSON, "Authorization": f"Bearer {value}"}


def test_receiver_urls(receiver: NotificationReceiver) -> None:
    assert receiver.url == f"http://127.0.0.1:{receiver.port}/cb"
    assert receiver.port > 0
    assert receiver.redirect_target.endswith("/redirected")


def test_valid_ping_is_recorded_and_answered_204(receiver: NotificationReceiver, http: httpx.Client) -> None:
    value = token()
    receiver.inbox.expect(value, "ping")
    response = http.post(receiver.url, headers=bearer(value), json={"auth_req_id": "ping-1"})
    assert response.status_code == 204
    assert response.content == b""
    (note,) = receiver.inbox.wait_for(token=value, timeout=2)
    assert note.kind == "ping" and note.auth_req_id == "ping-1"
    assert note.violations == [] and note.answered == 204
    assert note.path == "/cb"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic abc"])
def test_wrong_or_missing_bearer_is_rejected(
    receiver: NotificationReceiver, http: httpx.Client, authorization: str | None
) -> None:
    value = token()
    receiver.inbox.expect(value, "ping")
    rejected_before = receiver.inbox.rejected
    headers = dict(JSON)
    if authorization:
        headers["Authorization"] = authorization
    marker = f"rejected-{secrets.token_hex(4)}"
    response = http.post(receiver.url, headers=headers, json={"auth_req_id": marker})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert receiver.inbox.rejected == rejected_before + 1
    (note,) = receiver.inbox.received(auth_req_id=marker)
    assert note.answered == 401
    assert receiver.inbox.received(token=value) == []


def test_ping_with_extra_members(receiver: NotificationReceiver, http: httpx.Client) -> None:
    value = token()
    receiver.inbox.expect(value, "ping")
    response = http.post(
        receiver.url, headers=bearer(value), json={"auth_req_id": "p", "expires_in": 5}
    )
    assert response.status_code == 204
    (note,) = receiver.inbox.received(token=value)
    assert rules(note) == ["CIBA-PING-03"]


def test_push_tokens_and_push_errors(receiver: NotificationReceiver, http: httpx.Client) -> None:
    value = token()
    receiver.inbox.expect(value, "push")
    tokens = {"auth_req_id": "push-1", "access_token": "at", "token_type": "Bearer", "id_token": "x"}
    assert http.post(receiver.url, headers=bearer(value), json=tokens).status_code == 204
    bad_error = {"auth_req_id": "push-1", "error": "invalid_grant"}
    assert http.post(receiver.url, headers=bearer(value), json=bad_error).status_code == 204
    first, second = receiver.inbox.wait_for(token=value, timeout=2, count=2)
    assert first.kind == "push_tokens" and first.violations == []
    assert first.payload == tokens
    assert second.kind == "push_error" and rules(second) == ["CIBA-PUSH-11"]


def test_malformed_json_is_answered_400(receiver: NotificationReceiver, http: httpx.Client) -> None:
    value = token()
    receiver.inbox.expect(value, "ping")
    for body in (b'{"auth_req_id": ', b"\xff\xfe\x00", b"", b"[1,2]"):
        response = http.post(receiver.url, headers=bearer(value), content=body)
        assert response.status_code == 400, body
    notes = receiver.inbox.received(token=value)
    assert len(notes) == 4
    assert all(rules(n) == ["CIBA-PING-03"] and n.payload is None for n in notes)


def test_oversized_body_is_handled(receiver: NotificationReceiver, http: httpx.Client) -> None:
    value = token()
    receiver.inbox.expect(value, "ping")
    body = json.dumps({"auth_req_id": "big", "pad": "x" * (MAX_NOTIFICATION_BYTES + 50_000)})
    try:
        response = http.post(receiver.url, headers=bearer(value), content=body)
    except httpx.TransportError:
        response = None  # the server may close the connection without reading the rest
    if response is not None:
        assert response.status_code == 400
    (note,) = receiver.inbox.wait_for(token=value, timeout=2)
    assert rules(note) == ["CIBA-PING-03"]
    assert "bytes" in note.violations[0][1]
    assert len(note.body) == MAX_NOTIFICATION_BYTES
    # The receiver is still serving.
    ok = http.post(receiver.url, headers=bearer(value), json={"auth_req_id": "after"})
    assert ok.status_code == 204


def test_behaviour_status_and_body(receiver: NotificationReceiver, http: httpx.Client) -> None:
    value = token()
    receiver.inbox.expect(
        value, "ping", EndpointBehaviour(status=200, body=b'{"ok":true}', content_type="application/json")
    )
    response = http.post(receiver.url, headers=bearer(value), json={"auth_req_id": "b"})
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert response.headers["content-type"].startswith("application/json")
    no_content = token()
    receiver.inbox.expect(no_content, "ping", EndpointBehaviour(status=204, body=b"ignored"))
    response = http.post(receiver.url, headers=bearer(no_content), json={"auth_req_id": "b"})
    assert response.status_code == 204 and response.content == b""
    failing = token()
    receiver.inbox.expect(failing, "ping", EndpointBehaviour(status=503))
    assert http.post(receiver.url, headers=bearer(failing), json={"auth_req_id": "b"}).status_code == 503


def test_behaviour_redirect(receiver: NotificationReceiver, http: httpx.Client) -> None:
    value = token()
    receiver.inbox.expect(value, "ping", EndpointBehaviour(status=301, redirect_to=receiver.redirect_target))
    response = http.post(receiver.url, headers=bearer(value), json={"auth_req_id": "r"})
    assert response.status_code == 301
    assert response.headers["location"] == receiver.redirect_target
    assert receiver.inbox.received(token=value, path="/redirected") == []
    # A provider that follows the redirect is seen at the target.
    http.post(receiver.redirect_target, headers=bearer(value), json={"auth_req_id": "r"})
    assert len(receiver.inbox.received(token=value, path="/redirected")) == 1
    other = token()
    receiver.inbox.expect(other, "ping", EndpointBehaviour(redirect_to="https://elsewhere.example"))
    assert http.post(receiver.url, headers=bearer(other), json={"auth_req_id": "r"}).status_code == 307


def test_behaviour_delay(receiver: NotificationReceiver, http: httpx.Client) -> None:
    value = token()
    receiver.inbox.expect(value, "ping", EndpointBehaviour(delay=0.4))
    started = time.monotonic()
    response = http.post(receiver.url, headers=bearer(value), json={"auth_req_id": "slow"})
    assert response.status_code == 204
    assert time.monotonic() - started >= 0.4


def test_sub_paths_are_recorded(receiver: NotificationReceiver, http: httpx.Client) -> None:
    value = token()
    receiver.inbox.expect(value, "ping")
    http.post(receiver.url + "/client-a", headers=bearer(value), json={"auth_req_id": "s"})
    assert receiver.inbox.received(token=value)[0].path == "/cb/client-a"
    assert http.get(receiver.url).status_code == 405


def test_device_hook_feeds_the_webhook_driver(
    receiver: NotificationReceiver, http: httpx.Client, webhook: WebhookDriver
) -> None:
    response = http.post(
        receiver.device_hook_url,
        headers=bearer("device-call-token"),
        json={"auth_req_id": "hook-1", "binding_message": "B7"},
    )
    assert response.status_code == 201
    assert http.post(receiver.device_hook_url, json={"auth_req_id": "x"}).status_code == 400
    assert http.post(receiver.device_hook_url, headers=bearer("t"), content=b"nope").status_code == 400
    from ciba_harness import DeviceContext

    request = webhook.decision_request("approve", DeviceContext("hook-1"))
    assert request.header("authorization") == "Bearer device-call-token"


def test_wait_for_returns_within_its_timeout(receiver: NotificationReceiver) -> None:
    started = time.monotonic()
    assert receiver.inbox.wait_for(token=token(), timeout=0.3) == []
    assert time.monotonic() - started < 0.3 + LOAD_SLACK


def test_flood_of_concurrent_posts_loses_nothing(receiver: NotificationReceiver) -> None:
    tokens = [token() for _ in range(200)]
    for value in tokens:
        receiver.inbox.expect(value, "ping")

    async def flood() -> list[int]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(timeout=20, limits=limits) as client:
            responses = await asyncio.gather(
                *(
                    client.post(receiver.url, headers=bearer(value), json={"auth_req_id": f"flood-{i}"})
                    for i, value in enumerate(tokens)
                )
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(flood())
    assert statuses == [204] * 200
    for i, value in enumerate(tokens):
        (note,) = receiver.inbox.received(token=value)
        assert note.auth_req_id == f"flood-{i}" and note.violations == []


def test_bind_socket_on_a_port_in_use() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(CibaHarnessError) as info:
            bind_socket(f"127.0.0.1:{port}")
        assert f"127.0.0.1:{port}" in str(info.value)
        assert "cannot listen" in str(info.value)
        assert "[receiver] bind" in str(info.value)
        with pytest.raises(CibaHarnessError):
            NotificationReceiver(NotificationInbox(), bind=f"127.0.0.1:{port}")
    finally:
        taken.close()


@pytest.mark.parametrize("bind", ["127.0.0.1:http", "127.0.0.1", "no-such-host.invalid:0"])
def test_bind_socket_with_a_bad_address(bind: str) -> None:
    with pytest.raises(CibaHarnessError, match="cannot listen"):
        bind_socket(bind)


def test_public_url_is_used_as_given() -> None:
    with NotificationReceiver(NotificationInbox(), public_url="https://harness.example.com/") as running:
        assert running.url == "https://harness.example.com/cb"
        assert running.device_hook_url == "https://harness.example.com/device"


def test_ipv6_loopback_and_port_reuse_after_stop() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        running = NotificationReceiver(NotificationInbox(), bind="[::1]:0")
    except CibaHarnessError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    with running:
        assert running.url == f"http://[::1]:{running.port}/cb"
        assert httpx.post(running.url, json={"auth_req_id": "x"}, timeout=5).status_code == 401
    bind_socket(f"[::1]:{running.port}").close()  # the port is free again


def _raw_exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send one request on `sock`, read its complete (empty-bodied) answer."""
    sock.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer


def test_idle_connection_outlives_the_usual_client_pool_expiry(receiver: NotificationReceiver) -> None:
    """A pooled connection left idle past 5 s (httpx's and uvicorn's keep-alive, the reference
    provider's pool) is still open: the provider's pool, not the receiver, closes it first."""
    value = token()
    receiver.inbox.expect(value, "ping")
    body = json.dumps({"auth_req_id": "kept-alive"}).encode()
    request = (
        f"POST /cb HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {value}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
        assert _raw_exchange(sock, request).startswith(b"HTTP/1.1 204")
        time.sleep(5.5)  # the idle time under test, not a wait for another thread
        assert _raw_exchange(sock, request).startswith(b"HTTP/1.1 204")
    assert len(receiver.inbox.received(token=value)) == 2


def test_callback_abandoned_before_its_body_was_read_is_counted(receiver: NotificationReceiver) -> None:
    """The sender closes the connection before the receiver has the body (a provider's short
    timeout meeting a busy receiver): nothing to judge, but the flow's bearer is counted."""
    value = token()
    receiver.inbox.expect(value, "ping")
    head = (
        f"POST /cb HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {value}\r\n"
        "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
        sock.sendall(head + b'{"auth_req_')
    assert wait_until(lambda: receiver.inbox.abandoned(value), timeout=10) == 1
    assert receiver.inbox.received(token=value) == []
    assert receiver.inbox.abandoned(token()) == 0


def test_a_flow_whose_callback_was_abandoned_gets_a_harness_error_not_a_verdict() -> None:
    """No callback was read, but one bearing the flow's token was abandoned by its sender: the
    wait ends in a TransportError naming that cause, not "[CIBA-PING-01] No ping arrived"."""
    from types import SimpleNamespace

    from ciba_harness import TransportError
    from ciba_harness.core._config import Budgets
    from ciba_harness.pytest_plugin.sequences import expect_callback

    inbox = NotificationInbox()
    value = token()
    inbox.expect(value, "ping")
    flow = SimpleNamespace(client=SimpleNamespace(delivery_mode="ping"), notification_token=value,
                           auth_req_id="abandoned-1")
    config = SimpleNamespace(budgets=Budgets(max_wait=0.1))
    inbox.abandon(value)
    with pytest.raises(TransportError, match="closed the connection before the harness's receiver"):
        expect_callback(None, config, inbox, flow, guarded=False)  # type: ignore[arg-type]
