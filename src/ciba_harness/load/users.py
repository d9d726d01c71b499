"""Locust glue: the abstract user bases and the event listeners of load/locustfile.py.

Importing this module imports Locust, which monkey-patches the process with gevent: import
it only in a Locust process (the locustfile), never in pytest or the wrapper.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import gevent
import gevent.event
from gevent.lock import BoundedSemaphore
from locust import FastHttpUser, LoadTestShape, events
from locust.exception import StopUser
from locust.rpc import Message
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from ciba_harness.core._errors import CibaHarnessError, ConfigError
from ciba_harness.load._capacity import (
    CapacityPlan,
    CapacitySearch,
    StatsSnapshot,
    StatsWindow,
    judge_step,
)
from ciba_harness.load._context import LoadContext, resolve_test_pki, tls_factory
from ciba_harness.load._embedded import EmbeddedProvider
from ciba_harness.load._flows import FlowRunner
from ciba_harness.load._metrics import AuthReqIdTracker, CibaError, EventSink
from ciba_harness.load._profiles import PROFILES, FlowProfile, parse_mix
from ciba_harness.load._settings import MIX_PRESETS, LoadSettings, add_arguments
from ciba_harness.load._slo import (
    SLO_EXIT_CODE,
    evaluate,
    flow_errors_by_code,
    format_verdicts,
    verdicts_document,
    write_verdicts,
)
from ciba_harness.load._transport import LocustTransport

__all__ = [
    "CibaUser",
    "CibaFlowUser",
    "CibaStormUser",
    "CibaPollingUser",
    "CapacityShape",
    "install",
    "current_context",
]

log = logging.getLogger("ciba_harness.load")

_state: dict[str, Any] = {
    "context": None, "provider": None, "master_tracker": None, "classes": None,
    "pending_rate": None, "cpu_start": None, "worker_cpu": {}, "shape": None, "finalised": False,
}
IDS_KEY = "ciba_auth_req_ids"
CPU_KEY = "ciba_generator_cpu"  # a worker's (CPU seconds, wall seconds) since its test start
RATE_MESSAGE = "ciba_capacity_rate"
PAUSED_RATE = 1e-9  # flows/s while the capacity search lets a failed step drain
GENERATOR_CPU_LIMIT = 0.85  # share of one core above which the generator is the limit
FINAL_REPORT_WAIT = 10.0  # seconds the master waits for the workers' last stats


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _own_cpu() -> tuple[float, float]:
    """(CPU seconds, wall seconds) of this process since its test start."""
    start = _state["cpu_start"]
    if start is None:
        return 0.0, 0.0
    return cpu_seconds() - start[0], time.monotonic() - start[1]


_setup_lock = BoundedSemaphore()


def current_context() -> LoadContext:
    context = _state["context"]
    if context is None:
        raise CibaHarnessError("the CIBA load context is not set up (test_start did not run)")
    assert isinstance(context, LoadContext)
    return context


def _ensure_context(environment: Any, *, from_user: bool = False) -> LoadContext | None:
    """This process's context, created once (at test_start; by the first user otherwise)."""
    with _setup_lock:
        context = _state["context"]
        if isinstance(context, LoadContext) or _state.get("failed"):
            return context if isinstance(context, LoadContext) else None
        runner = environment.runner
        processes = 1
        if isinstance(runner, WorkerRunner):
            processes = int(getattr(environment.parsed_options, "expect_workers", 1) or 1)
        if from_user:
            log.warning("a user started before the CIBA context existed; creating it now")
        try:
            settings = _settings(environment)
            context = LoadContext.create(
                settings,
                environment.events.request.fire,
                processes=processes,
                distributed=isinstance(runner, WorkerRunner),
                sleep=gevent.sleep,
                event_factory=gevent.event.Event,
            )
        except Exception as exc:  # any setup error ends the run with exit code 2, not a user crash
            if not isinstance(exc, CibaHarnessError):
                log.exception("setting up the CIBA load context failed")
            _state["failed"] = True
            _fail_setup(environment, exc)
            return None
        _state["context"] = context
        _apply_pending_rate(environment)
        CibaUser.host = context.config.issuer
        CibaUser.network_timeout = context.config.budgets.request_timeout
        CibaUser.connection_timeout = context.config.budgets.request_timeout
        # FastHttpUser skips TLS verification by default; follow the profile instead
        CibaUser.insecure = context.config.insecure_skip_verify
        CibaUser.ssl_context_factory = staticmethod(tls_factory(context.config))
        log.info(
            "CIBA load against %s: modes %s, storm clients %s%s",
            context.config.issuer,
            ", ".join(sorted(context.clients)),
            ", ".join(label for label, _ in context.storm_clients),
            f", open model {context.scheduler.rate:g} flows/s in this process"
            + (" (capacity search: stepped)" if settings.capacity else "")
            if context.scheduler else "",
        )
        return context


