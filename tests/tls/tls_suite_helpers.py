"""Running conformance files in a subprocess against the TLS reference provider (self-tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TLS_PROFILE = REPO / "fixtures" / "profiles" / "reference-tls.toml"
CONFORMANCE = REPO / "conformance"
#: the TLS / mTLS / FAPI-CIBA subset of the suite
FAPI_SUBSET = ("test_tls.py", "test_mtls.py", "test_fapi_ciba.py", "test_fapi_ciba_requests.py",
               "test_fapi_ciba_client_auth.py")


def run_conformance(
    report_dir: Path,
    *args: str,
    files: tuple[str, ...] = (),
    timeout: float = 900,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """`pytest` on conformance/ (or the given files of it) with `args`; the process and its
    results.json."""
    targets = [str(CONFORMANCE / f) for f in files] or [str(CONFORMANCE)]
    command = [sys.executable, "-m", "pytest", *targets, "-p", "no:locust",
               "-p", "no:cacheprovider", "-q", "--ciba-report", str(report_dir), *args]
    process = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                             cwd=REPO, env={**os.environ})
    results_file = report_dir / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else None
    return process, results


def failed(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in results["tests"] if t.get("outcome") in {"failed", "error"}]


def describe(tests: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{t['nodeid']}: [{(t.get('failure') or {}).get('requirement')}] "
        f"{(t.get('failure') or {}).get('title')}"
        for t in tests
    )
