"""LocustTransport: the harness's Transport protocol over a FastHttpSession (an exchange, as the
httpx transport gives), and the load flows' lean `fire` path, both through Locust's request
event (a stand-in session: no sockets; Locust is not imported, it would monkey-patch pytest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ciba_harness.client._transport import Transport
from ciba_harness.core._http import HttpRequest
from ciba_harness.load._transport import LocustTransport, expect_status

#: what geventhttpclient raises for a request with no answer (Locust's list, in part)
FAILURES = (ConnectionError, OSError)
REQUEST = HttpRequest(
    "POST", "https://op.example/token?x=1", (("Accept", "application/json"),), b"a=1"
)


@dataclass
class Raw:
    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


class Events:
    def __init__(self) -> None:
        self.fired: list[dict[str, Any]] = []

    def fire(self, **event: Any) -> None:
        self.fired.append(event)


class UserAgent:
    def __init__(self, answer: Raw | BaseException) -> None:
        self.answer = answer
        self.sent: list[tuple[str, str, bytes | None]] = []

    def urlopen(self, url: str, *, method: str, payload: bytes | None, headers: dict[str, str]) -> Raw:
        self.sent.append((method, url, payload))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


class Session:
    def __init__(self, answer: Raw | BaseException) -> None:
        self.client = UserAgent(answer)
        self.request_event = Events()
        self.user = None


def test_send_gives_the_exchange_and_records_it_under_the_label() -> None:
    session = Session(Raw(400, b'{"error":"authorization_pending"}'))
    transport: Transport = LocustTransport(session, failures=FAILURES)
    exchange = transport.send(REQUEST, label="token poll")
    assert exchange.request is REQUEST and exchange.label == "token poll"
    assert exchange.error is None and exchange.response is not None
    assert exchange.response.status == 400
    assert exchange.response.json_object() == {"error": "authorization_pending"}
    assert exchange.elapsed >= 0
    assert session.client.sent == [("POST", REQUEST.url, b"a=1")]
    [event] = session.request_event.fired
    assert event["name"] == "token poll" and event["exception"] is None  # judging is the caller's


def test_send_without_an_answer_carries_the_transport_error() -> None:
    session = Session(ConnectionRefusedError("refused"))
    exchange = LocustTransport(session, failures=FAILURES).send(REQUEST)
    assert exchange.response is None
    assert exchange.error == "ConnectionRefusedError: refused"
    [event] = session.request_event.fired
    assert event["name"] == "https://op.example/token", "the row name has no query"
    assert isinstance(event["exception"], ConnectionRefusedError)


def test_send_refuses_a_per_request_certificate() -> None:
    session = Session(Raw(200, b"{}"))
    exchange = LocustTransport(session, failures=FAILURES).send(REQUEST, cert=("c.pem", "c.key"))
    assert exchange.response is None and exchange.error is not None
    assert "certificate" in exchange.error
    assert not session.client.sent and not session.request_event.fired


def test_fire_judges_and_answers_the_response() -> None:
    session = Session(Raw(503, b"busy"))
    transport = LocustTransport(session, failures=FAILURES)
    response = transport.fire(REQUEST, name="token", judge=expect_status(200))
    assert response is not None and response.status == 503
    [event] = session.request_event.fired
    assert event["name"] == "token" and event["exception"] is not None
    unanswered = LocustTransport(Session(ConnectionResetError()), failures=FAILURES)
    assert unanswered.fire(REQUEST, name="x") is None