SETUP_FAILED_GRACE = 5.0  # seconds a user waits for the runner to quit after a failed setup


class CibaUser(FastHttpUser):
    """Base of every CIBA persona: the core's requests over this user's FastHttpSession."""

    abstract = True
    host = "http://ciba-issuer.invalid"  # replaced by the issuer at test_start
    network_timeout = 10.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        context = _ensure_context(self.environment, from_user=True)
        if context is None:
            # The setup failed, was reported once (exit code 2) and the runner is quitting:
            # wait for it quietly; StopUser from on_start is logged with a traceback per user.
            gevent.sleep(SETUP_FAILED_GRACE)
            raise StopUser()
        self.ctx = context
        self.runner_ = FlowRunner(self.ctx, LocustTransport(self.client), random.Random())


class CibaFlowUser(CibaUser):
    """Whole flows. `profile_name` picks a named profile; None takes the --ciba-* options."""

    abstract = True
    profile_name: ClassVar[str | None] = None

    @property
    def profile(self) -> FlowProfile:
        if self.profile_name is None:
            assert self.ctx.generic_profile is not None
            return self.ctx.generic_profile
        return PROFILES[self.profile_name].scaled(self.ctx.settings.time_scale)

    def wait_time(self) -> float:
        if self.ctx.scheduler is not None:
            return 0.0  # the open model paces flow starts itself
        return self.profile.think_time.sample(self.runner_.rng)

    def on_start(self) -> None:
        super().on_start()
        self.runner_.profile_suffix = self.profile_name or ""

    def flow(self, mode: str | None = None) -> None:
        """One flow in `mode` (or a mode drawn from the profile), paced by the open model."""
        started = None
        if self.ctx.scheduler is not None:
            slot = self.ctx.scheduler.acquire()
            started = slot.scheduled
            self.ctx.sink.measure("arrival_lag", slot.lag * 1000.0)
        self.runner_.flow(self.profile, mode or self.profile.mode(self.runner_.rng), started=started)


class CibaStormUser(CibaUser):
    """Backchannel requests only, paced at --ciba-storm-rate per user (0: unpaced)."""

    abstract = True

    def wait_time(self) -> float:
        rate = self.ctx.settings.storm_rate
        if rate <= 0:
            return 0.0
        now = time.perf_counter()
        last = getattr(self, "_storm_next", now)
        self._storm_next = max(last, now) + 1.0 / rate
        return max(0.0, last - now)

    def storm(self) -> None:
        assert self.ctx.generic_profile is not None
        self.runner_.storm_once(self.ctx.generic_profile)


class CibaPollingUser(CibaUser):
    """Keeps --ciba-pending-per-user transactions pending and polls each at its interval."""

    abstract = True

    def wait_time(self) -> float:
        return 0.0  # the task sleeps until the next poll is due

    def poll_next(self) -> None:
        settings = self.ctx.settings
        self.runner_.polling_step(settings.polling_hold.sample, settings.pending_per_user)


# --- event listeners -------------------------------------------------------------------------
def _on_parser(parser: Any, **_: Any) -> None:
    add_arguments(parser)


def _settings(environment: Any) -> LoadSettings:
    return LoadSettings.from_options(environment.parsed_options)


def _fail_setup(environment: Any, error: Exception) -> None:
    sys.stderr.write(f"ciba-harness load: {error}\n")
    sys.stderr.flush()
    environment.process_exit_code = 2
    runner = environment.runner
    if runner is not None:
        gevent.spawn_later(0.1, runner.quit)


def _on_init(environment: Any, runner: Any = None, **_: Any) -> None:
    try:
        _init(environment, runner)
    finally:
        # gevent's loop clock stands still until the hub first runs, i.e. since `import
        # locust`: Locust's -t timer, armed right after this event, would fire early by the
        # whole start-up (imports, options, this setup; 1-3 s here), cutting short runs
        gevent.get_hub().loop.update_now()


