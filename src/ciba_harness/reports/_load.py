"""The CIBA load report: Locust's `--csv` files in, one self-contained HTML file out.

Inputs (Locust 2.x, `--csv PREFIX [--csv-full-history]`):

* `PREFIX_stats.csv`: one row per request type and name, plus `Aggregated` (required);
* `PREFIX_stats_history.csv`: one row per second for `Aggregated`, and with
  `--csv-full-history` for every name too (optional: no over-time charts without it);
* `PREFIX_failures.csv`: `Method,Name,Error,Occurrences,...` (optional);
* `PREFIX_final.json` (written by the harness's load users when Locust quits, after the last
  request was counted): Locust's final figures per row and its error table, the SLO
  verdicts, the capacity search and the generator's CPU. When present its counts replace
  the CSV's: Locust rewrites `_stats.csv` once a second, so the CSV misses the last second
  (and, distributed, the workers' last reports).

The harness's load users report CIBA figures as custom request events of type `CIBA`:
`time_to_tokens <mode>`, `notification_latency <mode>` and `slow_down`. Failures carry the
CIBA error code in their text (`CibaError('expired_token')`, `token: access_denied`).

Everything shown is scrubbed of token-shaped strings (a failure text written by a load user
or a request name holding a URL could carry one): see `_html.scrub`.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ciba_harness.core._codes import BACKCHANNEL_ERROR_CODES, PUSH_ERROR_CODES, TOKEN_ERROR_CODES
from ciba_harness.reports._html import esc, fmt_time, page, scrub, write_atomic

__all__ = [
    "CIBA_ERROR_CODES",
    "LOAD_SUMMARY_FORMAT",
    "LoadData",
    "error_code_of",
    "load_summary",
    "read_load_data",
    "write_load_report",
]

LOAD_SUMMARY_FORMAT = "ciba-harness-load-summary/1"
CIBA_ERROR_CODES = frozenset(
    BACKCHANNEL_ERROR_CODES
    | TOKEN_ERROR_CODES
    | PUSH_ERROR_CODES
    | {"server_error", "temporarily_unavailable", "invalid_client_metadata"}
)
PERCENTILES = {"p50": "50%", "p95": "95%", "p99": "99%"}
MODES = ("poll", "ping", "push")
_WORD = re.compile(r"[a-z]+(?:_[a-z]+)*")
_HTTP_STATUS = re.compile(
    r"\b(?:HTTP|status)\D{0,3}([1-5]\d\d)\b|\b([45]\d\d) (?:Client|Server) Error"
)
_CIBA_ERROR = re.compile(r"""CibaError\(\s*['"]([A-Za-z0-9_.-]{1,64})['"]""")
_CIBA_METRIC = re.compile(r"^(time_to_tokens|notification_latency)(?: (.+))?$")


def error_code_of(text: str) -> str:
    """The error code a failure text names: the code of a `CibaError('<code>', ...)` (the
    provider's CIBA/OAuth code or one of the load users' own codes), else the first known
    CIBA/OAuth code in the text, else `HTTP nnn` for a bare status, else `other`."""
    ciba_error = _CIBA_ERROR.search(text)
    if ciba_error:
        return ciba_error.group(1)
    for match in _WORD.finditer(text):
        if match.group(0) in CIBA_ERROR_CODES:
            return match.group(0)
    status = _HTTP_STATUS.search(text)
    if status:
        return f"HTTP {status.group(1) or status.group(2)}"
    return "other"


@dataclass
class StatsRow:
    type: str
    name: str
    count: int
    failures: int
    rps: float
    average: float | None
    max: float | None
    percentiles: dict[str, float | None]

    @property
    def key(self) -> str:
        return f"{self.type} {self.name}".strip()


@dataclass
class HistoryPoint:
    timestamp: float
    users: int
    rps: float
    fps: float
    p95: float | None


@dataclass
class LoadData:
    prefix: Path
    stats: list[StatsRow]
    history: dict[str, list[HistoryPoint]] = field(default_factory=dict)  # by row key
    failures: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None  # PREFIX_final.json, when the run wrote one

    @property
    def aggregated(self) -> StatsRow | None:
        return next((r for r in self.stats if r.name == "Aggregated" and not r.type), None)

    def metric(self, metric: str) -> dict[str, StatsRow]:
        """CIBA rows of one metric keyed by the rest of their name (`ping`, `ping pos`;
        `all` when the name has nothing more): every row keeps its own figures."""
        out: dict[str, StatsRow] = {}
        for row in self.stats:
            match = _CIBA_METRIC.match(row.name)
            if match and match.group(1) == metric and row.type in ("CIBA", ""):
                out[match.group(2) or "all"] = row
        return dict(sorted(out.items(), key=lambda kv: _mode_order(kv[0])))

    def slow_down_rows(self) -> list[StatsRow]:
        """`CIBA slow_down[ <mode>]` rows; failing those, HTTP rows such as `token slow_down`.

        The load users report each slow_down answer twice (the token request renamed
        `token slow_down`, and a CIBA `slow_down <mode>` measure): count one of the two.
        """
        ciba = [r for r in self.stats if r.type == "CIBA" and r.name.startswith("slow_down")]
        return ciba or [r for r in self.stats if r.type != "CIBA" and "slow_down" in r.name.split()]

    def token_rows(self) -> list[StatsRow]:
        return [
            r
            for r in self.stats
            if r.type != "CIBA" and r.name != "Aggregated" and re.match(r"^/?token\b", r.name)
            and r.name != "token refresh"
        ]

    def error_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for failure in self.failures:
            counts[error_code_of(str(failure.get("Error", "")))] += _int(failure.get("Occurrences"))
        return counts

    def event_error_counts(self) -> Counter[str]:
        return Counter(error_code_of(str(e["error"])) for e in self.events if e.get("error"))

    def time_span(self) -> tuple[float, float] | None:
        stamps = [p.timestamp for points in self.history.values() for p in points]
        return (min(stamps), max(stamps)) if stamps else None

    def peak_users(self) -> int | None:
        users = [p.users for points in self.history.values() for p in points]
        return max(users) if users else None


def _mode_order(mode: str) -> tuple[int, str]:
    first = mode.split(" ", 1)[0]
    return (MODES.index(first) if first in MODES else len(MODES), mode)


def read_load_data(
    stats_csv_prefix: Path | str, *, ciba_events: Iterable[dict[str, Any]] | None = None
) -> LoadData:
    """Parse Locust's CSV files; raises FileNotFoundError without `<prefix>_stats.csv`."""
    prefix = Path(stats_csv_prefix)
    stats_path = Path(f"{prefix}_stats.csv")
    stats = [_stats_row(r) for r in _read_csv(stats_path)]
    data = LoadData(prefix, stats, events=[e for e in ciba_events or () if isinstance(e, dict)])
    history_path = Path(f"{prefix}_stats_history.csv")
    if history_path.exists():
        for row in _read_csv(history_path):
            key = f"{row.get('Type', '') or ''} {row.get('Name', '') or ''}".strip()
            timestamp = _float(row.get("Timestamp"))
            if timestamp is None:
                continue
            data.history.setdefault(key, []).append(
                HistoryPoint(
                    timestamp,
                    _int(row.get("User Count")),
                    _float(row.get("Requests/s")) or 0.0,
                    _float(row.get("Failures/s")) or 0.0,
                    _float(row.get("95%")),
                )
            )
    failures_path = Path(f"{prefix}_failures.csv")
    if failures_path.exists():
        data.failures = list(_read_csv(failures_path))
    final = _read_final(prefix)
    if final is not None:
        data.final = final
        data.stats = [_final_row(r) for r in final.get("stats") or [] if isinstance(r, dict)]
        data.failures = [f for f in final.get("errors") or [] if isinstance(f, dict)]
    return data


def _read_final(prefix: Path) -> dict[str, Any] | None:
    path = Path(f"{prefix}_final.json")
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and isinstance(document.get("stats"), list) else None


def _final_row(row: dict[str, Any]) -> StatsRow:
    return StatsRow(
        type=str(row.get("type") or "").strip(),
        name=scrub(str(row.get("name") or "").strip()),
        count=_int(row.get("count")),
        failures=_int(row.get("failures")),
        rps=_float(row.get("rps")) or 0.0,
        average=_float(row.get("average")),
        max=_float(row.get("max")),
        percentiles={k: _float(row.get(k)) for k in PERCENTILES},
    )


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def _stats_row(row: dict[str, str]) -> StatsRow:
    return StatsRow(
        type=(row.get("Type") or "").strip(),
        name=scrub((row.get("Name") or "").strip()),
        count=_int(row.get("Request Count")),
        failures=_int(row.get("Failure Count")),
        rps=_float(row.get("Requests/s")) or 0.0,
        average=_float(row.get("Average Response Time")),
        max=_float(row.get("Max Response Time")),
        percentiles={k: _float(row.get(column)) for k, column in PERCENTILES.items()},
    )


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int:
    number = _float(value)
    return int(number) if number is not None else 0


def _row_summary(row: StatsRow) -> dict[str, Any]:
    return {
        "type": row.type,
        "name": row.name,
        "count": row.count,
        "failures": row.failures,
        "failure_ratio": round(row.failures / row.count, 6) if row.count else 0.0,
        **{k: row.percentiles[k] for k in PERCENTILES},
        "max": None if row.max is None else round(row.max, 3),
        "rps": round(row.rps, 3),
    }


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def event_stats(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Exact (unbucketed) figures per `name mode` of the load users' own CIBA events."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        name = str(event.get("name") or "event")
        mode = event.get("mode")
        key = scrub(f"{name} {mode}" if mode else name)
        groups.setdefault(key, []).append(event)
    out: dict[str, dict[str, Any]] = {}
    for key, group in sorted(groups.items()):
        values = [v for v in (_float(e.get("ms")) for e in group) if v is not None]
        entry: dict[str, Any] = {
            "count": len(group),
            "errors": sum(1 for e in group if e.get("error")),
        }
        if values:
            entry.update({k: round(_percentile(values, float(k[1:])), 3) for k in PERCENTILES})
            entry["max"] = round(max(values), 3)
        out[key] = entry
    return out


def summarize(data: LoadData) -> dict[str, Any]:
    span = data.time_span()
    slow_down = sum(r.count for r in data.slow_down_rows())
    slow_down += sum(_int(e.get("slow_downs")) for e in data.events)
    slow_down += sum(1 for e in data.events if e.get("name") == "slow_down")
    token_requests = sum(r.count for r in data.token_rows())
    summary: dict[str, Any] = {
        "format": LOAD_SUMMARY_FORMAT,
        "source": data.prefix.name,
        "started_at": span[0] if span else None,
        "finished_at": span[1] if span else None,
        "duration_s": round(span[1] - span[0], 3) if span else None,
        "peak_users": data.peak_users(),
        "requests": {row.key: _row_summary(row) for row in data.stats},
        "ciba": {
            "time_to_tokens": {
                mode: _row_summary(row) for mode, row in data.metric("time_to_tokens").items()
            },
            "notification_latency": {
                mode: _row_summary(row) for mode, row in data.metric("notification_latency").items()
            },
            "errors": dict(data.error_counts().most_common()),
            "slow_down": {
                "count": slow_down,
                "token_requests": token_requests,
                "per_token_request": round(slow_down / token_requests, 6)
                if token_requests
                else None,
            },
        },
    }
    if data.events:
        summary["events"] = event_stats(data.events)
        summary["ciba"]["event_errors"] = dict(data.event_error_counts().most_common())
    final = data.final or {}
    summary["counts_from"] = "locust final stats" if data.final else "stats csv"
    summary["slo"] = final.get("slo") if data.final else _read_json(Path(f"{data.prefix}_slo.json"))
    summary["capacity"] = final.get("capacity")
    summary["generator"] = final.get("generator")
    summary["workload"] = final.get("workload")
    return summary


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    except (OSError, ValueError):
        return None


def load_summary(
    stats_csv_prefix: Path | str, *, ciba_events: Iterable[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Per request name: count, failures, p50, p95, p99, rps (and CIBA figures) as JSON data."""
    return summarize(read_load_data(stats_csv_prefix, ciba_events=ciba_events))


def write_load_report(
    stats_csv_prefix: Path | str,
    out: Path,
    *,
    ciba_events: list[dict[str, Any]] | None = None,
) -> Path:
    """Write the HTML load report to `out` and `load-summary.json` beside it; returns `out`."""
    out = Path(out)
    data = read_load_data(stats_csv_prefix, ciba_events=ciba_events)
    summary = summarize(data)
    html = render_load_report(data, summary)
    write_atomic(out.with_name("load-summary.json"), json.dumps(summary, indent=1) + "\n")
    return write_atomic(out, html)


# --- HTML ----------------------------------------------------------------------------------


def render_load_report(data: LoadData, summary: dict[str, Any]) -> str:
    from ciba_harness.reports import _charts

    aggregated = data.aggregated
    total = aggregated.count if aggregated else sum(r.count for r in data.stats)
    failed = aggregated.failures if aggregated else sum(r.failures for r in data.stats)
    peak = data.peak_users()
    workload = summary.get("workload") or {}
    if workload.get("model") == "open":
        model = (
            "open: capacity search, arrival rate stepped"
            if summary.get("capacity")
            else f"open: {workload.get('arrival_rate')} flow starts/s"
        )
    else:
        model = f"closed: {peak} Locust users at peak" if peak else "closed (Locust users)"
    generator = summary.get("generator") or {}
    meta = [
        ("Started", fmt_time(summary["started_at"])),
        ("Duration", f"{summary['duration_s']:.0f} s" if summary["duration_s"] else "unknown"),
        ("Workload model", model),
        ("Requests", f"{total:,}"),
        ("Failures", f"{failed:,} ({100 * failed / total:.2f} %)" if total else "0"),
        ("Counts from", summary.get("counts_from", "stats csv")),
    ]
    if generator.get("cpu_ms_per_flow") is not None:
        meta.append(("Generator CPU per flow", f"{generator['cpu_ms_per_flow']:.2f} ms"))
    items = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in meta)
    full_history = any(k != "Aggregated" for k in data.history)
    history_note = (
        ""
        if full_history
        else '<p class="banner warn">No per-request history (run Locust with '
        "<code>--csv-full-history</code>): charts over time show the aggregate only.</p>"
    )
    if generator.get("warning"):
        history_note += f'<p class="banner warn">{esc(generator["warning"])}</p>'
    slo = summary.get("slo")
    if isinstance(slo, dict) and "passed" in slo:
        kind = "ok" if slo["passed"] else "warn"
        history_note += (
            f'<p class="banner {kind}">SLO gate: '
            f"{'every threshold held' if slo['passed'] else 'broken'}</p>"
        )
    body = [
        '<header class="top"><h1>CIBA load report</h1>'
        f'<div class="sub">Locust run {esc(data.prefix.name)}</div><dl class="meta">{items}</dl>'
        f"{history_note}"
        '<nav class="toc"><a href="#throughput">Throughput</a><a href="#time-to-tokens">'
        'Time to tokens</a><a href="#notification">Notification latency</a><a href="#errors">'
        'Errors</a><a href="#slow-down">slow_down</a><a href="#requests">All requests</a>'
        '<a href="#slo">SLO</a><a href="#capacity">Capacity</a><a href="#generator">Generator</a>'
        "</nav></header>",
        *_capacity_section(summary),
        _section(
            "throughput",
            "Throughput over time",
            _charts.throughput(data),
            "Requests and failures per second (all requests, Locust's moving window) and "
            "the number of users.",
        ),
        _section(
            "time-to-tokens",
            "Time to tokens per mode",
            _charts.percentile_bars(data.metric("time_to_tokens"), "time to tokens")
            + _charts.metric_over_time(data, "time_to_tokens")
            + _charts.events_scatter(data.events, "time_to_tokens"),
            "From the backchannel authentication request to the tokens, per delivery mode. "
            "Includes the user's approval time of the test device.",
            _metric_table(data.metric("time_to_tokens")),
        ),
        _section(
            "notification",
            "Notification latency",
            _charts.percentile_bars(data.metric("notification_latency"), "notification latency"),
            "From the user's approval to the notification (ping) or token delivery (push) "
            "reaching the client.",
            _metric_table(data.metric("notification_latency")),
        ),
        _section(
            "errors",
            "Errors by CIBA error code",
            _charts.errors(data.error_counts(), data.event_error_counts()),
            "Failures grouped by the CIBA/OAuth error code named in their text.",
            _failures_table(data),
        ),
        _section(
            "slow-down",
            "slow_down rate",
            _charts.slow_down(data),
            "slow_down answers per second next to token requests per second.",
            _slow_down_text(summary),
        ),
        _section("requests", "All requests", "", "", _requests_table(data)),
        _section("slo", "SLO verdicts", "", "", _slo_table(summary.get("slo"))),
        _section("generator", "Load generator", "", _GENERATOR_CAPTION, _generator_table(generator)),
    ]
    if data.events:
        body.append(_section("events", "CIBA flow events (exact)", "", "", _events_table(summary)))
    body.append(
        "<footer>Generated by ciba-harness from Locust's final stats (the CSV output when the "
        "run wrote no final document). Locust rounds response "
        "times into buckets of about two significant digits before taking percentiles, so "
        "p99 can exceed the maximum; flow events, when given, are exact.</footer>"
    )
    return page(f"CIBA load report: {data.prefix.name}", body)


_GENERATOR_CAPTION = (
    "CPU the load processes spent since the test started, per process and per ended flow. "
    "It includes the set-up (discovery, keys, receiver) and spawning users, so short runs "
    "overstate the cost of a flow (bench/bench_load.py measures it in steady state). A process "
    "near a full core limits the run itself: the figures then describe the generator, not "
    "the provider."
)


def _slo_table(slo: Any) -> str:
    if not isinstance(slo, dict) or not slo.get("verdicts"):
        return "<p>No SLO threshold was configured for this run.</p>"
    body = "".join(
        f"<tr><td>{'ok' if v.get('passed') else '<strong>FAIL</strong>'}</td>"
        f"<td>{esc(v.get('row', ''))}</td><td>{esc(v.get('measure', ''))}</td>"
        f"<td class=num>{_num(v.get('value'))}</td><td class=num>{_num(v.get('limit'))}</td></tr>"
        for v in slo["verdicts"]
        if isinstance(v, dict)
    )
    return (
        "<table><thead><tr><th>Verdict</th><th>Row</th><th>Measure</th>"
        f'<th class="num">Value</th><th class="num">Limit</th></tr></thead><tbody>{body}</tbody></table>'
    )


def _num(value: Any) -> str:
    number = _float(value)
    if number is None:
        return ""
    return f"{number:,.0f}" if abs(number) >= 100 else f"{number:.4g}"


def _generator_table(generator: dict[str, Any]) -> str:
    rows = generator.get("processes") or []
    if not rows:
        return "<p>No generator figures (the run did not write its final document).</p>"
    body = "".join(
        f"<tr><td>{esc(r.get('process'))}</td><td class=num>{_num(r.get('cpu_s'))}</td>"
        f"<td class=num>{_num(r.get('wall_s'))}</td>"
        f"<td class=num>{_num(100 * (r.get('cpu_share') or 0))} %</td></tr>"
        for r in rows
        if isinstance(r, dict)
    )
    per_flow = generator.get("cpu_ms_per_flow")
    text = (
        f"<p>{generator.get('flows', 0):,} flows ended; {_num(per_flow)} ms of generator CPU per "
        f"flow ({_num(generator.get('flows_per_cpu_s'))} flows per generator CPU-second).</p>"
        if per_flow is not None
        else ""
    )
    return (
        f"{text}<table><thead><tr><th>Process</th><th class=num>CPU s</th><th class=num>Wall s</th>"
        f"<th class=num>CPU share of a core</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _capacity_section(summary: dict[str, Any]) -> list[str]:
    from ciba_harness.reports import _charts

    capacity = summary.get("capacity")
    if not isinstance(capacity, dict):
        return []
    steps = [s for s in capacity.get("steps") or [] if isinstance(s, dict)]
    kind = "warn" if capacity.get("limited_by") == "generator" else "ok"
    head = "".join(
        f"<th{' class=num' if i > 1 else ''}>{h}</th>"
        for i, h in enumerate(
            ("#", "Phase", "Offered flows/s", "Achieved flows/s", "Users", "p95 ms", "p99 ms",
             "Notification p95 ms", "Errors %", "slow_down %", "Generator CPU %", "Verdict")
        )
    )
    body = "".join(
        f"<tr><td>{s.get('index')}</td><td>{esc(s.get('phase'))}</td>"
        f"<td class=num>{_num(s.get('rate'))}</td><td class=num>{_num(s.get('achieved_rate'))}</td>"
        f"<td class=num>{_num(s.get('users'))}</td><td class=num>{_num(s.get('p95_ms'))}</td>"
        f"<td class=num>{_num(s.get('p99_ms'))}</td>"
        f"<td class=num>{_num(s.get('notification_p95_ms'))}</td>"
        f"<td class=num>{_num(100 * (s.get('error_ratio') or 0))}</td>"
        f"<td class=num>{_num(None if s.get('slow_down_ratio') is None else 100 * s['slow_down_ratio'])}</td>"
        f"<td class=num>{_num(None if s.get('generator_cpu') is None else 100 * s['generator_cpu'])}</td>"
        f"<td>{'generator limit' if s.get('generator_limited') else ('pass' if s.get('passed') else 'FAIL')}"
        f"{''.join('<br><small>' + esc(b) + '</small>' for b in (s.get('broken') or [])[:3])}</td></tr>"
        for s in steps
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    banner = f'<p class="banner {kind}">{esc(capacity.get("verdict", ""))}</p>'
    caption = (
        f"Stopped: {capacity.get('stop_reason_text', '')} ({len(steps)} steps in "
        f"{_num(capacity.get('elapsed_s'))} s, mix {capacity.get('mix')}). Each step holds an "
        "open arrival rate of whole flows; its first seconds are left out, the rest is judged "
        "by the SLO gate."
    )
    return [_section("capacity", "Capacity", banner + _charts.capacity(capacity), caption, table)]


def _section(sid: str, title: str, chart: str, caption: str, extra: str = "") -> str:
    caption_html = f'<p class="small">{esc(caption)}</p>' if caption else ""
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{caption_html}{chart}{extra}</section>'


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _metric_table(rows: dict[str, StatsRow]) -> str:
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{esc(mode)}</td><td class=num>{r.count:,}</td><td class=num>{r.failures:,}</td>"
        + "".join(f"<td class=num>{_ms(r.percentiles[k])}</td>" for k in PERCENTILES)
        + f"<td class=num>{_ms(r.max)}</td></tr>"
        for mode, r in rows.items()
    )
    head = "".join(
        f"<th{' class=num' if h != 'Mode' else ''}>{h}</th>"
        for h in ("Mode", "Count", "Failures", "p50 ms", "p95 ms", "p99 ms", "max ms")
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _requests_table(data: LoadData) -> str:
    if not data.stats:
        return "<p>No requests.</p>"
    head = "".join(
        f"<th{' class=num' if i > 1 else ''}>{h}</th>"
        for i, h in enumerate(
            ("Type", "Name", "Count", "Failures", "p50 ms", "p95 ms", "p99 ms", "max ms", "req/s")
        )
    )
    body = "".join(
        f"<tr><td>{esc(r.type)}</td><td>{esc(r.name)}</td><td class=num>{r.count:,}</td>"
        f"<td class=num>{r.failures:,}</td>"
        + "".join(f"<td class=num>{_ms(r.percentiles[k])}</td>" for k in PERCENTILES)
        + f"<td class=num>{_ms(r.max)}</td><td class=num>{r.rps:,.1f}</td></tr>"
        for r in data.stats
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _failures_table(data: LoadData) -> str:
    if not data.failures:
        return "<p>No failures recorded.</p>"
    rows = sorted(data.failures, key=lambda f: -_int(f.get("Occurrences")))
    body = "".join(
        f"<tr><td><code>{esc(error_code_of(str(f.get('Error', ''))))}</code></td>"
        f"<td>{esc(f.get('Method', ''))} {esc(f.get('Name', ''))}</td>"
        f"<td>{esc(_clip(str(f.get('Error', ''))))}</td>"
        f"<td class=num>{_int(f.get('Occurrences')):,}</td></tr>"
        for f in rows
    )
    return (
        "<table><thead><tr><th>Code</th><th>Request</th><th>Error</th>"
        f'<th class="num">Occurrences</th></tr></thead><tbody>{body}</tbody></table>'
    )


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _slow_down_text(summary: dict[str, Any]) -> str:
    slow = summary["ciba"]["slow_down"]
    ratio = slow["per_token_request"]
    share = f" = {100 * ratio:.2f} % of token requests" if ratio is not None else ""
    return (
        f"<p>{slow['count']:,} slow_down answer(s) for {slow['token_requests']:,} token "
        f"request(s){esc(share)}.</p>"
    )


def _events_table(summary: dict[str, Any]) -> str:
    events = summary.get("events", {})
    head = "".join(
        f"<th{' class=num' if h != 'Event' else ''}>{h}</th>"
        for h in ("Event", "Count", "Errors", "p50 ms", "p95 ms", "p99 ms", "max ms")
    )
    body = "".join(
        f"<tr><td>{esc(key)}</td><td class=num>{e['count']:,}</td><td class=num>{e['errors']:,}</td>"
        + "".join(f"<td class=num>{_ms(e.get(k))}</td>" for k in (*PERCENTILES, "max"))
        + "</tr>"
        for key, e in events.items()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
