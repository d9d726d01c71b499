"""The httpx transport: sends core `HttpRequest`s with pooled httpx clients, each exchange
bounded by one total deadline.

httpx bounds each socket operation, not the exchange: a provider trickling its answer a byte
at a time would hold a test forever. The plumbing here cuts every socket operation of an
exchange to that exchange's deadline (a thread-local read by a wrapping httpcore network
backend, installed on httpx's own connection pool), and one watchdog thread closes a response
still being read at its deadline. A pooled keep-alive connection found stale is retried once.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from ciba_harness.client._tls import client_ssl_context
from ciba_harness.client._transport import ClientCertificate, Transport
from ciba_harness.core._http import Exchange, HttpRequest, HttpResponse

__all__ = ["HttpxTransport", "MAX_RESPONSE_BYTES"]

MAX_RESPONSE_BYTES = 1024 * 1024  # a CIBA answer is a few KiB; more is a broken provider


_deadlines = threading.local()  # the total deadline of the exchange this thread is sending


@dataclass
class _Trace:
    """What the connection carrying the current exchange saw (set per thread by `send`)."""

    reused: bool | None = None  # None: no request byte written yet
    response_bytes: int = 0


def _bounded(timeout: float | None) -> float | None:
    """A socket operation's timeout, cut to what is left of the exchange's total deadline."""
    deadline: float | None = getattr(_deadlines, "at", None)
    if deadline is None:
        return timeout
    remaining = max(0.001, deadline - time.monotonic())
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the exchange's total deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream
        self._requests = 0  # exchanges that wrote to this connection

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._stream.read(max_bytes, _bounded(timeout))
        trace: _Trace | None = getattr(_deadlines, "trace", None)
        if trace is not None:
            trace.response_bytes += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        trace: _Trace | None = getattr(_deadlines, "trace", None)
        if trace is not None and trace.reused is None:
            trace.reused = self._requests > 0
            self._requests += 1
        self._stream.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    """httpx bounds each socket operation, not the exchange: a provider sending its headers
    or its body a byte at a time would hold a test forever. Connections made through this
    backend cut every operation to the deadline of the exchange being sent (thread-local)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            super().connect_tcp(host, port, _bounded(timeout), local_address, socket_options)
        )


def _with_deadlines(client: httpx.Client) -> httpx.Client:
    """The client, its connections bounded by the exchange deadline (httpx's own transport
    only; a transport given by the caller is left alone)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if isinstance(pool, httpcore.ConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = _DeadlineBackend()
    return client


class _Watchdog:
    """One thread that runs each exchange's deadline action (a Timer per request would start
    a thread per request: a third of the client's cost per exchange, measured)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, at: float, action: Callable[[], None]) -> int:
        with self._condition:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ciba-watchdog", daemon=True)
                self._thread.start()
            key = next(self._keys)
            heapq.heappush(self._heap, (at, key, action))
            self._condition.notify()
            return key

    def disarm(self, key: int) -> None:
        with self._condition:
            self._cancelled.add(key)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._heap:
                    self._condition.wait()
                at, key, action = self._heap[0]
                if key in self._cancelled:
                    heapq.heappop(self._heap)
                    self._cancelled.discard(key)
                    continue
                remaining = at - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                heapq.heappop(self._heap)
            action()  # outside the lock: closing a response may take a moment


_WATCHDOG = _Watchdog()


