"""SLO gates: thresholds checked per request name at the end of a run.

Never on Locust's "Aggregated" row: it mixes HTTP requests with the synthetic CIBA rows
(a 3 s time_to_tokens beside a 2 ms token poll), so its percentiles mean nothing.
The entries are duck-typed (`name`, `method`, `num_requests`, `num_failures`,
`get_response_time_percentile(p)`), so the gate is tested without importing Locust.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "SLO_EXIT_CODE",
    "Thresholds",
    "Verdict",
    "evaluate",
    "flow_errors_by_code",
    "format_verdicts",
    "verdicts_document",
    "write_verdicts",
]

SLO_EXIT_CODE = 3  # same as locust-plugins' --check-* options


class StatsEntryLike(Protocol):
    name: str
    method: str
    num_requests: int
    num_failures: int

    def get_response_time_percentile(self, percent: float) -> Any: ...


@dataclass(frozen=True)
class Thresholds:
    max_fail_ratio: float | None = None
    p95_time_to_token_ms: float | None = None
    p95_backchannel_ms: float | None = None
    min_flows: int | None = None
    p99_time_to_token_ms: float | None = None
    p95_notification_ms: float | None = None
    max_error_ratio: float | None = None  # per CIBA error code, share of the flows that ended
    max_slow_down_ratio: float | None = None  # slow_down answers per token request

    @property
    def any(self) -> bool:
        return any(v is not None for v in asdict(self).values())


@dataclass(frozen=True)
class Verdict:
    row: str  # "<type> <name>"
    measure: str
    value: float
    limit: float
    passed: bool

    def line(self) -> str:
        comparison = "<=" if self.measure != "completed flows" else ">="
        mark = "ok  " if self.passed else "FAIL"
        return f"{mark} {self.row:40} {self.measure:18} {self.value:10.4g} {comparison} {self.limit:g}"


def _is_backchannel(entry: StatsEntryLike) -> bool:
    return entry.method != "CIBA" and (entry.name == "backchannel" or entry.name.startswith("backchannel "))


def _is_time_to_tokens(entry: StatsEntryLike) -> bool:
    return entry.method == "CIBA" and entry.name.startswith("time_to_tokens")


FLOW_ROWS = ("time_to_tokens", "denied", "expired")  # CIBA rows: one entry per ended flow


def _is_flow_end(method: str, name: str) -> bool:
    return method == "CIBA" and name.split(" ", 1)[0] in FLOW_ROWS


def _is_notification(entry: StatsEntryLike) -> bool:
    return entry.method == "CIBA" and entry.name.startswith("notification_latency")


def _is_token_request(entry: StatsEntryLike) -> bool:
    """A CIBA token request (final answer, pending, slow_down, retry_later): not a refresh."""
    return entry.method != "CIBA" and entry.name in (
        "token", "token pending", "token slow_down", "token retry_later"
    )


def flow_errors_by_code(errors: Iterable[tuple[str, str, str, int]]) -> dict[str, int]:
    """Failed flows per CIBA error code, from (method, name, error text, occurrences) of
    Locust's error table. Only the flow-outcome rows count (time_to_tokens, denied, expired):
    the HTTP row of the same failure would count it twice."""
    from ciba_harness.load._metrics import parse_failure

    counts: dict[str, int] = {}
    for method, name, text, occurrences in errors:
        if not _is_flow_end(method, name):
            continue
        code = parse_failure(text) or (text.split(" ", 1)[0] if text else "other")
        counts[code] = counts.get(code, 0) + int(occurrences)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def evaluate(
    entries: Iterable[StatsEntryLike],
    thresholds: Thresholds,
    errors: dict[str, int] | None = None,
) -> list[Verdict]:
    """One verdict per (row, threshold) that applies; a threshold that applies to no row
    fails as well, so an empty run cannot pass a latency gate. `errors` are the failed
    flows per CIBA error code (`flow_errors_by_code`), for `max_error_ratio`."""
    rows = [e for e in entries if e.num_requests > 0 or e.num_failures > 0]
    verdicts: list[Verdict] = []
    if thresholds.max_fail_ratio is not None:
        for entry in rows:
            ratio = entry.num_failures / max(entry.num_requests, 1)
            verdicts.append(
                Verdict(
                    f"{entry.method} {entry.name}",
                    "failure ratio",
                    ratio,
                    thresholds.max_fail_ratio,
                    ratio <= thresholds.max_fail_ratio,
                )
            )
    for limit, selector, label, percent in (
        (thresholds.p95_time_to_token_ms, _is_time_to_tokens, "time_to_tokens *", 0.95),
        (thresholds.p99_time_to_token_ms, _is_time_to_tokens, "time_to_tokens *", 0.99),
        (thresholds.p95_notification_ms, _is_notification, "notification_latency *", 0.95),
        (thresholds.p95_backchannel_ms, _is_backchannel, "backchannel *", 0.95),
    ):
        if limit is None:
            continue
        measure = f"p{round(percent * 100)} ms"
        selected = [e for e in rows if selector(e) and e.num_requests > 0]
        if not selected:
            verdicts.append(Verdict(f"(no {label} row)", measure, 0.0, limit, False))
        for entry in selected:
            value = float(entry.get_response_time_percentile(percent) or 0.0)
            verdicts.append(Verdict(f"{entry.method} {entry.name}", measure, value, limit, value <= limit))
    if thresholds.max_error_ratio is not None:
        ended = sum(e.num_requests for e in rows if _is_flow_end(e.method, e.name))
        for code, count in (errors or {}).items():
            ratio = count / max(ended, 1)
            verdicts.append(
                Verdict(f"errors {code}", "flow share", ratio, thresholds.max_error_ratio,
                        ratio <= thresholds.max_error_ratio)
            )
        if not ended:
            verdicts.append(Verdict("(no ended flow)", "flow share", 0.0, thresholds.max_error_ratio, False))
    if thresholds.max_slow_down_ratio is not None:
        token_requests = sum(e.num_requests for e in rows if _is_token_request(e))
        slow = sum(e.num_requests for e in rows if e.method != "CIBA" and e.name == "token slow_down")
        ratio = slow / token_requests if token_requests else 0.0
        verdicts.append(
            Verdict("token slow_down", "per token request", ratio, thresholds.max_slow_down_ratio,
                    token_requests > 0 and ratio <= thresholds.max_slow_down_ratio)
        )
    if thresholds.min_flows is not None:
        flows = sum(
            e.num_requests - e.num_failures for e in rows if _is_time_to_tokens(e)
        )
        verdicts.append(
            Verdict("CIBA time_to_tokens *", "completed flows", float(flows), float(thresholds.min_flows), flows >= thresholds.min_flows)
        )
    return sorted(verdicts, key=lambda v: (v.passed, v.row, v.measure))


def format_verdicts(verdicts: list[Verdict]) -> str:
    failed = sum(not v.passed for v in verdicts)
    head = f"CIBA SLO gate: {len(verdicts) - failed} passed, {failed} failed"
    return "\n".join([head, *(v.line() for v in verdicts)])


def verdicts_document(verdicts: list[Verdict], thresholds: Thresholds) -> dict[str, Any]:
    return {
        "thresholds": asdict(thresholds),
        "passed": all(v.passed for v in verdicts),
        "verdicts": [asdict(v) for v in verdicts],
    }


def write_verdicts(path: Path, verdicts: list[Verdict], thresholds: Thresholds) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = verdicts_document(verdicts, thresholds)
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
