"""Charts of the load report, drawn with matplotlib's Agg canvas and embedded as PNG data URIs.

No pyplot and no global backend switch: each chart is a `Figure` on its own
`FigureCanvasAgg`, so drawing a report never disturbs a caller's matplotlib state.
Each function returns an HTML fragment: a <figure>, or a short note when there is no data.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ciba_harness.reports._html import esc
from ciba_harness.reports._load_data import LoadData, StatsRow

__all__ = [
    "capacity",
    "errors",
    "events_scatter",
    "metric_over_time",
    "percentile_bars",
    "slow_down",
    "throughput",
]

MODE_COLORS = {"poll": "#0969da", "ping": "#bc4c00", "push": "#1a7f37", "all": "#6639ba"}
PCT_COLORS = {"p50": "#54aeff", "p95": "#0969da", "p99": "#0a3069"}
FAIL = "#cf222e"
MUTED = "#59636e"
_RC: dict[Any, Any] = {
    "font.size": 9,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#d8dee4",
    "grid.linewidth": 0.6,
    "axes.edgecolor": "#8c959f",
    "legend.frameon": False,
    "font.family": "DejaVu Sans",
}


def _no_data(what: str) -> str:
    return f'<p class="small">No data for {esc(what)} in this run.</p>'


@contextmanager
def _figure(width: float = 9.0, height: float = 3.4) -> Iterator[Any]:
    import matplotlib

    with matplotlib.rc_context(_RC):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
        yield fig


def _embed(fig: Any, alt: str) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor="white")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}"></figure>'


def _elapsed(points: list[Any], t0: float) -> list[float]:
    return [p.timestamp - t0 for p in points]


def throughput(data: LoadData) -> str:
    points = data.history.get("Aggregated", [])
    if len(points) < 2:
        return _no_data("throughput over time (no stats history)")
    t0 = points[0].timestamp
    x = _elapsed(points, t0)
    with _figure() as fig:
        ax = fig.add_subplot()
        ax.plot(x, [p.rps for p in points], color="#0969da", lw=1.8, label="requests/s")
        ax.fill_between(x, [p.rps for p in points], color="#0969da", alpha=0.08)
        ax.plot(x, [p.fps for p in points], color=FAIL, lw=1.4, label="failures/s")
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("per second")
        ax.set_ylim(bottom=0)
        ax.set_title("Throughput")
        users = ax.twinx()
        users.step(
            x, [p.users for p in points], where="post", color=MUTED, lw=1, ls="--", label="users"
        )
        users.set_ylabel("users", color=MUTED)
        users.set_ylim(bottom=0)
        users.grid(False)
        users.spines["right"].set_visible(True)
        lines = ax.get_legend_handles_labels()
        more = users.get_legend_handles_labels()
        fig.legend(lines[0] + more[0], lines[1] + more[1], loc="outside lower center", ncols=3)
        return _embed(fig, "throughput over time")


def percentile_bars(rows: dict[str, StatsRow], what: str) -> str:
    rows = {m: r for m, r in rows.items() if r.count}
    if not rows:
        return _no_data(what)
    keys = ("p50", "p95", "p99")
    width = 0.26
    with _figure(height=3.2) as fig:
        ax = fig.add_subplot()
        positions = range(len(rows))
        for i, key in enumerate(keys):
            values = [(r.percentiles.get(key) or 0.0) for r in rows.values()]
            bars = ax.bar(
                [p + (i - 1) * width for p in positions],
                values,
                width,
                color=PCT_COLORS[key],
                label=key,
            )
            ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7, padding=2)
        ax.set_xticks(list(positions), [f"{m}\n(n={r.count:,})" for m, r in rows.items()])
        ax.set_ylabel("ms")
        ax.set_title(f"{what.capitalize()} percentiles per mode")
        ax.margins(y=0.15)
        ax.grid(axis="x", visible=False)
        fig.legend(loc="outside lower center", ncols=3)
        return _embed(fig, f"{what} percentiles per mode")


def metric_over_time(data: LoadData, metric: str) -> str:
    series = {mode: data.history.get(row.key, []) for mode, row in data.metric(metric).items()}
    series = {m: [p for p in pts if p.p95] for m, pts in series.items()}
    series = {m: pts for m, pts in series.items() if len(pts) >= 2}
    if not series:
        return ""
    t0 = min(p.timestamp for pts in series.values() for p in pts)
    with _figure(height=3.0) as fig:
        ax = fig.add_subplot()
        for mode, pts in series.items():
            ax.plot(
                _elapsed(pts, t0),
                [p.p95 for p in pts],
                lw=1.6,
                color=MODE_COLORS.get(mode, MUTED),
                label=f"{mode} p95",
            )
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("ms")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{metric.replace('_', ' ').capitalize()}: p95 over time")
        fig.legend(loc="outside lower center", ncols=4)
        return _embed(fig, f"{metric} p95 over time")


def events_scatter(events: list[dict[str, Any]], name: str) -> str:
    points: dict[str, tuple[list[float], list[float]]] = {}
    for event in events:
        t, ms = event.get("t"), event.get("ms")
        if (
            event.get("name") != name
            or not isinstance(t, int | float)
            or not isinstance(ms, int | float)
        ):
            continue
        xs, ys = points.setdefault(str(event.get("mode") or "all"), ([], []))
        xs.append(float(t))
        ys.append(float(ms))
    if not points:
        return ""
    t0 = min(min(xs) for xs, _ in points.values())
    with _figure(height=3.0) as fig:
        ax = fig.add_subplot()
        for mode, (xs, ys) in sorted(points.items(), key=lambda kv: _mode_key(kv[0])):
            ax.scatter(
                [x - t0 for x in xs],
                ys,
                s=6,
                alpha=0.6,
                color=MODE_COLORS.get(mode, MUTED),
                label=mode,
            )
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("ms")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{name.replace('_', ' ').capitalize()}: every flow")
        fig.legend(loc="outside lower center", ncols=4, markerscale=2)
        return _embed(fig, f"{name} of every flow")


def errors(counts: Counter[str], event_counts: Counter[str]) -> str:
    codes = [c for c, _ in (counts + event_counts).most_common(15)]
    if not codes:
        return _no_data("errors (no failure recorded)")
    with _figure(height=max(1.6, 0.34 * len(codes) + 0.9)) as fig:
        ax = fig.add_subplot()
        labels = list(reversed(codes))
        if event_counts and counts:
            h = 0.4
            ys = range(len(labels))
            a = ax.barh(
                [y + h / 2 for y in ys],
                [counts[c] for c in labels],
                h,
                color=FAIL,
                label="Locust failures",
            )
            b = ax.barh(
                [y - h / 2 for y in ys],
                [event_counts[c] for c in labels],
                h,
                color="#fd8c73",
                label="flow events",
            )
            for bars in (a, b):
                ax.bar_label(
                    bars, labels=[_count(v) for v in bars.datavalues], fontsize=7, padding=2
                )
            ax.set_yticks(list(ys), labels)
            fig.legend(loc="outside lower center", ncols=2)
        else:
            source = counts or event_counts
            bars = ax.barh(
                labels,
                [source[c] for c in labels],
                color=[FAIL if not c.startswith(("HTTP", "other")) else MUTED for c in labels],
            )
            ax.bar_label(bars, fontsize=7, padding=2)
        ax.set_xlabel("occurrences")
        ax.margins(x=0.1)
        ax.grid(axis="y", visible=False)
        ax.set_title("Errors by CIBA error code")
        return _embed(fig, "errors by CIBA error code")


def slow_down(data: LoadData) -> str:
    slow_keys = [r.key for r in data.slow_down_rows()]
    token_keys = [r.key for r in data.token_rows()]
    slow = _sum_series(data, slow_keys)
    tokens = _sum_series(data, token_keys)
    if len(slow) < 2:
        return _no_data("slow_down over time (no slow_down rows in the per-request history)")
    t0 = min([*slow, *tokens])
    with _figure(height=3.0) as fig:
        ax = fig.add_subplot()
        _plot_series(ax, slow, t0, color="#bf8700", lw=1.8, label="slow_down/s")
        if tokens:
            _plot_series(ax, tokens, t0, color="#0969da", lw=1.2, alpha=0.7,
                         label="token requests/s")
        ax.set_xlabel("seconds since start")
        ax.set_ylabel("per second")
        ax.set_ylim(bottom=0)
        ax.set_title("slow_down rate")
        fig.legend(loc="outside lower center", ncols=2)
        return _embed(fig, "slow_down rate over time")


def _mode_key(mode: str) -> tuple[int, str]:
    order = list(MODE_COLORS)
    return (order.index(mode) if mode in order else len(order), mode)


def _count(value: float) -> str:
    return f"{value:,.0f}" if value else ""


def _plot_series(ax: Any, series: dict[float, float], t0: float, **style: Any) -> None:
    """One line of a per-second series, in seconds since `t0`."""
    xs = sorted(series)
    ax.plot([x - t0 for x in xs], [series[x] for x in xs], **style)


def _sum_series(data: LoadData, keys: list[str]) -> dict[float, float]:
    out: dict[float, float] = {}
    for key in keys:
        for point in data.history.get(key, []):
            out[point.timestamp] = out.get(point.timestamp, 0.0) + point.rps
    return out


def capacity(result: dict[str, Any]) -> str:
    """Offered rate against p95 / p99 time to tokens (left) and the flow error share (right),
    one point per step (hollow when the step failed), the knee marked."""
    steps = sorted(
        (s for s in result.get("steps") or [] if isinstance(s, dict) and s.get("rate")),
        key=lambda s: float(s["rate"]),
    )
    if not steps:
        return _no_data("the capacity search (no step was judged)")
    rates = [float(s["rate"]) for s in steps]
    with _figure(height=3.6) as fig:
        ax = fig.add_subplot()
        for key, color, label in (("p95_ms", "#0969da", "p95 time to tokens"),
                                  ("p99_ms", "#0a3069", "p99 time to tokens")):
            values = [float(s[key]) if s.get(key) is not None else float("nan") for s in steps]
            ax.plot(rates, values, color=color, lw=1.4, label=label)
            ax.scatter(
                rates, values, s=28, zorder=3, color=color,
                facecolors=[color if s.get("passed") else "white" for s in steps],
            )
        ax.set_xlabel("offered flows/s")
        ax.set_ylabel("ms")
        ax.set_ylim(bottom=0)
        errors_axis = ax.twinx()
        errors_axis.plot(rates, [100 * float(s.get("error_ratio") or 0) for s in steps],
                         color=FAIL, lw=1.2, ls="--", label="failed flows %")
        errors_axis.set_ylabel("failed flows %", color=FAIL)
        worst = max(100 * float(s.get("error_ratio") or 0) for s in steps)
        errors_axis.set_ylim(0, max(1.0, worst * 1.2))
        limit = (result.get("thresholds") or {}).get("p95_time_to_token_ms")
        if isinstance(limit, int | float):
            ax.axhline(float(limit), color=MUTED, lw=1, ls="--", label=f"p95 limit {limit:g} ms")
        errors_axis.grid(False)
        errors_axis.spines["right"].set_visible(True)
        knee = result.get("knee_flows_per_s")
        capacity_rate = result.get("capacity_flows_per_s")
        if isinstance(capacity_rate, int | float):
            ax.axvline(float(capacity_rate), color="#1a7f37", lw=1.2,
                       label=f"capacity {capacity_rate:g}/s")
        if isinstance(knee, int | float):
            ax.axvline(float(knee), color=FAIL, lw=1.2, ls=":", label=f"knee {knee:g}/s")
        limited = [float(s["rate"]) for s in steps if s.get("generator_limited")]
        if limited:
            ax.axvline(limited[0], color="#bf8700", lw=1.2, ls="-.", label="generator limit")
        ax.set_title("Capacity search: rate against latency and errors")
        lines = ax.get_legend_handles_labels()
        more = errors_axis.get_legend_handles_labels()
        fig.legend(lines[0] + more[0], lines[1] + more[1], loc="outside lower center", ncols=3)
        return _embed(fig, "capacity search: offered rate against latency and errors")
