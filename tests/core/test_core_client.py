"""_client: HttpxTransport and CibaClient over respx-mocked HTTP (error paths, discovery,
the poll loop with a fake clock, the end-to-end happy path with ID token validation)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from core_helpers import ISSUER
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from waiting import wait_until

from ciba_harness import (
    AUTH_REQ_ID_CLAIM,
    CheckFailure,
    CibaClient,
    EndpointBehaviour,
    HttpRequest,
    HttpResponse,
    HttpxTransport,
    NotificationInbox,
    PollStatus,
    ProviderConfig,
    ProviderSetupError,
    ResponseTimeout,
    TransportError,
    UnexpectedStatus,
    WrongErrorCode,
    parse_metadata,
    sign_jwt,
    token_hash,
)
from ciba_harness.client import _client

DISCOVERY = {
    "issuer": ISSUER,
    "token_endpoint": f"{ISSUER}/token",
    "backchannel_authentication_endpoint": f"{ISSUER}/bc-authorize",
    "jwks_uri": f"{ISSUER}/jwks",
    "backchannel_token_delivery_modes_supported": ["poll", "ping"],
    "grant_types_supported": ["urn:openid:params:grant-type:ciba"],
}
WELL_KNOWN = f"{ISSUER}/.well-known/openid-configuration"
PENDING = httpx.Response(400, json={"error": "authorization_pending"})


class FakeClock:
    """Stands in for the `time` module of _client: sleeping advances the clock instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    perf_counter = monotonic

    def time(self) -> float:
        return 1_800_000_000.0 + self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def config(reference_config: ProviderConfig) -> ProviderConfig:
    return reference_config.with_issuer(ISSUER)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.get(WELL_KNOWN).mock(return_value=httpx.Response(200, json=DISCOVERY))
        yield router


@pytest.fixture
def client(config: ProviderConfig, mock: respx.MockRouter) -> Iterator[CibaClient]:
    ciba = CibaClient(config)
    yield ciba
    ciba.close()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(_client, "time", fake)
    return fake


def ack(interval: int | None = 2) -> httpx.Response:
    body: dict[str, Any] = {"auth_req_id": "auth-req-1", "expires_in": 120}
    if interval is not None:
        body["interval"] = interval
    return httpx.Response(200, json=body)


# --- the transport ---------------------------------------------------------------------------


def transport_exchange(side_effect: Any, timeout: float = 1.5) -> Any:
    with respx.mock() as router:
        router.post(f"{ISSUER}/x").mock(side_effect=side_effect)
        transport = HttpxTransport(timeout=timeout)
        try:
            return transport.send(HttpRequest("POST", f"{ISSUER}/x", body=b"a=1"), label="probe")
        finally:
            transport.close()


def test_timeout_names_the_budget() -> None:
    exchange = transport_exchange(httpx.ReadTimeout("read timed out"), timeout=1.5)
    assert exchange.response is None
    assert exchange.error is not None
    assert "1.5 s" in exchange.error and "budgets.request_timeout" in exchange.error
    assert exchange.label == "probe"
    assert "budgets.request_timeout" in exchange.describe()


def test_connect_error() -> None:
    exchange = transport_exchange(httpx.ConnectError("connection refused"))
    assert exchange.response is None
    assert exchange.error is not None
    assert "cannot connect" in exchange.error and f"{ISSUER}/x" in exchange.error


def test_other_transport_errors_are_recorded() -> None:
    exchange = transport_exchange(httpx.RemoteProtocolError("peer closed connection"))
    assert exchange.error is not None
    assert "RemoteProtocolError" in exchange.error and "peer closed" in exchange.error


def test_server_error_is_a_recorded_exchange() -> None:
    exchange = transport_exchange(
        [httpx.Response(500, text="Internal Server Error", headers={"X-Trace": "1"})]
    )
    assert exchange.error is None
    assert exchange.response is not None
    assert exchange.response.status == 500
    assert exchange.response.body == b"Internal Server Error"
    assert exchange.response.header("x-trace") == "1"
    assert exchange.elapsed >= 0


def test_redirects_are_not_followed() -> None:
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{ISSUER}/x").mock(
            return_value=httpx.Response(302, headers={"Location": f"{ISSUER}/elsewhere"})
        )
        target = router.route(url=f"{ISSUER}/elsewhere").mock(return_value=httpx.Response(200))
        transport = HttpxTransport(timeout=1)
        exchange = transport.send(HttpRequest("POST", f"{ISSUER}/x"))
        transport.close()
    assert exchange.response is not None and exchange.response.status == 302
    assert exchange.response.header("location") == f"{ISSUER}/elsewhere"
    assert not target.called


