"""Load report accuracy (issue 13 item 10): rows keyed by their full name, counts from
Locust's final stats, the SLO gate after the last request, verdicts in the report, and a
failed setup that leaves the last report alone."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

from ciba_harness.reports import load_summary, write_load_report

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 90
HEADER = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time",
          "Average Response Time", "Min Response Time", "Max Response Time",
          "Average Content Size", "Requests/s", "Failures/s", "50%", "95%", "99%"]


def _stats_csv(prefix: Path, rows: list[tuple[str, str, int, int, float]]) -> None:
    with open(f"{prefix}_stats.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for kind, name, count, failures, p50 in rows:
            writer.writerow([kind, name, count, failures, p50, p50, p50, p50 * 2, 0, 1.0, 0.0,
                             p50, p50 * 1.5, p50 * 2])


def test_rows_are_keyed_by_their_full_name(tmp_path: Path) -> None:
    """`time_to_tokens ping pos` no longer overwrites `time_to_tokens ping`."""
    prefix = tmp_path / "run"
    _stats_csv(prefix, [("CIBA", "time_to_tokens ping", 12, 0, 1300.0),
                        ("CIBA", "time_to_tokens ping pos", 2, 0, 2600.0),
                        ("CIBA", "notification_latency ping", 12, 0, 40.0)])
    summary = load_summary(prefix)
    rows = summary["ciba"]["time_to_tokens"]
    assert set(rows) == {"ping", "ping pos"}
    assert rows["ping"]["count"] == 12 and rows["ping"]["p50"] == 1300.0
    assert rows["ping pos"]["count"] == 2 and rows["ping pos"]["p50"] == 2600.0
    html = write_load_report(prefix, tmp_path / "load.html").read_text("utf-8")
    assert "<td>ping</td><td class=num>12</td>" in html
    assert "<td>ping pos</td><td class=num>2</td>" in html


def test_final_stats_replace_the_csv_counts_and_verdicts_are_shown(tmp_path: Path) -> None:
    prefix = tmp_path / "run"
    _stats_csv(prefix, [("POST", "backchannel", 308, 0, 3.0)])
    final = {
        "format": "ciba-harness-load-final/1",
        "stats": [{"type": "POST", "name": "backchannel", "count": 339, "failures": 1,
                   "average": 3.0, "max": 9.0, "rps": 33.9, "p50": 3.0, "p95": 5.0, "p99": 8.0}],
        "errors": [{"Method": "POST", "Name": "backchannel",
                    "Error": "CibaError('invalid_client', status=401)", "Occurrences": 1}],
        "slo": {"passed": False, "thresholds": {"max_fail_ratio": 0.0},
                "verdicts": [{"row": "POST backchannel", "measure": "failure ratio",
                              "value": 0.00295, "limit": 0.0, "passed": False}]},
        "generator": {"processes": [{"process": "local", "cpu_s": 2.0, "wall_s": 10.0,
                                     "cpu_share": 0.2}], "cpu_ms_per_flow": 1.25, "flows": 1600,
                      "flows_per_cpu_s": 800.0, "warning": None},
        "capacity": None,
        "workload": {"model": "closed"},
    }
    Path(f"{prefix}_final.json").write_text(json.dumps(final))
    out = write_load_report(prefix, tmp_path / "load.html")
    summary = json.loads((tmp_path / "load-summary.json").read_text("utf-8"))
    assert summary["requests"]["POST backchannel"]["count"] == 339
    assert summary["counts_from"] == "locust final stats"
    assert summary["ciba"]["errors"] == {"invalid_client": 1}
    assert summary["slo"]["passed"] is False
    assert summary["slo"]["verdicts"][0]["row"] == "POST backchannel"
    html = out.read_text("utf-8")
    assert 'id="slo"' in html and "<strong>FAIL</strong>" in html and "failure ratio" in html
    assert "1.25 ms" in html  # the generator's CPU per flow


def _env() -> dict[str, str]:
    env = os.environ.copy()
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)
    return env


def _wrapper(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ciba_harness.load", "--csv", str(tmp_path / "run"),
               "--html", str(tmp_path / "run.html"), "--only-summary", *args]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
                          env=_env())


def test_report_counts_are_locusts_final_counts_and_a_failed_setup_keeps_the_report(
    tmp_path: Path,
) -> None:
    """A storm (requests until the very end) with Locust's own --json-file beside: every
    row of load-summary.json has Locust's final count (the CSV, rewritten once a second,
    held 8 of 199 in one such run). Then `--ciba-mix bogus` exits 2 and leaves the report and
    the summary as they were."""
    result = _wrapper(
        tmp_path, "--ciba-mix", "storm", "--ciba-storm-rate", "0", "--ciba-invalid-share", "0",
        "-u", "4", "-r", "4", "-t", "4s", "--json-file", str(tmp_path / "locust"),
        "--ciba-max-fail-ratio", "0",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    locust_final = {f"{row['method']} {row['name']}": row["num_requests"]
                    for row in json.loads((tmp_path / "locust.json").read_text())}
    assert sum(locust_final.values()) > 50, locust_final  # requests flowed until the end
    summary_path = tmp_path / "load-summary.json"
    summary = json.loads(summary_path.read_text())
    ours = {key: row["count"] for key, row in summary["requests"].items() if key != "Aggregated"}
    assert ours == locust_final
    # -t is the run's length: gevent's clock no longer stands still during the start-up
    stamps = [datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f") for line in result.stderr.splitlines()
              if "Run time limit set" in line or "--run-time limit reached" in line]
    assert len(stamps) == 2 and (stamps[1] - stamps[0]).total_seconds() >= 3.8, result.stderr[-3000:]
    assert summary["slo"]["passed"] is True  # the verdicts travel into the summary
    report = tmp_path / "ciba-load-report.html"
    before = (report.read_bytes(), summary_path.read_bytes())

    failed = _wrapper(tmp_path, "--ciba-mix", "bogus", "-u", "2", "-t", "3s")
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert "--ciba-mix" in failed.stderr
    assert (report.read_bytes(), summary_path.read_bytes()) == before


CHILD = textwrap.dedent(
    """
    import locust  # first: gevent patches before anything imports ssl
    import argparse, json, types
    import gevent
    import ciba_harness.load.users as users
    from ciba_harness.load import add_arguments
    from locust.runners import STATE_RUNNING

    order = []

    class Stats:
        def __init__(self):
            self.entries, self.errors = {}, {}
            self.total = types.SimpleNamespace(num_requests=0, num_failures=0)

    class LocalRunner:
        state = STATE_RUNNING
        def stop(self):
            order.append("stop")
            self.state = "stopped"
        @property
        def stats(self):
            order.append("count")
            return Stats()

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = parser.parse_args(["--ciba-min-flows", "1"])
    options.csv_prefix, options.headless, options.run_time = None, True, None
    env = types.SimpleNamespace(runner=LocalRunner(), parsed_options=options,
                                process_exit_code=None)
    users._on_quitting(env)

    sent, calls = [], []
    clients = {"w1": types.SimpleNamespace(id="w1"), "w2": types.SimpleNamespace(id="w2")}

    class Server:
        def send_to_client(self, message):
            sent.append(message.type)
            if len(sent) == 2:  # the workers' final reports and `quit` come a little later
                gevent.spawn_later(0.6, clients.clear)

    class Workers:
        @property
        def all(self):
            return list(clients.values())

    class MasterRunner:
        server = Server()
        clients = Workers()
        def stop(self, send_stop_to_client=True):
            calls.append(("stop", send_stop_to_client))
        def quit(self):
            calls.append(("quit", len(clients)))

    master = MasterRunner()
    users._patient_quit(master)
    master.quit()
    print(json.dumps({"order": order, "exit": env.process_exit_code, "sent": sent,
                      "calls": calls}))
    """
)


def test_the_gate_counts_after_the_users_stopped_and_the_master_waits_for_final_reports() -> None:
    """Locust fires `quitting` before it stops a still-running test (SIGTERM): the gate now
    stops the users first. The master's quit waits until every worker said `quit` (its
    final stats came before) instead of Locust's fixed 0.5 s."""
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                            timeout=60, env=_env(), cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["order"][0] == "stop" and "count" in found["order"]
    assert found["exit"] == 3  # no flow: the min-flows gate fails
    assert found["sent"] == ["quit", "quit"]
    assert found["calls"] == [["stop", False], ["quit", 0]]  # Locust's quit once all had quit
