"""Short Locust runs against the reference provider, each in its own processes.

Locust gevent-patches whatever imports it, so these tests only start it as a subprocess
(`python -m ciba_harness.load`, which starts the provider too, or `python -m locust`).
Every run is bounded by -t and by a subprocess timeout.
"""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ciba_harness.load._embedded import EmbeddedProvider

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "load" / "locustfile.py"
TIMEOUT = 90


def _wrapper(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ciba_harness.load", "--csv", str(tmp_path / "run"),
               "--html", str(tmp_path / "run.html"), "--only-summary", *args]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
                          env=_env())


def _env() -> dict[str, str]:
    env = os.environ.copy()
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)
    return env


def _stats(prefix: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as handle:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}


def _failures(prefix: Path) -> list[dict[str, str]]:
    with open(f"{prefix}_failures.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _show(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-6000:]}"


def test_mixed_profile_headless_run_is_clean(tmp_path: Path) -> None:
    """Every scenario for 8 s: HTTP rows, CIBA rows per mode, zero failures, gate passes."""
    result = _wrapper(
        tmp_path, "-u", "24", "-r", "24", "-t", "8s", "--ciba-time-scale", "0.1",
        "--ciba-eager-share", "0.5", "--ciba-polling-hold", "uniform:1,3",
        "--ciba-max-fail-ratio", "0", "--ciba-p95-time-to-token-ms", "8000", "--ciba-min-flows", "10",
    )
    assert result.returncode == 0, _show(result)
    stats = _stats(tmp_path / "run")
    names = {name for _, name in stats}
    assert {"backchannel", "token", "token pending"} <= names
    for mode in ("poll", "ping", "push"):
        row = stats[("CIBA", f"time_to_tokens {mode}")]
        assert int(row["Request Count"]) > 0 and row["Failure Count"] == "0", row
    for mode in ("ping", "push"):
        assert int(stats[("CIBA", f"notification_latency {mode}")]["Request Count"]) > 0
    profiles = {name.split()[-1] for name in names if name.startswith("time_to_tokens ")}
    assert profiles & {"callcentre", "pos", "iot"}, names  # the named profiles' own rows
    assert int(stats[("CIBA", "polls_per_flow poll")]["Request Count"]) > 0
    storm = [n for n in names if n.startswith("backchannel ") and n != "backchannel invalid"]
    assert {"backchannel client_secret_basic", "backchannel private_key_jwt RS256",
            "backchannel signed RS256"} <= set(storm)
    assert int(stats[("POST", "backchannel invalid")]["Request Count"]) > 0
    assert int(stats[("CIBA", "slow_down polling")]["Request Count"]) > 0  # eager polls
    assert all(row["Failure Count"] == "0" for row in stats.values()), _failures(tmp_path / "run")
    verdicts = json.loads((tmp_path / "run_slo.json").read_text())
    assert verdicts["passed"] is True
    assert (tmp_path / "run.html").stat().st_size > 10_000


def test_provider_fault_breaks_the_gate_with_ciba_codes(tmp_path: Path) -> None:
    """A provider that re-issues auth_req_ids: duplicates are found and the gate exits 3."""
    result = _wrapper(
        tmp_path, "--provider-fault", "auth_req_id_reused", "--ciba-mix", "poll",
        # approvals wait 2 s: requests stay pending, so identical ones meet within the fault's
        # reuse window even when a loaded machine spreads the users out
        "--ciba-approval-delay", "fixed:2",
        "-u", "6", "-r", "6", "-t", "5s", "--ciba-max-fail-ratio", "0.01",
    )
    assert result.returncode == 3, _show(result)
    assert "CIBA SLO gate" in result.stderr and "FAIL" in result.stderr
    errors = {(row["Name"], row["Error"]) for row in _failures(tmp_path / "run")}
    assert ("duplicate_auth_req_id", "CibaError('duplicate_auth_req_id')") in errors
    assert json.loads((tmp_path / "run_slo.json").read_text())["passed"] is False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _distributed(tmp_path: Path, issuer: str, *master_args: str) -> tuple[int, str, str, list[str]]:
    """A --master expecting two --worker processes on loopback, all bounded by TIMEOUT;
    returns the master's exit status, stdout and stderr, and each worker's stderr."""
    port = _free_port()
    locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    master = subprocess.Popen(
        [*locust, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
         "--expect-workers", "2", "--headless", "--ciba-issuer", issuer,
         "--csv", str(tmp_path / "dist"), "--only-summary", *master_args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    workers = [
        subprocess.Popen(
            [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        )
        for _ in range(2)
    ]
    try:
        out, err = master.communicate(timeout=TIMEOUT)
        worker_logs = [w.communicate(timeout=30)[1] for w in workers]
    finally:
        for process in (master, *workers):
            if process.poll() is None:
                process.kill()
                process.wait(5)
    return master.returncode, out, err, worker_logs


def test_master_and_two_workers_aggregate(tmp_path: Path) -> None:
    """--master with two --worker processes on loopback, in the open model: both workers run
    flows, their ping/push callbacks reach them through one registered receiver, and the
    master's CSV holds the sum of what the workers counted."""
    with EmbeddedProvider() as provider:
        returncode, out, err, worker_logs = _distributed(
            tmp_path, provider.issuer, "-u", "12", "-r", "12", "-t", "10s", "--ciba-mix", "flows",
            "--ciba-arrival-rate", "8", "--ciba-max-fail-ratio", "0",
        )
    assert returncode == 0, f"{out[-2000:]}\n{err[-4000:]}\n" + "\n".join(
        f"--- worker {index}\n{log[-3000:]}" for index, log in enumerate(worker_logs)
    )
    tokens, forwarded = [], 0
    for log in worker_logs:
        found = re.findall(r"ciba-load worker summary: flows started (\d+), tokens (\d+)", log)
        assert found, log[-3000:]
        started, issued = map(int, found[-1])
        assert issued > 0, log[-3000:]
        tokens.append(issued)
        forwarded += int(re.findall(r"\(forwarded (\d+)\)", log)[-1])
    assert forwarded > 0  # one receiver is registered; it forwards the other worker's callbacks
    stats = _stats(tmp_path / "dist")
    aggregated = sum(
        int(stats[("CIBA", f"time_to_tokens {mode}")]["Request Count"])
        for mode in ("poll", "ping", "push") if ("CIBA", f"time_to_tokens {mode}") in stats
    )
    assert aggregated == sum(tokens)
    lag = stats[("CIBA", "arrival_lag")]
    # 8 flows/s for at most 10 s, shared by two workers (4/s each; each worker's set-up
    # eats into the run time)
    assert 15 <= int(lag["Request Count"]) <= 110, lag


@pytest.mark.parametrize("shape", ["spike"])
def test_load_shape_file_drives_the_run(tmp_path: Path, shape: str) -> None:
    """load/shapes.py next to the locustfile: the shape sets the users and ends the run."""
    result = _wrapper(
        tmp_path, "-f", f"{LOCUSTFILE},{REPO / 'load' / 'shapes.py'}", "--ciba-shape", shape,
        "--ciba-mix", "poll", "-u", "10", "-r", "10", "-t", "5s",
    )
    assert result.returncode == 0, _show(result)
    assert re.search(r"Shape test (starting|updating)", result.stderr), result.stderr[-3000:]
    stats = _stats(tmp_path / "run")
    assert int(stats[("POST", "backchannel")]["Request Count"]) > 0


def test_capacity_search_against_the_embedded_provider(tmp_path: Path) -> None:
    """A short capacity search (a few steps of a few seconds): it ends by itself within its
    bounds and the report holds the capacity, the knee (or why there is none), the step
    table and the chart."""
    max_steps, step_time = 4, 4.0
    started = time.monotonic()
    result = _wrapper(
        tmp_path, "--ciba-find-capacity", "-t", "30s", "--ciba-mix", "poll", "--ciba-approval-delay", "fixed:0.1",
        "--ciba-deny-share", "0", "--ciba-expire-share", "0",
        "--ciba-capacity-start", "5", "--ciba-capacity-growth", "4",
        "--ciba-capacity-step-time", str(step_time), "--ciba-capacity-settle", "1.5",
        "--ciba-capacity-max-steps", str(max_steps), "--ciba-p95-time-to-token-ms", "1500",
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, _show(result)
    assert elapsed < 60, elapsed
    capacity = json.loads((tmp_path / "load-summary.json").read_text())["capacity"]
    steps = capacity["steps"]
    assert 1 <= len(steps) <= max_steps
    # each step ends on a 1 s tick; a failed step is followed by a pause of at most a step
    assert capacity["elapsed_s"] <= min(30.0, max_steps * (2 * step_time + 1.0)) + 2
    assert steps[0]["rate"] == 5.0
    if len(steps) > 1:  # by the growth factor: up after a passing step, down after a failing one
        assert steps[1]["rate"] == (20.0 if steps[0]["passed"] else 1.25), steps
    assert all(s["flows"] > 0 and s["measured_seconds"] >= step_time - 1.5 - 0.5 for s in steps)
    passed = [s["rate"] for s in steps if s["passed"] and not s["generator_limited"]]
    failed = [s["rate"] for s in steps if not s["passed"] and not s["generator_limited"]]
    assert capacity["capacity_flows_per_s"] == (max(passed) if passed else None)
    assert capacity["knee_flows_per_s"] == (min(failed) if failed else None)
    assert capacity["stop_reason"] in {"found", "max_steps", "time_budget", "generator_saturated"}
    if capacity["knee_flows_per_s"] is not None and capacity["capacity_flows_per_s"] is not None:
        assert capacity["capacity_flows_per_s"] < capacity["knee_flows_per_s"]
        assert capacity["limited_by"] == "provider"
    if capacity["stop_reason"] == "generator_saturated":
        assert capacity["limited_by"] == "generator" and "generator" in capacity["verdict"]
    assert "capacity search:" in result.stderr
    html = (tmp_path / "ciba-load-report.html").read_text("utf-8")
    assert 'id="capacity"' in html and "Offered flows/s" in html
    assert 'alt="capacity search: offered rate against latency and errors"' in html


def test_capacity_search_with_a_master_and_two_workers(tmp_path: Path) -> None:
    """The search on the master: each step's rate reaches both workers (each takes half),
    the steps are judged on the merged stats, and the workers' CPU is in the figures."""
    with EmbeddedProvider() as provider:
        returncode, _, err, worker_logs = _distributed(
            tmp_path, provider.issuer, "-u", "4", "-t", "30s", "--ciba-mix", "poll",
            "--ciba-find-capacity", "--ciba-approval-delay", "fixed:0.1", "--ciba-deny-share", "0",
            "--ciba-expire-share", "0", "--ciba-capacity-start", "4", "--ciba-capacity-growth", "3",
            "--ciba-capacity-step-time", "6", "--ciba-capacity-settle", "2",
            "--ciba-capacity-max-steps", "3", "--ciba-p95-time-to-token-ms", "5000",
        )
    shown = f"{err[-4000:]}\n" + "\n".join(log[-2000:] for log in worker_logs)
    assert returncode == 0, shown
    final = json.loads((tmp_path / "dist_final.json").read_text())
    capacity = final["capacity"]
    assert capacity["processes"] == 2, shown
    steps = capacity["steps"]
    assert 1 <= len(steps) <= 3 and steps[0]["rate"] == 4.0, steps
    assert all(step["flows"] > 0 for step in steps), steps
    if len(steps) > 1 and steps[1]["rate"] > steps[0]["rate"]:
        assert steps[1]["achieved_rate"] > steps[0]["achieved_rate"], steps
    assert any(step["generator_cpu"] is not None for step in steps), steps
    assert len(final["generator"]["processes"]) == 2  # one row per worker
    for log in worker_logs:
        tokens = re.findall(r"ciba-load worker summary: flows started \d+, tokens (\d+)", log)
        assert tokens and int(tokens[-1]) > 0, log[-2000:]


def test_run_budget_caps_the_run_time(tmp_path: Path) -> None:
    """--ciba-run-timeout (else [budgets] run_timeout) bounds a load run: -t 60s stops at 4 s."""
    started = time.monotonic()
    result = _wrapper(tmp_path, "--ciba-mix", "poll", "-u", "2", "-r", "2", "-t", "60s",
                      "--ciba-run-timeout", "4")
    assert result.returncode == 0, _show(result)
    assert "exceeds the run budget" in result.stderr
    assert re.search(r"Run time limit set to 4 seconds", result.stderr), result.stderr[-3000:]
    assert time.monotonic() - started < 40
