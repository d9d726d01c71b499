"""How long the whole conformance suite takes against a healthy provider (issue 4, issue 15).

Against the embedded provider at interval 1 s and 5 s, serially and with pytest-xdist (-n 4),
all in the same run: the wall time beside the sum of the tests' own times (their waits, for
the most part) and the longest single test (the longest wait chain). A test started early
(marker slow, ciba_harness/pytest_plugin/_early.py) reports the time of its body as `early_seconds`; its
`duration` is only what the main loop waited for it. The aim: wall <= 30 s at interval 1 s
serially, and wall <= 2x the longest chain at interval 5 s.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "fixtures" / "profiles" / "reference.toml"


def profile_with_interval(folder: Path, interval: int) -> Path:
    """The reference profile at another poll interval (named reference-*: the plugin then
    registers its receiver with a reference provider behind --ciba-issuer too)."""
    text = PROFILE.read_text()
    # Key paths are relative to the profile's folder: make them absolute for the copy.
    text = re.sub(r'"\.\./keys/', f'"{PROFILE.parent.parent}/keys/', text)
    text = re.sub(r"^interval = \d+", f"interval = {interval}", text, flags=re.M)
    path = folder / f"reference-interval-{interval}.toml"
    path.write_text(text)
    return path


def run_suite(profile: Path, report: Path, *extra: str, timeout: float = 1800) -> dict[str, Any]:
    """`pytest conformance` in a subprocess; its wall time and results.json figures."""
    command = [sys.executable, "-m", "pytest", str(ROOT / "conformance"), "-q",
               "-p", "no:cacheprovider", "-p", "no:locust", "--ciba-config", str(profile),
               "--ciba-report", str(report), *extra]
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    wall = time.perf_counter() - started
    results = json.loads((report / "results.json").read_text())
    own = [max(t.get("duration", 0.0), t.get("early_seconds", 0.0)) for t in results["tests"]]
    return {
        "wall": wall,
        "sum": sum(own),
        "longest": max(own, default=0.0),
        "tests": results["summary"]["tests"],
        "results": results,
    }


def main() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        for interval in (1, 5):
            profile = profile_with_interval(base, interval)
            for label, extra in (("serial", ()), ("-n 4", ("-n", "4"))):
                run = run_suite(profile, base / f"r{interval}{label[:2]}", *extra)
                wall, longest = run["wall"], run["longest"]
                rows.append({
                    "name": f"suite, interval {interval} s, {label}", "value": wall, "unit": "s",
                    "note": f"{run['tests']}; sum of test times {run['sum']:.1f} s, longest "
                            f"{longest:.1f} s; wall/longest {wall / longest if longest else 0:.1f}x,"
                            f" wall/sum {wall / run['sum'] if run['sum'] else 0:.2f}",
                })
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
