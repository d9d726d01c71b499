"""The hostile provider itself: selection syntax, what each behaviour puts on the wire, the
flow around it, and that it stops promptly with connections still hanging."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from waiting import LOAD_SLACK, wait_until

from ciba_harness import HttpRequest, HttpxTransport, load_config
from ciba_harness.hostile import (
    BEHAVIOURS,
    ENDPOINTS,
    HostileProvider,
    HostileSelectionError,
    parse_selection,
    start_hostile,
)
from ciba_harness.hostile._catalogue import catalogue_markdown

DISCOVERY = "/.well-known/openid-configuration"


@pytest.fixture
def transport() -> Iterator[HttpxTransport]:
    t = HttpxTransport(timeout=1.0)
    yield t
    t.close()


def _get(transport: HttpxTransport, hostile: HostileProvider, path: str = DISCOVERY):
    return transport.send(HttpRequest("GET", hostile.issuer + path))


def test_selection_syntax() -> None:
    steps = parse_selection(["token=ok,hang", "backchannel=slow:1.5", "jwks=ok,status_500,*"])
    assert [str(s) for s in steps["token"]] == ["ok", "hang"]
    assert [str(s) for s in steps["backchannel"]] == ["slow:1.5"]
    assert [s.name for s in steps["jwks"]] == ["ok", "status_500", "*"]
    assert parse_selection({"notification": "twice"})["notification"][0].name == "twice"
    for bad, words in [
        ("tokn=ok", "unknown endpoint 'tokn'"),
        ("token=nope", "unknown behaviour 'nope' for endpoint token (choose from: ok,"),
        ("jwks=auth_req_id_number", "for endpoint jwks"),
        ("token=hang:3", "takes no seconds"),
        ("token=slow:-1", "seconds must be a number from 0 to 3600"),
        ("token=", "no behaviour given"),
        ("token", "expected ENDPOINT=BEHAVIOUR"),
    ]:
        with pytest.raises(HostileSelectionError, match=None) as caught:
            parse_selection([bad])
        assert words in str(caught.value), (bad, str(caught.value))


def test_every_behaviour_is_documented_for_its_endpoints() -> None:
    table = catalogue_markdown()
    for name, behaviour in BEHAVIOURS.items():
        assert f"| `{name}` |" in table
        assert behaviour.endpoints <= set(ENDPOINTS)
    text = (Path(__file__).resolve().parents[2] / "docs" / "robustness.md").read_text()
    assert table in text, "docs/robustness.md: regenerate the catalogue (--catalogue-markdown)"


def test_requests_get_their_behaviour_in_order(transport: HttpxTransport) -> None:
    with start_hostile({"discovery": "ok,status_500,html,*"}) as hostile:
        statuses = [_get(transport, hostile).response.status for _ in range(4)]
        types = [h.behaviour for h in hostile.hits]
    assert statuses == [200, 500, 200, 200]
    assert types == ["ok", "status_500", "html", "ok"]


def test_the_reference_provider_behind_serves_the_hostile_issuer(
    transport: HttpxTransport,
) -> None:
    with start_hostile({}) as hostile:
        metadata = _get(transport, hostile).response.json()
        jwks = _get(transport, hostile, "/jwks").response.json()
    assert metadata["issuer"] == hostile.issuer
    assert metadata["token_endpoint"] == f"{hostile.issuer}/token"
    assert jwks["keys"]


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("hang", "no answer within 1 s"),
        ("slow:3", "no answer within 1 s"),
        ("trickle:0.3", "no complete answer within 1 s"),
        ("trickle_headers:0.3", "no answer within 1 s"),
        ("close", "Server disconnected"),
        ("reset", "Connection reset by peer"),
        ("reset_mid_body", "Connection reset by peer"),
        ("truncated", "peer closed connection without sending complete message body"),
        ("not_http", "RemoteProtocolError"),
    ],
)
def test_transport_misbehaviour_ends_within_the_request_timeout(
    transport: HttpxTransport, behaviour: str, error: str
) -> None:
    with start_hostile({"discovery": behaviour}) as hostile:
        exchange = _get(transport, hostile)
    assert exchange.response is None
    assert error in (exchange.error or "")
    assert exchange.elapsed < 1.0 + LOAD_SLACK  # the error text above names the 1 s deadline


@pytest.mark.parametrize(
    ("behaviour", "status", "content_type", "check"),
    [
        ("status_500", 500, "text/plain", lambda body: body == b"Internal Server Error"),
        ("html", 200, "text/html", lambda body: body.startswith(b"<!DOCTYPE html>")),
        ("not_json", 200, "application/json", lambda body: body.endswith(b'"expires')),
        ("empty", 200, "application/json", lambda body: body == b""),
        ("deep_json", 200, "application/json", lambda body: body.startswith(b"[" * 1000)),
        ("wrong_content_type", 200, "text/plain", lambda body: b'"issuer"' in body),
        ("json_array", 200, "application/json", lambda body: json.loads(body)[0]["issuer"]),
        ("redirect_loop", 302, "", lambda body: body == b""),
        ("no_backchannel_endpoint", 200, "application/json",
         lambda body: "backchannel_authentication_endpoint" not in json.loads(body)),
    ],
)
def test_content_misbehaviour(
    transport: HttpxTransport, behaviour: str, status: int, content_type: str, check
) -> None:
    with start_hostile({"discovery": behaviour}) as hostile:
        exchange = _get(transport, hostile)
    assert exchange.response is not None, exchange.error
    assert exchange.response.status == status
    assert exchange.response.content_type == content_type
    assert check(exchange.response.body)
    if behaviour == "redirect_loop":
        assert exchange.response.header("location") == hostile.issuer + DISCOVERY


def test_huge_body_is_cut_by_the_harness(transport: HttpxTransport) -> None:
    with start_hostile({"jwks": "huge"}) as hostile:
        exchange = _get(transport, hostile, "/jwks")
    assert exchange.response is not None and len(exchange.response.body) == 1024 * 1024
    assert "larger than 1024 KiB" in (exchange.error or "")


def test_dead_endpoints_refuse_connections(transport: HttpxTransport) -> None:
    with start_hostile({"discovery": "dead_endpoints"}) as hostile:
        metadata = _get(transport, hostile).response.json()
        exchange = transport.send(HttpRequest("POST", metadata["token_endpoint"]))
    assert f":{hostile.dead_port}/token" in metadata["token_endpoint"]
    assert "Connection refused" in (exchange.error or "")


def test_keys_rotate_and_foreign_keys_sign_nothing(transport: HttpxTransport) -> None:
    with start_hostile({"jwks": "rotate"}) as hostile:
        first = _get(transport, hostile, "/jwks").response.json()["keys"]
        token = hostile.keys.resign(hostile.keys.resign(_token_for_rotation()))
        second = _get(transport, hostile, "/jwks").response.json()["keys"]
    assert [k["kid"] for k in first] == ["rotated-1"]
    assert [k["kid"] for k in second] == ["rotated-3"]
    assert hostile.keys.original(token) != token
    with start_hostile({"jwks": "foreign_keys"}) as hostile:
        keys = _get(transport, hostile, "/jwks").response.json()["keys"]
    assert keys[0]["kid"].startswith("foreign-")


def _token_for_rotation() -> str:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode({"sub": "alice", "iss": "x"}, key, algorithm="RS256")


def test_stop_is_prompt_with_hanging_connections() -> None:
    hostile = start_hostile({"discovery": "hang", "token": "trickle:5"})
    port = int(hostile.issuer.rsplit(":", 1)[1])
    sockets = []
    for path in (DISCOVERY, "/token", DISCOVERY):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        sockets.append(sock)
    # Stop only once all three requests are being served (hanging or trickling).
    assert wait_until(lambda: len(hostile.hits) == 3, timeout=30), hostile.hits
    started = time.monotonic()
    hostile.stop()
    assert time.monotonic() - started < 2 + LOAD_SLACK
    for sock in sockets:
        sock.settimeout(5)
        try:
            while sock.recv(65536):
                pass  # everything the server sent, then the close
        except OSError:
            pass
        sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_ciba_flow_works_through_the_ok_behaviour(tmp_path: Path) -> None:
    """Without misbehaviour the hostile server is a faithful reference provider."""
    from ciba_harness import CibaClient

    config = load_config(Path(__file__).resolve().parents[2] / "fixtures/profiles/reference.toml")
    with start_hostile({}) as hostile:
        client = CibaClient(config.with_issuer(hostile.issuer))
        try:
            poll = config.find_client(mode="poll")
            assert poll is not None
            flow = client.start(poll)
            client.approve(flow)
            client.poll(flow)
            tokens = client.expect_tokens(flow)
        finally:
            client.close()
    assert tokens["token_type"].lower() == "bearer"


def test_notifications_misbehave_at_the_callback(tmp_path: Path) -> None:
    """The provider's outbound callback goes through the misbehaving transport."""
    import asyncio

    from ciba_harness.hostile._server import _NotificationTransport

    received: list[httpx.Request] = []

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await request.aread()
            received.append(request)
            return httpx.Response(204)

    def deliveries(behaviour: str) -> list[httpx.Request]:
        received.clear()
        hostile = HostileProvider(parse_selection([f"notification={behaviour}"]), Path("unused"))
        try:
            transport = _NotificationTransport(hostile)
            transport.inner = Recording()  # type: ignore[assignment]
            request = httpx.Request(
                "POST", "http://127.0.0.1:9/cb", json={"auth_req_id": "abc"},
                headers={"Authorization": "Bearer token-1"},
            )
            hostile._stopping = None
            asyncio.run(transport.handle_async_request(request))
        finally:
            hostile._dead.close()
        return list(received)

    assert deliveries("never") == []
    assert len(deliveries("twice")) == 2
    unknown = deliveries("unknown_auth_req_id")
    assert [json.loads(r.content)["auth_req_id"][:8] for r in unknown] == ["unknown-", "abc"]
    assert deliveries("wrong_bearer")[0].headers["authorization"] != "Bearer token-1"
    assert "authorization" not in deliveries("no_bearer")[0].headers
    flood = deliveries("flood")
    assert len(flood) == 61 and flood[-1].headers["authorization"] == "Bearer token-1"
    assert len(deliveries("oversized")[0].content) > 1024 * 1024
    assert deliveries("deep_body")[0].content.startswith(b"[[[[")


def test_command_line(tmp_path: Path) -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "ciba_harness.hostile", "--list"],
        capture_output=True, text=True, timeout=60,
    )
    assert listing.returncode == 0 and "trickle_headers" in listing.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "ciba_harness.hostile", "--behaviour", "token=nope"],
        capture_output=True, text=True, timeout=60,
    )
    assert wrong.returncode == 2
    assert wrong.stderr.strip().startswith("ciba-harness hostile: unknown behaviour 'nope'")
    assert "Traceback" not in wrong.stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "ciba_harness.hostile", "--behaviour", "token=status_500"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("hostile provider at http://127.0.0.1:")
        issuer = line.split()[-1]
        assert httpx.post(f"{issuer}/token", timeout=5).status_code == 500
    finally:
        server.terminate()
        assert server.wait(10) == 0