def _init(environment: Any, runner: Any) -> None:
    if environment.parsed_options is None:  # run_single_user without options
        return
    try:
        settings = _settings(environment)
    except ConfigError as exc:
        sys.stderr.write(f"ciba-harness load: {exc}\n")
        raise SystemExit(2) from None
    if isinstance(runner, WorkerRunner):
        runner.register_message(RATE_MESSAGE, _on_rate_message)
        return
    _cap_run_time(environment, settings)
    if settings.csv_prefix:  # a stale final document must not describe this run's CSV files
        Path(f"{settings.csv_prefix}_final.json").unlink(missing_ok=True)
    try:
        _apply_mix(environment, _effective_mix(settings))
    except ConfigError as exc:
        sys.stderr.write(f"ciba-harness load: {exc}\n")
        raise SystemExit(2) from None
    if isinstance(runner, MasterRunner):
        _state["master_tracker"] = AuthReqIdTracker()
        _patient_quit(runner)
    if settings.capacity is not None and runner is not None:
        shape = CapacityShape()
        shape.runner = runner
        environment.shape_class = shape
        _state["shape"] = shape
    if settings.issuer is None:
        _maybe_start_provider(environment, settings)


def run_budget(environment: Any, settings: LoadSettings) -> float | None:
    """--ciba-run-timeout, else the profile's `[budgets] run_timeout` (seconds)."""
    given = getattr(environment.parsed_options, "ciba_run_timeout", None)
    if given not in (None, ""):
        return float(given)
    from ciba_harness.core._config import load_config

    try:
        config = load_config(settings.config_path, test_pki=resolve_test_pki)
        budget = getattr(config.budgets, "run_timeout", None)
    except ConfigError:
        return None
    return float(budget) if budget else None


def _cap_run_time(environment: Any, settings: LoadSettings) -> None:
    """A load run never outlives its run budget: Locust's -t is capped at it."""
    options = environment.parsed_options
    budget = run_budget(environment, settings)
    if budget is None or not getattr(options, "headless", False):
        return
    run_time = getattr(options, "run_time", None)
    if not run_time or float(run_time) > budget:
        if run_time:
            log.warning("-t %ss exceeds the run budget (%gs, [budgets] run_timeout or "
                        "--ciba-run-timeout): the run stops at %gs", run_time, budget, budget)
        options.run_time = max(1, int(budget))


def _effective_mix(settings: LoadSettings) -> str:
    """The capacity search runs whole flows: the default mix becomes `flows` (the storm and
    polling users are stressors with no arrival rate)."""
    if settings.capacity is not None and settings.mix.strip().lower() == "mixed":
        return "flows"
    return settings.mix


def _patient_quit(runner: Any) -> None:
    """Make the master wait for every worker's last stats before it stops listening.

    Locust's MasterRunner.quit sends `quit` and waits a fixed 0.5 s; on a loaded machine the
    workers' final reports (each worker sends one, then its `quit`) come later and are lost,
    so the master's totals, the SLO gate and the report would miss the last requests. Here
    it waits until every worker has said `quit` (its final report came before), at most
    FINAL_REPORT_WAIT seconds."""
    original = runner.quit

    def quit_after_final_reports() -> None:
        if not _state.get("quit_sent"):
            _state["quit_sent"] = True
            runner.stop(send_stop_to_client=False)
            for client in list(runner.clients.all):
                runner.server.send_to_client(Message("quit", None, client.id))  # type: ignore[no-untyped-call]
            deadline = time.monotonic() + FINAL_REPORT_WAIT
            while len(list(runner.clients.all)) and time.monotonic() < deadline:
                gevent.sleep(0.05)
        original()

    runner.quit = quit_after_final_reports


def _apply_pending_rate(environment: Any) -> None:
    context = _state["context"]
    rate = _state["pending_rate"]
    if not isinstance(context, LoadContext) or rate is None or context.scheduler is None:
        return
    processes = 1
    if isinstance(environment.runner, WorkerRunner):
        processes = int(getattr(environment.parsed_options, "expect_workers", 1) or 1)
    context.scheduler.retarget(float(rate) / max(1, processes))


