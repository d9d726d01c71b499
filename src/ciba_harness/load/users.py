"""Locust glue: the abstract user bases and the event listeners of load/locustfile.py.

Importing this module imports Locust, which monkey-patches the process with gevent: import
it only in a Locust process (the locustfile), never in pytest or the wrapper.
"""

from __future__ import annotations

import atexit
import logging
import random
import sys
import time
from typing import Any, ClassVar

import gevent
from gevent.lock import BoundedSemaphore
from locust import FastHttpUser, events
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from .._errors import CibaHarnessError, ConfigError
from ._context import LoadContext, tls_factory
from ._embedded import EmbeddedProvider
from ._flows import FlowRunner
from ._metrics import AuthReqIdTracker, CibaError, EventSink
from ._profiles import PROFILES, FlowProfile, parse_mix
from ._settings import MIX_PRESETS, LoadSettings, add_arguments
from ._slo import SLO_EXIT_CODE, evaluate, format_verdicts, write_verdicts
from ._transport import LocustTransport

__all__ = [
    "CibaUser",
    "CibaFlowUser",
    "CibaStormUser",
    "CibaPollingUser",
    "install",
    "current_context",
]

log = logging.getLogger("ciba_harness.load")

_state: dict[str, Any] = {"context": None, "provider": None, "master_tracker": None, "classes": None}
IDS_KEY = "ciba_auth_req_ids"


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
            )
        except Exception as exc:  # any setup error ends the run with exit code 2, not a user crash
            if not isinstance(exc, CibaHarnessError):
                log.exception("setting up the CIBA load context failed")
            _state["failed"] = True
            _fail_setup(environment, exc)
            return None
        _state["context"] = context
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
            f", open model {settings.arrival_rate:g} flows/s" if context.scheduler else "",
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
    if environment.parsed_options is None:  # run_single_user without options
        return
    try:
        settings = _settings(environment)
    except ConfigError as exc:
        sys.stderr.write(f"ciba-harness load: {exc}\n")
        raise SystemExit(2) from None
    if isinstance(runner, WorkerRunner):
        return
    try:
        _apply_mix(environment, settings.mix)
    except ConfigError as exc:
        sys.stderr.write(f"ciba-harness load: {exc}\n")
        raise SystemExit(2) from None
    if isinstance(runner, MasterRunner):
        _state["master_tracker"] = AuthReqIdTracker()
    if settings.issuer is None:
        _maybe_start_provider(environment, settings)


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
    from .._config import load_config

    try:
        config = load_config(settings.config_path)
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
            _apply_mix(environment, settings.mix)  # options may have changed in the web UI
    except ConfigError as exc:
        _fail_setup(environment, exc)
        return
    if isinstance(runner, MasterRunner):
        return
    processes = 1
    if isinstance(runner, WorkerRunner):
        processes = int(getattr(environment.parsed_options, "expect_workers", 1) or 1)
    existing = _state["context"]
    if isinstance(existing, LoadContext):  # a restart from the web UI: keep the receiver
        try:
            existing.apply(settings, processes=processes, sleep=gevent.sleep)
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


def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
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
    context = _state["context"]
    if isinstance(context, LoadContext):
        context.stop()
    provider = _state["provider"]
    if isinstance(provider, EmbeddedProvider):
        provider.stop()
        _state["provider"] = None
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    _slo_gate(environment)


def _slo_gate(environment: Any) -> None:
    try:
        settings = _settings(environment)
    except ConfigError:
        return
    thresholds = settings.thresholds
    if not thresholds.any:
        return
    entries = list(environment.runner.stats.entries.values())
    verdicts = evaluate(entries, thresholds)
    report = format_verdicts(verdicts)
    sys.stderr.write(report + "\n")
    if settings.slo_file is not None:
        write_verdicts(settings.slo_file, verdicts, thresholds)
    if environment.process_exit_code not in (None, 0):
        return  # a setup error already decided
    environment.process_exit_code = 0 if all(v.passed for v in verdicts) else SLO_EXIT_CODE


def install(event_hooks: Any = events) -> None:
    """Register the CIBA listeners (called once at module level by load/locustfile.py)."""
    event_hooks.init_command_line_parser.add_listener(_on_parser)
    event_hooks.init.add_listener(_on_init)
    event_hooks.test_start.add_listener(_on_test_start)
    event_hooks.test_stop.add_listener(_on_test_stop)
    event_hooks.report_to_master.add_listener(_on_report_to_master)
    event_hooks.worker_report.add_listener(_on_worker_report)
    event_hooks.quitting.add_listener(_on_quitting)

