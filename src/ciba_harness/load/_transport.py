"""The transport adapter: the protocol core's `HttpRequest` over Locust's FastHttpSession.

Every request goes out through the session's user agent and is timed and counted through
Locust's request event, as `catch_response=True` would; a `judge` reads the `HttpResponse`
and says whether it counts as a success (expected CIBA errors such as authorization_pending
are 400s that succeed), a failure (with a `CibaError` carrying the code), and under which
row name it is recorded. `LocustTransport.fire` is the load flows' lean path; `send` is the
harness's `Transport` protocol (client/_transport.py), the one the httpx transport implements.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ciba_harness.client._transport import ClientCertificate, Transport
from ciba_harness.core._http import Exchange, HttpRequest, HttpResponse
from ciba_harness.core._requests import error_code
from ciba_harness.load._metrics import CibaError

__all__ = ["Judgement", "LocustTransport", "expect_status", "ok"]


class Judgement(NamedTuple):
    error: BaseException | None = None
    name: str | None = None  # another row name for this request (e.g. "token pending")


OK = Judgement()
Judge = Callable[[HttpResponse], Judgement]


def ok(_: HttpResponse) -> Judgement:
    return OK


def expect_status(*statuses: int) -> Judge:
    """Success for the given statuses, else a CibaError with the provider's error code."""

    def judge(response: HttpResponse) -> Judgement:
        if response.status in statuses:
            return OK
        return Judgement(error_for(response))

    return judge


def error_for(response: HttpResponse) -> CibaError:
    code = error_code(response)
    if code is None:
        return CibaError("malformed_error", status=response.status)
    return CibaError(code, status=response.status)


class LocustTransport(Transport):
    """Sends core requests with a FastHttpSession (`self.client` of a FastHttpUser).

    It sends through the session's own user agent (`session.client`: its connection pool,
    TLS context, timeouts) and fires Locust's request event itself, with what Locust's
    `catch_response` would have fired: the same timing (send to body read), length, name,
    context and exception. Locust's response context manager copies the response object and
    raises (and catches) an HTTPError for every 4xx, which in CIBA polling is most answers:
    skipping it is a sixth of the generator's CPU per request (bench/bench_load.py)."""

    def __init__(
        self, session: Any, *, failures: tuple[type[BaseException], ...] | None = None
    ) -> None:
        """`failures`: what the session's user agent raises for a failed request (default:
        Locust's FAILURE_EXCEPTIONS; importing Locust monkey-patches the process)."""
        if failures is None:
            from locust.contrib.fasthttp import FAILURE_EXCEPTIONS

            failures = FAILURE_EXCEPTIONS
        self.session = session
        self._failures: tuple[type[BaseException], ...] = failures

    def send(
        self, request: HttpRequest, *, label: str = "", cert: ClientCertificate | None = None
    ) -> Exchange:
        """The `Transport` protocol: the exchange, recorded in Locust under `label` (any HTTP
        answer counts as a success there: judging it is the caller's). The session presents
        its own client certificate, if any; a per-request one it cannot."""
        exchange = Exchange(request, label=label)
        if cert is not None:
            exchange.error = "the Locust session cannot present a client certificate per request"
            return exchange
        started = time.perf_counter()
        exchange.response, problem = self._carry(
            request, label or request.url.partition("?")[0], ok
        )
        exchange.elapsed = time.perf_counter() - started
        if exchange.response is None:
            exchange.error = f"{type(problem).__name__}: {problem}"
        return exchange

    def fire(self, request: HttpRequest, *, name: str, judge: Judge = ok) -> HttpResponse | None:
        """The response as data, or None when no HTTP answer came (recorded as a failure)."""
        return self._carry(request, name, judge)[0]

    def close(self) -> None:
        """Nothing to release: the connections are the Locust session's."""

    def _carry(
        self, request: HttpRequest, name: str, judge: Judge
    ) -> tuple[HttpResponse | None, BaseException | None]:
        """Send `request` and fire Locust's request event: (the response, None), or (None,
        what went wrong) when no HTTP answer came (recorded as a failure)."""
        session = self.session
        user = getattr(session, "user", None)
        context = user.context() if user is not None else {}
        start_time = time.time()
        started = time.perf_counter()
        raw: Any = None
        body = b""
        problem: BaseException | None = None
        try:
            raw = session.client.urlopen(
                request.url, method=request.method, payload=request.body or None,
                headers=dict(request.headers),
            )
            body = raw.content or b""  # the body's arrival is part of the response time
        except self._failures as exc:
            answered = getattr(exc, "response", None)  # a 4xx / 5xx: the user agent raises it
            if answered is None:
                problem = exc
            else:
                raw = answered
                try:
                    body = raw.content or b""
                except self._failures as read_error:
                    problem = read_error
        elapsed = (time.perf_counter() - started) * 1000.0
        status = 0 if raw is None or problem is not None else (raw.status_code or 0)
        if status == 0:
            # connection refused / reset / timeout: recorded with the transport exception
            problem = problem or CibaError("transport_error")
            session.request_event.fire(
                request_type=request.method, name=name, response_time=elapsed,
                response_length=0, exception=problem,
                context=context, response=raw, start_time=start_time, url=request.url,
            )
            return None, problem
        response = HttpResponse(
            status, tuple(raw.headers.items()) if raw.headers is not None else (), body
        )
        verdict = judge(response)
        session.request_event.fire(
            request_type=request.method, name=verdict.name or name, response_time=elapsed,
            response_length=len(body), exception=verdict.error, context=context, response=raw,
            start_time=start_time, url=request.url,
        )
        return response, None
