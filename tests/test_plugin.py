"""The pytest plugin, tested with pytester: options, markers, setup errors, results.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

UNREACHABLE_CONFIG = """
[provider]
issuer = "http://127.0.0.1:9"
[budgets]
request_timeout = 1.0
[users]
login_hint = "alice"
[[clients]]
client_id = "c1"
client_secret = "s3cr3t-value-for-test"
auth_method = "client_secret_basic"
"""

SUITE = """
import pytest

@pytest.mark.requirement("CIBA-DISC-01")
def test_discovery(ciba, ciba_metadata):
    assert ciba_metadata.delivery_modes

@pytest.mark.requirement("CIBA-TOKEN-03")
@pytest.mark.poll
def test_token_unknown(ciba, ciba_config, ciba_metadata):
    from ciba_harness.pytest_plugin import require_client
    client = require_client(ciba_config, ciba_metadata, mode="poll")
    exchange = ciba.token(client, "unknown-" + "x" * 30)
    ciba.expect_error(exchange, "invalid_grant", requirement="CIBA-TOKEN-03")

@pytest.mark.requirement("CIBA-PUSH-01")
def test_needs_a_missing_client(ciba, ciba_config, ciba_metadata):
    from ciba_harness.pytest_plugin import require_client
    require_client(ciba_config, ciba_metadata, mode="poll", auth_method="tls_client_auth")
"""


@pytest.fixture(autouse=True)
def _inner_runs_without_locust(monkeypatch: pytest.MonkeyPatch) -> None:
    # Locust's pytest plugin would gevent-patch this process when an inner run loads it.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:locust -p no:cacheprovider")


def _results(path: Path) -> dict:
    return json.loads((path / "results.json").read_text())


def test_markers_and_options_are_registered(pytester: pytest.Pytester) -> None:
    markers = pytester.runpytest("--markers").stdout.str()
    for marker in ("@pytest.mark.requirement(*ids):", "@pytest.mark.poll:", "@pytest.mark.ping:",
                   "@pytest.mark.push:", "@pytest.mark.slow:"):
        assert marker in markers
    help_text = pytester.runpytest("--help").stdout.str()
    for option in ("--ciba-config", "--ciba-report", "--ciba-strict", "--ciba-issuer"):
        assert option in help_text


def test_unreachable_provider_fails_each_test_with_a_clear_reason(pytester: pytest.Pytester) -> None:
    config = pytester.makefile(".toml", provider=UNREACHABLE_CONFIG)
    pytester.makepyfile(test_suite=SUITE)
    report = pytester.path / "out"
    result = pytester.runpytest("--ciba-config", str(config), "--ciba-report", str(report))
    result.assert_outcomes(errors=3)  # a setup failure: each test errors, none is judged
    output = result.stdout.str()
    assert "provider unreachable" in output
    assert "Traceback" not in output
    assert "s3cr3t-value-for-test" not in output
    results = _results(report)
    assert results["summary"]["tests"]["error"] == 3
    assert "s3cr3t-value-for-test" not in (report / "results.json").read_text()


def test_invalid_config_is_reported_with_file_and_key(pytester: pytest.Pytester) -> None:
    config = pytester.makefile(".toml", broken=UNREACHABLE_CONFIG.replace("client_basic", "client_magic")
                               .replace('auth_method = "client_secret_basic"', 'auth_method = "magic"'))
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--ciba-config", str(config), "--ciba-no-report")
    output = result.stdout.str()
    assert "broken.toml" in output and "clients[0].auth_method" in output
    assert "Traceback" not in output


def test_results_against_the_embedded_provider(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    report = pytester.path / "out"
    result = pytester.runpytest("--ciba-report", str(report))
    result.assert_outcomes(passed=2, skipped=1)
    results = _results(report)
    verdicts = {r["id"]: r for r in results["requirements"]}
    assert verdicts["CIBA-DISC-01"]["verdict"] == "pass"
    assert verdicts["CIBA-TOKEN-03"]["verdict"] == "pass"
    assert verdicts["CIBA-PUSH-01"]["verdict"] == "skipped"
    assert "tls_client_auth" in verdicts["CIBA-PUSH-01"]["skip_reasons"][0]
    assert verdicts["CIBA-AUTH-07"]["verdict"] == "not_tested"
    token_test = next(t for t in results["tests"] if t["nodeid"].endswith("test_token_unknown"))
    assert token_test["modes"] == ["poll"]
    assert token_test["exchanges"] and token_test["exchanges"][0]["curl"].startswith("curl ")
    assert "Authorization: Basic ***" in token_test["exchanges"][0]["curl"]
    assert (report / "junit.xml").exists()
    result.stdout.fnmatch_lines(["*CIBA conformance*", "*requirements:*pass*", "*report:*"])


def test_a_failure_names_requirement_and_reproducer(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite="""
import pytest

@pytest.mark.requirement("CIBA-TOKEN-03")
def test_expects_the_wrong_code(ciba, ciba_config):
    client = ciba_config.find_client(mode="poll")
    exchange = ciba.token(client, "unknown-id-123456789")
    ciba.expect_error(exchange, "authorization_pending", requirement="CIBA-TOKEN-03")
""")
    report = pytester.path / "out"
    result = pytester.runpytest("--ciba-report", str(report))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*?CIBA-TOKEN-03? Wrong error code*", "*Reproduce with:*", "*curl -i -X POST*"])
    record = _results(report)["tests"][0]
    assert record["failure"]["requirement"] == "CIBA-TOKEN-03"
    assert record["failure"]["kind"] == "WrongErrorCode"
    assert {r["id"]: r["verdict"] for r in _results(report)["requirements"]}["CIBA-TOKEN-03"] == "fail"


def test_interrupted_run_still_writes_results(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite="""
import pytest

@pytest.mark.requirement("CIBA-DISC-01")
def test_first(ciba, ciba_metadata):
    assert ciba_metadata.issuer

def test_interrupt():
    raise KeyboardInterrupt
""")
    report = pytester.path / "out"
    pytester.runpytest_subprocess("--ciba-report", str(report), "-p", "no:cacheprovider")
    results = _results(report)
    assert results["interrupted"] is True
    assert results["summary"]["tests"]["passed"] == 1


def test_xdist_workers_report_to_the_controller(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    report = pytester.path / "out"
    result = pytester.runpytest_subprocess("-n", "2", "--ciba-report", str(report), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, skipped=1)
    results = _results(report)
    assert len(results["tests"]) == 3
    assert {r["id"]: r["verdict"] for r in results["requirements"]}["CIBA-TOKEN-03"] == "pass"
