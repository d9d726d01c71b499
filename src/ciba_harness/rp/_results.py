"""results.json of a client plan run, with a verdict per `CIBA-RP-nn` requirement.

A requirement's verdict comes from the outcomes of its checks (every test records all of its
checks, also after the first broken one): fail when a check of it broke at FAILURE severity,
warning when one broke at WARNING severity, pass when a check of it held, error when a test
carrying it errored before any check, skipped when every such test was skipped.
The format is the provider side's (``ciba-harness-results/1``), so the HTML report, the
run-to-run diff and CI parsers read it unchanged.
"""

from __future__ import annotations

from typing import Any

from ciba_harness.reports._results import broken_warnings, catalogue_fields, results_document
from ciba_harness.rp._catalogue import client_catalogue

__all__ = ["build_client_results", "requirement_verdicts"]


def requirement_verdicts(tests: list[dict[str, Any]]) -> dict[str, str]:
    """Requirement ID -> verdict, for every requirement some test carries or checked."""
    checks: dict[str, list[dict[str, Any]]] = {}
    linked: dict[str, list[dict[str, Any]]] = {}
    for test in tests:
        for requirement in test.get("requirements", []):
            linked.setdefault(requirement, []).append(test)
        for outcome in test.get("checks", []):
            checks.setdefault(outcome["requirement"], []).append(outcome)
            linked.setdefault(outcome["requirement"], [])
            if test not in linked[outcome["requirement"]]:
                linked[outcome["requirement"]].append(test)
    verdicts = {}
    for requirement, carried in linked.items():
        outcomes = checks.get(requirement, [])
        if any(not o["passed"] and o["severity"] == "failure" for o in outcomes):
            verdicts[requirement] = "fail"
        elif any(not o["passed"] and o["severity"] == "warning" for o in outcomes):
            verdicts[requirement] = "warning"
        elif any(o["passed"] for o in outcomes):
            verdicts[requirement] = "pass"
        elif any(t.get("outcome") in ("failed", "error") for t in carried):
            verdicts[requirement] = "error"
        elif carried:
            verdicts[requirement] = "skipped"
    return verdicts


def build_client_results(tests: list[dict[str, Any]], session: dict[str, Any], *,
                         started: float, exitstatus: int) -> dict[str, Any]:
    verdicts = requirement_verdicts(tests)
    by_requirement: dict[str, list[str]] = {}
    for test in tests:
        carried = set(test.get("requirements", [])) | {c["requirement"] for c in
                                                        test.get("checks", [])}
        for requirement in carried:
            by_requirement.setdefault(requirement, []).append(test["nodeid"])
    requirements = []
    for requirement_id, entry in client_catalogue().items():
        linked = [t for t in tests if t["nodeid"] in by_requirement.get(requirement_id, [])]
        requirements.append({
            **catalogue_fields(requirement_id, entry),
            "verdict": verdicts.get(requirement_id, "not_tested"),
            "tests": sorted(by_requirement.get(requirement_id, [])),
            "skip_reasons": sorted({t.get("skip_reason") or "" for t in linked
                                    if t.get("outcome") == "skipped"} - {""}),
        })
    return results_document(session, tests, requirements, broken_warnings(tests),
                            started=started, exitstatus=exitstatus, kind="client")
