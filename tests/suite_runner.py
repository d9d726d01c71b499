"""Run the conformance suite in a subprocess and read its results.json (for the self-tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def failed_tests(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in results["tests"] if t.get("outcome") in {"failed", "error"}]
