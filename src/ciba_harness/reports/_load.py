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

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ciba_harness.reports import _charts
from ciba_harness.reports._html import esc, fmt_time, page, scrub, write_atomic
from ciba_harness.reports._load_data import (
    LOAD_SUMMARY_FORMAT,
    PERCENTILES,
    LoadData,
    StatsRow,
    error_code_of,
    read_load_data,
    to_float,
    to_int,
)

__all__ = ["event_stats", "load_summary", "render_load_report", "summarize", "write_load_report"]

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
        values = [v for v in (to_float(e.get("ms")) for e in group) if v is not None]
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
    slow_down += sum(to_int(e.get("slow_downs")) for e in data.events)
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
    number = to_float(value)
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
    rows = sorted(data.failures, key=lambda f: -to_int(f.get("Occurrences")))
    body = "".join(
        f"<tr><td><code>{esc(error_code_of(str(f.get('Error', ''))))}</code></td>"
        f"<td>{esc(f.get('Method', ''))} {esc(f.get('Name', ''))}</td>"
        f"<td>{esc(_clip(str(f.get('Error', ''))))}</td>"
        f"<td class=num>{to_int(f.get('Occurrences')):,}</td></tr>"
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