def set_arrival_rate(environment: Any, rate: float) -> None:
    """The open model's total rate, from now on: here, or on every worker (capacity search)."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.send_message(RATE_MESSAGE, {"rate": rate})
        return
    _state["pending_rate"] = rate
    _apply_pending_rate(environment)


def _on_rate_message(environment: Any, msg: Any, **_: Any) -> None:
    _state["pending_rate"] = float(msg.data["rate"])
    _apply_pending_rate(environment)


def _apply_mix(environment: Any, mix: str) -> None:
    """Select and weight the user classes (master / local only: it dispatches the users)."""
    if _state["classes"] is None:  # the classes as Locust selected them, with their weights
        _state["classes"] = [(cls, cls.weight) for cls in environment.user_classes]
    classes: list[tuple[Any, int]] = _state["classes"]
    text = MIX_PRESETS.get(mix.strip().lower(), mix)
    if not text:
        weights = {cls.__name__: weight for cls, weight in classes}
    else:
        weights = parse_mix(text, [cls.__name__ for cls, _ in classes])
    kept = []
    for cls, _weight in classes:
        if cls.__name__ in weights:
            cls.weight = weights[cls.__name__]
            kept.append(cls)
    environment.user_classes[:] = kept
    shown = ", ".join(f"{cls.__name__}={cls.weight}" for cls in kept)
    if shown != _state.get("mix_shown"):
        _state["mix_shown"] = shown
        log.info("user classes: %s", shown)


def _maybe_start_provider(environment: Any, settings: LoadSettings) -> None:
    """`locust -f load/locustfile.py` with the embedded profile: start the reference provider
    here (master / local process only); the workers get its URL with the spawn message."""
    from ciba_harness.core._config import load_config

    try:
        config = load_config(settings.config_path, test_pki=resolve_test_pki)
    except ConfigError as exc:
        sys.stderr.write(f"ciba-harness load: {exc}\n")
        raise SystemExit(2) from None
    if not config.embedded:
        return
    try:
        provider = EmbeddedProvider(settings.config_path)
    except CibaHarnessError as exc:
        sys.stderr.write(f"ciba-harness load: {exc}\n")
        raise SystemExit(2) from None
    _state["provider"] = provider
    atexit.register(provider.stop)  # run_single_user never fires quitting
    environment.parsed_options.ciba_issuer = provider.issuer
    log.info("started the embedded reference provider at %s (pid %d)", provider.issuer, provider.pid)


def _on_test_start(environment: Any, **_: Any) -> None:
    runner = environment.runner
    try:
        settings = _settings(environment)
        if not isinstance(runner, WorkerRunner):
            _apply_mix(environment, _effective_mix(settings))  # options may change in the web UI
    except ConfigError as exc:
        _fail_setup(environment, exc)
        return
    if isinstance(runner, MasterRunner):
        return
    if _state["cpu_start"] is None:
        _state["cpu_start"] = (cpu_seconds(), time.monotonic())
    processes = 1
    if isinstance(runner, WorkerRunner):
        processes = int(getattr(environment.parsed_options, "expect_workers", 1) or 1)
    existing = _state["context"]
    if isinstance(existing, LoadContext):  # a restart from the web UI: keep the receiver
        try:
            existing.apply(settings, processes=processes, sleep=gevent.sleep,
                           event_factory=gevent.event.Event)
            _apply_pending_rate(environment)
        except CibaHarnessError as exc:
            _fail_setup(environment, exc)
        return
    _ensure_context(environment)


def _on_test_stop(environment: Any, **_: Any) -> None:
    context = _state["context"]
    if isinstance(context, LoadContext):
        role = "worker" if isinstance(environment.runner, WorkerRunner) else "local"
        if context.receiver is not None:
            context.counters.forwarded = context.receiver.forwarded
        log.info("ciba-load %s summary: %s", role, context.counters.summary())
        if context.tracker.saturated:
            log.warning("the auth_req_id duplicate check reached its cap; later ids were not stored")


def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    context = _state["context"]
    if isinstance(context, LoadContext):
        data[IDS_KEY] = context.tracker.drain()
    data[CPU_KEY] = list(_own_cpu())


def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    cpu = data.get(CPU_KEY)
    if isinstance(cpu, list) and len(cpu) == 2:
        _state["worker_cpu"][client_id] = (float(cpu[0]), float(cpu[1]))
    tracker = _state["master_tracker"]
    digests = data.get(IDS_KEY)
    if not isinstance(tracker, AuthReqIdTracker) or not digests:
        return
    found = tracker.merge(digests)
    if found:
        sink = EventSink(events.request.fire)
        for _index in range(found):
            sink.failure("duplicate_auth_req_id", CibaError("duplicate_auth_req_id", scope="run"))


def _on_quitting(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if not isinstance(runner, WorkerRunner) and environment.parsed_options is not None:
        _stop_before_counting(runner)
    context = _state["context"]
    if isinstance(context, LoadContext):
        context.stop()
    provider = _state["provider"]
    if isinstance(provider, EmbeddedProvider):
        provider.stop()
        _state["provider"] = None
    if isinstance(runner, WorkerRunner) or environment.parsed_options is None:
        return
    if _state["finalised"]:
        return
    _state["finalised"] = True
    try:
        settings = _settings(environment)
    except ConfigError:
        return
    if environment.process_exit_code == 2 or _state.get("failed"):
        return  # a failed setup: no verdicts, no final document (the last report stays)
    capacity = _capacity_result(environment, settings)
    slo = None if capacity is not None else _slo_gate(environment, settings)
    _write_final(environment, settings, slo=slo, capacity=capacity)


def _stop_before_counting(runner: Any) -> None:
    """Stop the users before the gate counts: Locust fires `quitting` before it stops a
    still-running test (SIGTERM, Ctrl-C), and flows ending meanwhile would be missed."""
    if runner is None or runner.state not in (STATE_RUNNING, STATE_SPAWNING):
        return
    try:
        if isinstance(runner, MasterRunner):
            runner.quit()  # the patient quit: waits for the workers' final reports
        else:
            runner.stop()
    except Exception:  # stopping is best effort; the figures are then what was counted
        log.exception("stopping the users before the final count failed")


def _stats_errors(environment: Any) -> list[tuple[str, str, str, int]]:
    out = []
    for error in environment.runner.stats.errors.values():
        raw = error.error
        text = repr(raw) if isinstance(raw, BaseException) else str(raw)
        out.append((str(error.method), str(error.name), text, int(error.occurrences)))
    return out


def _slo_gate(environment: Any, settings: LoadSettings) -> dict[str, Any] | None:
    thresholds = settings.thresholds
    if not thresholds.any:
        return None
    entries = list(environment.runner.stats.entries.values())
    verdicts = evaluate(entries, thresholds, flow_errors_by_code(_stats_errors(environment)))
    report = format_verdicts(verdicts)
    sys.stderr.write(report + "\n")
    if settings.slo_file is not None:
        write_verdicts(settings.slo_file, verdicts, thresholds)
    if environment.process_exit_code in (None, 0):
        environment.process_exit_code = 0 if all(v.passed for v in verdicts) else SLO_EXIT_CODE
    return verdicts_document(verdicts, thresholds)


def generator_figures(environment: Any, flows: int) -> dict[str, Any]:
    """The load generator's own CPU: per process, in total, per ended flow, and whether it
    (not the provider) was the limit."""
    if isinstance(environment.runner, MasterRunner):
        processes = {client: cpu for client, cpu in _state["worker_cpu"].items()}
    else:
        processes = {"local": _own_cpu()}
    rows = []
    for name, (cpu, wall) in sorted(processes.items()):
        rows.append({"process": name, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                     "cpu_share": round(cpu / wall, 4) if wall > 0 else None})
    total = sum(cpu for cpu, _ in processes.values())
    shares = [r["cpu_share"] for r in rows if r["cpu_share"] is not None]
    peak = max(shares) if shares else None
    limited = peak is not None and peak >= GENERATOR_CPU_LIMIT
    return {
        "processes": rows,
        "cpu_s": round(total, 3),
        "flows": flows,
        "cpu_ms_per_flow": round(1000 * total / flows, 4) if flows else None,
        "flows_per_cpu_s": round(flows / total, 3) if total > 0 and flows else None,
        "peak_cpu_share": peak,
        "cpu_limit": GENERATOR_CPU_LIMIT,
        "generator_limited": limited,
        "warning": (
            f"a load process used {100 * peak:.0f} % of a core: the generator, not the provider, "
            "may be the limit of this run (add --processes or machines)"
        ) if limited and peak is not None else None,
    }


def _final_rows(environment: Any) -> list[dict[str, Any]]:
    rows = []
    stats = environment.runner.stats
    for entry in [*stats.entries.values(), stats.total]:
        if entry.num_requests == 0 and entry.num_failures == 0:
            continue
        rows.append({
            "type": "" if entry is stats.total else str(entry.method),
            "name": "Aggregated" if entry is stats.total else str(entry.name),
            "count": int(entry.num_requests),
            "failures": int(entry.num_failures),
            "average": entry.avg_response_time if entry.num_requests else None,
            "max": entry.max_response_time if entry.num_requests else None,
            "rps": entry.total_rps,
            "p50": entry.get_response_time_percentile(0.5) if entry.num_requests else None,
            "p95": entry.get_response_time_percentile(0.95) if entry.num_requests else None,
            "p99": entry.get_response_time_percentile(0.99) if entry.num_requests else None,
        })
    return rows


def _write_final(environment: Any, settings: LoadSettings, *, slo: dict[str, Any] | None,
                 capacity: dict[str, Any] | None) -> None:
    """`<csv prefix>_final.json`: Locust's final figures (after the last request), the SLO
    verdicts, the capacity search and the generator's CPU, for the CIBA load report."""
    stats = environment.runner.stats
    flows = sum(
        e.num_requests for e in stats.entries.values()
        if e.method == "CIBA" and e.name.split(" ", 1)[0] in ("time_to_tokens", "denied", "expired")
    )
    generator = generator_figures(environment, flows)
    if generator["warning"]:
        log.warning("ciba-harness load: %s", generator["warning"])
    if settings.csv_prefix is None:
        return
    document = {
        "format": "ciba-harness-load-final/1",
        "stats": _final_rows(environment),
        "errors": [
            {"Method": method, "Name": name, "Error": text, "Occurrences": count}
            for method, name, text, count in _stats_errors(environment)
        ],
        "slo": slo,
        "capacity": capacity,
        "generator": generator,
        "workload": {
            "model": "open" if (settings.arrival_rate > 0 or capacity is not None) else "closed",
            "arrival_rate": settings.arrival_rate or None,
            "mix": _effective_mix(settings),
            "approval_delay": str(settings.approval_delay),
            "deny_share": settings.deny_share,
            "expire_share": settings.expire_share,
        },
    }
    path = Path(f"{settings.csv_prefix}_final.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    temporary.replace(path)


def _capacity_result(environment: Any, settings: LoadSettings) -> dict[str, Any] | None:
    shape = _state["shape"]
    if settings.capacity is None or not isinstance(shape, CapacityShape):
        return None
    result = shape.result()
    sys.stderr.write(f"ciba-harness load: capacity search: {result['verdict']} "
                     f"({len(result['steps'])} steps, {result['elapsed_s']:.0f} s; "
                     f"stop: {result['stop_reason']})\n")
    for step in result["steps"]:
        sys.stderr.write(
            f"  step {step['index']:2} {step['phase']:8} {step['rate']:9.4g} flows/s  "
            f"p95 {step['p95_ms'] or 0:8.0f} ms  errors {100 * step['error_ratio']:5.1f} %  "
            f"cpu {100 * (step['generator_cpu'] or 0):4.0f} %  "
            f"{'pass' if step['passed'] else 'FAIL'}"
            f"{'  (generator limit)' if step['generator_limited'] else ''}\n"
        )
    if environment.process_exit_code in (None, 0):
        environment.process_exit_code = 0 if result["capacity_flows_per_s"] is not None else SLO_EXIT_CODE
    return result


class CapacityShape(LoadTestShape):
    """The capacity search as a LoadTestShape (installed by --ciba-find-capacity; works
    with `locust -f load/locustfile.py`, local or --master with workers).

    Each step sets the open model's arrival rate (sent to the workers), sizes the user pool
    for it, lets the flows in flight settle, then judges the step's window by the SLO gate.
    """

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.search: CapacitySearch | None = None
        self.plan: CapacityPlan | None = None
        self.step_index = 0
        self.step_rate = 0.0
        self.step_phase = "climb"
        self.step_started = 0.0
        self.window_start: StatsSnapshot | None = None
        self.users = 0
        self.flow_seconds = 2.0
        self.done = False
        self.cooling: tuple[float, tuple[float, str]] | None = None  # (until, next step)

    def _settings(self) -> LoadSettings:
        assert self.runner is not None
        return _settings(self.runner.environment)

    def _snapshot(self) -> StatsSnapshot:
        assert self.runner is not None
        if isinstance(self.runner, MasterRunner):
            cpu = dict(_state["worker_cpu"])
        else:
            cpu = {"local": _own_cpu()}
        stats = self.runner.stats
        return StatsSnapshot.take(time.monotonic(), list(stats.entries.values()),
                                  list(stats.errors.values()), cpu)

    def _start_step(self, rate: float, phase: str, now: float) -> None:
        assert self.plan is not None and self.runner is not None
        self.step_index += 1
        self.step_rate, self.step_phase, self.step_started = rate, phase, now
        self.window_start = None
        wanted = math.ceil(rate * self.flow_seconds * 1.5) + 2
        self.users = max(self.users, min(self.plan.max_users, max(self.plan.min_users, wanted)))
        set_arrival_rate(self.runner.environment, rate)
        log.info("capacity search: step %d (%s) at %g flows/s, %d users", self.step_index,
                 phase, rate, self.users)

    def tick(self) -> tuple[int, float] | None:
        if self.done:
            return None
        now = float(self.get_run_time())  # type: ignore[no-untyped-call]
        if self.search is None:
            settings = self._settings()
            assert settings.capacity is not None
            self.plan = settings.capacity
            self.search = CapacitySearch(self.plan)
            self.flow_seconds = max(1.0, settings.approval_delay.mean + 1.5)
            first = self.search.next_step(now)
            assert first is not None
            self._start_step(*first, now)
        assert self.plan is not None
        if self.cooling is not None:
            if now < self.cooling[0]:
                return self.users, float(max(20, self.users))
            rate, phase = self.cooling[1]
            self.cooling = None
            self._start_step(rate, phase, now)
        if self.window_start is None and now >= self.step_started + self.plan.settle_seconds:
            self.window_start = self._snapshot()
        if now >= self.step_started + self.plan.step_seconds and self.window_start is not None:
            window = StatsWindow(self.window_start, self._snapshot())
            step, _ = judge_step(
                window, self._settings().thresholds, index=self.step_index, phase=self.step_phase,
                rate=self.step_rate, users=self.users, started_at=self.step_started,
                max_generator_cpu=self.plan.max_generator_cpu,
                users_exhausted=self.users >= self.plan.max_users,
            )
            self.search.record(step)
            if step.p95_ms and step.passed:  # size the pool on flows that kept the objective
                self.flow_seconds = max(self.flow_seconds, step.p95_ms / 1000.0)
            # After a failed step the provider still works off that step's flows: pause the
            # arrivals until they have drained (at most a step), or they would be judged in
            # the next, lower step (whose time to tokens counts from their old slots).
            pause = 0.0 if step.passed else min(
                self.plan.step_seconds, max(self.plan.settle_seconds, (step.p95_ms or 0) / 1000.0))
            following = self.search.next_step(now + pause)
            if following is None:
                self.done = True
                return None
            if pause > 0:
                assert self.runner is not None
                self.cooling = (now + pause, following)
                set_arrival_rate(self.runner.environment, PAUSED_RATE)
                log.info("capacity search: %g s without arrivals (the failed step's flows drain)", pause)
                return self.users, float(max(20, self.users))
            self._start_step(*following, now)
        return self.users, float(max(20, self.users))

    def result(self) -> dict[str, Any]:
        assert self.runner is not None
        settings = self._settings()
        search = self.search or CapacitySearch(settings.capacity or CapacityPlan())
        processes = 1
        if isinstance(self.runner, MasterRunner):  # the workers have quit by now: count reports
            processes = max(len(_state["worker_cpu"]),
                            int(getattr(self.runner.environment.parsed_options, "expect_workers", 1) or 1))
        if search.stop_reason is None:
            search.stop_reason = "stopped"
        return search.result(settings.thresholds, elapsed=float(self.get_run_time()),  # type: ignore[no-untyped-call]
                             mix=_effective_mix(settings), processes=max(1, processes))


def install(event_hooks: Any = events) -> None:
    """Register the CIBA listeners (called once at module level by load/locustfile.py)."""
    event_hooks.init_command_line_parser.add_listener(_on_parser)
    event_hooks.init.add_listener(_on_init)
    event_hooks.test_start.add_listener(_on_test_start)
    event_hooks.test_stop.add_listener(_on_test_stop)
    event_hooks.report_to_master.add_listener(_on_report_to_master)
    event_hooks.worker_report.add_listener(_on_worker_report)
    event_hooks.quitting.add_listener(_on_quitting)

