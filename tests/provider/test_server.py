"""Real sockets: start_provider, fault tenants, outbound calls over the network, the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from provider_helpers import DEVICE_TOKEN, PROFILE, REPO
from waiting import wait_until

from ciba_harness.provider import (
    FAULTS,
    ProviderSettings,
    ProviderStartError,
    RunningProvider,
    start_provider,
)

CIBA = "urn:openid:params:grant-type:ciba"
BASIC = ("poll-basic", "poll-basic-secret-6c1f0e2a")
PING = ("ping-basic", "ping-basic-secret-0d4e7f21")


class Receiver:
    """A tiny notification endpoint: records POSTs; /redirect answers 301."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.hits.append((self.path, dict(self.headers), body))
                if self.path == "/redirect":
                    self.send_response(301)
                    self.send_header("Location", "/target")
                else:
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802 - a followed 301 turns POST into GET
                receiver.hits.append((self.path, dict(self.headers), b""))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count: int, timeout: float = 30.0) -> None:
        wait_until(lambda: len(self.hits) >= count, timeout=timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def running(settings: ProviderSettings) -> Iterator[RunningProvider]:
    with start_provider(settings, fault_tenants=True) as provider:
        yield provider


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _flow(http: httpx.Client, base: str, client: tuple[str, str], **params: str) -> str:
    resp = http.post(f"{base}/backchannel", auth=client,
                     data={"scope": "openid", "login_hint": "alice", **params})
    assert resp.status_code == 200, resp.text
    rid: str = resp.json()["auth_req_id"]
    return rid


def test_start_provider_serves_a_full_flow(running: RunningProvider) -> None:
    assert running.issuer == f"http://127.0.0.1:{running.port}"
    with httpx.Client() as http:
        doc = http.get(f"{running.issuer}/.well-known/openid-configuration").json()
        assert doc["issuer"] == running.issuer
        assert doc["backchannel_authentication_endpoint"] == f"{running.issuer}/backchannel"
        rid = _flow(http, running.issuer, BASIC)
        token = http.post(f"{running.issuer}/token", auth=BASIC,
                          data={"grant_type": CIBA, "auth_req_id": rid})
        assert token.json()["error"] == "authorization_pending"
        approve = http.post(f"{running.issuer}/device/requests/{rid}/approve",
                            headers={"Authorization": f"Bearer {DEVICE_TOKEN}"})
        assert approve.status_code == 200
        token = http.post(f"{running.issuer}/token", auth=BASIC,
                          data={"grant_type": CIBA, "auth_req_id": rid})
        assert token.status_code == 200 and token.json()["token_type"] == "Bearer"


def test_fault_tenants(running: RunningProvider) -> None:
    with httpx.Client() as http:
        for name in ["no_hint_accepted", "discovery_issuer_mismatch"]:
            base = f"{running.issuer}/fault/{name}"
            doc = http.get(f"{base}/.well-known/openid-configuration").json()
            assert doc["token_endpoint"] == f"{base}/token"
        base = f"{running.issuer}/fault/no_hint_accepted"
        assert http.post(f"{base}/backchannel", auth=BASIC, data={"scope": "openid"}
                         ).status_code == 200
        assert http.post(f"{running.issuer}/backchannel", auth=BASIC, data={"scope": "openid"}
                         ).status_code == 400
        # own state: an id of the root is unknown to a tenant
        rid = _flow(http, running.issuer, BASIC)
        resp = http.post(f"{base}/token", auth=BASIC, data={"grant_type": CIBA,
                                                             "auth_req_id": rid})
        assert resp.json()["error"] == "invalid_grant"
        assert http.get(f"{running.issuer}/fault/nope/jwks").status_code == 404
        assert http.get(f"{running.issuer}/nope").status_code == 404
    assert set(running.provider.tenants) == {n for n, f in FAULTS.items() if not f.server_level}


def test_ping_over_the_network(running: RunningProvider, receiver: Receiver) -> None:
    with httpx.Client() as http:
        admin = {"Authorization": f"Bearer {DEVICE_TOKEN}"}
        resp = http.post(f"{running.issuer}/admin/clients/ping-basic/notification-endpoint",
                         json={"url": f"{receiver.url}/cb"}, headers=admin)
        assert resp.status_code == 204
        rid = _flow(http, running.issuer, PING, client_notification_token="net-token")
        http.post(f"{running.issuer}/device/requests/{rid}/approve", headers=admin)
        receiver.wait(1)
        [(path, headers, body)] = receiver.hits
        assert path == "/cb" and headers["Authorization"] == "Bearer net-token"
        assert json.loads(body) == {"auth_req_id": rid}
        # a redirecting endpoint is called once and not followed
        http.post(f"{running.issuer}/admin/clients/ping-basic/notification-endpoint",
                  json={"url": f"{receiver.url}/redirect"}, headers=admin)
        rid = _flow(http, running.issuer, PING, client_notification_token="net-token")
        http.post(f"{running.issuer}/device/requests/{rid}/deny", headers=admin)
        receiver.wait(2)
        # The provider records the delivery once its POST ended (a followed redirect would
        # have been sent before): then the receiver's hits are final.
        assert wait_until(lambda: [d for d in list(running.provider.deliveries)
                                   if d.auth_req_id == rid], timeout=30)
        assert [h[0] for h in receiver.hits] == ["/cb", "/redirect"]


def test_tenant_follows_redirect_over_the_network(
    running: RunningProvider, receiver: Receiver
) -> None:
    base = f"{running.issuer}/fault/ping_follows_redirect"
    admin = {"Authorization": f"Bearer {DEVICE_TOKEN}"}
    with httpx.Client() as http:
        http.post(f"{base}/admin/clients/ping-basic/notification-endpoint",
                  json={"url": f"{receiver.url}/redirect"}, headers=admin)
        rid = _flow(http, base, PING, client_notification_token="t")
        http.post(f"{base}/device/requests/{rid}/approve", headers=admin)
        receiver.wait(2)
    assert [h[0] for h in receiver.hits] == ["/redirect", "/target"]


def test_port_in_use(running: RunningProvider) -> None:
    with pytest.raises(ProviderStartError, match="cannot listen"):
        start_provider(PROFILE, port=running.port)


def test_unknown_fault_and_stop_frees_the_port(settings: ProviderSettings) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        start_provider(settings, faults=["nope"])
    with pytest.raises(ValueError, match="did you mean 'ping_twice'"):
        start_provider(settings, faults=["ping_twise"])
    provider = start_provider(str(PROFILE), faults=["no_hint_accepted"])
    port = provider.port
    provider.stop()
    assert not provider.alive
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


# ----------------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ciba_harness.provider", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    )


def test_cli_runs_until_sigterm() -> None:
    proc = _cli("--port", "0", "--fault-tenants")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ciba reference provider listening on http://127.0.0.1:")
        issuer = line.split()[-1]
        doc = httpx.get(f"{issuer}/fault/no_hint_accepted/.well-known/openid-configuration")
        assert doc.json()["issuer"] == f"{issuer}/fault/no_hint_accepted"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--fault", "nope"], "unknown fault 'nope'"),
        (["--fault", "ping_twise"],
         "unknown fault 'ping_twise' (did you mean 'ping_twice'?) (see --list-faults)"),
        (["--config", "/nonexistent/profile.toml"], "bad config"),
        (["--port", "70000"], "out of range"),
        (["--port", "abc"], "invalid int value"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_cli_bad_input(args: list[str], needle: str) -> None:
    proc = _cli(*args)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_cli_port_in_use(running: RunningProvider) -> None:
    proc = _cli("--port", str(running.port))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2 and "cannot listen" in err and "Traceback" not in err


def test_cli_bad_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[clients]]\nclient_id = 'x'\nauth_method = 'magic'\n")
    proc = _cli("--config", str(bad))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2 and "magic" in err and len(err.strip().splitlines()) == 1


def test_cli_list_faults() -> None:
    proc = _cli("--list-faults")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    lines = out.strip().splitlines()
    assert len(lines) == len(FAULTS)
    name, requirement, *_ = lines[0].split()
    assert name in FAULTS and FAULTS[name].requirement == requirement
