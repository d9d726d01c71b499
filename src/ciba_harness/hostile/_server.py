"""The hostile provider: a raw asyncio HTTP/1.1 server on loopback.

Every request is classified by endpoint and gets the next behaviour of that endpoint's
selection. Behaviours that need a real answer take it from an embedded reference provider
whose issuer is this server's URL, called in-process as an ASGI app; its outbound ping and
push callbacks go through a transport that misbehaves as the `notification` selection says.

Each connection answers one request and closes (Connection: close): a behaviour never
depends on what an earlier request on the same connection did.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http
import json
import secrets
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import httpx

from ciba_harness.core._config import default_profile_path
from ciba_harness.hostile._catalogue import CYCLE, Step, parse_selection
from ciba_harness.hostile._tamper import KeyRing, reshape

__all__ = ["HostileProvider", "HostileStartError", "start_hostile"]

MAX_HEAD_BYTES = 1024 * 1024  # as lenient as uvicorn: fuzzed requests have long URLs
MAX_BODY_BYTES = 2 * 1024 * 1024
READ_TIMEOUT = 10.0  # seconds to read one request (a client that stalls is dropped)
HUGE_BYTES = 8 * 1024 * 1024
FLOOD_SIZE = 60
_OK = Step("ok")
_PATHS = {
    "/.well-known/openid-configuration": "discovery",
    "/jwks": "jwks",
    "/backchannel": "backchannel",
    "/token": "token",
}
_SECRET_FIELDS = frozenset({
    "client_secret", "client_assertion", "client_notification_token", "request",
    "access_token", "refresh_token", "id_token", "id_token_hint", "login_hint_token",
})
_HOP_HEADERS = {"content-length", "connection", "transfer-encoding", "keep-alive"}
_DEEP_JSON = b"[" * 100_000 + b"]" * 100_000  # valid JSON no recursive parser survives
_HTML = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
         b"<form method=post action=/login><input name=user><input name=password type=password>"
         b"</form></body></html>")


class HostileStartError(RuntimeError):
    """The hostile provider could not start (message names the cause)."""


@dataclass
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


@dataclass
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""

    def content_type(self) -> str:
        return next((v for k, v in self.headers if k.lower() == "content-type"), "")

    def with_header(self, name: str, value: str) -> _Answer:
        kept = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        return _Answer(self.status, [*kept, (name, value)], self.body)


@dataclass
class Hit:
    """One request (or outbound callback) and the behaviour it got."""

    endpoint: str
    behaviour: str
    started: float
    finished: float | None = None


def _endpoint(path: str) -> str:
    if path in _PATHS:
        return _PATHS[path]
    if path.startswith("/device/"):
        return "device"
    return "other"


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            return None
        headers.append((name.strip(), value.strip()))
    request = _Request(parts[0].upper(), parts[1], headers, b"")
    if request.header("transfer-encoding"):
        return None  # chunked uploads are not needed by any client of this fixture
    length_text = request.header("content-length") or "0"
    if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
        return None
    request.body = await reader.readexactly(int(length_text))
    return request


def _head(status: int, headers: Iterable[tuple[str, str]], length: int | None) -> bytes:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_HEADERS]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _json(status: int, document: Any) -> _Answer:
    return _Answer(status, [("Content-Type", "application/json")], json.dumps(document).encode())


class _NotificationTransport(httpx.AsyncBaseTransport):
    """The reference provider's outbound calls (pings, pushes), misbehaving on request."""

    def __init__(self, server: HostileProvider) -> None:
        self.server = server
        self.inner = httpx.AsyncHTTPTransport(retries=0)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        await response.aclose()
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        server = self.server
        step = server.next_step("notification")
        hit = server.record("notification", step)
        try:
            body = await request.aread()
            headers = [(k, v) for k, v in request.headers.items()
                       if k.lower() not in {"content-length", "host"}]
            server.observe(headers, body)
            body = server.resign_push(body)

            def variant(
                content: bytes = body, bearer: str | None = "keep"
            ) -> httpx.Request:
                changed = [(k, v) for k, v in headers if k.lower() != "authorization"]
                if bearer == "keep":
                    changed += [(k, v) for k, v in headers if k.lower() == "authorization"]
                elif bearer is not None:
                    changed.append(("Authorization", f"Bearer {bearer}"))
                return httpx.Request(request.method, request.url, headers=changed,
                                     content=content, extensions=request.extensions)

            name = step.name
            if name == "never":
                return httpx.Response(204, request=request)
            if name == "late":
                await server.sleep(step.seconds or 0.0)
            elif name == "twice":
                await self._send(variant())
            elif name == "unknown_auth_req_id":
                await self._send(variant(_with_auth_req_id(body)))
            elif name == "flood":
                await asyncio.gather(*(self._send(junk) for junk in _flood(variant)),
                                     return_exceptions=True)
            elif name == "wrong_bearer":
                return await self.inner.handle_async_request(
                    variant(bearer=secrets.token_urlsafe(24)))
            elif name == "no_bearer":
                return await self.inner.handle_async_request(variant(bearer=None))
            elif name == "garbage_body":
                return await self.inner.handle_async_request(variant(b"\x00\xffnot json at all"))
            elif name == "deep_body":
                return await self.inner.handle_async_request(variant(_DEEP_JSON))
            elif name == "oversized":
                return await self.inner.handle_async_request(variant(_padded(body)))
            return await self.inner.handle_async_request(variant())
        finally:
            hit.finished = time.monotonic()


