"""Running the conformance suite against the hostile provider, and judging the run itself.

The verdict on a hostile provider is the suite's business; these helpers check that the
harness stays bounded, clear and complete whatever the provider does:

* no exchange lasts longer than the request timeout plus one second,
* no traceback of the harness (each failure is a verdict naming a requirement, or a harness
  error naming its transport cause), no INTERNALERROR,
* results.json and report.html are written and parse,
* the hostile server itself never failed (its own errors would make the case meaningless).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from suite_runner import CONFORMANCE, REPO, run_suite
from waiting import LOAD_SLACK

from ciba_harness import CheckFailure, default_profile_path
from ciba_harness.hostile import Hit, start_hostile

REQUEST_TIMEOUT = 1.0
MAX_WAIT = 4.0
SLACK = 1.0  # the aim: every hostile behaviour handled within request_timeout + 1 s
STARTUP = 60.0  # seconds a session may spend starting and writing its reports (a busy CI box)
RUNNERS = 4  # session_runner processes of run_cases
RUNNER = Path(__file__).resolve().parent / "session_runner.py"


def _subclasses(cls: type) -> set[type]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


# A failure is a verdict (the provider broke a requirement) or a harness error naming the
# cause (no usable answer, provider not testable, a setup step failed); anything else
# (KeyError, ValueError, a bare AssertionError, a library's exception) is a harness bug.
VERDICT_KINDS = {c.__name__ for c in _subclasses(CheckFailure)}
HARNESS_KINDS = {
    "TransportError", "ProviderSetupError", "Failed", "EndpointUnavailable", "RunBudgetExhausted",
}


def budget_profile(
    directory: Path,
    *,
    request_timeout: float = REQUEST_TIMEOUT,
    max_wait: float = MAX_WAIT,
    replace: Mapping[str, str] = {},
) -> Path:
    """The reference profile with absolute key paths and a small time budget.

    Named reference.toml on purpose: the plugin then registers its receiver for the ping and
    push clients with the provider behind --ciba-issuer (the hostile server serves those admin
    calls from its embedded reference provider). `replace` maps exact strings to others
    (secrets of the no-secrets test)."""
    source = default_profile_path()
    text = source.read_text(encoding="utf-8")
    text = text.replace('"../keys/', f'"{source.parent.parent / "keys"}/')
    budgets = {
        "request_timeout": f"{request_timeout}",
        "max_wait": f"{max_wait}",
        "requested_expiry": "2",
        "approve_timeout": "2.0",
    }
    for key, value in budgets.items():
        text, count = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
        assert count == 1, key
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "reference.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class SuiteRun:
    behaviours: Mapping[str, str]
    returncode: int
    output: str
    results: dict[str, Any] | None
    report_dir: Path
    wall: float
    hits: list[Hit] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    @property
    def tests(self) -> list[dict[str, Any]]:
        return list((self.results or {}).get("tests", []))

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [t for t in self.tests if t.get("outcome") in {"failed", "error"}]

    def exchanges(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Recorded exchanges (failure evidence included), of one endpoint if given."""
        found: list[dict[str, Any]] = []
        for test in self.tests:
            found += test.get("exchanges", [])
            found += (test.get("failure") or {}).get("exchanges", [])
            for check in test.get("checks", []):
                found += (check.get("failure") or {}).get("exchanges", [])
        if endpoint is None:
            return found
        return [e for e in found if _endpoint_of(e) == endpoint]

    def describe(self) -> str:
        head = f"{dict(self.behaviours)}: exit {self.returncode}, {self.wall:.1f} s"
        lines = [head] + [
            f"  {t['nodeid']}: {t['outcome']} {_failure_line(t)}" for t in self.failures[:20]
        ]
        return "\n".join(lines) + "\n--- output tail\n" + self.output[-3000:]


