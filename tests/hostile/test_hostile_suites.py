"""Whole suites against a hostile provider: the complete conformance suite against a provider
that misbehaves now and then on every endpoint, the fuzz suites, and short load runs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_helpers import (
    budget_profile,
    failure_texts,
    robustness_problems,
    run_hostile_suite,
)

from ciba_harness.hostile import HostileProvider, start_hostile

# Every endpoint misbehaves now and then, in a fixed cycle: the run is a mix of verdicts.
CHAOS = {
    "token": "ok,ok,ok,trickle,ok,html,ok,reset,*",
    "backchannel": "ok,ok,ok,ok,ok,ok,hang,ok,not_json,*",
    "jwks": "status_500,ok,*",  # the JWKS is fetched again only after a failure
    "notification": "ok,twice,ok,never,*",
}


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return budget_profile(tmp_path_factory.mktemp("profile"))


def test_whole_suite_against_a_chaotic_provider(profile: Path, tmp_path: Path) -> None:
    run = run_hostile_suite(tmp_path / "report", CHAOS, "-m", "not fuzz", profile=profile)
    problems = robustness_problems(run)
    assert not problems, "\n".join(problems[:30]) + "\n" + run.describe()
    assert run.returncode == 1
    assert run.results is not None
    counts = run.results["summary"]["tests"]
    assert counts["passed"] > 50 and counts["failed"] + counts["error"] > 20, counts
    texts = " ".join(failure_texts(run))
    # Which test meets which misbehaviour depends on the order of requests; these are met
    # by many tests each, whatever the order.
    for cause in ("no complete answer within 1 s", "no answer within 1 s", "Connection reset",
                  "is not usable: 500", "CIBA-ACK-03"):
        assert cause in texts, f"{cause!r} never reported\n{run.describe()}"
    assert run.results["summary"]["requirements"]["fail"] > 10


def test_fuzz_suites_against_a_hostile_provider(profile: Path, tmp_path: Path) -> None:
    # Deterministic misbehaviour: Hypothesis replays examples and expects the same answer.
    behaviours = {"backchannel": "html", "token": "reset"}
    started = time.monotonic()
    run = run_hostile_suite(
        tmp_path / "report", behaviours, "-m", "fuzz", "--ciba-fuzz-profile", "ciba-ci",
        "--ciba-fuzz-seconds", "3", profile=profile,
    )
    problems = robustness_problems(run)
    assert not problems, "\n".join(problems[:30]) + "\n" + run.describe()
    assert run.returncode == 1, run.describe()
    assert run.failures, run.describe()
    for test in run.failures:
        assert (test.get("failure") or {}).get("requirement"), run.describe()
    assert time.monotonic() - started < 240, run.describe()


# --- load ------------------------------------------------------------------------------------


def _load(profile: Path, hostile: HostileProvider, directory: Path, *args: str):
    directory.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "LOCUST_SKIP_MONKEY_PATCH"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "ciba_harness.load", "--ciba-config", str(profile),
         "--ciba-issuer", hostile.issuer, "--csv", str(directory / "run"),
         "--html", str(directory / "run.html"), "--only-summary", *args],
        capture_output=True, text=True, timeout=400, cwd=directory, env=env,
    )
    return result, time.monotonic() - started


@pytest.fixture
def hostile_for_load(profile: Path) -> Iterator[HostileProvider]:
    behaviours = {
        "token": "ok,hang,status_500,*",
        "backchannel": "ok,html,*",
        "notification": "ok,never,*",
    }
    with start_hostile(behaviours, config=profile) as hostile:
        yield hostile


def test_load_run_counts_the_misbehaviour(
    profile: Path, hostile_for_load: HostileProvider, tmp_path: Path
) -> None:
    result, wall = _load(
        profile, hostile_for_load, tmp_path, "-u", "6", "-r", "6", "-t", "6s", "--ciba-mix",
        "flows", "--ciba-max-fail-ratio", "0", "--ciba-id-token-sample", "1",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output[-4000:]  # the SLO gate failed
    assert "Traceback" not in output, output[-4000:]
    assert wall < 6 + 60
    with open(tmp_path / "run_stats.csv", newline="") as handle:
        stats = {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}
    assert int(stats[("POST", "token")]["Failure Count"]) > 0
    assert int(stats[("POST", "backchannel")]["Failure Count"]) > 0
    with open(tmp_path / "run_failures.csv", newline="") as handle:
        errors = " ".join(row["Error"] for row in csv.DictReader(handle))
    for code in ("http_500", "malformed_acknowledgement", "timed out"):
        assert code in errors, errors
    with open(tmp_path / "run_exceptions.csv", newline="") as handle:
        assert list(csv.DictReader(handle)) == []  # no exception inside the load users


@pytest.mark.parametrize(
    "behaviour", ["discovery=trickle_headers", "discovery=deep_json", "jwks=hang"]
)
def test_load_setup_against_a_hostile_provider_stops_with_one_message(
    profile: Path, tmp_path: Path, behaviour: str
) -> None:
    with start_hostile([behaviour], config=profile) as hostile:
        result, wall = _load(profile, hostile, tmp_path, "-u", "2", "-r", "2", "-t", "300s")
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    ours = [line for line in result.stderr.splitlines() if line.startswith("ciba-harness load: ")]
    assert ours, output[-3000:]
    assert wall < 120, "the setup failure did not end the run"
