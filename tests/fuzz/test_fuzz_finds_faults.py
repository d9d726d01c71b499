"""The fuzz suites find injected faults and shrink them to a minimal reproducer.

The fuzz tests run as pytest subprocesses (profile ciba-ci: derandomized) against tenants of
one reference provider: without a fault both pass; with a fault that accepts invalid input
or mishandles a transaction, the right test fails, the failure names the fault's
requirement, and the printed reproducer is the minimal request (or the shortest sequence of
steps). The runs go in parallel and once per module; each test then reads its result.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from ciba_harness import default_profile_path, load_config
from ciba_harness.provider import FAULTS, RunningProvider, start_provider

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO / "conformance"
PARALLEL = 4
AUTH_FIELDS = {"client_id", "client_secret", "client_assertion", "client_assertion_type"}
SECRETS = [c.client_secret for c in load_config(default_profile_path()).clients if c.client_secret]


@dataclass(frozen=True)
class Scenario:
    fault: str | None
    file: str
    select: str = ""  # -k expression


SCENARIOS = {
    "faultless": Scenario(None, "test_fuzz.py test_state_machine.py"),
    "no_hint": Scenario("no_hint_accepted", "test_fuzz.py", "backchannel"),
    "missing_scope": Scenario("missing_scope_accepted", "test_fuzz.py", "backchannel"),
    "multiple_hints": Scenario("multiple_hints_accepted", "test_fuzz.py", "backchannel"),
    "repeated_param": Scenario("repeated_param_accepted", "test_fuzz.py", "backchannel"),
    "bad_charset": Scenario("auth_req_id_bad_charset", "test_fuzz.py", "backchannel"),
    "low_entropy": Scenario("auth_req_id_low_entropy", "test_fuzz.py", "backchannel"),
    "error_status": Scenario("invalid_request_wrong_status", "test_fuzz.py", "backchannel"),
    "guess_pending": Scenario("unknown_auth_req_id_pending", "test_fuzz.py", "token"),
    "reusable": Scenario("reusable_auth_req_id", "test_state_machine.py"),
    "cross_client": Scenario("cross_client_redeem", "test_state_machine.py"),
    "denial": Scenario("denial_as_pending", "test_state_machine.py"),
    "never_expires": Scenario("never_expires", "test_state_machine.py"),
}


@dataclass
class Outcome:
    returncode: int
    output: str
    results: dict[str, Any] | None

    @property
    def failures(self) -> list[dict[str, Any]]:
        if self.results is None:
            return []
        return [t for t in self.results["tests"] if t.get("outcome") in {"failed", "error"}]

    def only_failure(self) -> dict[str, Any]:
        assert self.results is not None, self.output[-3000:]
        assert len(self.failures) == 1, self.output[-3000:]
        failure = self.failures[0]["failure"]
        assert failure is not None
        return dict(failure)

    def minimal_request(self) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """(authentication parameters, headers) of the minimal failing request."""
        request = self.only_failure()["exchanges"][-1]["request"]
        fields = parse_qsl(request["body"], keep_blank_values=True)
        return [(k, v) for k, v in fields if k not in AUTH_FIELDS], request["headers"]

    def steps(self) -> list[str]:
        """The steps of the shrunk program printed last (invariant checks left out): Hypothesis'
        own, or the smallest failing program seen when Hypothesis could not replay one."""
        fallback = "Its steps:" in self.output
        marker = "Its steps:" if fallback else "state = CibaTransactions()"
        steps = []
        for line in self.output.rsplit(marker, 1)[-1].splitlines()[1:]:
            match = re.match(r"^[E|\s]*(?:\w+ = )?state\.(\w+)\(", line)
            if match is None:
                if fallback:
                    break
                continue  # notes of the program (tx: client, expires_in…) between steps
            if match.group(1) == "teardown":
                break
            if match.group(1) != "model_invariants":
                steps.append(match.group(1))
        return steps


def _run(provider: RunningProvider, name: str, scenario: Scenario, out: Path) -> Outcome:
    issuer = provider.issuer + (f"/fault/{scenario.fault}" if scenario.fault else "")
    command = [
        sys.executable, "-m", "pytest",
        *[str(CONFORMANCE / f) for f in scenario.file.split()],
        "-p", "no:locust", "-p", "no:cacheprovider", "-q", "--tb=short",
        "--ciba-report", str(out / name), "--ciba-issuer", issuer,
        # The whole derandomized example budget, however loaded the machine: deterministic.
        "--ciba-fuzz-profile", "ciba-ci", "--ciba-fuzz-seconds", "600",
    ]
    if scenario.select:
        command += ["-k", scenario.select]
    process = subprocess.run(
        command, capture_output=True, text=True, cwd=REPO, timeout=900,
        env={**__import__("os").environ, "PYTEST_ADDOPTS": ""},
    )
    results_file = out / name / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else None
    return Outcome(process.returncode, process.stdout + process.stderr, results)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    out = tmp_path_factory.mktemp("fuzz-proof")
    provider = start_provider(default_profile_path(), fault_tenants=True)
    try:
        with ThreadPoolExecutor(PARALLEL) as pool:
            futures = {
                name: pool.submit(_run, provider, name, scenario, out)
                for name, scenario in SCENARIOS.items()
            }
            yield {name: future.result() for name, future in futures.items()}
    finally:
        provider.stop()


def _fails_for(
    outcome: Outcome, fault: str, test: str, *, reproducer: bool = True
) -> dict[str, Any]:
    failure = outcome.only_failure()
    assert outcome.failures[0]["nodeid"].endswith(test), outcome.output[-3000:]
    assert failure["requirement"] == FAULTS[fault].requirement, outcome.output[-3000:]
    if reproducer:  # the report ends with the minimal example's curl command
        assert "Reproduce with:" in outcome.output and "curl -i -X" in outcome.output
    assert not any(secret in outcome.output for secret in SECRETS)
    return failure


def test_without_a_fault_the_fuzz_suites_pass(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["faultless"]
    assert outcome.returncode == 0, outcome.output[-4000:]
    assert outcome.results is not None
    assert outcome.results["summary"]["tests"]["passed"] == 3


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("no_hint", [("scope", "openid")]),
        ("missing_scope", [("login_hint", "alice")]),
    ],
)
def test_a_missing_parameter_is_shrunk_to_the_request_without_it(
    outcomes: dict[str, Outcome], name: str, expected: list[tuple[str, str]]
) -> None:
    outcome = outcomes[name]
    scenario = SCENARIOS[name]
    assert scenario.fault is not None
    _fails_for(outcome, scenario.fault, "test_backchannel_requests")
    params, _ = outcome.minimal_request()
    assert params == expected


def test_several_hints_shrink_to_two_hints(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["multiple_hints"]
    _fails_for(outcome, "multiple_hints_accepted", "test_backchannel_requests")
    names = [k for k, _ in outcome.minimal_request()[0]]
    hints = [n for n in names if n in {"login_hint", "login_hint_token", "id_token_hint"}]
    assert len(hints) == 2 and set(names) - set(hints) <= {"scope"}


def test_a_repeated_parameter_shrinks_to_one_repeat(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["repeated_param"]
    _fails_for(outcome, "repeated_param_accepted", "test_backchannel_requests")
    params, headers = outcome.minimal_request()
    counts = Counter(k for k, _ in params)
    assert max(counts.values()) == 2 and len(params) <= 3, params


@pytest.mark.parametrize(
    ("name", "test"),
    [
        ("bad_charset", "test_backchannel_requests"),
        ("low_entropy", "test_backchannel_requests"),
        ("error_status", "test_backchannel_requests"),
        ("guess_pending", "test_token_requests"),
    ],
)
def test_response_faults_are_found(outcomes: dict[str, Outcome], name: str, test: str) -> None:
    scenario = SCENARIOS[name]
    assert scenario.fault is not None
    # Entropy is judged over all issued ids together: no single request to reproduce.
    _fails_for(outcomes[name], scenario.fault, test, reproducer=name != "low_entropy")


@pytest.mark.parametrize(
    ("name", "steps"),
    [
        ("reusable", ["begin", "approve", "redeem", "redeem_again"]),
        ("cross_client", None),
        ("denial", ["begin", "deny", "poll_finished"]),
        ("never_expires", None),
    ],
)
def test_the_state_machine_shrinks_to_the_shortest_sequence(
    outcomes: dict[str, Outcome], name: str, steps: list[str] | None
) -> None:
    outcome = outcomes[name]
    scenario = SCENARIOS[name]
    assert scenario.fault is not None
    _fails_for(outcome, scenario.fault, "test_transaction_state_machine")
    found = outcome.steps()
    if name == "cross_client":  # another client polls a pending or approved transaction
        assert found[0] == "begin" and found[-1].startswith("poll_") and len(found) <= 3, found
    elif name == "never_expires":
        # Every replay sleeps until expiry, so shrinking is time-boxed (machine_shrink_sleep):
        # the program may keep a few extra steps, but it ends by letting a short one expire.
        assert found[0] == "begin" and "start_short" in found and found[-1] == "let_expire"
        assert len(found) <= 10, found
    else:
        assert found == steps, outcome.output[-3000:]
