"""The transport adapter: the protocol core's `HttpRequest` over Locust's FastHttpSession.

Every request goes through `client.request(..., name=..., catch_response=True)`, so it is
timed and counted by Locust; a `judge` reads the `HttpResponse` and says whether it counts as
a success (expected CIBA errors such as authorization_pending are 400s that succeed), a
failure (with a `CibaError` carrying the code), and under which row name it is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from .._http import HttpRequest, HttpResponse
from .._requests import error_code
from ._metrics import CibaError

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


class LocustTransport:
    """Sends core requests with a FastHttpSession (`self.client` of a FastHttpUser)."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def send(self, request: HttpRequest, *, name: str, judge: Judge = ok) -> HttpResponse | None:
        """The response as data, or None when no HTTP answer came (recorded as a failure)."""
        with self.session.request(
            request.method,
            request.url,
            data=request.body or None,
            headers=dict(request.headers),
            name=name,
            catch_response=True,
        ) as raw:
            status = raw.status_code or 0
            if status == 0:
                # connection refused / reset / timeout: Locust records the transport exception
                return None
            response = HttpResponse(
                status,
                tuple(raw.headers.items()) if raw.headers is not None else (),
                raw.content or b"",
            )
            verdict = judge(response)
            if verdict.name is not None:
                raw.request_meta["name"] = verdict.name
            if verdict.error is None:
                raw.success()
            else:
                raw.failure(verdict.error)
            return response
