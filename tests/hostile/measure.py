"""`python tests/hostile/measure.py [--write]`: run every hostile case of
test_hostile_conformance.py and print the measured table of docs/robustness.md (with
--write, replace it in the document between its markers).

For each behaviour: the verdict the harness gives (the failures it reports, most frequent
first) and the time it took to give it: the longest exchange with the misbehaving endpoint
(for notifications, the longest wait of a test for its callback).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from hostile_helpers import (  # noqa: E402
    MAX_WAIT,
    PREFLIGHT,
    REQUEST_TIMEOUT,
    SLACK,
    STARTUP,
    SuiteRun,
    budget_profile,
    preflight_lines,
    refused_before_running,
    robustness_problems,
    run_cases,
)
from test_hostile_conformance import CASES  # noqa: E402

DOC = HERE.parents[1] / "docs" / "robustness.md"
BEGIN, END = "<!-- measured:begin -->", "<!-- measured:end -->"


def verdict(run: SuiteRun) -> str:
    if refused_before_running(run):
        line = preflight_lines(run)[0].removeprefix(PREFLIGHT).split(" — ")[0]
        line = re.sub(r"the provider at http://127\.0\.0\.1:\d+ ", "the provider ", line)
        return f"stopped before the run (exit 4): {line[:100]}".replace("|", "/")
    if run.results is None:
        return "**no results.json**"
    if not run.failures:
        return "pass" + (
            f" ({run.results['session'].get('stray_notifications')} stray callbacks counted, "
            "CIBA-PING-02 warning)" if run.results["session"].get("stray_notifications") else ""
        )
    counts: Counter[str] = Counter()
    for test in run.failures:
        failure = test.get("failure") or {}
        requirement = failure.get("requirement")
        title = str(failure.get("title") or "").replace("|", "/")
        title = re.sub(r"could not (approve|deny) \S+:", r"could not \1 its flow:", title)
        if requirement is None:
            title = title.split(" (budgets.")[0]
            title = title.replace(str(run.results["session"].get("issuer", "")), "")
        actual = failure.get("actual")
        if requirement and isinstance(actual, str) and actual and len(actual) < 200:
            title = f"{title}: {actual.split(' (budgets.')[0][:60]}".replace("|", "/")
        counts[f"{'[' + requirement + '] ' if requirement else ''}{title[:100]}"] += 1
    shown = [f"{text} ({n}×)" if n > 1 else text for text, n in counts.most_common(2)]
    more = len(counts) - len(shown)
    return "; ".join(shown) + (f"; +{more} more" if more > 0 else "")


def seconds(run: SuiteRun, endpoint: str) -> float:
    if refused_before_running(run):  # no exchange recorded: the whole (short) run
        return run.wall
    if endpoint == "notification":  # a test started early (_early.py) ran its body apart
        return max(
            (max(t.get("duration") or 0.0, t.get("early_seconds") or 0.0) for t in run.tests),
            default=0.0,
        )
    exchanges = run.exchanges(endpoint)
    return max((e["elapsed_ms"] for e in exchanges), default=0.0) / 1000


def table(runs: dict[str, SuiteRun]) -> str:
    lines = [
        "| Endpoint | Behaviour | Verdict of the harness | Time to verdict | Bounded |",
        "|---|---|---|---:|---|",
    ]
    for case in CASES:
        run = runs[case.id]
        endpoint, behaviour = case.behaviours[0]
        took = seconds(run, endpoint)
        # A notification test waits up to max_wait for a callback, and as long again to see
        # that no second one follows; its flow's own requests come on top.
        limit = 2 * MAX_WAIT + 2 * REQUEST_TIMEOUT if endpoint == "notification" else (
            REQUEST_TIMEOUT + SLACK
        )
        refused = refused_before_running(run)
        if refused:
            limit = STARTUP  # the preflight stops the whole run before any test
        clean = refused or not robustness_problems(run)
        bounded = "yes" if took <= limit and clean else "**no**"
        shown = f"{took * 1000:.0f} ms" if took < 1 else f"{took:.2f} s"
        if refused:
            shown += " (whole run)"
        lines.append(f"| {endpoint} | `{behaviour}` | {verdict(run)} | {shown} | {bounded} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help=f"update {DOC}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        profile = budget_profile(Path(directory) / "profile")
        runs = run_cases(CASES, Path(directory) / "cases", profile=profile)
        text = table(runs)
    print(text)
    if args.write:
        doc = DOC.read_text(encoding="utf-8")
        head, _, rest = doc.partition(BEGIN)
        _, _, tail = rest.partition(END)
        DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
