"""The machine-readable conformance result: per test outcome, per requirement verdict.

Verdicts per requirement (one word each, so CI can parse them):
pass, fail, warning, skipped, error, inconclusive, not_tested.
A requirement fails when a test carrying it fails with a failure attributed to it, or with
a failure of no requirement; it warns when a check of it was broken at WARNING severity.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Protocol

from ciba_harness.checks._choices import collect_provider_choices
from ciba_harness.core._requirements import catalogue

__all__ = [
    "RESULT_FORMAT",
    "VERDICTS",
    "broken_warnings",
    "build_results",
    "catalogue_fields",
    "results_document",
]

RESULT_FORMAT = "ciba-harness-results/1"
VERDICTS = ("fail", "error", "inconclusive", "warning", "pass", "skipped", "not_tested")


class CatalogueRow(Protocol):
    """What a results.json requirement entry takes from a catalogue row (provider or client)."""

    @property
    def section(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def who(self) -> str: ...
    @property
    def assertion(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def profile(self) -> str: ...


def catalogue_fields(requirement_id: str, entry: CatalogueRow) -> dict[str, Any]:
    """The leading keys of a results.json requirement entry, in the format's order."""
    return {
        "id": requirement_id,
        "section": entry.section,
        "level": entry.level,
        "who": entry.who,
        "assertion": entry.assertion,
        "group": entry.group,
        "profile": entry.profile,
    }


def build_results(
    tests: list[dict[str, Any]], session: dict[str, Any], *, started: float, exitstatus: int
) -> dict[str, Any]:
    by_requirement: dict[str, list[dict[str, Any]]] = {}
    for test in tests:
        for requirement in test.get("requirements", []):
            by_requirement.setdefault(requirement, []).append(test)
        # A failure names the requirement it proves broken, carried by the test or not (a
        # precondition checked inside another test): that requirement fails too.
        attributed = (test.get("failure") or {}).get("requirement")
        if attributed and attributed not in test.get("requirements", []):
            by_requirement.setdefault(attributed, []).append(test)
    warnings = broken_warnings(tests)
    requirements = []
    for requirement_id, entry in catalogue().items():
        linked = by_requirement.get(requirement_id, [])
        requirements.append(
            {
                **catalogue_fields(requirement_id, entry),
                "verdict": _verdict(requirement_id, linked, warnings),
                "tests": [t["nodeid"] for t in linked],
                "skip_reasons": sorted(
                    {t.get("skip_reason") or "" for t in linked if t.get("outcome") == "skipped"}
                    - {""}
                ),
            }
        )
    known = set(catalogue())
    for requirement_id, linked in sorted(by_requirement.items()):
        if requirement_id not in known:  # a test citing an ID the catalogue lacks
            requirements.append(
                {
                    "id": requirement_id,
                    "section": "",
                    "level": "unknown",
                    "who": "",
                    "assertion": "(not in the catalogue)",
                    "group": "",
                    "profile": "",
                    "verdict": _verdict(requirement_id, linked, warnings),
                    "tests": [t["nodeid"] for t in linked],
                    "skip_reasons": [],
                }
            )
    return results_document(
        session, tests, requirements, warnings, started=started, exitstatus=exitstatus,
        # Which option the provider took where the specs leave it free (no verdict).
        provider_choices=collect_provider_choices(tests),
    )


def broken_warnings(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """results.json `warnings`: every check of the tests broken at WARNING severity."""
    return [
        {
            "requirement": check["requirement"],
            "title": check["message"],
            "nodeid": test["nodeid"],
            "failure": check.get("failure"),
        }
        for test in tests
        for check in test.get("checks", [])
        if not check["passed"] and check["severity"] == "warning"
    ]


def results_document(
    session: dict[str, Any],
    tests: list[dict[str, Any]],
    requirements: list[dict[str, Any]],
    warnings: list[dict[str, Any]],
    *,
    started: float,
    exitstatus: int,
    kind: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A results.json (provider or client plan) in the format's key order; `extra` fields
    (e.g. `provider_choices`) come between `warnings` and `requirements`."""
    outcome_counts = Counter(t.get("outcome", "passed") for t in tests)
    verdict_counts = Counter(r["verdict"] for r in requirements)
    return {
        "format": RESULT_FORMAT,
        **({"kind": kind} if kind is not None else {}),
        "session": session,
        "started_at": started,
        "finished_at": time.time(),
        "exitstatus": exitstatus,
        "interrupted": exitstatus == 2,
        "summary": {
            "tests": {
                k: outcome_counts.get(k, 0) for k in ("passed", "failed", "error", "skipped")
            },
            "requirements": {k: verdict_counts.get(k, 0) for k in VERDICTS},
        },
        "warnings": warnings,
        **extra,
        "requirements": requirements,
        "tests": sorted(tests, key=lambda t: t["nodeid"]),
    }

def _verdict(
    requirement_id: str, linked: list[dict[str, Any]], warnings: list[dict[str, Any]]
) -> str:
    """fail: a check of this requirement broke (or a plain assert in a test carrying it);
    error: the harness could not judge it (a setup error, a harness-side exception);
    inconclusive: its tests stopped on another requirement's failure before they got to this
    one; pass needs a passing test."""
    harness_error = inconclusive = False
    for test in linked:
        if test.get("outcome") not in {"failed", "error"}:
            continue
        failure = test.get("failure") or {}
        attributed = failure.get("requirement")
        if attributed == requirement_id:
            return "fail"
        plain_assert = failure.get("kind") == "AssertionError" and test.get("outcome") == "failed"
        if attributed is None and plain_assert:
            return "fail"
        if attributed is None:
            harness_error = True
        else:
            inconclusive = True
    if any(w["requirement"] == requirement_id for w in warnings):
        return "warning"
    if any(t.get("outcome", "passed") == "passed" for t in linked):
        return "pass"
    if harness_error:
        return "error"
    if inconclusive:
        return "inconclusive"
    return "skipped" if linked else "not_tested"
