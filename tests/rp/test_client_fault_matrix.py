"""The client plan is right both ways.

Against the faithful reference client the whole client plan passes, with no warning. With
injected client faults it flags exactly the requirements of those faults (fail, or warning for
SHOULD-level and descriptive rows) and nothing else: a fault no check catches is a missing
check; a flag on another requirement is a wrong one.

Cost: a plan run is about 45 s of waiting and 5 CPU-seconds. Faults run in groups
(CIBA_CLIENT_FAULT_GROUP_SIZE, default 4) of pairwise distinct requirements, kept apart when
they would mask each other, all runs in parallel (they mostly wait); the union of a group's requirements must
be exactly what the run flags. CIBA_CLIENT_FAULT_GROUP_SIZE=1 is the strict one-fault-per-run
matrix (about four minutes on 2 quiet cores; CIBA_CLIENT_PARALLEL sets how many plan runs go
at once). CIBA_CLIENT_FAULTS=skips_,CIBA-RP-1 selects faults by name or requirement prefix
(then one per run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ciba_harness.core._packages import CLIENT_SUITES_PACKAGE, package_folder
from ciba_harness.rp.reference_client import CLIENT_FAULTS

PARALLEL_RUNS = int(os.environ.get("CIBA_CLIENT_PARALLEL", "10"))
#: one plan run takes about 45 s; a loaded CI machine can stretch it several times
RUN_TIMEOUT = 480
#: faults that hide each other when combined (one masks the other's symptom)
CONFLICTS = [
    {"accepts_any_ping_bearer", "wrong_bearer_answers_400"},
    {"accepts_any_push_bearer", "wrong_bearer_answers_400"},
    {"never_refetches_jwks", "skips_signature_unknown_kid"},
    {"reuse_notification_token", "low_entropy_notification_token"},
    {"reuse_notification_token", "long_notification_token"},
    {"low_entropy_notification_token", "long_notification_token"},
]


def selected_faults() -> list[str]:
    wanted = [w.strip() for w in os.environ.get("CIBA_CLIENT_FAULTS", "").split(",")
              if w.strip()]
    names = [n for n, f in CLIENT_FAULTS.items()
             if not wanted or any(n.startswith(w) or f.requirement.startswith(w) for w in wanted)]
    return sorted(names, key=lambda n: (CLIENT_FAULTS[n].requirement, n))


def fault_groups(faults: list[str], size: int) -> list[list[str]]:
    """Groups of at most `size` faults of distinct requirements, far apart in the catalogue
    (round robin), never two that mask each other."""
    if size <= 1:
        return [[f] for f in faults]
    count = -(-len(faults) // size)
    groups: list[list[str]] = [[] for _ in range(count)]
    for index, fault in enumerate(faults):
        for step in range(count + 1):
            if step == count:
                groups.append([fault])
                break
            group = groups[(index + step) % count]
            requirements = {CLIENT_FAULTS[f].requirement for f in group}
            clash = any({fault, other} in CONFLICTS for other in group)
            if len(group) < size and not clash and (
                CLIENT_FAULTS[fault].requirement not in requirements
            ):
                group.append(fault)
                break
    return [g for g in groups if g]


def run_plan(faults: list[str], report: Path) -> dict[str, Any]:
    """One client plan run against the reference client with `faults`; its results.json."""
    command = [sys.executable, "-m", "pytest", str(package_folder(CLIENT_SUITES_PACKAGE)),
               "-q", "-p", "no:cacheprovider", "-p", "no:locust",
               "--ciba-client-report", str(report), "-o", "addopts="]
    for fault in faults:
        command += ["--ciba-client-fault", fault]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"requirements": [], "tests": [], "summary": {"tests": {"failed": 1}},
                "_stdout": f"the plan run did not end within {RUN_TIMEOUT} s",
                "_timed_out": True}
    path = report / "results.json"
    assert path.exists(), f"no results for {faults}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    results: dict[str, Any] = json.loads(path.read_text("utf-8"))
    results["_stdout"] = done.stdout[-3000:]
    return results


def flagged(results: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in results["requirements"]
            if r["verdict"] in ("fail", "warning", "error")}


def test_fault_groups_are_distinct_and_complete() -> None:
    faults = selected_faults()
    groups = fault_groups(faults, 4)
    assert sorted(f for g in groups for f in g) == sorted(faults)
    for group in groups:
        assert len({CLIENT_FAULTS[f].requirement for f in group}) == len(group)
        assert not any({a, b} in CONFLICTS for a in group for b in group if a != b)


def test_client_fault_matrix(tmp_path: Path) -> None:
    """The faithful client passes everything; each fault group flags its requirements only."""
    size = int(os.environ.get("CIBA_CLIENT_FAULT_GROUP_SIZE", "4"))
    if os.environ.get("CIBA_CLIENT_FAULTS"):
        size = 1
    groups = fault_groups(selected_faults(), size)
    runs: list[list[str]] = [[], *groups]
    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        results = list(pool.map(lambda item: run_plan(item[1], tmp_path / f"run{item[0]}"),
                                enumerate(runs)))
    problems = []
    faithful = results[0]
    if flagged(faithful) or faithful["summary"]["tests"]["failed"]:
        problems.append(f"faithful client flagged {flagged(faithful)}\n{faithful['_stdout']}")
    for group, result in zip(groups, results[1:], strict=True):
        if result.get("_timed_out"):
            problems.append(f"faults {group}: {result['_stdout']}")
            continue
        expected = {CLIENT_FAULTS[f].requirement for f in group}
        seen = flagged(result)
        missed = expected - set(seen)
        extra = {r: v for r, v in seen.items() if r not in expected}
        if missed or extra:
            harness = [f"{t['nodeid']}: {(t.get('failure') or {}).get('title')}"
                       for t in result["tests"] if t.get("outcome") in ("failed", "error")
                       and not (t.get("failure") or {}).get("requirement")]
            problems.append(f"faults {group}: missed {sorted(missed)}, also flagged {extra}"
                            + "".join(f"\n  harness-side: {h}" for h in harness))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("fault", sorted(CLIENT_FAULTS))
def test_every_fault_names_a_catalogued_requirement(fault: str) -> None:
    from ciba_harness.rp import client_catalogue

    assert CLIENT_FAULTS[fault].requirement in client_catalogue()
