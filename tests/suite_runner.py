"""Run the conformance suite in a subprocess and read its results.json (for the self-tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ciba_harness import default_profile_path
from ciba_harness.provider import start_provider

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO / "conformance"


def run_suite(
    report_dir: Path,
    *args: str,
    issuer: str | None = None,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """`pytest conformance` with the given options; returns the process and results.json."""
    command = [sys.executable, "-m", "pytest", str(CONFORMANCE), "-p", "no:locust",
               "-p", "no:cacheprovider", "-q", "--ciba-report", str(report_dir), *args]
    if issuer:
        command += ["--ciba-issuer", issuer]
    process = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                             env={**os.environ, **(env or {})})
    results_file = report_dir / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else None
    return process, results


def delivery_failures(provider: Any) -> list[str]:
    """The reference provider's pings, pushes and webhook calls that got no answer (timeouts,
    refused or dropped connections): what to read first when a callback never arrived."""
    return [
        f"  provider {d.kind} for {d.auth_req_id[:12]}... failed after "
        f"{d.done - d.started:.2f} s: {d.error}"
        for d in provider.provider.deliveries
        if d.error is not None
    ]


def failed_tests(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in results["tests"] if t.get("outcome") in {"failed", "error"}]


#: judge(group, results, output) -> the problems of one run of the fault matrix
Judge = Callable[[tuple[str, ...], "dict[str, Any] | None", str], list[str]]


def run_fault_groups(groups: Sequence[tuple[str, ...]], report_root: Path, judge: Judge, *,
                     policies: Sequence[str] = (), parallel: int = 6) -> list[str]:
    """Run the deterministic suite against one reference provider per group of faults and
    return the problems `judge` finds. The fuzz suites prove themselves in tests/fuzz (with the
    faults they are meant to find); here a random input could trip another fault."""

    def run(group: tuple[str, ...]) -> list[str]:
        with start_provider(default_profile_path(), faults=group,
                            policies=list(policies) or None) as provider:
            process, results = run_suite(
                report_root / "+".join(group)[:120], "-m", "not fuzz", issuer=provider.issuer
            )
        problems = judge(group, results, process.stdout + process.stderr)
        return problems + delivery_failures(provider) if problems else problems

    with ThreadPoolExecutor(parallel) as pool:
        grouped = list(zip(groups, pool.map(run, groups), strict=True))
        # A group with a problem may only show one fault masking another: such groups are run
        # again one fault at a time, and only those runs decide.
        again = [(name,) for group, found in grouped if found and len(group) > 1 for name in group]
        problems = [p for group, found in grouped if len(group) == 1 for p in found]
        problems += [p for found in pool.map(run, again) for p in found]
    return problems