def test_request_is_sent_as_built() -> None:
    with respx.mock() as router:
        route = router.post(f"{ISSUER}/x").mock(return_value=httpx.Response(204))
        transport = HttpxTransport(timeout=1)
        request = HttpRequest.form_post(
            f"{ISSUER}/x", [("a", "1"), ("a", "2")], headers=[("X-Dup", "1"), ("X-Dup", "2")]
        )
        transport.send(request)
        transport.close()
    sent = route.calls.last.request
    assert sent.content == b"a=1&a=2"
    assert sent.headers.get_list("x-dup") == ["1", "2"]
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"


# --- discovery -------------------------------------------------------------------------------


def test_discovery(client: CibaClient) -> None:
    metadata = client.metadata
    assert metadata.backchannel_authentication_endpoint == f"{ISSUER}/bc-authorize"
    assert metadata.supports_mode("ping") and not metadata.supports_mode("push")
    assert client.metadata is metadata  # fetched once
    assert [e.label for e in client.recorder.exchanges] == ["discovery"]


def test_discovery_without_backchannel_endpoint_names_the_requirement(config: ProviderConfig) -> None:
    document = {k: v for k, v in DISCOVERY.items() if k != "backchannel_authentication_endpoint"}
    with respx.mock() as router:
        router.get(WELL_KNOWN).mock(return_value=httpx.Response(200, json=document))
        ciba = CibaClient(config)
        with pytest.raises(CheckFailure) as info:
            ciba.metadata  # noqa: B018
        ciba.close()
    assert info.value.requirement == "CIBA-DISC-02"
    assert "backchannel_authentication_endpoint" in str(info.value)
    # The data-level parser says the same as a setup error.
    with pytest.raises(ProviderSetupError, match="backchannel_authentication_endpoint"):
        parse_metadata(HttpResponse(200, (), json.dumps(document).encode()), url=WELL_KNOWN)


@pytest.mark.parametrize(
    ("response", "words"),
    [
        (
            httpx.Response(200, json={**DISCOVERY, "token_endpoint": None}),
            "token_endpoint",
        ),
        (httpx.Response(404, text="not found"), "HTTP 404"),
        (httpx.Response(200, text="<html>"), "JSON object"),
        (httpx.ConnectError("refused"), "unreachable"),
    ],
)
def test_discovery_problems_are_setup_errors(
    config: ProviderConfig, response: Any, words: str
) -> None:
    with respx.mock() as router:
        router.get(WELL_KNOWN).mock(side_effect=[response])
        ciba = CibaClient(config)
        with pytest.raises(ProviderSetupError) as info:
            ciba.metadata  # noqa: B018
        ciba.close()
    assert words in str(info.value)
    assert WELL_KNOWN in str(info.value) or "unreachable" in str(info.value)


def test_discovery_url_override(reference_config: ProviderConfig) -> None:
    from dataclasses import replace

    config = replace(reference_config.with_issuer(ISSUER), discovery_url=f"{ISSUER}/meta")
    with respx.mock() as router:
        route = router.get(f"{ISSUER}/meta").mock(return_value=httpx.Response(200, json=DISCOVERY))
        ciba = CibaClient(config)
        assert ciba.metadata.issuer == ISSUER
        ciba.close()
    assert route.called


# --- starting a flow -------------------------------------------------------------------------


def test_start_sends_a_valid_request(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig) -> None:
    route = mock.post(f"{ISSUER}/bc-authorize").mock(return_value=ack())
    flow = client.start(config.client("poll-basic"))
    assert flow.auth_req_id == "auth-req-1"
    assert flow.acknowledgement is not None and flow.acknowledgement.interval == 2
    sent = route.calls.last.request
    fields = dict(json.loads(json.dumps(dict(httpx.QueryParams(sent.content.decode())))))
    assert fields["login_hint"] == "alice" and fields["scope"] == "openid"
    assert fields["binding_message"] == flow.params.binding_message
    assert sent.headers["authorization"].startswith("Basic ")
    assert client.runner.outcomes[-1].passed


def test_an_auth_req_id_issued_twice_fails_ack_06_in_any_fork(
    client: CibaClient, mock: respx.MockRouter, config: ProviderConfig
) -> None:
    """Two flows (here: two tests' client views) must not share one transaction."""
    mock.post(f"{ISSUER}/bc-authorize").mock(return_value=ack())  # always auth-req-1
    first = client.fork().start(config.client("poll-basic"))
    other_test = client.fork()
    with pytest.raises(CheckFailure) as raised:
        other_test.start(config.client("poll-basic"))
    assert raised.value.requirement == "CIBA-ACK-06"
    assert raised.value.exchanges[0] is first.exchange
    assert not other_test.runner.outcomes[-1].passed


