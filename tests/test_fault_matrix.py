"""The harness is right both ways.

Against the faultless reference provider the whole conformance suite passes. With injected
faults the suite fails, and only where it should: each fault's requirement gets the verdict
fail (warning for SHOULD-level rows), and every failing test's failure is attributed to a
requirement that a fault of the run breaks. A fault no test detects is a missing test; a
failure attributed elsewhere is a wrong test.

Cost: one suite run is about 4 CPU-seconds and 25 s of waiting, and there are over a hundred
faults. By default faults run in groups (CIBA_FAULT_GROUP_SIZE, default 4), one provider per
group, each group's requirements pairwise distinct and drawn from far-apart catalogue sections,
so a failure still names exactly which fault it saw. CIBA_FAULT_GROUP_SIZE=1 runs one fault
per provider: the strict matrix, for release checks (a few minutes on 2 cores).
CIBA_FAULTS=CIBA-TOKEN,ping_ selects faults by requirement prefix or name (then one per run).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from suite_runner import failed_tests, run_fault_groups, run_suite

from ciba_harness import default_profile_path
from ciba_harness.provider import FAULTS, start_provider

PARALLEL_SUITES = 6


def selected_faults(profile: str = "ciba") -> list[str]:
    """Faults of `profile` (the FAPI-CIBA and TLS-server faults show only in the FAPI mode of
    the TLS reference provider: tests/tls/test_fapi_fault_matrix.py runs those)."""
    wanted = [w.strip() for w in os.environ.get("CIBA_FAULTS", "").split(",") if w.strip()]
    return sorted(
        (
            name
            for name, fault in FAULTS.items()
            if fault.profile == profile
            and (
                not wanted
                or any(name.startswith(w) or fault.requirement.startswith(w) for w in wanted)
            )
        ),
        key=lambda name: (FAULTS[name].requirement, name),
    )


# Requirements most tests pass through (discovery, the acknowledgement, error bodies, ID
# tokens): a fault there fails nearly every test under its own ID and would mask the others of
# its group, so it runs alone.
SOLO_REQUIREMENTS = frozenset(
    {
        "CIBA-DISC-02",
        "CIBA-DISC-09",
        "CIBA-ACK-03",
        "CIBA-ACK-07",
        "CIBA-ACK-08",
        "CIBA-AERR-01",
        "CIBA-TOKEN-14",
        "CIBA-TOKEN-21",
        "CIBA-IDT-01",
        "CIBA-IDT-02",
    }
)


def fault_groups(faults: list[str], size: int) -> list[tuple[str, ...]]:
    """Deal faults sorted by requirement round-robin into groups: neighbours in the catalogue
    land in different groups, and so do faults sharing a requirement. Faults of gatekeeping
    requirements form groups of their own."""
    solo = [name for name in faults if FAULTS[name].requirement in SOLO_REQUIREMENTS]
    rest = [name for name in faults if name not in solo]
    per_requirement: dict[str, int] = {}
    for name in rest:
        requirement = FAULTS[name].requirement
        per_requirement[requirement] = per_requirement.get(requirement, 0) + 1
    count = max(-(-len(rest) // size), max(per_requirement.values(), default=1))
    groups: list[list[str]] = [[] for _ in range(count)]
    for index, name in enumerate(rest):
        groups[index % count].append(name)
    return [(name,) for name in solo] + [tuple(g) for g in groups if g]


#: requirement -> what the plugin preflight says when it refuses to run the suite for it (a
#: provider without a backchannel endpoint is no CIBA provider: one usage error, exit 4,
#: no results.json; that refusal is the detection)
PREFLIGHT_DETECTS = {"CIBA-DISC-02": "has no backchannel_authentication_endpoint"}


def judge(group: tuple[str, ...], results: dict[str, Any] | None, output: str) -> list[str]:
    """The problems of one run; empty when every fault is detected and attributed."""
    if results is None:
        said = [PREFLIGHT_DETECTS.get(FAULTS[name].requirement) for name in group]
        if all(said) and all(phrase in output for phrase in said if phrase):
            return []
        return [f"{'+'.join(group)}: no results.json\n{output[-1500:]}"]
    broken = {FAULTS[name].requirement: name for name in group}
    verdicts = {r["id"]: r["verdict"] for r in results["requirements"]}
    problems = [
        f"{name} ({FAULTS[name].requirement}): not detected, verdict "
        f"{verdicts.get(FAULTS[name].requirement)}: a missing test"
        for name in group
        if verdicts.get(FAULTS[name].requirement) not in {"fail", "warning"}
    ]
    for test in failed_tests(results):
        failure = test.get("failure") or {}
        if failure.get("requirement") not in broken:
            problems.append(
                f"{'+'.join(group)}: {test['nodeid']} failed, attributed to "
                f"[{failure.get('requirement')}] {failure.get('title')}: a wrong test or attribution"
            )
    return problems


def test_faultless_reference_provider_passes_the_whole_suite(tmp_path: Path) -> None:
    with start_provider(default_profile_path()) as provider:
        process, results = run_suite(tmp_path, issuer=provider.issuer)
    assert results is not None, process.stdout[-3000:] + process.stderr[-3000:]
    failures = failed_tests(results)
    assert not failures, (
        "\n".join(f"{t['nodeid']}: {(t.get('failure') or {}).get('title')}" for t in failures)
        + "\n"
        + process.stdout[-4000:]
    )
    assert results["summary"]["tests"]["passed"] > 100
    assert results["summary"]["requirements"]["fail"] == 0
    assert process.returncode == 0


def test_each_fault_is_detected_and_only_by_its_requirement(tmp_path: Path) -> None:
    faults = selected_faults()
    default_size = "1" if os.environ.get("CIBA_FAULTS") else "4"
    groups = fault_groups(faults, int(os.environ.get("CIBA_FAULT_GROUP_SIZE", default_size)))
    problems = run_fault_groups(groups, tmp_path, judge, parallel=PARALLEL_SUITES)
    assert not problems, (
        f"{len(problems)} problem(s) over {len(faults)} faults in {len(groups)} runs:\n"
        + "\n".join(problems)
    )


def test_grouping_keeps_requirements_apart() -> None:
    groups = fault_groups(sorted(FAULTS, key=lambda n: (FAULTS[n].requirement, n)), 4)
    assert sorted(n for g in groups for n in g) == sorted(FAULTS)
    for group in groups:
        requirements = [FAULTS[name].requirement for name in group]
        assert len(requirements) == len(set(requirements)), group
