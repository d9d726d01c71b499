"""The `--ciba-*` options, registered on Locust's own parser, and their validated form.

They work on the command line, in a locust.conf, as LOCUST_CIBA_* environment variables and
in the web UI (where every value arrives as a string, hence the tolerant coercion below).
In distributed runs the master sends its values to the workers with every spawn message.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ciba_harness.core._config import default_profile_path
from ciba_harness.core._errors import ConfigError
from ciba_harness.load._capacity import CapacityPlan
from ciba_harness.load._profiles import DelaySpec, parse_delay
from ciba_harness.load._shapes import SHAPES
from ciba_harness.load._slo import Thresholds

__all__ = ["ISSUER_ENV", "MIX_PRESETS", "LoadSettings", "add_arguments"]

ISSUER_ENV = "CIBA_LOAD_ISSUER"  # set by `ciba-harness load` when it started the provider

# Named mixes for --ciba-mix (the empty string keeps every class at its own weight).
MIX_PRESETS: dict[str, str] = {
    "mixed": "",
    "storm": "BackchannelStorm=1",
    "polling": "TokenPolling=1",
    "flows": "PollFlow=3,PingFlow=2,PushFlow=2",
    "poll": "PollFlow=1",
    "ping": "PingFlow=1",
    "push": "PushFlow=1",
    "callcentre": "CallCentre=1",
    "pos": "PointOfSale=1",
    "iot": "SmartTv=1",
    "profiles": "CallCentre=1,PointOfSale=1,SmartTv=1",
}


@dataclass(frozen=True)
class _Number:
    """A numeric option: its registration and its validation read the same default and range."""

    kind: type[float] | type[int]
    default: float | None
    metavar: str
    help: str
    low: float = 0.0
    high: float = math.inf

    def register(self, add: Callable[..., None], flag: str, *, topic: str = "") -> None:
        add(flag, type=self.kind, default=self.default, metavar=self.metavar,
            help=topic + self.help)

    def read(self, options: Any, dest: str) -> float | None:
        number = _number(options, dest, self.default, low=self.low, high=self.high)
        return int(number) if number is not None and self.kind is int else number


#: --ciba-NAME (dashes for underscores): the flow users' numeric options
FLOW_OPTIONS: dict[str, _Number] = {
    "deny_share": _Number(float, 0.05, "F",
        "share of flows the user denies (flow users)", high=1.0),
    "expire_share": _Number(float, 0.02, "F",
        "share of flows left to expire (flow users)", high=1.0),
    "expire_after": _Number(int, None, "S",
        "requested_expiry of flows meant to expire (default: [budgets] requested_expiry)", low=1),
    "refresh_share": _Number(float, 0.0, "F",
        "share of approved flows whose session then uses its refresh token once "
        "(generic flow users; the named profiles have their own)", high=1.0),
    "time_scale": _Number(float, 1.0, "F",
        "multiply the named profiles' delays and expiries (0.1 for a smoke run)", low=0.001),
    "invalid_share": _Number(float, 0.1, "F",
        "share of deliberately invalid requests in the backchannel storm", high=1.0),
    "storm_rate": _Number(float, 10.0, "R",
        "backchannel requests per second per storm user (0 = as fast as possible)"),
    "pending_per_user": _Number(int, 5, "N",
        "pending transactions each TokenPolling user keeps and polls", low=1, high=1000),
    "eager_share": _Number(float, 0.1, "F",
        "share of TokenPolling transactions polled once too early (provokes slow_down)", high=1.0),
    "id_token_sample": _Number(float, 0.1, "F",
        "share of issued ID tokens fully validated (signature, claims, hashes)", high=1.0),
    "arrival_rate": _Number(float, 0.0, "R",
        "open model: start R flows per second in total (0 = Locust's closed loop)"),
}

#: --ciba-NAME: the SLO gate's objectives, one per Thresholds field (dashes for underscores)
SLO_OPTIONS: dict[str, _Number] = {
    "max_fail_ratio": _Number(float, None, "F", "SLO: highest failure ratio of any request name",
                              high=1.0),
    "p95_time_to_token_ms": _Number(float, None, "MS",
                                    "SLO: highest p95 of each 'time_to_tokens <mode>' row"),
    "p95_backchannel_ms": _Number(float, None, "MS", "SLO: highest p95 of each 'backchannel*' row"),
    "min_flows": _Number(int, None, "N", "SLO: at least N flows ended with tokens"),
    "p99_time_to_token_ms": _Number(float, None, "MS",
                                    "SLO: highest p99 of each 'time_to_tokens <mode>' row"),
    "p95_notification_ms": _Number(float, None, "MS",
                                   "SLO: highest p95 of each 'notification_latency <mode>' row"),
    "max_error_ratio": _Number(float, None, "F", "SLO: highest share of ended flows failing with "
                               "any one CIBA error code", high=1.0),
    "max_slow_down_ratio": _Number(float, None, "F",
                                   "SLO: highest share of token requests answered slow_down",
                                   high=1.0),
}

#: --ciba-capacity-NAME (dashes for underscores): the capacity search's plan
CAPACITY_OPTIONS: dict[str, _Number] = {
    "start": _Number(float, 2.0, "R", "flows/s of the first step", low=0.001),
    "max_rate": _Number(float, 500.0, "R", "highest rate tried", low=0.001),
    "growth": _Number(float, 2.0, "F", "factor between climbing steps", low=1.01),
    "step_time": _Number(float, 30.0, "S", "seconds per step", low=1.0),
    "settle": _Number(float, None, "S", "first seconds of each step left out of its judgement "
                      "(default a third of the step)"),
    "max_steps": _Number(int, 10, "N", "most steps", low=1, high=100),
    "resolution": _Number(float, 0.1, "F", "bisect until (fail - pass) / pass <= F", low=0.001),
    "max_generator_cpu": _Number(float, 0.85, "F",
                                 "stop when a load process uses this share of a core",
                                 low=0.05, high=1.0),
    "max_users": _Number(int, 1000, "N", "most users (the open model's pool) over all load "
                         "processes", low=1),
}


def add_arguments(parser: Any) -> None:
    """Register the options on Locust's parser (`init_command_line_parser`); with Locust's
    (configargparse) parser each one can also come from LOCUST_CIBA_* environment variables."""
    with_env = any(cls.__module__.startswith("configargparse") for cls in type(parser).__mro__)

    def add(*flags: str, **kwargs: Any) -> None:
        if with_env:
            kwargs.setdefault("env_var", "LOCUST_" + flags[0].lstrip("-").replace("-", "_").upper())
        parser.add_argument(*flags, **kwargs)

    def number(name: str) -> None:
        FLOW_OPTIONS[name].register(add, "--ciba-" + name.replace("_", "-"))

    add("--ciba-config", default=None, metavar="FILE",
        help=f"provider profile (TOML); default the reference profile {default_profile_path().name}")
    add("--ciba-issuer", default=None, metavar="URL",
        help=f"issuer URL, overriding the profile's (set by `ciba-harness load` for the embedded "
             f"provider; also ${ISSUER_ENV})")
    add("--ciba-mix", default="mixed", metavar="MIX",
        help="user classes and weights, 'PollFlow=3,PingFlow=1', or a preset: "
             + ", ".join(MIX_PRESETS))
    add("--ciba-approval-delay", default="uniform:0.5,2", metavar="DIST",
        help="user's approval delay for the flow users: fixed:S, uniform:A,B, exp:MEAN, "
             "lognormal:MEDIAN,SIGMA (seconds)")
    number("deny_share")
    number("expire_share")
    number("expire_after")
    number("refresh_share")
    add("--ciba-refresh-after", default="uniform:1,5", metavar="DIST",
        help="delay between the login and the refresh-token use")
    add("--ciba-flow-clients", default="all", choices=["all", "first"],
        help="whole flows take turns with one client per client authentication method of "
             "the mode (all), or use the first client of the mode only")
    add("--ciba-think-time", default="fixed:0", metavar="DIST",
        help="pause between two flows of one flow user")
    number("time_scale")
    number("invalid_share")
    add("--ciba-storm-clients", default="", metavar="LABELS",
        help="limit the storm to these rows, comma-separated (e.g. 'client_secret_basic,signed "
             "RS256'); default every client authentication method of the profile")
    number("storm_rate")
    number("pending_per_user")
    add("--ciba-polling-hold", default="uniform:5,15", metavar="DIST",
        help="how long each TokenPolling transaction stays pending before its approval")
    number("eager_share")
    number("id_token_sample")
    number("arrival_rate")
    add("--ciba-arrival-process", default="constant", choices=["constant", "poisson"],
        help="spacing of arrivals in the open model")
    for name, spec in SLO_OPTIONS.items():
        spec.register(add, "--ciba-" + name.replace("_", "-"))
    add("--ciba-find-capacity", action="store_true", default=False,
        help="capacity search: step the open arrival rate of whole flows, judge each step by "
             "the SLO gate, bisect to the knee (docs/capacity.md)")
    for name, spec in CAPACITY_OPTIONS.items():
        spec.register(add, "--ciba-capacity-" + name.replace("_", "-"), topic="capacity search: ")
    add("--ciba-run-timeout", type=float, default=None, metavar="S",
        help="wall-clock budget of the whole run; -t is capped at it (default: the profile's "
             "[budgets] run_timeout)")
    add("--ciba-slo-file", default=None, metavar="FILE",
        help="write the SLO verdicts as JSON (default: beside --csv as <prefix>_slo.json)")
    add("--ciba-shape", default="step", choices=list(SHAPES),
        help="load shape of load/shapes.py (peak -u, spawn rate -r, duration -t)")
    add("--ciba-shape-steps", type=int, default=5, metavar="N", help="plateaus of the step shape")


def _opt(options: Any, name: str) -> Any:
    value = getattr(options, name, None)
    return None if value == "" else value


def _number(options: Any, name: str, default: float | None, *, low: float = 0.0,
            high: float = math.inf) -> float | None:
    value = _opt(options, name)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--{name.replace('_', '-')}: {value!r} is not a number") from None
    if not (low <= number <= high) or not math.isfinite(number):
        raise ConfigError(f"--{name.replace('_', '-')}: {number:g} is outside {low:g}..{high:g}")
    return number


@dataclass(frozen=True)
class LoadSettings:
    config_path: Path
    issuer: str | None
    mix: str
    approval_delay: DelaySpec
    deny_share: float
    expire_share: float
    expire_after: int | None
    think_time: DelaySpec
    time_scale: float
    invalid_share: float
    storm_rate: float
    storm_clients: tuple[str, ...]
    pending_per_user: int
    polling_hold: DelaySpec
    eager_share: float
    id_token_sample: float
    arrival_rate: float
    arrival_process: str
    thresholds: Thresholds
    slo_file: Path | None
    csv_prefix: str | None = None
    capacity: CapacityPlan | None = None  # --ciba-find-capacity
    refresh_share: float = 0.0
    refresh_after: DelaySpec = DelaySpec("uniform", 1.0, 5.0)
    flow_clients: str = "all"

    @classmethod
    def from_options(cls, options: Any) -> LoadSettings:
        def flow(name: str) -> float | None:
            return FLOW_OPTIONS[name].read(options, "ciba_" + name)

        config = _opt(options, "ciba_config")
        issuer = _opt(options, "ciba_issuer") or os.environ.get(ISSUER_ENV) or None
        deny = flow("deny_share") or 0.0
        expire = flow("expire_share") or 0.0
        if deny + expire > 1.0:
            raise ConfigError("--ciba-deny-share + --ciba-expire-share must not exceed 1")
        expire_after = flow("expire_after")
        slo_file = _opt(options, "ciba_slo_file")
        csv_prefix = _opt(options, "csv_prefix")
        if slo_file is None and csv_prefix:
            slo_file = f"{csv_prefix}_slo.json"
        objectives: dict[str, Any] = {
            name: spec.read(options, "ciba_" + name) for name, spec in SLO_OPTIONS.items()
        }
        thresholds = Thresholds(**objectives)
        capacity = None
        if _flag(options, "ciba_find_capacity"):
            capacity = _capacity_plan(options)
            if not (thresholds.p95_time_to_token_ms or thresholds.p99_time_to_token_ms):
                # a capacity needs a latency objective: the documented default
                thresholds = replace(thresholds, p95_time_to_token_ms=DEFAULT_CAPACITY_P95_MS)
            if thresholds.max_fail_ratio is None and thresholds.max_error_ratio is None:
                thresholds = replace(thresholds, max_error_ratio=DEFAULT_CAPACITY_ERROR_RATIO)
        return cls(
            config_path=Path(config) if config else default_profile_path(),
            issuer=issuer.rstrip("/") if issuer else None,
            mix=str(_opt(options, "ciba_mix") or "mixed"),
            approval_delay=parse_delay(str(_opt(options, "ciba_approval_delay") or "fixed:0")),
            deny_share=deny,
            expire_share=expire,
            expire_after=int(expire_after) if expire_after is not None else None,
            think_time=parse_delay(str(_opt(options, "ciba_think_time") or "fixed:0"),
                                   option="--ciba-think-time"),
            time_scale=flow("time_scale") or 1.0,
            invalid_share=flow("invalid_share") or 0.0,
            storm_rate=flow("storm_rate") or 0.0,
            storm_clients=tuple(
                part.strip() for part in str(_opt(options, "ciba_storm_clients") or "").split(",")
                if part.strip()
            ),
            pending_per_user=int(flow("pending_per_user") or 5),
            polling_hold=parse_delay(str(_opt(options, "ciba_polling_hold") or "uniform:5,15"),
                                     option="--ciba-polling-hold"),
            eager_share=flow("eager_share") or 0.0,
            id_token_sample=flow("id_token_sample") or 0.0,
            arrival_rate=flow("arrival_rate") or 0.0,
            arrival_process=str(_opt(options, "ciba_arrival_process") or "constant"),
            thresholds=thresholds,
            slo_file=Path(slo_file) if slo_file else None,
            csv_prefix=str(csv_prefix) if csv_prefix else None,
            capacity=capacity,
            refresh_share=flow("refresh_share") or 0.0,
            refresh_after=parse_delay(str(_opt(options, "ciba_refresh_after") or "uniform:1,5"),
                                      option="--ciba-refresh-after"),
            flow_clients="first" if _opt(options, "ciba_flow_clients") == "first" else "all",
        )


DEFAULT_CAPACITY_P95_MS = 5000.0
DEFAULT_CAPACITY_ERROR_RATIO = 0.01


def _flag(options: Any, name: str) -> bool:
    value = getattr(options, name, False)
    if isinstance(value, str):  # web UI and environment variables
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _capacity_plan(options: Any) -> CapacityPlan:
    plan: dict[str, Any] = {name: spec.read(options, "ciba_capacity_" + name)
                            for name, spec in CAPACITY_OPTIONS.items()}
    step = plan["step_time"]
    run_time = getattr(options, "run_time", None)
    try:
        return CapacityPlan(
            start_rate=plan["start"],
            max_rate=plan["max_rate"],
            growth=plan["growth"],
            step_seconds=step,
            settle_seconds=step / 3 if plan["settle"] is None else plan["settle"],
            max_steps=plan["max_steps"],
            resolution=plan["resolution"],
            max_generator_cpu=plan["max_generator_cpu"],
            max_seconds=float(run_time) if run_time else None,
            max_users=plan["max_users"],
            min_users=max(1, int(getattr(options, "num_users", None) or 1)),
        )
    except ValueError as exc:
        raise ConfigError(f"--ciba-find-capacity: {exc}") from None
