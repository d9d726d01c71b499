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


def test_entry_point_module_names_every_hook_and_fixture_of_its_parts() -> None:
    """pytest looks for hooks and fixtures only among the attributes of the module it
    registered (ciba_harness.pytest_plugin): one a part defines but the entry point does not
    import would silently never run. Parts registered as plugins of their own are exempt."""
    import importlib
    import inspect
    import pkgutil

    from _pytest.fixtures import FixtureFunctionDefinition

    plugin = importlib.import_module("ciba_harness.pytest_plugin")
    own_plugins = set(plugin.pytest_plugins)
    seen, missing = [], []
    for info in pkgutil.iter_modules(plugin.__path__, prefix=f"{plugin.__name__}."):
        if info.name in own_plugins:
            continue
        part = importlib.import_module(info.name)
        for name, value in vars(part).items():
            hook = (name.startswith("pytest_") and inspect.isfunction(value)
                    and value.__module__ == part.__name__)
            if hook or isinstance(value, FixtureFunctionDefinition):
                seen.append(name)
                if getattr(plugin, name, None) is not value:
                    missing.append(f"{info.name}.{name}")
    assert {"pytest_addoption", "pytest_runtest_makereport", "ciba", "ciba_session"} <= set(seen)
    assert not missing


def test_loading_the_plugin_loads_no_transport_server_or_hypothesis() -> None:
    """The entry point loads in every pytest process of the environment: httpx, uvicorn,
    starlette (client, receiver, provider) and Hypothesis load only when a run uses them."""
    import subprocess
    import sys

    code = ("import sys, ciba_harness.pytest_plugin; "
            "print(sorted(m for m in ('httpx', 'httpcore', 'uvicorn', 'starlette', 'anyio', "
            "'hypothesis') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({}, ("unreachable", "[provider] issuer")),  # nothing listens on port 9
        ({'client_id = "c1"': 'client_id = "${CIBA_UNSET_CLIENT_ID}"'}, ("CIBA_UNSET_CLIENT_ID",)),
        ({"[users]": "[users"}, ("provider.toml",)),  # not TOML
    ],
    ids=["unreachable-issuer", "unset-env", "bad-toml"],
)
def test_plain_pytest_stops_on_a_bad_config_with_one_usage_error(
    pytester: pytest.Pytester, change: dict[str, str], words: tuple[str, ...]
) -> None:
    """`pytest conformance --ciba-config bad.toml` checks before running, as the wrapper does:
    one line, exit 4 (usage error), no setup error per test, no verdict recorded."""
    text = UNREACHABLE_CONFIG
    for old, new in change.items():
        text = text.replace(old, new)
    config = pytester.makefile(".toml", provider=text)
    pytester.makepyfile(test_suite=SUITE)
    report = pytester.path / "out"
    result = pytester.runpytest("--ciba-config", str(config), "--ciba-report", str(report))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: ciba-harness: "), errors
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert " — " in errors[0]  # the fix is named
    assert "error" not in result.stdout.str().lower().replace("errors", "")
    assert not (report / "results.json").exists() and not (report / "junit.xml").exists()
    assert "s3cr3t-value-for-test" not in result.stdout.str() + result.stderr.str()


def test_invalid_config_is_reported_with_file_and_key(pytester: pytest.Pytester) -> None:
    config = pytester.makefile(".toml", broken=UNREACHABLE_CONFIG.replace("client_basic", "client_magic")
                               .replace('auth_method = "client_secret_basic"', 'auth_method = "magic"'))
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--ciba-config", str(config), "--ciba-no-report")
    output = result.stderr.str()
    assert "broken.toml" in output and "clients[0].auth_method" in output
    assert "Traceback" not in output + result.stdout.str()


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


MODE_SUITE = """
import pytest

@pytest.fixture(params=["poll", "ping"])
def mode(request):
    return request.param

@pytest.mark.requirement("CIBA-DISC-01")
def test_modes(ciba, ciba_metadata, mode):
    assert ciba_metadata.supports_mode(mode)

@pytest.mark.fapi
@pytest.mark.requirement("FAPI-CIBA-01")
@pytest.mark.parametrize("n", range(5))
def test_fapi_only(ciba, n):
    pass
"""


def test_mode_parameters_count_as_mode_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=MODE_SUITE)
    report = pytester.path / "out"
    result = pytester.runpytest("-m", "ping", "--ciba-report", str(report))
    result.assert_outcomes(passed=1, deselected=6)
    records = _results(report)["tests"]
    assert [(r["nodeid"].split("::")[1], r["modes"]) for r in records] == [
        ("test_modes[ping]", ["ping"])
    ]


def test_fapi_tests_are_deselected_in_one_line_without_the_fapi_profile(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_suite=MODE_SUITE)
    result = pytester.runpytest("--ciba-no-report", "-rs")
    result.assert_outcomes(passed=2, deselected=5)
    output = result.stdout.str()
    assert output.count("FAPI-CIBA profile not selected") == 1, output
    assert "SKIPPED" not in output


WRONG_CODE_SUITE = """
import pytest

@pytest.mark.requirement("CIBA-TOKEN-03", "CIBA-TOKEN-01")
def test_expects_the_wrong_code(ciba, ciba_config):
    client = ciba_config.find_client(mode="poll")
    exchange = ciba.token(client, "unknown-id-123456789")
    ciba.expect_error(exchange, "authorization_pending", requirement="CIBA-TOKEN-03")

@pytest.mark.requirement("CIBA-DISC-01")
def test_passes(ciba, ciba_metadata):
    assert ciba_metadata.issuer
"""


