"""Wait-bound tests (marker `slow`) start early, in background threads (ciba_harness/pytest_plugin/_early.py):
their bodies run while the rest of the suite runs, and their outcomes still reach the report
as if they had run in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SUITE = '''
import os
import threading

import pytest

from ciba_harness.checks._responses import status_is

EARLY_BODY_STARTED = threading.Event()


@pytest.fixture
def poll_client(ciba_config):
    return ciba_config.find_client(mode="poll")


@pytest.mark.requirement("CIBA-DISC-01")
def test_comes_first(ciba, ciba_metadata):
    """Runs before the slow tests in order; their bodies have started already."""
    waited = float(os.environ.get("EARLY_WAIT", "30"))
    assert EARLY_BODY_STARTED.wait(waited), "the slow test's body did not start early"


@pytest.mark.slow
@pytest.mark.requirement("CIBA-ACK-01")
def test_slow_and_passing(ciba, poll_client):
    EARLY_BODY_STARTED.set()
    flow = ciba.start(poll_client)
    assert flow.auth_req_id


@pytest.mark.slow
@pytest.mark.requirement("CIBA-ACK-01")
def test_slow_and_failing(ciba, poll_client):
    exchange = ciba.backchannel(poll_client, ciba.default_params(poll_client))
    ciba.check(status_is, exchange, {418}, requirement="CIBA-ACK-01")


@pytest.mark.slow
@pytest.mark.requirement("CIBA-ACK-01")
def test_slow_and_skipped(ciba):
    pytest.skip("not covered: skipped from the background")
'''


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    pytester.makepyfile(test_suite=SUITE)
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--ciba-report", str(report), *args,
        timeout=300,
    )
    return result, json.loads(Path(report, "results.json").read_text())


def test_slow_tests_start_early_and_report_in_order(pytester: pytest.Pytester) -> None:
    result, results = _run(pytester)
    tests = {t["nodeid"].split("::")[-1]: t for t in results["tests"]}
    assert tests["test_comes_first"]["outcome"] == "passed", result.stdout.str()[-3000:]
    assert tests["test_slow_and_passing"]["outcome"] == "passed"
    assert "early_seconds" in tests["test_slow_and_passing"]
    # the early body's exchanges and checks are the test's own
    assert [e["label"] for e in tests["test_slow_and_passing"]["exchanges"]][-1] == "backchannel"
    failing = tests["test_slow_and_failing"]
    assert failing["outcome"] == "failed"
    assert failing["failure"]["requirement"] == "CIBA-ACK-01"
    assert any(not c["passed"] for c in failing["checks"])
    assert tests["test_slow_and_skipped"]["outcome"] == "skipped"
    assert "skipped from the background" in tests["test_slow_and_skipped"]["skip_reason"]
    result.assert_outcomes(passed=2, failed=1, skipped=1)


def test_no_early_start_runs_them_in_order(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EARLY_WAIT", "1")
    result, results = _run(pytester, "--ciba-no-early", "-k", "comes_first or passing")
    tests = {t["nodeid"].split("::")[-1]: t for t in results["tests"]}
    # in order, the slow test's body has not run when the first test waits for it
    assert tests["test_comes_first"]["outcome"] == "failed"
    assert "early_seconds" not in tests["test_slow_and_passing"]
