"""The notification receiver of a load process: a gevent WSGI server feeding the core's inbox.

Every load process (each worker) hosts its own receiver in its own gevent loop. A provider
keeps one notification endpoint per client, so with several processes only one of them is
registered; the others are reached through it: each client_notification_token starts with
the address of the receiver that owns the flow (``r<base64url(host:port)>.<random>``), and a
receiver that gets a callback for another process's token forwards it there unchanged and
answers with the owner's status. The forwarding hop is part of the measured notification
latency of those flows (docs/load.md).

The core's `NotificationInbox` judges every callback (bearer, content type, members); flows
wait for their own token on a gevent `AsyncResult`, so a wake-up costs O(1) and the inbox's
lists stay empty however long the run.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterable
from typing import Any

import gevent
from gevent.event import AsyncResult
from gevent.pywsgi import WSGIServer

from ciba_harness.client._drivers import WebhookDriver
from ciba_harness.client._inbox import NotificationInbox
from ciba_harness.core._errors import CibaHarnessError
from ciba_harness.core._notifications import MAX_NOTIFICATION_BYTES, Notification
from ciba_harness.load._metrics import RecentTokens

__all__ = ["LoadInbox", "GeventReceiver", "route_of", "RECEIVER_BIND_ENV", "RECEIVER_HOST_ENV"]

log = logging.getLogger("ciba_harness.load")

CALLBACK_PATH = "/cb"
DEVICE_HOOK_PATH = "/device"
FORWARDED_HEADER = "X-Ciba-Forwarded"
RECEIVER_BIND_ENV = "CIBA_RECEIVER_BIND"  # per-machine override of [receiver] bind
RECEIVER_HOST_ENV = "CIBA_RECEIVER_HOST"  # address other load processes reach this one at
_STATUS_TEXT = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
                404: "Not Found", 405: "Method Not Allowed", 502: "Bad Gateway"}

StrayHandler = Callable[[str, Notification], None]


def route_of(token: str | None) -> str | None:
    """The owner address ``host:port`` encoded in a load client_notification_token."""
    if not token or not token.startswith("r") or "." not in token:
        return None
    encoded = token[1:].split(".", 1)[0]
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        address = base64.b64decode(padded, altchars=b"-_", validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    host, _, port = address.rpartition(":")
    return address if host and port.isdigit() else None


class LoadInbox(NotificationInbox):
    """The core inbox, with one waiter per open flow and bounded memory."""

    def __init__(self, on_stray: StrayHandler | None = None) -> None:
        super().__init__()
        self._waiters: dict[str, AsyncResult] = {}
        self._finished = RecentTokens()
        self.on_stray = on_stray

    def open(self, token: str, mode: str) -> None:
        self.expect(token, mode)
        self._waiters[token] = AsyncResult()

    def close(self, token: str) -> None:
        self._waiters.pop(token, None)
        self._finished.add(token)
        with self._lock:
            # The core inbox has no public way to forget a token; a load run opens millions.
            self._expected.pop(token, None)
            self._behaviours.pop(token, None)

    def receive(self, path: str, headers: Iterable[tuple[str, str]], body: bytes) -> Notification:
        note = super().receive(path, headers, body)
        self.clear()  # flows get their callback from their waiter, not from the core's list
        bearer = note.bearer or ""
        waiter = self._waiters.get(bearer)
        if waiter is not None and not waiter.ready():
            waiter.set(note)
        elif self.on_stray is not None:
            known = waiter is not None or bearer in self._finished
            self.on_stray("duplicate_notification" if known else "unexpected_notification", note)
        return note

    def wait(self, token: str, timeout: float) -> Notification | None:
        waiter = self._waiters.get(token)
        if waiter is None:
            return None
        try:
            value: Notification = waiter.get(timeout=max(0.0, timeout))
        except gevent.Timeout:
            return None
        return value


class GeventReceiver:
    """Serves /cb (ping, push) and /device (webhook device driver) on a pywsgi server."""

    def __init__(
        self,
        inbox: LoadInbox,
        *,
        bind: str = "127.0.0.1:0",
        public_url: str | None = None,
        webhook: WebhookDriver | None = None,
        request_timeout: float = 5.0,
    ) -> None:
        self.inbox = inbox
        self.webhook = webhook
        self.request_timeout = request_timeout
        self.forwarded = 0
        bind = os.environ.get(RECEIVER_BIND_ENV, bind)
        host, _, port_text = bind.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        wanted = int(port_text or 0)
        self._socket, self.owns_public = _listen(host, wanted)
        self.port: int = self._socket.getsockname()[1]
        advertised = os.environ.get(RECEIVER_HOST_ENV) or (
            "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host
        )
        self.address = f"{advertised}:{self.port}"
        direct = f"http://{self.address}"
        self.base_url = (public_url if public_url and self.owns_public else direct).rstrip("/")
        self.url = self.base_url + CALLBACK_PATH
        self.device_hook_url = self.base_url + DEVICE_HOOK_PATH
        self._route = "r" + base64.urlsafe_b64encode(self.address.encode()).decode().rstrip("=")
        self._clients: dict[str, Any] = {}
        self._server = WSGIServer(self._socket, self._app, log=None, error_log=log)
        self._server.start()

    def new_token(self) -> str:
        """A client_notification_token routed to this receiver (192 random bits)."""
        return f"{self._route}.{secrets.token_urlsafe(24)}"

    # --- the WSGI application ---------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(start_response, 405)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(min(length, MAX_NOTIFICATION_BYTES + 1)) if length else b""
        headers = [
            (key[5:].replace("_", "-").lower(), value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        ]
        if environ.get("CONTENT_TYPE"):
            headers.append(("content-type", environ["CONTENT_TYPE"]))
        if path == DEVICE_HOOK_PATH:
            return self._device_hook(start_response, headers, body)
        if path != CALLBACK_PATH and not path.startswith(CALLBACK_PATH + "/"):
            return _answer(start_response, 404)
        authorization = dict(headers).get("authorization", "")
        scheme, _, credential = authorization.partition(" ")
        owner = route_of(credential.strip()) if scheme.lower() == "bearer" else None
        forwarded = dict(headers).get(FORWARDED_HEADER.lower())
        if owner is not None and owner != self.address and not forwarded:
            return _answer(start_response, self._forward(owner, path, headers, body))
        note = self.inbox.receive(path, headers, body)
        return _answer(start_response, note.answered)

    def _device_hook(
        self, start_response: Callable[..., Any], headers: list[tuple[str, str]], body: bytes
    ) -> list[bytes]:
        scheme, _, bearer = dict(headers).get("authorization", "").partition(" ")
        try:
            payload = json.loads(body.decode()) if body else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            payload = None
        if self.webhook is None or scheme.lower() != "bearer" or not isinstance(payload, dict):
            return _answer(start_response, 400)
        self.webhook.record(bearer.strip(), payload)
        return _answer(start_response, 201)

    def _forward(self, owner: str, path: str, headers: list[tuple[str, str]], body: bytes) -> int:
        from geventhttpclient import HTTPClient

        host, _, port = owner.rpartition(":")
        client = self._clients.get(owner)
        if client is None:
            client = HTTPClient(host.strip("[]"), int(port), concurrency=20,
                                network_timeout=self.request_timeout,
                                connection_timeout=self.request_timeout)
            self._clients[owner] = client
        keep = {"authorization", "content-type"}
        out = {k: v for k, v in headers if k in keep}
        out[FORWARDED_HEADER] = "1"
        try:
            response = client.request("POST", path, body=body, headers=out)
            response.read()
            status = int(response.status_code)
            response.release()
        except (OSError, gevent.Timeout) as exc:
            log.warning("forwarding a callback to %s failed: %s", owner, exc)
            return 502
        self.forwarded += 1
        return status

    def stop(self) -> None:
        self._server.stop(timeout=1)
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _listen(host: str, port: int) -> tuple[socket.socket, bool]:
    """A listening socket on host:port; when that port is taken (another load process holds
    it), any free port on the same host, relying on forwarding. Returns (socket, owns port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in ([port, 0] if port else [0]):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if candidate == 0:
                raise CibaHarnessError(f"the notification receiver cannot listen on {host}: {exc}") from None
            log.info("receiver port %s is taken (another load process?): using a free port", port)
            continue
        sock.listen(1024)
        return sock, candidate == port
    raise CibaHarnessError(f"the notification receiver cannot listen on {host}")  # unreachable


def _answer(start_response: Callable[..., Any], status: int) -> list[bytes]:
    body = b"" if status in {204, 201} else b'{"error":"%d"}' % status if status >= 400 else b""
    headers = [("Content-Length", str(len(body)))]
    if body:
        headers.append(("Content-Type", "application/json"))
    start_response(f"{status} {_STATUS_TEXT.get(status, 'Status')}", headers)
    return [body]
