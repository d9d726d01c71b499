"""_errors: failures render what a report needs and never a secret."""

from __future__ import annotations

import json

from ciba_harness import (
    CheckFailure,
    ConfigError,
    Exchange,
    HttpRequest,
    MissingMember,
    ResponseTimeout,
    Severity,
)

TOKEN = "eyJhbGciOiJSUzI1NiJ9." + "P" * 80 + ".sig"


def test_failure_details_are_redacted() -> None:
    request = HttpRequest.form_post(
        "https://op/token", [("client_id", "c")], secrets=["request-secret-value"]
    )
    failure = MissingMember(
        requirement="CIBA-AERR-01",
        title="Error response has no string 'error' member",
        message="provider echoed request-secret-value",
        expected="configured-secret-1",
        actual={"access_token": TOKEN, "token_type": "Bearer"},
        exchanges=[Exchange(request)],
        secrets=["configured-secret-1"],
    )
    for text in (str(failure), json.dumps(failure.to_dict())):
        assert TOKEN not in text and TOKEN[:30] not in text
        assert "request-secret-value" not in text
        assert "configured-secret-1" not in text
        assert "Bearer" in text
    assert failure.to_dict()["severity"] == "failure"


def test_failure_is_an_assertion_error_with_a_stable_key() -> None:
    failure = ResponseTimeout(requirement="CIBA-TOKEN-05", title="late", severity=Severity.WARNING)
    assert isinstance(failure, AssertionError)
    assert failure.unique_key == ("ResponseTimeout", "CIBA-TOKEN-05", "late")
    assert str(failure) == "[CIBA-TOKEN-05] late"
    assert "Reproduce with:" not in str(failure)
    assert CheckFailure(requirement="X", title="t", actual=0).render().endswith("Received: 0")


def test_config_error_names_file_and_key() -> None:
    assert str(ConfigError("is required", file="p.toml", key="provider.issuer")) == (
        "p.toml, key 'provider.issuer': is required"
    )
    assert str(ConfigError("file not found", file="p.toml")) == "p.toml: file not found"
    assert str(ConfigError("bare")) == "bare"
