"""Synthetic results.json dicts for the report tests, built like the plugin builds them."""

from __future__ import annotations

import time
from typing import Any

from ciba_harness.core._errors import WrongErrorCode
from ciba_harness.core._http import Exchange, HttpRequest, HttpResponse
from ciba_harness.reports._results import build_results

HOSTILE = "<script>alert('x')</script>"
SECRET = "s3cr3t-Client-Secret-value"


def _exchange() -> Exchange:
    request = HttpRequest.form_post(
        "https://op.example/token",
        [
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", "req-123"),
            ("client_id", "client-poll"),
            ("client_secret", SECRET),
        ],
        secrets=[SECRET],
    )
    response = HttpResponse(
        400,
        (("Content-Type", "application/json"),),
        b'{"error":"invalid_request","error_description":"' + HOSTILE.encode() + b'"}',
    )
    return Exchange(request, response, elapsed=0.012, label="token request")


def make_tests(
    *, poll_fails: bool = True, extra: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    failure = WrongErrorCode(
        requirement="CIBA-TOKEN-05",
        title=f"expired auth_req_id answered with the wrong error {HOSTILE}",
        expected="error=expired_token",
        actual="error=invalid_request",
        exchanges=[_exchange()],
        secrets=[SECRET],
    ).to_dict()
    warning_failure = {**failure, "severity": "warning", "title": "interval not honoured"}
    tests: list[dict[str, Any]] = [
        {
            "nodeid": "conformance/test_discovery.py::test_metadata",
            "outcome": "passed",
            "requirements": ["CIBA-DISC-01", "CIBA-DISC-02"],
            "modes": [],
            "duration": 0.12,
            "checks": [],
            "exchanges": [],
        },
        {
            "nodeid": "conformance/test_poll.py::test_expired[client_secret_basic]",
            "outcome": "failed" if poll_fails else "passed",
            "requirements": ["CIBA-TOKEN-05"],
            "modes": ["poll"],
            "duration": 1.5,
            "failure": failure if poll_fails else None,
            "checks": [],
            "exchanges": [_exchange().to_dict([SECRET])],
        },
        {
            "nodeid": "conformance/test_poll.py::test_interval[private_key_jwt]",
            "outcome": "passed",
            "requirements": ["CIBA-TOKEN-03"],
            "modes": ["poll"],
            "duration": 2.0,
            "checks": [
                {
                    "check": "interval",
                    "requirement": "CIBA-TOKEN-03",
                    "severity": "warning",
                    "passed": False,
                    "message": "interval not honoured",
                    "failure": warning_failure,
                }
            ],
            "exchanges": [],
        },
        {
            "nodeid": "conformance/test_push.py::test_push_delivery",
            "outcome": "skipped",
            "requirements": ["CIBA-PUSH-01"],
            "modes": ["push"],
            "duration": 0.0,
            "skip_reason": "not applicable: the provider does not advertise push mode",
            "checks": [],
            "exchanges": [],
        },
        {
            "nodeid": "conformance/test_ping.py::test_ping_error",
            "outcome": "error",
            "requirements": ["CIBA-PING-01"],
            "modes": ["ping"],
            "duration": 0.3,
            "failure": {
                "kind": "TransportError",
                "requirement": None,
                "title": "connection refused",
                "severity": "error",
                "exchanges": [],
            },
            "checks": [],
            "exchanges": [],
        },
    ]
    return tests + (extra or [])


SESSION = {
    "harness_version": "0.1.0",
    "issuer": "https://op.example",
    "profile": "ciba",
    "config_file": "profiles/reference.toml",
    "embedded": False,
    "strict": False,
    "device_driver": "webhook",
    "clients": [
        {
            "name": "poll",
            "client_id": "client-poll",
            "auth_method": "client_secret_basic",
            "delivery_mode": "poll",
        },
        {
            "name": "ping",
            "client_id": "client-ping",
            "auth_method": "private_key_jwt",
            "delivery_mode": "ping",
        },
    ],
    "faults": [],
}


def make_results(**kwargs: Any) -> dict[str, Any]:
    return build_results(
        make_tests(**kwargs), dict(SESSION), started=time.time() - 12.5, exitstatus=1
    )