def test_every_acknowledged_backchannel_answer_needs_a_new_auth_req_id(
    client: CibaClient, mock: respx.MockRouter, config: ProviderConfig
) -> None:
    """Not only flows started with `start`: any accepted request (a test sending its own
    parameters) whose auth_req_id was issued before fails CIBA-ACK-06; refusals are not ids."""
    poll = config.client("poll-basic")
    route = mock.post(f"{ISSUER}/bc-authorize")
    route.mock(return_value=httpx.Response(400, json={"error": "invalid_request"}))
    client.backchannel(poll, client.default_params(poll))
    route.mock(return_value=ack())
    first = client.backchannel(poll, client.default_params(poll))
    assert client.runner.outcomes == []
    with pytest.raises(CheckFailure) as raised:
        client.fork().backchannel(poll, client.default_params(poll))
    assert raised.value.requirement == "CIBA-ACK-06"
    assert raised.value.exchanges[0] is first


def test_start_registers_ping_expectation(config: ProviderConfig, mock: respx.MockRouter) -> None:
    inbox = NotificationInbox()
    ciba = CibaClient(config, inbox=inbox)
    mock.post(f"{ISSUER}/bc-authorize").mock(return_value=ack())
    behaviour = EndpointBehaviour(status=200)
    flow = ciba.start(config.client("ping-basic"), behaviour=behaviour)
    assert flow.notification_token
    assert inbox.behaviour_for(flow.notification_token) is behaviour
    ciba.close()


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="OK"),
        httpx.Response(200, json=["auth-req-1"]),
        httpx.Response(200, json={"expires_in": 120}),
    ],
)
def test_unusable_acknowledgement_is_a_check_failure(
    client: CibaClient, mock: respx.MockRouter, config: ProviderConfig, response: httpx.Response
) -> None:
    mock.post(f"{ISSUER}/bc-authorize").mock(return_value=response)
    with pytest.raises(CheckFailure) as info:
        client.start(config.client("poll-basic"))
    assert info.value.requirement == "CIBA-ACK-03"


def test_refused_request_is_a_check_failure(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig) -> None:
    mock.post(f"{ISSUER}/bc-authorize").mock(
        return_value=httpx.Response(500, text="boom")
    )
    with pytest.raises(UnexpectedStatus) as info:
        client.start(config.client("poll-basic"))
    assert info.value.requirement == "CIBA-ACK-01"
    assert "Reproduce with:" in str(info.value)
    assert "poll-basic-secret" not in str(info.value)


def test_expect_error(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig) -> None:
    mock.post(f"{ISSUER}/bc-authorize").mock(
        return_value=httpx.Response(400, json={"error": "unknown_user_id"})
    )
    exchange = client.backchannel(config.client("poll-basic"), client.default_params(config.client("poll-basic")))
    client.expect_error(exchange, "unknown_user_id", requirement="CIBA-AERR-05")
    with pytest.raises(WrongErrorCode):
        client.expect_error(exchange, {"invalid_request"}, requirement="CIBA-AERR-01")


def test_signed_requests_for_clients_that_sign(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig) -> None:
    route = mock.post(f"{ISSUER}/bc-authorize").mock(return_value=ack())
    client.start(config.client("poll-signed"))
    fields = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert "request" in fields and "login_hint" not in fields


# --- device decisions ------------------------------------------------------------------------


def test_decide_with_the_embedded_driver(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig) -> None:
    mock.post(f"{ISSUER}/bc-authorize").mock(return_value=ack())
    approve = mock.post(f"{ISSUER}/device/requests/auth-req-1/approve").mock(
        side_effect=[httpx.Response(204), httpx.Response(404, json={"error": "unknown"})]
    )
    flow = client.start(config.client("poll-basic"))
    assert client.approve(flow) is not None
    sent = approve.calls.last.request
    assert sent.headers["authorization"] == "Bearer device-api-test-token"
    with pytest.raises(TransportError) as info:
        client.approve(flow)
    assert "404" in str(info.value) and "embedded" in str(info.value)


# --- polling ---------------------------------------------------------------------------------


def started(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig, interval: int | None = 2) -> Any:
    mock.post(f"{ISSUER}/bc-authorize").mock(return_value=ack(interval))
    return client.start(config.client("poll-basic"))