def _with_auth_req_id(body: bytes) -> bytes:
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if isinstance(document, dict):
        document["auth_req_id"] = "unknown-" + secrets.token_urlsafe(24)
    return json.dumps(document).encode()


def _padded(body: bytes) -> bytes:
    try:
        document = json.loads(body)
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    document["padding"] = "x" * (1024 * 1024)
    return json.dumps(document).encode()


def _flood(variant: Any) -> list[httpx.Request]:
    junk: list[httpx.Request] = []
    for index in range(FLOOD_SIZE):
        bearer = secrets.token_urlsafe(16)
        kind = index % 4
        if kind == 0:
            body = json.dumps({"auth_req_id": secrets.token_urlsafe(24)}).encode()
        elif kind == 1:
            body = b"{not json"
        elif kind == 2:
            body = b"[" * 10_000 + b"]" * 10_000
        else:
            body = json.dumps({"auth_req_id": "x", "padding": "y" * 200_000}).encode()
        junk.append(variant(body, bearer=bearer if index % 5 else None))
    return junk


@dataclass
class HostileProvider:
    """Handle of a running hostile provider: `issuer`, `hits`, `stop()`."""

    selection: Mapping[str, tuple[Step, ...]]
    config_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    issuer: str = ""
    hits: list[Hit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the server's own failures (a bug if any)
    # Every credential and token that crossed this server (tests search reports for them).
    observed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="ciba-hostile")
        self._server: asyncio.Server | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._app: Any = None
        self._lifespan: asyncio.Task[None] | None = None
        self._lifespan_queue: asyncio.Queue[dict[str, Any]] | None = None
        self.keys = KeyRing()
        self.rotating = any(s.name == "rotate" for s in self.selection.get("jwks", ()))
        self._dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # bound, never listening
        self._dead.bind((self.host, 0))
        self.dead_port: int = self._dead.getsockname()[1]

    # --- life cycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> HostileProvider:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        try:
            future.result(timeout)
        except BaseException as exc:
            self.stop()
            if isinstance(exc, OSError):
                raise HostileStartError(
                    f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
                ) from None
            raise
        return self

    async def _start(self) -> None:
        from ciba_harness.provider import create_app, load_profile

        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, limit=MAX_HEAD_BYTES, backlog=512
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.issuer = f"http://{self.host}:{self.port}"
        settings = load_profile(self.config_path)
        self._app = create_app(settings, issuer=self.issuer,
                               http_transport=_NotificationTransport(self))
        # Keys are generated up front: an RSA key made while answering would stall the loop.
        if self.rotating:
            await asyncio.to_thread(self.keys.current_jwks)
        if any(s.name == "foreign_keys" for s in self.selection.get("jwks", ())):
            await asyncio.to_thread(self.keys.foreign_jwks)
        await self._start_lifespan()

    async def _start_lifespan(self) -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        started = asyncio.Event()
        self._lifespan_queue = queue

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()

        async def run() -> None:
            with contextlib.suppress(Exception):
                await self._app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                queue.get, send)

        await queue.put({"type": "lifespan.startup"})
        self._lifespan = asyncio.create_task(run())
        await asyncio.wait_for(started.wait(), 10)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: hanging connections are closed, pending tasks cancelled. Idempotent."""
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            with contextlib.suppress(Exception):
                future.result(timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()
        self._dead.close()

    async def _shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._lifespan is not None and self._lifespan_queue is not None:
            await self._lifespan_queue.put({"type": "lifespan.shutdown"})
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._lifespan, 5)
        # Whatever the provider still runs (expiry timers, deliveries) ends with the loop.
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]
        for task in rest:
            task.cancel()
        if rest:
            await asyncio.wait(rest, timeout=5)

    def __enter__(self) -> HostileProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- bookkeeping ----------------------------------------------------------------------------
    def next_step(self, endpoint: str) -> Step:
        steps = self.selection.get(endpoint)
        index = self._counts[endpoint]
        self._counts[endpoint] += 1
        if not steps:
            return _OK
        if steps[-1].name == CYCLE:
            return steps[index % (len(steps) - 1)]
        return steps[min(index, len(steps) - 1)]

    def record(self, endpoint: str, step: Step) -> Hit:
        hit = Hit(endpoint, str(step), time.monotonic())
        self.hits.append(hit)
        return hit

    def count(self, endpoint: str, behaviour: str | None = None) -> int:
        return sum(1 for h in self.hits if h.endpoint == endpoint
                   and (behaviour is None or h.behaviour.split(":")[0] == behaviour))

    async def sleep(self, seconds: float) -> None:
        """Sleep, ending early when the server stops."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def observe(
        self, headers: Iterable[tuple[str, str]], body: bytes, answer: bytes = b"",
        *, accepted: bool = True,
    ) -> None:
        """Remember the secrets of one exchange: tokens in the answer; and, when the request
        was accepted (so they are real, not a fuzz suite's junk), its Authorization
        credentials, secret form fields and secret members of a JSON body."""
        with contextlib.suppress(ValueError, RecursionError):
            parsed = json.loads(answer) if answer[:1] == b"{" else None
            if isinstance(parsed, dict):
                self.observed.update(
                    v for k, v in parsed.items() if k in _SECRET_FIELDS and isinstance(v, str)
                )
        self.observed.discard("")
        if not accepted:
            return
        for name, value in headers:
            if name.lower() == "authorization":
                scheme, _, credential = value.partition(" ")
                self.observed.add(credential.strip())
                if scheme.lower() == "basic":
                    with contextlib.suppress(ValueError, UnicodeDecodeError):
                        pair = base64.b64decode(credential.strip()).decode("utf-8")
                        if ":" in pair:  # client_id:client_secret, the id is no secret
                            self.observed.add(unquote(pair.split(":", 1)[1]))
        text = body.decode("latin-1")
        if "=" in text and not text.lstrip().startswith(("{", "[")):
            for key, value in parse_qsl(text, keep_blank_values=True):
                if key in _SECRET_FIELDS:
                    self.observed.add(value)
        with contextlib.suppress(ValueError, RecursionError):
            parsed = json.loads(body) if body[:1] == b"{" else None
            if isinstance(parsed, dict):
                self.observed.update(
                    v for k, v in parsed.items() if k in _SECRET_FIELDS and isinstance(v, str)
                )
        self.observed.discard("")

    def resign_push(self, body: bytes) -> bytes:
        """Push callbacks carry ID tokens too: re-sign them while the keys rotate."""
        if not self.rotating or b"id_token" not in body:
            return body
        try:
            document = json.loads(body)
        except ValueError:
            return body
        if isinstance(document, dict) and isinstance(document.get("id_token"), str):
            document["id_token"] = self.keys.resign(document["id_token"])
            return json.dumps(document).encode()
        return body

    # --- one connection, one request ------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            try:
                request = await asyncio.wait_for(_read_request(reader), READ_TIMEOUT)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                request = None
            if request is None:
                writer.write(_head(400, [("Content-Type", "text/plain")], 11) + b"bad request")
                await writer.drain()
                return
            endpoint = _endpoint(request.path)
            step = self.next_step(endpoint) if endpoint != "other" else _OK
            hit = self.record(endpoint, step)
            try:
                await self._respond(request, endpoint, step, writer)
            finally:
                hit.finished = time.monotonic()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass  # the client went away, or the server stops
        except Exception as exc:  # the fixture must not die of one request; tests read this
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    async def _upstream(self, request: _Request) -> _Answer:
        """The reference provider's answer to `request`, called in-process (ASGI)."""
        body = request.body
        if self.rotating and request.path == "/backchannel" and b"id_token_hint" in body:
            fields = [(k, self.keys.original(v) if k == "id_token_hint" else v)
                      for k, v in parse_qsl(body.decode("latin-1"), keep_blank_values=True)]
            body = urlencode(fields).encode()
            request.headers = [(k, v) for k, v in request.headers if k.lower() != "content-length"]
            request.headers.append(("Content-Length", str(len(body))))
        done = asyncio.Event()
        sent = False
        status = 500
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k.decode("latin-1"), v.decode("latin-1"))
                           for k, v in message.get("headers", [])]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    done.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": unquote(request.path),
            "raw_path": request.path.encode("latin-1"),
            "query_string": request.query.encode("latin-1"),
            "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in request.headers],
            "client": ("127.0.0.1", 0),
            "server": (self.host, self.port),
            "state": {},
        }
        try:
            await self._app(scope, receive, send)
        finally:
            done.set()
        answer = _Answer(status, headers, b"".join(chunks))
        self.observe(request.headers, body, answer.body, accepted=200 <= answer.status < 300)
        if self.rotating and request.path == "/token" and answer.status == 200:
            answer = self._resign_answer(answer)
        return answer

    def _resign_answer(self, answer: _Answer) -> _Answer:
        try:
            document = json.loads(answer.body)
        except ValueError:
            return answer
        if isinstance(document, dict) and isinstance(document.get("id_token"), str):
            document["id_token"] = self.keys.resign(document["id_token"])
            return _Answer(answer.status, answer.headers, json.dumps(document).encode())
        return answer

    async def _write(self, writer: asyncio.StreamWriter, answer: _Answer, method: str) -> None:
        body = b"" if method == "HEAD" else answer.body
        writer.write(_head(answer.status, answer.headers, len(answer.body)) + body)
        await writer.drain()

    async def _respond(
        self, request: _Request, endpoint: str, step: Step, writer: asyncio.StreamWriter
    ) -> None:
        name = step.name
        seconds = step.seconds or 0.0
        if name == "hang":
            assert self._stopping is not None
            await self._stopping.wait()
            return
        if name == "close":
            writer.close()
            return
        if name == "reset":
            _reset(writer)
            return
        if name == "not_http":
            writer.write(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n")
            await writer.drain()
            return
        canned = self._canned(name, request)
        if canned is not None:
            await self._write(writer, canned, request.method)
            return
        if name == "huge":
            await self._huge(writer)
            return
        answer = await self._upstream(request)
        if name == "slow":
            await self.sleep(seconds)
        elif name == "wrong_content_type":
            answer = answer.with_header("Content-Type", "text/plain; charset=utf-8")
        elif name in {"reset_mid_body", "truncated"}:
            writer.write(_head(answer.status, answer.headers, len(answer.body) + 100)
                         + answer.body[: len(answer.body) // 2])
            await writer.drain()
            await asyncio.sleep(0.05)
            if name == "reset_mid_body":
                _reset(writer)
            else:
                writer.close()
            return
        elif name == "trickle_headers":
            head = _head(answer.status, answer.headers, len(answer.body))
            line_end = head.index(b"\r\n") + 2
            writer.write(head[:line_end])
            await writer.drain()
            assert self._stopping is not None
            for index in range(line_end, len(head)):
                await self.sleep(seconds)
                if self._stopping.is_set():
                    return
                writer.write(head[index:index + 1])
                await writer.drain()
            writer.write(answer.body)
            await writer.drain()
            return
        elif name == "trickle":
            writer.write(_head(answer.status, answer.headers, len(answer.body)))
            await writer.drain()
            assert self._stopping is not None
            for index in range(len(answer.body)):
                writer.write(answer.body[index:index + 1])
                await writer.drain()
                await self.sleep(seconds)
                if self._stopping.is_set():
                    return
            return
        else:
            answer = self._reshaped(name, answer)
        await self._write(writer, answer, request.method)

    def _canned(self, name: str, request: _Request) -> _Answer | None:
        text_plain = [("Content-Type", "text/plain; charset=utf-8")]
        if name == "status_500":
            return _Answer(500, text_plain, b"Internal Server Error")
        if name == "html":
            return _Answer(200, [("Content-Type", "text/html; charset=utf-8")], _HTML)
        if name == "not_json":
            return _Answer(200, [("Content-Type", "application/json")],
                           b'{"auth_req_id": "1c266114-a1be-4252-8ad1-04986c5b9ac1", "expires')
        if name == "deep_json":
            return _Answer(200, [("Content-Type", "application/json")], _DEEP_JSON)
        if name == "empty":
            return _Answer(200, [("Content-Type", "application/json")], b"")
        if name == "redirect_loop":
            return _Answer(302, [("Location", f"{self.issuer}{request.target}")], b"")
        if name == "foreign_keys":
            return _json(200, self.keys.foreign_jwks())
        if name == "empty_keys":
            return _json(200, {"keys": []})
        if name == "rotate":
            return _json(200, self.keys.current_jwks())
        return None

    def _reshaped(self, name: str, answer: _Answer) -> _Answer:
        if name == "dead_endpoints":
            return self._dead_endpoints(answer)
        if name == "ok" or answer.status >= 300:
            return answer
        try:
            document = json.loads(answer.body)
        except ValueError:
            return answer
        if not isinstance(document, dict):
            return answer
        return _Answer(answer.status, answer.headers, json.dumps(reshape(name, document)).encode())

    def _dead_endpoints(self, answer: _Answer) -> _Answer:
        try:
            document = json.loads(answer.body)
        except ValueError:
            return answer
        dead = f"http://{self.host}:{self.dead_port}"
        for key in ("backchannel_authentication_endpoint", "token_endpoint"):
            if isinstance(document.get(key), str):
                document[key] = document[key].replace(self.issuer, dead)
        return _Answer(answer.status, answer.headers, json.dumps(document).encode())

    async def _huge(self, writer: asyncio.StreamWriter) -> None:
        prefix, suffix = b'{"padding": "', b'"}'
        filler = HUGE_BYTES - len(prefix) - len(suffix)
        writer.write(_head(200, [("Content-Type", "application/json")], HUGE_BYTES) + prefix)
        chunk = b"x" * 65536
        sent = 0
        while sent < filler:
            piece = chunk[: min(len(chunk), filler - sent)]
            writer.write(piece)
            sent += len(piece)
            await writer.drain()
        writer.write(suffix)
        await writer.drain()


def start_hostile(
    behaviours: Mapping[str, str] | Iterable[str] = (),
    *,
    config: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> HostileProvider:
    """Start a hostile provider on loopback; returns once it accepts connections.

    `behaviours`: `{"token": "hang", "backchannel": "ok,html"}` or `["token=hang", ...]`
    (see the catalogue). `config`: the harness profile the embedded reference provider reads
    (default the reference profile). Raises HostileSelectionError (a ValueError) for an unknown
    endpoint or behaviour, HostileStartError when it cannot listen.
    """
    selection = parse_selection(behaviours)
    path = Path(config) if config is not None else default_profile_path()
    return HostileProvider(selection, path, host=host, port=port).start()
