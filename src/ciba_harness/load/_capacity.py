"""Capacity search: step the open arrival rate of whole CIBA flows, judge each step by the SLO
gate, bisect between the last passing and the first failing step, stop within bounds.

Pure logic, no Locust: `CapacitySearch` decides the next rate from the judged steps;
`StatsWindow` turns two snapshots of Locust's stats (taken at the start and the end of a
step's measuring window) into per-step rows the SLO gate reads; `judge_step` builds the
step's row of the table. The Locust side (`ciba_harness.load.users.CapacityShape`) drives
the clock, takes the snapshots and measures the generator's CPU.

Modelled on keycloak-benchmark's `--increment`: climb by a factor until a step fails, then
bisect. A step whose generator (load process) ran at or above the CPU limit is not blamed on
the provider: the search stops there and says the generator was the limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ciba_harness.load._slo import Thresholds, Verdict, _is_token_request, evaluate

__all__ = [
    "CAPACITY_FORMAT",
    "CapacityPlan",
    "CapacitySearch",
    "StatsSnapshot",
    "StatsWindow",
    "StepResult",
    "WindowEntry",
    "bucket_percentile",
    "judge_step",
]

CAPACITY_FORMAT = "ciba-harness-capacity/1"


@dataclass(frozen=True)
class CapacityPlan:
    start_rate: float = 2.0  # flows/s of the first step (all load processes together)
    max_rate: float = 500.0
    growth: float = 2.0  # factor between climbing steps
    step_seconds: float = 30.0  # each step, settle time included
    settle_seconds: float = 10.0  # the first part of a step, not judged (flows in flight)
    max_steps: int = 10
    resolution: float = 0.1  # bisection ends when (fail - pass) / pass <= this
    max_generator_cpu: float = 0.85  # share of one core a load process may use
    max_seconds: float | None = None  # the whole search (Locust's -t when given)
    max_users: int = 1000  # user pool of the open model, all processes together
    min_users: int = 1

    def __post_init__(self) -> None:
        if self.start_rate <= 0 or self.max_rate < self.start_rate:
            raise ValueError("capacity rates: need 0 < start <= max")
        if self.growth <= 1.0:
            raise ValueError("capacity growth must be above 1")
        if not 0 <= self.settle_seconds < self.step_seconds:
            raise ValueError("capacity settle time must be shorter than the step")
        if self.max_steps < 1:
            raise ValueError("capacity max steps must be at least 1")


@dataclass
class StepResult:
    index: int
    phase: str  # climb | bisect | descend
    rate: float  # offered flows/s
    users: int
    started_at: float  # seconds since the search began
    measured_seconds: float
    flows: int  # flows that ended in the measuring window
    achieved_rate: float  # flows ended per second in the window
    p95_ms: float | None
    p99_ms: float | None
    notification_p95_ms: float | None
    arrival_lag_p95_ms: float | None
    error_ratio: float  # failed flows / ended flows
    errors: dict[str, int]
    slow_down_ratio: float | None
    generator_cpu: float | None  # share of one core, the busiest load process
    passed: bool
    generator_limited: bool
    broken: list[str] = field(default_factory=list)  # the verdicts that failed
    limit_reason: str | None = None  # "cpu" or "user pool" when the generator was the limit

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bucket_percentile(buckets: Mapping[int, int], count: int, percent: float) -> float | None:
    """The percentile of Locust's bucketed response times (bucket value -> count): the
    smallest bucket at or below which at least `percent` of the samples lie."""
    if count <= 0 or not buckets:
        return None
    rank = max(1, math.ceil(percent * count))
    seen = 0
    for value in sorted(buckets):
        seen += buckets[value]
        if seen >= rank:
            return float(value)
    return float(max(buckets))


@dataclass
class WindowEntry:
    """One stats row over a window; duck-types what the SLO gate reads of a StatsEntry."""

    method: str
    name: str
    num_requests: int
    num_failures: int
    response_times: dict[int, int]
    total_response_time: float = 0.0

    def get_response_time_percentile(self, percent: float) -> float | None:
        return bucket_percentile(self.response_times, sum(self.response_times.values()), percent)

    @property
    def avg_response_time(self) -> float | None:
        return self.total_response_time / self.num_requests if self.num_requests else None


@dataclass(frozen=True)
class StatsSnapshot:
    """Cumulative figures at one moment: rows by (method, name), errors by (method, name,
    text), and per load process its (CPU seconds, wall seconds) on its own clock."""

    at: float
    rows: dict[tuple[str, str], WindowEntry]
    errors: dict[tuple[str, str, str], int]
    cpu_seconds: dict[str, tuple[float, float]]

    @classmethod
    def take(
        cls,
        at: float,
        entries: Iterable[Any],
        errors: Iterable[Any],
        cpu_seconds: Mapping[str, tuple[float, float]],
    ) -> StatsSnapshot:
        rows = {
            (str(e.method), str(e.name)): WindowEntry(
                str(e.method), str(e.name), int(e.num_requests), int(e.num_failures),
                {int(k): int(v) for k, v in dict(e.response_times).items()},
                float(e.total_response_time or 0.0),
            )
            for e in entries
        }
        failed: dict[tuple[str, str, str], int] = {}
        for error in errors:
            raw = error.error
            text = repr(raw) if isinstance(raw, BaseException) else str(raw)
            key = (str(error.method), str(error.name), text)
            failed[key] = failed.get(key, 0) + int(error.occurrences)
        return cls(at, rows, failed, dict(cpu_seconds))


@dataclass(frozen=True)
class StatsWindow:
    start: StatsSnapshot
    end: StatsSnapshot

    @property
    def seconds(self) -> float:
        return max(self.end.at - self.start.at, 1e-9)

    def entries(self) -> list[WindowEntry]:
        out = []
        for key, row in self.end.rows.items():
            before = self.start.rows.get(key)
            buckets = dict(row.response_times)
            requests, failures, total = row.num_requests, row.num_failures, row.total_response_time
            if before is not None:
                for value, count in before.response_times.items():
                    buckets[value] = buckets.get(value, 0) - count
                buckets = {k: v for k, v in buckets.items() if v > 0}
                requests -= before.num_requests
                failures -= before.num_failures
                total -= before.total_response_time
            if requests > 0 or failures > 0:
                out.append(WindowEntry(row.method, row.name, requests, failures, buckets, total))
        return out

    def errors(self) -> list[tuple[str, str, str, int]]:
        out = []
        for key, count in self.end.errors.items():
            delta = count - self.start.errors.get(key, 0)
            if delta > 0:
                out.append((*key, delta))
        return out

    def generator_cpu(self) -> float | None:
        """CPU share of one core of the busiest load process over the window."""
        shares = []
        for process, (cpu, wall) in self.end.cpu_seconds.items():
            if process not in self.start.cpu_seconds:
                continue
            cpu0, wall0 = self.start.cpu_seconds[process]
            if wall - wall0 > 0.5:  # a worker reports every 3 s: too few reports, no figure
                shares.append((cpu - cpu0) / (wall - wall0))
        return max(shares) if shares else None


def _merged_percentile(entries: list[WindowEntry], percent: float) -> float | None:
    buckets: dict[int, int] = {}
    for entry in entries:
        for value, count in entry.response_times.items():
            buckets[value] = buckets.get(value, 0) + count
    return bucket_percentile(buckets, sum(buckets.values()), percent)


def judge_step(
    window: StatsWindow,
    thresholds: Thresholds,
    *,
    index: int,
    phase: str,
    rate: float,
    users: int,
    started_at: float,
    max_generator_cpu: float,
    users_exhausted: bool = False,
) -> tuple[StepResult, list[Verdict]]:
    """The step's row and its verdicts. The p95 / p99 columns merge every time_to_tokens
    row of the window (the gate itself judges each row on its own)."""
    from ciba_harness.load._slo import flow_errors_by_code

    entries = window.entries()
    errors = flow_errors_by_code(window.errors())
    verdicts = evaluate(entries, thresholds, errors)
    tokens = [e for e in entries if e.method == "CIBA" and e.name.startswith("time_to_tokens")]
    ended = [e for e in entries if e.method == "CIBA" and e.name.split(" ", 1)[0] in
             ("time_to_tokens", "denied", "expired")]
    notes = [e for e in entries if e.method == "CIBA" and e.name.startswith("notification_latency")]
    lag = [e for e in entries if e.method == "CIBA" and e.name == "arrival_lag"]
    token_requests = sum(e.num_requests for e in entries if _is_token_request(e))
    slow = sum(e.num_requests for e in entries if e.method != "CIBA" and e.name == "token slow_down")
    flows = sum(e.num_requests for e in ended)
    failed = sum(e.num_failures for e in ended)
    cpu = window.generator_cpu()
    lag_p95 = _merged_percentile(lag, 0.95)
    p95 = _merged_percentile(tokens, 0.95)
    # The user pool ran dry and flows waited for a free user: the generator's doing only
    # when the flows themselves (time to tokens less the wait) kept the objective; a slow
    # provider also empties the pool, and that is the provider's failure.
    objective = thresholds.p95_time_to_token_ms or thresholds.p99_time_to_token_ms
    pool_limited = (
        users_exhausted and lag_p95 is not None and lag_p95 > 1000.0 and p95 is not None
        and objective is not None and p95 - lag_p95 <= objective
    )
    cpu_limited = cpu is not None and cpu >= max_generator_cpu
    generator_limited = cpu_limited or pool_limited
    passed = all(v.passed for v in verdicts)
    step = StepResult(
        index=index,
        phase=phase,
        rate=round(rate, 4),
        users=users,
        started_at=round(started_at, 3),
        measured_seconds=round(window.seconds, 3),
        flows=flows,
        achieved_rate=round(flows / window.seconds, 4),
        p95_ms=p95,
        p99_ms=_merged_percentile(tokens, 0.99),
        notification_p95_ms=_merged_percentile(notes, 0.95),
        arrival_lag_p95_ms=lag_p95,
        error_ratio=round(failed / flows, 6) if flows else 0.0,
        errors=errors,
        slow_down_ratio=round(slow / token_requests, 6) if token_requests else None,
        generator_cpu=None if cpu is None else round(cpu, 4),
        passed=passed,
        generator_limited=generator_limited,
        limit_reason="cpu" if cpu_limited else ("user pool" if pool_limited else None),
        broken=[f"{v.row} {v.measure} {v.value:.4g} > {v.limit:g}" if v.measure != "completed flows"
                else f"{v.row} {v.measure} {v.value:.4g} < {v.limit:g}"
                for v in verdicts if not v.passed],
    )
    return step, verdicts


STOP_REASONS = {
    "found": "the capacity lies between the last passing and the first failing step",
    "max_rate": "every step passed up to the highest rate allowed (--ciba-capacity-max-rate)",
    "max_steps": "the step budget (--ciba-capacity-max-steps) ran out (the bracket, if any, "
                 "is wider than --ciba-capacity-resolution)",
    "time_budget": "the time budget (-t, capped by the run budget) left no room for another "
                   "step (the bracket, if any, is wider than --ciba-capacity-resolution)",
    "generator_saturated": "the load generator, not the provider, was the limit",
    "below_start": "even the lowest rate tried failed the SLO gate",
    "stopped": "the run stopped before the search ended",
}


@dataclass
class CapacitySearch:
    plan: CapacityPlan
    steps: list[StepResult] = field(default_factory=list)
    passing: float | None = None  # highest rate that passed
    failing: float | None = None  # lowest rate that failed (by the provider)
    stop_reason: str | None = None

    def record(self, step: StepResult) -> None:
        self.steps.append(step)
        if step.generator_limited:
            # neither a pass nor a provider failure: the figures are the generator's
            self.stop_reason = "generator_saturated"
            return
        if step.passed:
            self.passing = step.rate if self.passing is None else max(self.passing, step.rate)
        else:
            self.failing = step.rate if self.failing is None else min(self.failing, step.rate)

    def next_step(self, elapsed: float = 0.0) -> tuple[float, str] | None:
        """(rate, phase) of the next step, or None (then `stop_reason` says why)."""
        if self.stop_reason is not None:
            return None
        plan = self.plan
        if len(self.steps) >= plan.max_steps:
            return self._stop("max_steps")
        if plan.max_seconds is not None and elapsed + plan.step_seconds > plan.max_seconds + 1e-6:
            return self._stop("time_budget")
        if not self.steps:
            return plan.start_rate, "climb"
        if self.failing is None:
            assert self.passing is not None
            if self.passing >= plan.max_rate:
                return self._stop("max_rate")
            return min(self.passing * plan.growth, plan.max_rate), "climb"
        if self.passing is None:
            lowest = plan.start_rate / plan.growth**2
            rate = self.failing / plan.growth
            if rate < lowest * (1 - 1e-9):
                return self._stop("below_start")
            return rate, "descend"
        if (self.failing - self.passing) / self.passing <= plan.resolution:
            return self._stop("found")
        middle = _round_rate((self.passing + self.failing) / 2)
        if not self.passing < middle < self.failing:
            return self._stop("found")
        return middle, "bisect"

    def _stop(self, reason: str) -> tuple[float, str] | None:
        self.stop_reason = reason
        return None

    def result(self, thresholds: Thresholds, *, elapsed: float, mix: str,
               processes: int) -> dict[str, Any]:
        reason = self.stop_reason or "stopped"
        limited = [s for s in self.steps if s.generator_limited]
        knee = self.failing
        capacity = self.passing
        if reason == "generator_saturated":
            last = limited[-1]
            why = (
                f"a load process used {100 * (last.generator_cpu or 0):.0f} % of a core"
                if last.limit_reason == "cpu" else
                "its user pool ran dry while the flows themselves kept the objective "
                "(raise --ciba-capacity-max-users)"
            )
            verdict = (
                f"the load generator reached its limit at {last.rate:g} flows/s ({why}) "
                f"before the provider failed the SLO gate: capacity is at least {capacity:g} "
                "flows/s; add load processes or machines"
                if capacity is not None else
                f"the load generator was the limit from the first step ({why})"
            )
        elif capacity is None:
            verdict = "no step passed the SLO gate"
        elif knee is None:
            verdict = f"capacity is at least {capacity:g} flows/s (no step failed)"
        else:
            verdict = (f"capacity {capacity:g} flows/s: the SLO gate held there and broke at "
                       f"{knee:g} flows/s")
        return {
            "format": CAPACITY_FORMAT,
            "capacity_flows_per_s": capacity,
            "knee_flows_per_s": knee,
            "stop_reason": reason,
            "stop_reason_text": STOP_REASONS.get(reason, reason),
            "limited_by": "generator" if reason == "generator_saturated" else
                          ("provider" if knee is not None else None),
            "verdict": verdict,
            "elapsed_s": round(elapsed, 3),
            "mix": mix,
            "processes": processes,
            "plan": asdict(self.plan),
            "thresholds": {k: v for k, v in asdict(thresholds).items() if v is not None},
            "steps": [s.as_dict() for s in self.steps],
        }


def _round_rate(rate: float) -> float:
    """Two significant digits above 10, one decimal below: readable step rates."""
    if rate >= 10:
        digits = 10 ** (math.floor(math.log10(rate)) - 1)
        return float(round(rate / digits) * digits)
    return round(rate, 1)