def test_poll_until_tokens(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig, clock: FakeClock) -> None:
    flow = started(client, mock, config)
    tokens = {"access_token": "a" * 20, "token_type": "Bearer", "id_token": "x.y.z"}
    route = mock.post(f"{ISSUER}/token").mock(
        side_effect=[PENDING, PENDING, httpx.Response(200, json=tokens)]
    )
    result, poller = client.poll(flow, sleep=clock.sleep)
    assert result.status is PollStatus.TOKENS and result.tokens == tokens
    assert poller.polls == 3 and route.call_count == 3
    assert clock.sleeps == [2.0, 2.0]
    assert [e.label for e in flow.exchanges] == ["backchannel", "token poll", "token poll", "token poll"]
    body = dict(httpx.QueryParams(route.calls.last.request.content.decode()))
    assert body["auth_req_id"] == "auth-req-1"


def test_poll_backs_off_on_slow_down(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig, clock: FakeClock) -> None:
    flow = started(client, mock, config)
    mock.post(f"{ISSUER}/token").mock(
        side_effect=[
            PENDING,
            httpx.Response(400, json={"error": "slow_down"}),
            PENDING,
            httpx.Response(503, headers={"Retry-After": "20"}),
            httpx.Response(400, json={"error": "access_denied"}),
        ]
    )
    result, poller = client.poll(flow, max_wait=60, sleep=clock.sleep)
    assert result.status is PollStatus.FAILED and result.error == "access_denied"
    assert clock.sleeps == [2.0, 7.0, 7.0, 20.0]
    assert poller.slow_downs == 1


def test_poll_without_interval_waits_5_seconds(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig, clock: FakeClock) -> None:
    flow = started(client, mock, config, interval=None)
    mock.post(f"{ISSUER}/token").mock(side_effect=[PENDING, httpx.Response(400, json={"error": "expired_token"})])
    result, _ = client.poll(flow, sleep=clock.sleep)
    assert result.error == "expired_token"
    assert clock.sleeps == [5.0]


def test_poll_budget_raises_response_timeout(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig, clock: FakeClock) -> None:
    flow = started(client, mock, config)
    route = mock.post(f"{ISSUER}/token").mock(return_value=PENDING)
    with pytest.raises(ResponseTimeout) as info:
        client.poll(flow, max_wait=5, sleep=clock.sleep)
    assert info.value.requirement == "CIBA-TOKEN-05"
    assert "5 s" in str(info.value)
    assert route.call_count == 3  # at 0, 2 and 4 s; the next one would land after 5 s
    assert sum(clock.sleeps) <= 5


def test_poll_uses_the_configured_max_wait(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig, clock: FakeClock) -> None:
    flow = started(client, mock, config)
    route = mock.post(f"{ISSUER}/token").mock(return_value=PENDING)
    with pytest.raises(ResponseTimeout):
        client.poll(flow, sleep=clock.sleep)
    assert config.budgets.max_wait == 30.0
    assert route.call_count == 16  # 0, 2, ..., 30: a poll due exactly at the deadline is sent


def test_poll_transport_error(client: CibaClient, mock: respx.MockRouter, config: ProviderConfig, clock: FakeClock) -> None:
    flow = started(client, mock, config)
    mock.post(f"{ISSUER}/token").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError) as info:
        client.poll(flow, sleep=clock.sleep)
    assert "token endpoint" in str(info.value) and "budgets.request_timeout" in str(info.value)
    assert info.value.exchange is flow.exchanges[-1]


# --- tokens and the ID token -----------------------------------------------------------------


