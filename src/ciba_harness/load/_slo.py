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

__all__ = ["SLO_EXIT_CODE", "Thresholds", "Verdict", "evaluate", "format_verdicts", "write_verdicts"]

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


def evaluate(entries: Iterable[StatsEntryLike], thresholds: Thresholds) -> list[Verdict]:
    """One verdict per (row, threshold) that applies; a threshold that applies to no row
    fails as well, so an empty run cannot pass a latency gate."""
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
    for limit, selector, label in (
        (thresholds.p95_time_to_token_ms, _is_time_to_tokens, "time_to_tokens *"),
        (thresholds.p95_backchannel_ms, _is_backchannel, "backchannel *"),
    ):
        if limit is None:
            continue
        selected = [e for e in rows if selector(e) and e.num_requests > 0]
        if not selected:
            verdicts.append(Verdict(f"(no {label} row)", "p95 ms", 0.0, limit, False))
        for entry in selected:
            p95 = float(entry.get_response_time_percentile(0.95) or 0.0)
            verdicts.append(Verdict(f"{entry.method} {entry.name}", "p95 ms", p95, limit, p95 <= limit))
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


def write_verdicts(path: Path, verdicts: list[Verdict], thresholds: Thresholds) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "thresholds": asdict(thresholds),
        "passed": all(v.passed for v in verdicts),
        "verdicts": [asdict(v) for v in verdicts],
    }
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
