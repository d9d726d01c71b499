"""A dead provider is reported fast (issue 15): the whole conformance suite against the
hostile provider's hanging backchannel endpoint, hanging token endpoint and silent
notifications, with the reference profile's own budgets (request_timeout 5 s, max_wait 30 s).

For each: the whole run's wall time (aim <= 60 s; before the endpoint breakers these took
7 min, 277 s and 163 s), how many tests failed, how many of them failed at once with the
breaker's cause ("... endpoint unavailable since ...", "no notification ever arrived since
..."), and whether results.json and report.html were written.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench_suite import profile_with_interval, run_suite

from ciba_harness.hostile import start_hostile

SCENARIOS = {
    "backchannel hangs": {"backchannel": "hang"},
    "token endpoint hangs": {"token": "hang"},
    "notifications never come": {"notification": "never"},
}


def _breaker_cause(test: dict[str, object]) -> bool:
    title = str((test.get("failure") or {}).get("title", ""))  # type: ignore[union-attr]
    return " endpoint unavailable since " in title or title.startswith(
        "no notification ever arrived since "
    )


def main() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        profile = profile_with_interval(base, 1)
        for name, behaviours in SCENARIOS.items():
            report = base / name.replace(" ", "-")
            with start_hostile(behaviours, config=profile) as hostile:
                run = run_suite(profile, report, "--ciba-issuer", hostile.issuer, timeout=900)
            tests = run["results"]["tests"]
            failed = [t for t in tests if t.get("outcome") in {"failed", "error"}]
            fast = [t for t in failed if _breaker_cause(t)]
            written = (report / "results.json").is_file() and (report / "report.html").is_file()
            rows.append({
                "name": f"hostile: {name}", "value": run["wall"], "unit": "s",
                "note": f"{len(failed)} failed, {len(fast)} of them at once with the breaker's "
                        f"cause; {run['tests']}; report {'written' if written else 'MISSING'}",
            })
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
