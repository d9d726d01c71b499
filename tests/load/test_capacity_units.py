"""The capacity search's pure parts (no Locust): stepping, bisection, bounds, the per-step
window of Locust's stats, the step judgement, and the open model's retargeting."""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from ciba_harness import ConfigError
from ciba_harness.load import ArrivalScheduler, LoadSettings, Thresholds, add_arguments
from ciba_harness.load.__main__ import build_command
from ciba_harness.load._capacity import (
    CapacityPlan,
    CapacitySearch,
    StatsSnapshot,
    StatsWindow,
    StepResult,
    WindowEntry,
    bucket_percentile,
    judge_step,
)


def _step(index: int, rate: float, passed: bool, *, generator: bool = False) -> StepResult:
    return StepResult(
        index=index, phase="climb", rate=rate, users=10, started_at=0.0, measured_seconds=5.0,
        flows=10, achieved_rate=rate, p95_ms=1000.0, p99_ms=1200.0, notification_p95_ms=None,
        arrival_lag_p95_ms=None, error_ratio=0.0, errors={}, slow_down_ratio=None,
        generator_cpu=0.9 if generator else 0.1, passed=passed, generator_limited=generator,
    )


def _run(search: CapacitySearch, limit: float, *, saturate_at: float | None = None) -> list[float]:
    """Drive the search against a provider that holds the SLO up to `limit` flows/s."""
    rates: list[float] = []
    while (following := search.next_step(elapsed=len(rates) * search.plan.step_seconds)) is not None:
        rate, _ = following
        rates.append(rate)
        generator = saturate_at is not None and rate >= saturate_at
        search.record(_step(len(rates), rate, rate <= limit, generator=generator))
    return rates


def test_climbs_then_bisects_to_the_resolution() -> None:
    search = CapacitySearch(CapacityPlan(start_rate=5, growth=2, max_steps=20, resolution=0.1))
    rates = _run(search, limit=33.0)
    assert rates[:4] == [5, 10, 20, 40]  # climb until 40 fails
    assert search.stop_reason == "found"
    assert search.passing is not None and search.failing is not None
    assert search.passing <= 33.0 < search.failing
    assert (search.failing - search.passing) / search.passing <= 0.1
    result = search.result(Thresholds(p95_time_to_token_ms=3000), elapsed=1.0, mix="poll",
                           processes=1)
    assert result["capacity_flows_per_s"] == search.passing
    assert result["knee_flows_per_s"] == search.failing
    assert result["limited_by"] == "provider"
    assert [s["rate"] for s in result["steps"]] == rates


def test_step_and_time_bounds_end_the_search() -> None:
    by_steps = CapacitySearch(CapacityPlan(start_rate=1, growth=2, max_steps=3))
    assert _run(by_steps, limit=1000.0) == [1, 2, 4]
    assert by_steps.stop_reason == "max_steps"
    by_time = CapacitySearch(CapacityPlan(start_rate=1, growth=2, step_seconds=10,
                                          settle_seconds=2, max_seconds=35))
    assert len(_run(by_time, limit=1000.0)) == 3  # the 4th step would end after 35 s
    assert by_time.stop_reason == "time_budget"


def test_max_rate_and_below_start() -> None:
    capped = CapacitySearch(CapacityPlan(start_rate=10, max_rate=30, growth=2, max_steps=10))
    assert _run(capped, limit=1000.0) == [10, 20, 30]
    assert capped.stop_reason == "max_rate"
    hopeless = CapacitySearch(CapacityPlan(start_rate=8, growth=2, max_steps=10))
    assert _run(hopeless, limit=0.5) == [8, 4, 2]  # descends at most growth**2 below start
    assert hopeless.stop_reason == "below_start" and hopeless.passing is None