def jwks_of(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return {"keys": [{**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid}]}


def test_expect_tokens_validates_the_id_token_and_refetches_rotated_keys(
    client: CibaClient,
    mock: respx.MockRouter,
    config: ProviderConfig,
    clock: FakeClock,
    provider_key: rsa.RSAPrivateKey,
    other_rsa_key: rsa.RSAPrivateKey,
) -> None:
    flow = started(client, mock, config)
    access_token = "access-token-value-123456"
    import time as real_time

    now = int(real_time.time())
    id_token = sign_jwt(
        {
            "iss": ISSUER,
            "aud": "poll-basic",
            "sub": "alice-sub",
            "iat": now,
            "exp": now + 300,
            "at_hash": token_hash(access_token, "RS256"),
            AUTH_REQ_ID_CLAIM: "auth-req-1",
        },
        provider_key,
        "RS256",
        {"kid": "new"},
    )
    tokens = {"access_token": access_token, "token_type": "Bearer", "id_token": id_token}
    mock.post(f"{ISSUER}/token").mock(return_value=httpx.Response(200, json=tokens))
    jwks_route = mock.get(f"{ISSUER}/jwks").mock(
        side_effect=[
            httpx.Response(200, json=jwks_of(other_rsa_key, "old")),
            httpx.Response(200, json=jwks_of(provider_key, "new")),
        ]
    )
    result, _ = client.poll(flow, sleep=clock.sleep)
    assert result.status is PollStatus.TOKENS
    body = client.expect_tokens(flow)
    assert body["access_token"] == access_token
    assert jwks_route.call_count == 2  # the unknown kid made it fetch once more


def test_unusable_jwks_is_a_transport_error(client: CibaClient, mock: respx.MockRouter) -> None:
    mock.get(f"{ISSUER}/jwks").mock(return_value=httpx.Response(500, text="down"))
    with pytest.raises(TransportError, match="JWKS"):
        client.load_jwks()


def test_recorder_hands_exchanges_to_listeners(client: CibaClient) -> None:
    seen: list[str] = []
    client.recorder.listeners.append(lambda e: seen.append(e.label))
    client.metadata  # noqa: B018
    assert seen == ["discovery"]
    assert [e.label for e in client.recorder.reset()] == ["discovery"]
    assert client.recorder.exchanges == []


def test_discovery_of_another_issuer_names_the_requirement(config: ProviderConfig) -> None:
    with respx.mock() as router:
        router.get(WELL_KNOWN).mock(
            return_value=httpx.Response(200, json={**DISCOVERY, "issuer": "https://other.example"})
        )
        ciba = CibaClient(config)
        with pytest.raises(CheckFailure) as info:
            ciba.metadata  # noqa: B018
        ciba.close()
    assert info.value.requirement == "CIBA-DISC-09"


# --- stale keep-alive connections --------------------------------------------------------------


class KeepAliveServer:
    """A raw HTTP/1.1 server on loopback that keeps connections open between requests.

    `idle_close`: a request arriving on a connection idle for longer than this many seconds
    is met with a TCP reset instead of an answer: the server's idle timer fired while the
    request was on its way (the race a Node.js provider's 5 s keep-alive timeout causes, made
    deterministic). `reset_fresh`: every connection is reset at its first request."""

    def __init__(self, *, idle_close: float | None = None, reset_fresh: bool = False) -> None:
        import socket
        import threading

        self.idle_close = idle_close
        self.reset_fresh = reset_fresh
        self.connections = 0
        self.answered = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/x"
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, connection: Any) -> None:
        import socket
        import struct
        import time

        last_answer: float | None = None
        buffer = b""
        with connection:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buffer) < length:
                    buffer += connection.recv(65536)
                buffer = buffer[length:]
                stale = (
                    last_answer is not None
                    and self.idle_close is not None
                    and time.monotonic() - last_answer > self.idle_close
                )
                if stale or (self.reset_fresh and last_answer is None):
                    # SO_LINGER 0: close() sends a TCP RST
                    connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    return
                body = b'{"ok": true}'
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                self.answered += 1
                last_answer = time.monotonic()

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def idle_closing_server() -> Iterator[KeepAliveServer]:
    server = KeepAliveServer(idle_close=0.3)
    yield server
    server.close()


def test_a_stale_keep_alive_connection_is_retried_once_on_a_fresh_one(
    idle_closing_server: KeepAliveServer,
) -> None:
    import time

    transport = HttpxTransport(timeout=2.0)
    try:
        first = transport.send(HttpRequest("POST", idle_closing_server.url, body=b"a=1"))
        assert first.response is not None and first.retried is None
        time.sleep(0.6)  # past the server's idle timeout: the pooled connection is now stale
        second = transport.send(HttpRequest("POST", idle_closing_server.url, body=b"a=2"))
    finally:
        transport.close()
    assert second.error is None, second.error
    assert second.response is not None and second.response.status == 200
    assert second.retried is not None and "reused keep-alive connection" in second.retried
    assert transport.stale_retries == 1
    assert idle_closing_server.connections == 2
    # The server thread counts an answer after sending it: the client may read it first.
    assert wait_until(lambda: idle_closing_server.answered == 2, timeout=10)
    assert "sent twice" in second.describe()
    assert second.to_dict()["retried"] == second.retried


def test_a_reset_on_a_fresh_connection_is_the_providers_failure() -> None:
    server = KeepAliveServer(reset_fresh=True)
    transport = HttpxTransport(timeout=2.0)
    try:
        exchange = transport.send(HttpRequest("POST", server.url, body=b"a=1"))
    finally:
        transport.close()
        server.close()
    assert exchange.response is None
    assert exchange.error is not None and "reset" in exchange.error.lower()
    assert exchange.retried is None
    assert transport.stale_retries == 0
    assert server.connections == 1  # never sent again
