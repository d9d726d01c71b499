"""Requirement verdicts of results.json: `error` is kept for harness / setup failures; a
requirement whose tests stopped on another requirement's failure is `inconclusive`, and
`report diff` lists neither kind of collateral as a regression (issue 13, item 6)."""

from __future__ import annotations

from typing import Any

from ciba_harness.reports import diff_results
from ciba_harness.reports._results import VERDICTS, build_results

# Real catalogue IDs (build_results reports every catalogue entry).
BROKEN, COLLATERAL, SETUP, HARNESS, PASSING = (
    "CIBA-TOKEN-05", "CIBA-TOKEN-06", "CIBA-DISC-01", "CIBA-AUTH-01", "CIBA-TOKEN-03",
)


def _test(nodeid: str, requirements: list[str], outcome: str,
          failure: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"nodeid": nodeid, "requirements": requirements, "outcome": outcome,
            "failure": failure, "checks": [], "exchanges": []}


def _verdicts(tests: list[dict[str, Any]]) -> dict[str, str]:
    results = build_results(tests, {}, started=0.0, exitstatus=1)
    return {r["id"]: r["verdict"] for r in results["requirements"]}


def _run(*, broken: bool) -> list[dict[str, Any]]:
    if not broken:
        return [_test("t::expiry", [BROKEN, COLLATERAL], "passed"),
                _test("t::setup", [SETUP], "passed"), _test("t::harness", [HARNESS], "passed"),
                _test("t::fine", [PASSING], "passed")]
    return [
        # stopped at BROKEN's check before it got to COLLATERAL
        _test("t::expiry", [BROKEN, COLLATERAL], "failed",
              {"kind": "WrongErrorCode", "requirement": BROKEN, "title": "wrong code"}),
        _test("t::setup", [SETUP], "error",
              {"kind": "CibaHarnessError", "requirement": None, "title": "setup failed"}),
        _test("t::harness", [HARNESS], "failed",
              {"kind": "KeyError", "requirement": None, "title": "'x'"}),
        _test("t::fine", [PASSING], "passed"),
    ]


def test_collateral_requirements_are_inconclusive_and_harness_failures_error() -> None:
    verdicts = _verdicts(_run(broken=True))
    assert "inconclusive" in VERDICTS
    assert verdicts[BROKEN] == "fail"
    assert verdicts[COLLATERAL] == "inconclusive"
    assert verdicts[SETUP] == "error"
    assert verdicts[HARNESS] == "error"
    assert verdicts[PASSING] == "pass"


def test_summary_counts_inconclusive_apart() -> None:
    results = build_results(_run(broken=True), {}, started=0.0, exitstatus=1)
    counts = results["summary"]["requirements"]
    assert counts["inconclusive"] == 1 and counts["fail"] == 1 and counts["error"] == 2


def test_diff_does_not_count_inconclusive_requirements_as_regressions() -> None:
    old = build_results(_run(broken=False), {}, started=0.0, exitstatus=0)
    new = build_results(_run(broken=True), {}, started=0.0, exitstatus=1)
    diff = diff_results(old, new)
    regressed = {e.key for e in diff.regressions}
    assert BROKEN in regressed and COLLATERAL not in regressed
    assert COLLATERAL in {e.key for e in diff.changes}
