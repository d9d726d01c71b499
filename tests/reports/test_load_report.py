"""The CIBA load report, from CSV files written by a real Locust 2.47 run on loopback.

tests/reports/data/locust_*.csv came from `locust --headless -u 4 -r 4 -t 5s --csv ...
--csv-full-history` against `python -m http.server` on 127.0.0.1, with a locustfile firing
`CIBA time_to_tokens <mode>`, `CIBA notification_latency <mode>` and `CIBA slow_down` events
and failing some flows with `CibaError('expired_token')` and `token: access_denied`.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from ciba_harness.reports import cli_main, error_code_of, load_summary, write_load_report

DATA = Path(__file__).parent / "data"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    for path in DATA.glob("locust_*.csv"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / "locust"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("CibaError('expired_token')", "expired_token"),
        ("CatchResponseError('token: access_denied')", "access_denied"),
        ("HTTPError('503 Server Error: Service Unavailable for url: /token')", "HTTP 503"),
        ("token: invalid_request_object", "other"),
        ("bc-authorize: unknown_user_id (login_hint)", "unknown_user_id"),
        ("ConnectionRefusedError(111, 'Connection refused')", "other"),
        ("CibaError('notification_timeout', mode='ping')", "notification_timeout"),
        ("CibaError('invalid_grant', expected='expired_token', status=400)", "invalid_grant"),
    ],
)
def test_error_code_of(text: str, code: str) -> None:
    assert error_code_of(text) == code


def test_summary_from_real_locust_csv(prefix: Path) -> None:
    summary = load_summary(prefix)
    token = summary["requests"]["GET token"]
    assert (token["count"], token["failures"], token["p50"], token["p95"]) == (248, 51, 5.0, 12.0)
    assert summary["requests"]["Aggregated"]["count"] == 926
    ciba = summary["ciba"]
    assert list(ciba["time_to_tokens"]) == ["poll", "ping", "push"]
    assert ciba["time_to_tokens"]["poll"]["p95"] == 2900.0
    assert list(ciba["notification_latency"]) == ["ping", "push"]
    assert ciba["errors"] == {"access_denied": 51, "expired_token": 22}
    assert ciba["slow_down"] == {"count": 21, "token_requests": 248, "per_token_request": 0.084677}
    assert summary["peak_users"] == 4 and summary["duration_s"] == 4.0


def test_report_has_every_chart_and_the_summary_json(prefix: Path, tmp_path: Path) -> None:
    out = write_load_report(prefix, tmp_path / "report" / "load.html")
    html = out.read_text("utf-8")
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert [alt for alt, _ in images] == [
        "throughput over time",
        "time to tokens percentiles per mode",
        "time_to_tokens p95 over time",
        "notification latency percentiles per mode",
        "errors by CIBA error code",
        "slow_down rate over time",
    ]
    assert all(len(data) > 2000 for _, data in images)
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#|data:)""", html)
    summary = json.loads((tmp_path / "report" / "load-summary.json").read_text("utf-8"))
    assert summary == load_summary(prefix)
    assert "8.47 % of token requests" in html


def test_flow_events_add_exact_figures(prefix: Path, tmp_path: Path) -> None:
    events = [
        {"name": "time_to_tokens", "mode": "poll", "ms": float(ms), "t": 1000.0 + ms / 100}
        for ms in range(1000, 2000, 10)
    ] + [
        {
            "name": "time_to_tokens",
            "mode": "ping",
            "ms": 500.0,
            "t": 1001.0,
            "error": "expired_token",
        }
    ]
    out = write_load_report(prefix, tmp_path / "load.html", ciba_events=events)
    summary = json.loads((tmp_path / "load-summary.json").read_text("utf-8"))
    assert summary["events"]["time_to_tokens poll"] == {
        "count": 100, "errors": 0, "p50": 1490.0, "p95": 1940.0, "p99": 1980.0, "max": 1990.0,
    }  # fmt: skip
    assert summary["ciba"]["event_errors"] == {"expired_token": 1}
    assert 'alt="time_to_tokens of every flow"' in out.read_text("utf-8")


def test_aggregate_history_only_and_no_failures(prefix: Path, tmp_path: Path) -> None:
    history = Path(f"{prefix}_stats_history.csv")
    lines = history.read_text("utf-8").splitlines()
    history.write_text("\n".join([lines[0], *(x for x in lines if ",Aggregated," in x)]) + "\n")
    Path(f"{prefix}_failures.csv").unlink()
    html = write_load_report(prefix, tmp_path / "load.html").read_text("utf-8")
    assert "--csv-full-history" in html
    assert 'alt="throughput over time"' in html
    assert "No failures recorded." in html
    assert "No data for slow_down over time" in html


def test_secrets_in_locust_output_are_masked(prefix: Path, tmp_path: Path) -> None:
    with open(f"{prefix}_failures.csv", "a", encoding="utf-8") as handle:
        handle.write(
            f"POST,/token?x={JWT},\"HTTPError('401 Client Error', 'Bearer abc123XYZ789')\",2,a,b\n"
        )
    html = write_load_report(prefix, tmp_path / "load.html").read_text("utf-8")
    assert JWT not in html and "abc123XYZ789" not in html
    assert "eyJhbG***" in html


def test_cli_load(prefix: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"name": "slow_down"}\n{"name": "time_to_tokens", "ms": 12}\n')
    assert cli_main(["report", "load", str(prefix), "--events", str(events)]) == 0
    assert (tmp_path / "ciba-load-report.html").is_file()
    assert (tmp_path / "load-summary.json").is_file()
    assert cli_main(["load", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "no Locust statistics at" in err and "Traceback" not in err


def test_diff_of_two_load_summaries(prefix: Path, tmp_path: Path) -> None:
    old = load_summary(prefix)
    new = json.loads(json.dumps(old))
    new["requests"]["CIBA time_to_tokens poll"]["p95"] = 4000.0
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert cli_main(["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json")]) == 1
    assert cli_main(["diff", str(tmp_path / "new.json"), str(tmp_path / "old.json")]) == 0


def test_slow_down_counted_once_from_ciba_rows_else_http_rows(prefix: Path) -> None:
    stats = Path(f"{prefix}_stats.csv")
    lines = stats.read_text("utf-8").splitlines()
    http_row = "POST,token slow_down,30,0,5,5,1,9,0,1.0,0.0," + ",".join(["5"] * 11)
    stats.write_text("\n".join([*lines[:-1], http_row, lines[-1]]) + "\n")
    assert load_summary(prefix)["ciba"]["slow_down"]["count"] == 21  # the CIBA row wins
    without_ciba = [x for x in stats.read_text("utf-8").splitlines() if ",slow_down," not in x]
    stats.write_text("\n".join(without_ciba) + "\n")
    assert load_summary(prefix)["ciba"]["slow_down"]["count"] == 30