def _endpoint_of(exchange: dict[str, Any]) -> str:
    path = urlsplit(exchange["request"]["url"]).path
    return {
        "/.well-known/openid-configuration": "discovery",
        "/jwks": "jwks",
        "/backchannel": "backchannel",
        "/token": "token",
    }.get(path, "device" if path.startswith("/device/") else "other")


def _failure_line(test: dict[str, Any]) -> str:
    failure = test.get("failure") or {}
    return f"[{failure.get('requirement')}] {failure.get('kind')}: {failure.get('title')}"


def run_hostile_suite(
    report_dir: Path,
    behaviours: Mapping[str, str],
    *args: str,
    profile: Path,
    timeout: float = 300,
) -> SuiteRun:
    """The conformance suite (narrowed by `args`) against a hostile provider started here."""
    with start_hostile(behaviours, config=profile) as hostile:
        started = time.monotonic()
        process, results = run_suite(
            report_dir, "--ciba-config", str(profile), *args,
            issuer=hostile.issuer, timeout=timeout,
        )
        wall = time.monotonic() - started
        hits, errors = list(hostile.hits), list(hostile.errors)
    return SuiteRun(
        behaviours, process.returncode, process.stdout + process.stderr, results, report_dir,
        wall, hits, errors,
    )


@dataclass(frozen=True)
class Case:
    """One hostile configuration and the part of the suite run against it."""

    id: str
    behaviours: tuple[tuple[str, str], ...]
    args: tuple[str, ...]
    expect: tuple[str, ...] = ()  # requirement IDs or words of a reason; () = no failure

    @classmethod
    def of(
        cls, endpoint: str, behaviour: str, selection: tuple[tuple[str, ...], str], *expect: str
    ) -> Case:
        files, keywords = selection
        return cls(
            f"{endpoint}-{behaviour.replace(':', '_').replace(',', '+')}",
            ((endpoint, behaviour),),
            (*(str(CONFORMANCE / f) for f in files), "-k", keywords),
            expect,
        )


def run_cases(
    cases: Sequence[Case],
    directory: Path,
    *,
    profile: Path,
    processes: int = RUNNERS,
    timeout: float = 600,
) -> dict[str, SuiteRun]:
    """Each case against its own hostile server, the sessions shared out over a few
    `session_runner.py` processes (they mostly wait on timeouts; imports are paid once each)."""
    directory.mkdir(parents=True, exist_ok=True)
    servers = {}
    try:
        for case in cases:
            servers[case.id] = start_hostile(dict(case.behaviours), config=profile)
        specs = [
            {
                "id": case.id,
                "issuer": servers[case.id].issuer,
                "report_dir": str(directory / case.id),
                "output": str(directory / f"{case.id}.out"),
                "args": ["--ciba-config", str(profile), *case.args],
            }
            for case in cases
        ]
        records = directory / "records.jsonl"
        children = []
        for index in range(processes):
            chunk = specs[index::processes]
            if not chunk:
                continue
            spec_file = directory / f"runner-{index}.json"
            spec_file.write_text(json.dumps(chunk), encoding="utf-8")
            log = open(directory / f"runner-{index}.log", "wb")  # noqa: SIM115 (closed below)
            children.append(
                (
                    subprocess.Popen(
                        [sys.executable, str(RUNNER), str(spec_file), str(records)],
                        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                    ),
                    log,
                )
            )
        deadline = time.monotonic() + timeout
        for child, log in children:
            try:
                child.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
            finally:
                log.close()
    finally:
        for server in servers.values():
            server.stop()
    done = {}
    if records.exists():
        for line in records.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            done[record["id"]] = record
    runs = {}
    for case in cases:
        report_dir = directory / case.id
        output_file = directory / f"{case.id}.out"
        results_file = report_dir / "results.json"
        record = done.get(case.id, {"returncode": -2, "wall": float("inf")})
        server = servers[case.id]
        runs[case.id] = SuiteRun(
            dict(case.behaviours),
            int(record["returncode"]),
            output_file.read_text(encoding="utf-8", errors="replace")
            if output_file.exists()
            else "(the session never ran)",
            json.loads(results_file.read_text(encoding="utf-8"))
            if results_file.exists()
            else None,
            report_dir,
            float(record["wall"]),
            list(server.hits),
            list(server.errors),
        )
    return runs