@pytest.mark.parametrize("workers", [None, "2"], ids=["in-process", "xdist"])
def test_junit_has_one_requirement_property_per_id_and_the_id_first(
    pytester: pytest.Pytester, workers: str | None
) -> None:
    import xml.etree.ElementTree as ET

    pytester.makepyfile(test_suite=WRONG_CODE_SUITE)
    report = pytester.path / "out"
    args = ["--ciba-report", str(report), "-p", "no:cacheprovider"]
    result = pytester.runpytest_subprocess(*args, *(["-n", workers] if workers else []))
    result.assert_outcomes(failed=1, passed=1)
    tree = ET.parse(report / "junit.xml")
    cases = {case.get("name"): case for case in tree.iter("testcase")}
    failing = cases["test_expects_the_wrong_code"]
    properties = [(p.get("name"), p.get("value")) for p in failing.iter("property")]
    assert properties == [("requirement", "CIBA-TOKEN-03"), ("requirement", "CIBA-TOKEN-01")]
    message = failing.find("failure").get("message")  # type: ignore[union-attr]
    assert message.startswith("CIBA-TOKEN-03 "), message
    assert [(p.get("name"), p.get("value")) for p in cases["test_passes"].iter("property")] == [
        ("requirement", "CIBA-DISC-01")]
    assert "{'nodeid'" not in (report / "junit.xml").read_text()
    records = {t["nodeid"].split("::")[1]: t for t in _results(report)["tests"]}
    assert records["test_expects_the_wrong_code"]["failure"]["requirement"] == "CIBA-TOKEN-03"
    assert records["test_passes"]["outcome"] == "passed"


def test_terminal_summary_shows_the_requirement_and_hides_harness_frames(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_suite=WRONG_CODE_SUITE)
    result = pytester.runpytest_subprocess("--ciba-no-report", "-p", "no:cacheprovider", "-rf")
    output = result.stdout.str()
    summary = [line for line in output.splitlines() if line.startswith("FAILED ")]
    assert len(summary) == 1 and "CIBA-TOKEN-03" in summary[0], summary
    assert "_checks.py" not in output and "_client.py" not in output, output
    assert "test_suite.py:" in output  # the test's own frame stays
    assert "PytestAssertRewriteWarning" not in output + result.stderr.str()


def test_no_stray_callback_warning_after_an_interrupt(pytester: pytest.Pytester) -> None:
    """Callbacks still arriving after Ctrl-C are not the provider's fault (CIBA-PING-02)."""
    pytester.makepyfile(test_suite="""
import httpx

def test_stray(ciba, ciba_receiver):
    answer = httpx.post(ciba_receiver.url, json={"auth_req_id": "x"},
                        headers={"Authorization": "Bearer not-a-token-of-this-run"})
    assert answer.status_code == 401

def test_interrupt():
    raise KeyboardInterrupt
""")
    report = pytester.path / "out"
    result = pytester.runpytest_subprocess("--ciba-report", str(report), "-p", "no:cacheprovider")
    assert "CIBA-PING-02" not in result.stdout.str()
    results = _results(report)
    assert results["interrupted"] is True
    assert not [w for w in results["warnings"] if w["requirement"] == "CIBA-PING-02"]


def test_hypothesis_statistics_of_nested_given(pytester: pytest.Pytester) -> None:
    """The fuzz suites apply @given inside the test (settings from the session's profile):
    `--hypothesis-show-statistics` still shows their statistics."""
    pytester.makepyfile(test_suite="""
from hypothesis import event, given, strategies as st

def test_nested(ciba_fuzz):
    @ciba_fuzz.settings
    @given(st.integers())
    def run(number):
        event("even" if number % 2 == 0 else "odd")

    ciba_fuzz.budget().run(run)
""")
    result = pytester.runpytest_subprocess("--hypothesis-show-statistics", "--ciba-no-report",
                                           "--ciba-fuzz-examples", "20", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    section = output[output.index("Hypothesis Statistics"):]
    assert "test_suite.py::test_nested" in section, section
    assert "20 passing" in section and "even" in section, section


def test_plain_pytest_leaves_a_reachable_providers_discovery_to_the_verdicts(
    pytester: pytest.Pytester,
) -> None:
    """The preflight of plain pytest stops on an unreachable provider only: discovery that
    answers without a backchannel endpoint is the CIBA-DISC-02 verdict, not a usage error."""
    from ciba_harness import default_profile_path
    from ciba_harness.provider import start_provider

    provider = start_provider(default_profile_path(),
                              faults=["discovery_missing_backchannel_endpoint"])
    try:
        pytester.makepyfile(test_suite=SUITE)
        report = pytester.path / "out"
        result = pytester.runpytest_subprocess(
            "--ciba-config", str(default_profile_path()), "--ciba-issuer", provider.issuer,
            "--ciba-report", str(report), "-p", "no:cacheprovider")
    finally:
        provider.stop()
    assert result.ret != pytest.ExitCode.USAGE_ERROR, result.stderr.str()
    verdicts = {r["id"]: r["verdict"] for r in _results(report)["requirements"]}
    assert verdicts["CIBA-DISC-02"] == "fail", {k: v for k, v in verdicts.items() if "DISC" in k}
