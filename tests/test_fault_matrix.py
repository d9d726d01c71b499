"""The harness is right both ways.

Against the faultless reference provider the whole conformance suite passes. With each
injected fault, the suite fails, and every failing test carries the requirement that fault
breaks: a fault no test detects is a missing test; a test failing for a fault of another
requirement is a wrong test.

One reference provider serves every fault as its own tenant (/fault/NAME); the suites run
as parallel subprocesses, since their time is mostly spent waiting on intervals and expiry.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ciba_harness import default_profile_path
from ciba_harness.provider import FAULTS, RunningProvider, start_provider
from suite_runner import failed_tests, run_suite

PARALLEL_SUITES = 6


def selected_faults() -> list[str]:
    """All faults, or those whose name or requirement starts with an entry of
    CIBA_FAULTS (comma-separated), for working on one part of the suite."""
    wanted = [w.strip() for w in os.environ.get("CIBA_FAULTS", "").split(",") if w.strip()]
    return sorted(
        name for name, fault in FAULTS.items()
        if not wanted or any(name.startswith(w) or fault.requirement.startswith(w) for w in wanted)
    )


@pytest.fixture(scope="module")
def tenants() -> Iterator[RunningProvider]:
    provider = start_provider(default_profile_path(), fault_tenants=True)
    yield provider
    provider.stop()


def test_faultless_reference_provider_passes_the_whole_suite(
    tenants: RunningProvider, tmp_path: Path
) -> None:
    process, results = run_suite(tmp_path, issuer=tenants.issuer)
    assert results is not None, process.stdout[-3000:] + process.stderr[-3000:]
    failures = failed_tests(results)
    assert not failures, (
        "\n\n".join(f"{t['nodeid']}: {(t.get('failure') or {}).get('title')}" for t in failures)
        + "\n"
        + process.stdout[-4000:]
    )
    assert results["summary"]["tests"]["passed"] > 0
    assert process.returncode == 0


def _judge(name: str, results: dict[str, Any] | None, output: str) -> str | None:
    """None when the fault is detected and every failure names its requirement; else why not.

    Detected: the fault's requirement gets the verdict fail (or warning, for SHOULD-level
    rows). A failing test is right when its failure is attributed to that requirement (a
    precondition check inside another test may legitimately name it).
    """
    requirement = FAULTS[name].requirement
    if results is None:
        return f"{name}: no results.json\n{output[-1500:]}"
    verdicts = {r["id"]: r["verdict"] for r in results["requirements"]}
    if verdicts.get(requirement) not in {"fail", "warning"}:
        return f"{name} ({requirement}): not detected, verdict {verdicts.get(requirement)}: a missing test"
    wrong = [
        t
        for t in failed_tests(results)
        if (t.get("failure") or {}).get("requirement") != requirement
    ]
    if wrong:
        listing = "; ".join(
            f"{t['nodeid']} -> [{(t.get('failure') or {}).get('requirement')}] "
            f"{(t.get('failure') or {}).get('title')}"
            for t in wrong
        )
        return f"{name} ({requirement}): failures attributed elsewhere: {listing}"
    return None


def test_each_fault_fails_exactly_the_tests_of_its_requirement(
    tenants: RunningProvider, tmp_path: Path
) -> None:
    def run(name: str) -> str | None:
        process, results = run_suite(tmp_path / name, issuer=f"{tenants.issuer}/fault/{name}")
        return _judge(name, results, process.stdout + process.stderr)

    with ThreadPoolExecutor(PARALLEL_SUITES) as pool:
        faults = selected_faults()
        problems = [p for p in pool.map(run, faults) if p]
    assert not problems, f"{len(problems)} of {len(faults)} faults misjudged:\n" + "\n".join(
        problems
    )