def robustness_problems(
    run: SuiteRun,
    *,
    request_timeout: float = REQUEST_TIMEOUT,
    max_wait: float = MAX_WAIT,
) -> list[str]:
    """Everything that makes the run not bounded, not clear or not complete."""
    problems: list[str] = []
    if run.results is None:
        return [f"no results.json in {run.report_dir}"]
    if not (run.report_dir / "report.html").is_file():
        problems.append("no report.html")
    json.loads((run.report_dir / "results.json").read_text(encoding="utf-8"))
    for marker in ("INTERNALERROR", "Traceback (most recent call last)"):
        if marker in run.output:
            problems.append(f"{marker} in the output")
    if run.returncode not in (0, 1) or run.results.get("exitstatus") != run.returncode:
        problems.append(
            f"exit code {run.returncode} (results.json says {run.results.get('exitstatus')})"
        )
    if run.server_errors:
        problems.append(f"the hostile server failed: {run.server_errors[:3]}")
    bound = STARTUP + len(run.tests) * (3 * request_timeout + max_wait)
    if run.wall > bound:
        problems.append(f"the run took {run.wall:.1f} s, more than {bound:.0f} s")
    # The aim (request_timeout + SLACK) is measured on a quiet machine by measure.py; here each
    # case's expected text proves which deadline ended an exchange (an answer 2.7 s late on a
    # loaded box was seen once).
    limit_ms = (request_timeout + SLACK + LOAD_SLACK) * 1000
    for exchange in run.exchanges():
        if exchange["elapsed_ms"] > limit_ms:
            problems.append(
                f"{exchange['label']} {exchange['request']['url']} took "
                f"{exchange['elapsed_ms']:.0f} ms (> {limit_ms:.0f})"
            )
    for test in run.failures:
        failure = test.get("failure")
        if not failure or not failure.get("title"):
            problems.append(f"{test['nodeid']}: {test['outcome']} without a stated reason")
            continue
        kind = failure.get("kind")
        if kind not in VERDICT_KINDS | HARNESS_KINDS:
            problems.append(f"{test['nodeid']}: harness error {kind}: {failure['title']}")
        elif failure.get("requirement") is None and kind not in HARNESS_KINDS:
            problems.append(f"{test['nodeid']}: verdict {kind} names no requirement")
    return problems


PREFLIGHT = "ERROR: ciba-harness: "


def preflight_lines(run: SuiteRun) -> list[str]:
    """The plugin's preflight refusal (one usage error line), if the run was refused."""
    return [line for line in run.output.splitlines() if line.startswith(PREFLIGHT)]


def refused_before_running(run: SuiteRun) -> bool:
    """pytest stopped with a usage error (exit 4) before any test: the preflight's verdict."""
    return run.returncode == 4 and run.results is None and bool(preflight_lines(run))


def _texts(failure: dict[str, Any]) -> str:
    return (
        f"[{failure.get('requirement')}] {failure.get('kind')}: {failure.get('title')} "
        f"{failure.get('actual') or ''} {failure.get('message') or ''}"
    )


def failure_texts(run: SuiteRun) -> list[str]:
    """Requirement, kind, title and details of every failed test and failed check."""
    texts = [_texts(t.get("failure") or {}) for t in run.failures]
    for test in run.tests:
        for check in test.get("checks", []):
            failure = check.get("failure")
            if failure and not check.get("passed"):
                texts.append(_texts(failure))
    return texts


def mentions(run: SuiteRun, expected: Iterable[str]) -> bool:
    """Some failure names one of `expected` (a requirement ID or words of its reason)."""
    texts = failure_texts(run)
    return any(word in text for text in texts for word in expected)
