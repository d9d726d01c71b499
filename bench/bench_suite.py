"""How long the whole conformance suite takes (issue 4).

Against the embedded provider (interval 1 s) the suite should finish in under a minute; against
a provider with a 5 s interval in a small multiple of its longest single wait chain (the
longest test). Both are measured serially and with pytest-xdist (-n 4), in the same run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "fixtures" / "profiles" / "reference.toml"


def _profile_with_interval(folder: Path, interval: int) -> Path:
    text = PROFILE.read_text()
    # Key paths are relative to the profile's folder: make them absolute for the copy.
    text = re.sub(r'"\.\./keys/', f'"{PROFILE.parent.parent}/keys/', text)
    text = re.sub(r"^interval = \d+", f"interval = {interval}", text, flags=re.M)
    path = folder / f"reference-interval-{interval}.toml"
    path.write_text(text)
    return path


def _run(profile: Path, report: Path, *extra: str) -> tuple[float, float, dict[str, int]]:
    command = [sys.executable, "-m", "pytest", str(ROOT / "conformance"), "-q", "-p", "no:cacheprovider",
               "-p", "no:locust", "--ciba-config", str(profile), "--ciba-report", str(report), *extra]
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    wall = time.perf_counter() - started
    results = json.loads((report / "results.json").read_text())
    longest = max((t.get("duration", 0.0) for t in results["tests"]), default=0.0)
    return wall, longest, results["summary"]["tests"]


def main() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        for interval in (1, 5):
            profile = _profile_with_interval(base, interval)
            for label, extra in (("serial", ()), ("-n 4", ("-n", "4"))):
                wall, longest, counts = _run(profile, base / f"r{interval}{label[:2]}", *extra)
                rows.append({
                    "name": f"suite, interval {interval} s, {label}", "value": wall, "unit": "s",
                    "note": f"{counts}; longest test {longest:.1f} s; "
                            f"wall/longest {wall / longest if longest else 0:.1f}x",
                })
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
