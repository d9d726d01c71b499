"""The notification receiver's asyncio server: uvicorn in a background thread, on loopback.

It feeds every callback to a NotificationInbox, answers as the inbox's behaviour says (a
test can make it answer 401, 5xx, a body, a redirect, or slowly), and records hits on the
redirect target so a test can prove the provider did not follow a redirect.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ciba_harness.client._drivers import WebhookDriver
from ciba_harness.client._inbox import NotificationInbox
from ciba_harness.core._errors import CibaHarnessError
from ciba_harness.core._notifications import MAX_NOTIFICATION_BYTES, bearer_credential

__all__ = ["NotificationReceiver", "bind_socket"]

CALLBACK_PATH = "/cb"
REDIRECT_TARGET_PATH = "/redirected"
DEVICE_HOOK_PATH = "/device"
# Idle connections stay open longer than common HTTP clients pool them (Go 90 s, OkHttp 5 min,
# the JDK client up to 20 min), so the provider closes first: a ping is never sent on a pooled
# connection the receiver closed at that moment (RFC 9112 §9.3: POST is not retried).
KEEP_ALIVE_SECONDS = 1200


def bind_socket(bind: str) -> socket.socket:
    """A listening TCP socket for HOST:PORT (port 0 = any free); clear error when taken."""
    host, _, port_text = bind.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port_text.isdigit() or int(port_text) > 65535:
        raise CibaHarnessError(f"cannot listen on {bind!r}: expected HOST:PORT (port 0 = any free)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then (else ~44 ms per kept-alive reply).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port_text)))
    except OSError as exc:
        sock.close()
        raise CibaHarnessError(
            f"cannot listen on {bind}: {exc.strerror or exc} (choose another port in [receiver] bind)"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _app(inbox: NotificationInbox, webhook: WebhookDriver | None) -> Starlette:
    async def callback(request: Request) -> Response:
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_NOTIFICATION_BYTES:
                    break  # keep what the inbox needs to judge it oversized; drop the rest
        except ClientDisconnect:
            # The sender gave up before this (busy) receiver read the request: no answer can
            # be sent, but the flow waiting for it learns why nothing came.
            inbox.abandon(bearer_credential(request.headers.get("authorization", "")))
            return Response(status_code=400)
        note = inbox.receive(request.url.path, list(request.headers.items()), bytes(body))
        behaviour = inbox.behaviour_for(note.bearer)
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if note.answered == 401:
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if behaviour.redirect_to:
            return Response(
                status_code=behaviour.status if 300 <= behaviour.status < 400 else 307,
                headers={"Location": behaviour.redirect_to},
            )
        # A 204 or 304 cannot carry a body (the server would break the connection).
        content = b"" if note.answered in {204, 304} else behaviour.body
        return Response(content, status_code=note.answered, media_type=behaviour.content_type)

    async def device_hook(request: Request) -> Response:
        # The provider announces a new request to the authentication device (webhook driver).
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        try:
            payload = await request.json()
        except (ValueError, RecursionError):
            payload = None
        if webhook is None or scheme.lower() != "bearer" or not isinstance(payload, dict):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        webhook.record(bearer.strip(), payload)
        return Response(status_code=201)

    return Starlette(
        routes=[
            Route(DEVICE_HOOK_PATH, device_hook, methods=["POST"]),
            Route(CALLBACK_PATH, callback, methods=["POST"]),
            Route(CALLBACK_PATH + "/{rest:path}", callback, methods=["POST"]),
            Route(REDIRECT_TARGET_PATH, callback, methods=["POST", "GET"]),
        ]
    )


class NotificationReceiver:
    """Starts on `bind`, serves until `stop()`. `url` is the callback URL to register."""

    def __init__(
        self,
        inbox: NotificationInbox,
        *,
        bind: str = "127.0.0.1:0",
        public_url: str | None = None,
        certificate: Path | None = None,
        key: Path | None = None,
        webhook: WebhookDriver | None = None,
    ) -> None:
        self.inbox = inbox
        self._socket = bind_socket(bind)
        host, port = self._socket.getsockname()[:2]
        self.port: int = port
        scheme = "https" if certificate else "http"
        shown_host = f"[{host}]" if ":" in host else host
        self.base_url = (public_url or f"{scheme}://{shown_host}:{port}").rstrip("/")
        self.url = self.base_url + CALLBACK_PATH
        self.redirect_target = self.base_url + REDIRECT_TARGET_PATH
        self.device_hook_url = self.base_url + DEVICE_HOOK_PATH
        config = uvicorn.Config(
            _app(inbox, webhook),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            ssl_certfile=str(certificate) if certificate and key else None,
            ssl_keyfile=str(key) if certificate and key else None,
            ssl_cert_reqs=ssl.CERT_NONE,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="ciba-receiver", daemon=True)
        self._thread.start()
        for _ in range(200):
            if self._server.started:
                break
            self._thread.join(0.02)
        else:
            raise CibaHarnessError("notification receiver did not start within 4 s")

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5)

    def __enter__(self) -> NotificationReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
