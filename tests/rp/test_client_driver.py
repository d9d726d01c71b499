"""The client driver contract: command templates, answers, and outcomes posted back later."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import httpx
import pytest

from ciba_harness.core._errors import CibaHarnessError
from ciba_harness.rp._config import ClientUnderTest
from ciba_harness.rp._driver import (
    CommandClientDriver,
    FlowOutcome,
    FlowRequest,
    HttpClientDriver,
    parse_outcome,
)
from ciba_harness.rp._harness import ClientSession
from ciba_harness.rp._provider import ClientTestProvider

FLOW = FlowRequest("alice", "Code 0042 & more", "poll", "http://127.0.0.1:1/outcome")


def test_parse_outcome() -> None:
    tokens = parse_outcome({"outcome": "tokens", "sub": "sub-alice"})
    assert tokens is not None and (tokens.outcome, tokens.sub) == ("tokens", "sub-alice")
    refused = parse_outcome({"outcome": "refused", "reason": "access_denied"})
    assert refused is not None and refused.describe() == "refused: access_denied"
    assert parse_outcome({"outcome": "maybe"}) is None
    assert parse_outcome(["tokens"]) is None


def test_command_template_fills_each_argument(tmp_path: Path) -> None:
    script = tmp_path / "client.py"
    script.write_text(
        "import json, sys\n"
        "print('starting flow for', sys.argv[1])\n"
        "print(json.dumps({'outcome': 'tokens', 'sub': 'sub-' + sys.argv[1],"
        " 'message': sys.argv[2], 'mode': sys.argv[3]}))\n"
    )
    driver = CommandClientDriver(f"{sys.executable} {script} {{login_hint}} "
                                 "{binding_message} --mode={mode}")
    assert driver.command(FLOW)[-3:] == ["alice", "Code 0042 & more", "--mode=poll"]
    outcome = driver.start_flow(FLOW, timeout=20)
    assert outcome is not None and outcome.outcome == "tokens" and outcome.sub == "sub-alice"


def test_command_without_an_outcome_line_means_a_callback(tmp_path: Path) -> None:
    driver = CommandClientDriver(f"{sys.executable} -c \"print('started')\"")
    assert driver.start_flow(FLOW, timeout=20) is None
    with pytest.raises(CibaHarnessError, match="failed"):
        CommandClientDriver("/nonexistent/ciba-client {mode}").start_flow(FLOW, timeout=5)


def test_http_driver_unreachable_is_a_harness_error() -> None:
    with pytest.raises(CibaHarnessError, match="client driver"):
        HttpClientDriver("http://127.0.0.1:9/start").start_flow(FLOW, timeout=2)


class CallbackDriver:
    """A driver whose client reports through outcome_url a moment after being asked."""

    name = "callback"

    def __init__(self, body: dict[str, str]) -> None:
        self.body = body

    def start_flow(self, flow: FlowRequest, timeout: float) -> FlowOutcome | None:
        def later() -> None:
            httpx.post(flow.outcome_url, json=self.body, timeout=5)

        threading.Timer(0.2, later).start()
        return None


@pytest.mark.parametrize(("body", "expected"), [
    ({"outcome": "tokens", "sub": "sub-alice"}, "got tokens for sub 'sub-alice'"),
    ({"outcome": "refused", "reason": "denied"}, "refused: denied"),
])
def test_outcome_posted_to_outcome_url(body: dict[str, str], expected: str) -> None:
    provider = ClientTestProvider([]).start()
    try:
        session = ClientSession(ClientUnderTest(driver="http", flow_timeout=5), provider,
                                CallbackDriver(body))
        seen = session.observe("poll_faithful")
    finally:
        provider.stop()
    assert seen.outcome.describe() == expected
    assert seen.flows[0].outcome_url.startswith(provider.issuer + "/rp-harness/outcome/")
    assert seen.run.requests == []  # the stand-in client made no CIBA request