class HttpxTransport(Transport):
    """Sends HttpRequest values with one pooled httpx.Client; bounded by `timeout`.

    `verify`: True (httpx's default CA bundle), a CA bundle path, or False (no verification;
    lab only). `cert` (certificate path, key path) is presented by the shared client; `send`
    takes a per-request `cert` for mTLS clients (one pooled client per certificate)."""

    def __init__(
        self,
        *,
        timeout: float,
        verify: Any = True,
        cert: Any = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.verify = verify
        self._transport = transport
        self._cert_clients: dict[ClientCertificate, httpx.Client] = {}
        #: the trust (and certificate) of the shared client
        self.ssl_context = client_ssl_context(verify, tuple(cert) if cert else None)
        #: exchanges sent a second time because their pooled connection had gone stale
        self.stale_retries = 0
        self.client = _with_deadlines(
            httpx.Client(
                timeout=httpx.Timeout(timeout),
                verify=self.ssl_context,
                follow_redirects=False,
                transport=transport,
                limits=httpx.Limits(max_connections=32),
            )
        )

    def send(
        self, request: HttpRequest, *, label: str = "", cert: ClientCertificate | None = None
    ) -> Exchange:
        """Send and read the whole answer within `timeout` seconds in total.

        httpx's timeouts bound each read, not the whole answer: a provider trickling bytes
        could hold a test forever. Every socket operation is cut to the exchange's deadline
        (`_DeadlineBackend`) and a watchdog closes the response at the deadline; bodies
        beyond MAX_RESPONSE_BYTES are cut and reported, never held in memory.

        A pooled keep-alive connection the provider closed while idle fails before any byte
        of the answer (reset, EOF, broken pipe): the request is sent once more on a fresh
        connection, within the same deadline, and `exchange.retried` says so. The same
        failure on a fresh connection is the provider's.
        """
        exchange = Exchange(request, label=label)
        started = time.perf_counter()
        deadline = time.monotonic() + self.timeout
        client = self._cert_client(cert) if cert is not None else self.client
        stale = self._attempt(client, request, exchange, deadline)
        if stale is not None:
            self.stale_retries += 1
            exchange.retried = (
                f"the reused keep-alive connection failed before any response byte ({stale});"
                " sent again on a fresh connection"
            )
            exchange.error = None
            with self._fresh_client(cert) as fresh:
                self._attempt(fresh, request, exchange, deadline)
        exchange.elapsed = time.perf_counter() - started
        return exchange

    def _attempt(
        self, client: httpx.Client, request: HttpRequest, exchange: Exchange, deadline: float
    ) -> str | None:
        """One sending of `request`; its outcome goes into `exchange`. Returns the error when
        it was a stale pooled connection (reused, failed before any response byte)."""
        expired = threading.Event()
        watch: int | None = None
        trace = _Trace()
        _deadlines.at = deadline
        _deadlines.trace = trace
        headers_received = False
        stale_candidate = False
        try:
            with client.stream(
                request.method, request.url, headers=list(request.headers), content=request.body
            ) as response:
                headers_received = True

                def stop_reading(response: httpx.Response = response) -> None:
                    expired.set()
                    response.close()

                watch = _WATCHDOG.arm(deadline, stop_reading)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        exchange.error = (
                            f"response body larger than {MAX_RESPONSE_BYTES // 1024} KiB;"
                            " read no further"
                        )
                        break
                exchange.response = HttpResponse(
                    response.status_code,
                    tuple(response.headers.multi_items()),
                    bytes(body[:MAX_RESPONSE_BYTES]),
                )
        except httpx.TimeoutException:
            what = "no complete answer" if headers_received else "no answer"
            exchange.error = f"{what} within {self.timeout:g} s (budgets.request_timeout)"
        except httpx.ConnectError as exc:
            # Without the query: a GET request may carry credentials there (the error text
            # travels into exception messages, which are not redacted).
            exchange.error = f"cannot connect to {request.url.partition('?')[0]}: {exc}"
        except (httpx.InvalidURL, ValueError) as exc:
            # A request httpx refuses to send (URL too long, a header that is not ASCII): the
            # harness's own limit, reported as such, never a traceback.
            exchange.error = f"the request cannot be sent ({type(exc).__name__}: {exc})"
        except (httpx.HTTPError, httpx.StreamError, OSError) as exc:
            if expired.is_set():
                exchange.error = (
                    f"no complete answer within {self.timeout:g} s (budgets.request_timeout)"
                )
            else:
                exchange.error = f"{type(exc).__name__}: {exc}"
                stale_candidate = isinstance(
                    exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError | OSError
                )
        finally:
            _deadlines.at = None
            _deadlines.trace = None
            if watch is not None:
                _WATCHDOG.disarm(watch)
        if expired.is_set() and exchange.error is None:
            exchange.response = None
            exchange.error = (
                f"no complete answer within {self.timeout:g} s (budgets.request_timeout)"
            )
        if stale_candidate and trace.reused and trace.response_bytes == 0 and not headers_received:
            return exchange.error
        return None

    def _fresh_client(self, cert: ClientCertificate | None) -> httpx.Client:
        """A one-request client: its connection is new by construction."""
        context = self.ssl_context if cert is None else client_ssl_context(self.verify, cert)
        return _with_deadlines(
            httpx.Client(
                timeout=httpx.Timeout(self.timeout),
                verify=context,
                follow_redirects=False,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        )

    def _cert_client(self, cert: ClientCertificate) -> httpx.Client:
        # One pooled client per client certificate (mTLS clients each present their own).
        # The SSL context is built here: httpx drops `cert=` when `verify` is a path.
        if cert not in self._cert_clients:
            self._cert_clients[cert] = _with_deadlines(
                httpx.Client(
                    timeout=httpx.Timeout(self.timeout),
                    verify=client_ssl_context(self.verify, cert),
                    follow_redirects=False,
                    transport=self._transport,
                )
            )
        return self._cert_clients[cert]

    def close(self) -> None:
        self.client.close()
        for client in self._cert_clients.values():
            client.close()
