"""The load run's figures as read from Locust's files: request rows, history, events and the
CIBA error codes in failure texts (the inputs are described in reports/_load.py).

The load report (`_load`) and its charts (`_charts`) both read this model.
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
from ciba_harness.core._config import DELIVERY_MODES
from ciba_harness.reports._html import scrub

__all__ = [
    "CIBA_ERROR_CODES",
    "LOAD_SUMMARY_FORMAT",
    "MODES",
    "PERCENTILES",
    "HistoryPoint",
    "LoadData",
    "StatsRow",
    "error_code_of",
    "read_load_data",
    "to_float",
    "to_int",
]

LOAD_SUMMARY_FORMAT = "ciba-harness-load-summary/1"
CIBA_ERROR_CODES = frozenset(
    BACKCHANNEL_ERROR_CODES
    | TOKEN_ERROR_CODES
    | PUSH_ERROR_CODES
    | {"server_error", "temporarily_unavailable", "invalid_client_metadata"}
)
PERCENTILES = {"p50": "50%", "p95": "95%", "p99": "99%"}
MODES = DELIVERY_MODES
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
            counts[error_code_of(str(failure.get("Error", "")))] += to_int(failure.get("Occurrences"))
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
            timestamp = to_float(row.get("Timestamp"))
            if timestamp is None:
                continue
            data.history.setdefault(key, []).append(
                HistoryPoint(
                    timestamp,
                    to_int(row.get("User Count")),
                    to_float(row.get("Requests/s")) or 0.0,
                    to_float(row.get("Failures/s")) or 0.0,
                    to_float(row.get("95%")),
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
        count=to_int(row.get("count")),
        failures=to_int(row.get("failures")),
        rps=to_float(row.get("rps")) or 0.0,
        average=to_float(row.get("average")),
        max=to_float(row.get("max")),
        percentiles={k: to_float(row.get(k)) for k in PERCENTILES},
    )


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def _stats_row(row: dict[str, str]) -> StatsRow:
    return StatsRow(
        type=(row.get("Type") or "").strip(),
        name=scrub((row.get("Name") or "").strip()),
        count=to_int(row.get("Request Count")),
        failures=to_int(row.get("Failure Count")),
        rps=to_float(row.get("Requests/s")) or 0.0,
        average=to_float(row.get("Average Response Time")),
        max=to_float(row.get("Max Response Time")),
        percentiles={k: to_float(row.get(column)) for k, column in PERCENTILES.items()},
    )


def to_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def to_int(value: Any) -> int:
    number = to_float(value)
    return int(number) if number is not None else 0
