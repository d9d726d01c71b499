"""The `--ciba-*` options, registered on Locust's own parser, and their validated form.

They work on the command line, in a locust.conf, as LOCUST_CIBA_* environment variables and
in the web UI (where every value arrives as a string, hence the tolerant coercion below).
In distributed runs the master sends its values to the workers with every spawn message.
"""

from __future__ import annotations

import math
import os
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


def add_arguments(parser: Any) -> None:
    """Register the options on Locust's parser (`init_command_line_parser`); with Locust's
    (configargparse) parser each one can also come from LOCUST_CIBA_* environment variables."""
    with_env = any(cls.__module__.startswith("configargparse") for cls in type(parser).__mro__)

    def add(*flags: str, **kwargs: Any) -> None:
        if with_env:
            kwargs.setdefault("env_var", "LOCUST_" + flags[0].lstrip("-").replace("-", "_").upper())
        parser.add_argument(*flags, **kwargs)

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
    add("--ciba-deny-share", type=float, default=0.05, metavar="F",
        help="share of flows the user denies (flow users)")
    add("--ciba-expire-share", type=float, default=0.02, metavar="F",
        help="share of flows left to expire (flow users)")
    add("--ciba-expire-after", type=int, default=None, metavar="S",
        help="requested_expiry of flows meant to expire (default: [budgets] requested_expiry)")
    add("--ciba-refresh-share", type=float, default=0.0, metavar="F",
        help="share of approved flows whose session then uses its refresh token once "
             "(generic flow users; the named profiles have their own)")
    add("--ciba-refresh-after", default="uniform:1,5", metavar="DIST",
        help="delay between the login and the refresh-token use")
    add("--ciba-flow-clients", default="all", choices=["all", "first"],
        help="whole flows take turns with one client per client authentication method of "
             "the mode (all), or use the first client of the mode only")
    add("--ciba-think-time", default="fixed:0", metavar="DIST",
        help="pause between two flows of one flow user")
    add("--ciba-time-scale", type=float, default=1.0, metavar="F",
        help="multiply the named profiles' delays and expiries (0.1 for a smoke run)")
    add("--ciba-invalid-share", type=float, default=0.1, metavar="F",
        help="share of deliberately invalid requests in the backchannel storm")
    add("--ciba-storm-clients", default="", metavar="LABELS",
        help="limit the storm to these rows, comma-separated (e.g. 'client_secret_basic,signed "
             "RS256'); default every client authentication method of the profile")
    add("--ciba-storm-rate", type=float, default=10.0, metavar="R",
        help="backchannel requests per second per storm user (0 = as fast as possible)")
    add("--ciba-pending-per-user", type=int, default=5, metavar="N",
        help="pending transactions each TokenPolling user keeps and polls")
    add("--ciba-polling-hold", default="uniform:5,15", metavar="DIST",
        help="how long each TokenPolling transaction stays pending before its approval")
    add("--ciba-eager-share", type=float, default=0.1, metavar="F",
        help="share of TokenPolling transactions polled once too early (provokes slow_down)")
    add("--ciba-id-token-sample", type=float, default=0.1, metavar="F",
        help="share of issued ID tokens fully validated (signature, claims, hashes)")
    add("--ciba-arrival-rate", type=float, default=0.0, metavar="R",
        help="open model: start R flows per second in total (0 = Locust's closed loop)")
    add("--ciba-arrival-process", default="constant", choices=["constant", "poisson"],
        help="spacing of arrivals in the open model")
    add("--ciba-max-fail-ratio", type=float, default=None, metavar="F",
        help="SLO: highest failure ratio of any request name")
    add("--ciba-p95-time-to-token-ms", type=float, default=None, metavar="MS",
        help="SLO: highest p95 of each 'time_to_tokens <mode>' row")
    add("--ciba-p95-backchannel-ms", type=float, default=None, metavar="MS",
        help="SLO: highest p95 of each 'backchannel*' row")
    add("--ciba-min-flows", type=int, default=None, metavar="N",
        help="SLO: at least N flows ended with tokens")
    add("--ciba-p99-time-to-token-ms", type=float, default=None, metavar="MS",
        help="SLO: highest p99 of each 'time_to_tokens <mode>' row")
    add("--ciba-p95-notification-ms", type=float, default=None, metavar="MS",
        help="SLO: highest p95 of each 'notification_latency <mode>' row")
    add("--ciba-max-error-ratio", type=float, default=None, metavar="F",
        help="SLO: highest share of ended flows failing with any one CIBA error code")
    add("--ciba-max-slow-down-ratio", type=float, default=None, metavar="F",
        help="SLO: highest share of token requests answered slow_down")
    add("--ciba-find-capacity", action="store_true", default=False,
        help="capacity search: step the open arrival rate of whole flows, judge each step by "
             "the SLO gate, bisect to the knee (docs/capacity.md)")
    add("--ciba-capacity-start", type=float, default=2.0, metavar="R",
        help="capacity search: flows/s of the first step")
    add("--ciba-capacity-max-rate", type=float, default=500.0, metavar="R",
        help="capacity search: highest rate tried")
    add("--ciba-capacity-growth", type=float, default=2.0, metavar="F",
        help="capacity search: factor between climbing steps")
    add("--ciba-capacity-step-time", type=float, default=30.0, metavar="S",
        help="capacity search: seconds per step")
    add("--ciba-capacity-settle", type=float, default=None, metavar="S",
        help="capacity search: first seconds of each step left out of its judgement "
             "(default a third of the step)")
    add("--ciba-capacity-max-steps", type=int, default=10, metavar="N",
        help="capacity search: most steps")
    add("--ciba-capacity-resolution", type=float, default=0.1, metavar="F",
        help="capacity search: bisect until (fail - pass) / pass <= F")
    add("--ciba-capacity-max-generator-cpu", type=float, default=0.85, metavar="F",
        help="capacity search: stop when a load process uses this share of a core")
    add("--ciba-capacity-max-users", type=int, default=1000, metavar="N",
        help="capacity search: most users (the open model's pool) over all load processes")
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
        config = _opt(options, "ciba_config")
        issuer = _opt(options, "ciba_issuer") or os.environ.get(ISSUER_ENV) or None
        deny = _number(options, "ciba_deny_share", 0.05, high=1.0) or 0.0
        expire = _number(options, "ciba_expire_share", 0.02, high=1.0) or 0.0
        if deny + expire > 1.0:
            raise ConfigError("--ciba-deny-share + --ciba-expire-share must not exceed 1")
        expire_after = _number(options, "ciba_expire_after", None, low=1)
        slo_file = _opt(options, "ciba_slo_file")
        csv_prefix = _opt(options, "csv_prefix")
        if slo_file is None and csv_prefix:
            slo_file = f"{csv_prefix}_slo.json"
        min_flows = _number(options, "ciba_min_flows", None)
        thresholds = Thresholds(
            max_fail_ratio=_number(options, "ciba_max_fail_ratio", None, high=1.0),
            p95_time_to_token_ms=_number(options, "ciba_p95_time_to_token_ms", None),
            p95_backchannel_ms=_number(options, "ciba_p95_backchannel_ms", None),
            min_flows=int(min_flows) if min_flows is not None else None,
            p99_time_to_token_ms=_number(options, "ciba_p99_time_to_token_ms", None),
            p95_notification_ms=_number(options, "ciba_p95_notification_ms", None),
            max_error_ratio=_number(options, "ciba_max_error_ratio", None, high=1.0),
            max_slow_down_ratio=_number(options, "ciba_max_slow_down_ratio", None, high=1.0),
        )
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
            time_scale=_number(options, "ciba_time_scale", 1.0, low=0.001) or 1.0,
            invalid_share=_number(options, "ciba_invalid_share", 0.1, high=1.0) or 0.0,
            storm_rate=_number(options, "ciba_storm_rate", 10.0) or 0.0,
            storm_clients=tuple(
                part.strip() for part in str(_opt(options, "ciba_storm_clients") or "").split(",")
                if part.strip()
            ),
            pending_per_user=int(_number(options, "ciba_pending_per_user", 5, low=1, high=1000) or 5),
            polling_hold=parse_delay(str(_opt(options, "ciba_polling_hold") or "uniform:5,15"),
                                     option="--ciba-polling-hold"),
            eager_share=_number(options, "ciba_eager_share", 0.1, high=1.0) or 0.0,
            id_token_sample=_number(options, "ciba_id_token_sample", 0.1, high=1.0) or 0.0,
            arrival_rate=_number(options, "ciba_arrival_rate", 0.0) or 0.0,
            arrival_process=str(_opt(options, "ciba_arrival_process") or "constant"),
            thresholds=thresholds,
            slo_file=Path(slo_file) if slo_file else None,
            csv_prefix=str(csv_prefix) if csv_prefix else None,
            capacity=capacity,
            refresh_share=_number(options, "ciba_refresh_share", 0.0, high=1.0) or 0.0,
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
    step = _number(options, "ciba_capacity_step_time", 30.0, low=1.0) or 30.0
    settle = _number(options, "ciba_capacity_settle", None)
    run_time = getattr(options, "run_time", None)
    try:
        return CapacityPlan(
            start_rate=_number(options, "ciba_capacity_start", 2.0, low=0.001) or 2.0,
            max_rate=_number(options, "ciba_capacity_max_rate", 500.0, low=0.001) or 500.0,
            growth=_number(options, "ciba_capacity_growth", 2.0, low=1.01) or 2.0,
            step_seconds=step,
            settle_seconds=step / 3 if settle is None else settle,
            max_steps=int(_number(options, "ciba_capacity_max_steps", 10, low=1, high=100) or 10),
            resolution=_number(options, "ciba_capacity_resolution", 0.1, low=0.001) or 0.1,
            max_generator_cpu=_number(options, "ciba_capacity_max_generator_cpu", 0.85,
                                      low=0.05, high=1.0) or 0.85,
            max_seconds=float(run_time) if run_time else None,
            max_users=int(_number(options, "ciba_capacity_max_users", 1000, low=1) or 1000),
            min_users=max(1, int(getattr(options, "num_users", None) or 1)),
        )
    except ValueError as exc:
        raise ConfigError(f"--ciba-find-capacity: {exc}") from None