def test_a_saturated_generator_stops_the_search_and_is_not_blamed_on_the_provider() -> None:
    search = CapacitySearch(CapacityPlan(start_rate=5, growth=2, max_steps=10))
    rates = _run(search, limit=1000.0, saturate_at=20)
    assert rates == [5, 10, 20]
    assert search.stop_reason == "generator_saturated"
    assert search.failing is None  # the saturated step is not the provider's failure
    result = search.result(Thresholds(), elapsed=1.0, mix="poll", processes=1)
    assert result["limited_by"] == "generator"
    assert result["capacity_flows_per_s"] == 10
    assert "generator" in result["verdict"]


def test_plan_rejects_meaningless_bounds() -> None:
    with pytest.raises(ValueError):
        CapacityPlan(growth=1.0)
    with pytest.raises(ValueError):
        CapacityPlan(step_seconds=5, settle_seconds=5)


# --- per-step windows of Locust's stats --------------------------------------------------------
# A WindowEntry has the fields the window reads of one of Locust's StatsEntry rows: it stands in.
_Entry = WindowEntry


@dataclass
class _Error:
    method: str
    name: str
    error: Any
    occurrences: int


@dataclass
class _Stats:
    entries: list[_Entry] = field(default_factory=list)
    errors: list[_Error] = field(default_factory=list)


def test_bucket_percentile_is_nearest_rank_over_buckets() -> None:
    buckets = {100: 90, 2000: 10}
    assert bucket_percentile(buckets, 100, 0.5) == 100
    assert bucket_percentile(buckets, 100, 0.90) == 100
    assert bucket_percentile(buckets, 100, 0.95) == 2000
    assert bucket_percentile({}, 0, 0.95) is None


def test_window_holds_only_what_happened_inside_it_and_judges_the_step() -> None:
    before = StatsSnapshot.take(
        10.0,
        [_Entry("CIBA", "time_to_tokens poll", 100, 0, {1000: 100}, 100_000.0)],
        [],
        {"local": (1.0, 10.0)},
    )
    after = StatsSnapshot.take(
        20.0,
        [
            _Entry("CIBA", "time_to_tokens poll", 150, 5, {1000: 120, 4000: 30}, 190_000.0),
            _Entry("POST", "token", 60, 0, {5: 60}),
            _Entry("POST", "token slow_down", 6, 0, {5: 6}),
        ],
        [_Error("CIBA", "time_to_tokens poll", "CibaError('expired_token')", 5),
         _Error("POST", "token", "CibaError('expired_token', status=400)", 5)],
        {"local": (6.0, 20.0)},
    )
    window = StatsWindow(before, after)
    rows = {e.name: e for e in window.entries()}
    assert rows["time_to_tokens poll"].num_requests == 50
    assert rows["time_to_tokens poll"].response_times == {1000: 20, 4000: 30}
    assert window.generator_cpu() == pytest.approx(0.5)
    thresholds = Thresholds(p95_time_to_token_ms=3000, max_error_ratio=0.05)
    step, verdicts = judge_step(window, thresholds, index=1, phase="climb", rate=5.0, users=10,
                                started_at=0.0, max_generator_cpu=0.85)
    assert step.flows == 50 and step.achieved_rate == pytest.approx(5.0)
    assert step.p95_ms == 4000 and not step.passed
    assert step.errors == {"expired_token": 5}  # the flow row only, not the token row again
    assert step.error_ratio == pytest.approx(0.1)
    assert step.slow_down_ratio == pytest.approx(6 / 66)
    assert not step.generator_limited
    broken = {v.row for v in verdicts if not v.passed}
    assert broken == {"CIBA time_to_tokens poll", "errors expired_token"}
    busy = StatsSnapshot.take(20.0, [], [], {"local": (10.0, 20.0)})
    saturated, _ = judge_step(StatsWindow(before, busy), thresholds, index=2, phase="climb",
                              rate=5.0, users=10, started_at=0.0, max_generator_cpu=0.85)
    assert saturated.generator_limited  # 9 CPU-seconds in 10 s


def test_retarget_wakes_users_waiting_on_the_old_rate() -> None:
    scheduler = ArrivalScheduler(0.1, event_factory=threading.Event)  # one slot per 10 s
    scheduler.acquire()  # the first slot is now; the next one is 10 s away
    took: list[float] = []
    waiter = threading.Thread(target=lambda: took.append(scheduler.acquire().scheduled))
    started = time.monotonic()
    waiter.start()
    time.sleep(0.2)
    scheduler.retarget(100.0)
    waiter.join(5)
    assert not waiter.is_alive() and took
    assert time.monotonic() - started < 3.0  # not the 10 s of the old rate
    assert scheduler.rate == 100.0


def _options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = parser.parse_args(list(argv))
    options.run_time, options.num_users, options.csv_prefix = 40, 5, None
    return options


def test_capacity_options_make_a_plan_with_default_objectives() -> None:
    settings = LoadSettings.from_options(_options(
        "--ciba-find-capacity", "--ciba-capacity-start", "3", "--ciba-capacity-step-time", "9"))
    assert settings.capacity is not None
    assert settings.capacity.start_rate == 3 and settings.capacity.step_seconds == 9
    assert settings.capacity.settle_seconds == 3  # a third of the step
    assert settings.capacity.max_seconds == 40 and settings.capacity.min_users == 5
    # a capacity needs a latency and an error objective: the documented defaults
    assert settings.thresholds.p95_time_to_token_ms == 5000
    assert settings.thresholds.max_error_ratio == 0.01
    own = LoadSettings.from_options(_options(
        "--ciba-find-capacity", "--ciba-p99-time-to-token-ms", "900", "--ciba-max-fail-ratio", "0"))
    assert own.thresholds.p95_time_to_token_ms is None and own.thresholds.max_error_ratio is None
    assert LoadSettings.from_options(_options()).capacity is None
    with pytest.raises(ConfigError, match="capacity-growth"):
        LoadSettings.from_options(_options("--ciba-find-capacity", "--ciba-capacity-growth", "1.001"))
    with pytest.raises(ConfigError, match="find-capacity: capacity settle"):
        LoadSettings.from_options(_options("--ciba-find-capacity", "--ciba-capacity-step-time", "5",
                                           "--ciba-capacity-settle", "6"))


def test_wrapper_gives_a_capacity_search_the_time_of_all_its_steps() -> None:
    command = build_command(["--ciba-find-capacity", "--ciba-capacity-max-steps", "4",
                             "--ciba-capacity-step-time", "5"], issuer=None, ui=False)
    assert command[command.index("-t") + 1] == "45s" and command.count("-t") == 1
    plain = build_command([], issuer=None, ui=False)
    assert plain[plain.index("-t") + 1] == "20s"


def test_an_empty_user_pool_is_the_generator_only_while_the_flows_keep_the_objective() -> None:
    start = StatsSnapshot.take(0.0, [], [], {})

    def window(p95: int, lag: int) -> StatsWindow:
        end = StatsSnapshot.take(10.0, [
            _Entry("CIBA", "time_to_tokens poll", 100, 0, {p95: 100}),
            _Entry("CIBA", "arrival_lag", 100, 0, {lag: 100}),
        ], [], {})
        return StatsWindow(start, end)

    objective = Thresholds(p95_time_to_token_ms=2000)
    waited, _ = judge_step(window(p95=4000, lag=3000), objective, index=1, phase="climb",
                           rate=50, users=1000, started_at=0, max_generator_cpu=0.85,
                           users_exhausted=True)
    assert waited.generator_limited and waited.limit_reason == "user pool"
    slow, _ = judge_step(window(p95=8000, lag=3000), objective, index=2, phase="climb",
                         rate=50, users=1000, started_at=0, max_generator_cpu=0.85,
                         users_exhausted=True)
    assert not slow.generator_limited and not slow.passed  # the provider was slow
