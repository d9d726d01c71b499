"""pytest plugin of ciba-harness (entry point `pytest11: ciba`).

Options are prefixed `--ciba-*`, fixtures `ciba_*`. Without `--ciba-config` the embedded
reference provider is started on a free loopback port. Every test's check outcomes and
exchanges (redacted) travel in `report.user_properties`, so results also come back from
pytest-xdist workers; the controller writes the JSON result at session end, also when the
run is interrupted.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ciba_harness.client._client import CibaClient
    from ciba_harness.client._health import SessionHealth
    from ciba_harness.client._inbox import NotificationInbox
    from ciba_harness.client._receiver import NotificationReceiver
    from ciba_harness.core._config import ClientConfig, ProviderConfig
    from ciba_harness.core._discovery import ProviderMetadata

__all__ = ["CibaSession", "require_client"]

# The fuzz suites' options, marker and fixture come with the harness (also when installed,
# where no conftest of the checkout is there to list them).
pytest_plugins = ["ciba_harness.pytest_plugin._fuzz"]

PROPERTY = "ciba"
MARKERS = {
    "poll": "test of poll mode (CIBA §10.1)",
    "ping": "test of ping mode (CIBA §10.2)",
    "push": "test of push mode (CIBA §10.3)",
    "requirement(*ids)": "requirement IDs of the catalogue this test checks",
    "slow": "waits for expiry or intervals",
    "fapi": "FAPI-CIBA profile test",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ciba", "CIBA conformance (ciba-harness)")
    group.addoption(
        "--ciba-config",
        metavar="FILE",
        default=None,
        help="provider description (TOML); default: start the embedded reference provider",
    )
    group.addoption(
        "--ciba-issuer",
        metavar="URL",
        default=None,
        help="override the issuer of the config (e.g. a fault tenant of the reference provider)",
    )
    group.addoption(
        "--ciba-report",
        metavar="DIR",
        default=None,
        help="write results.json, junit.xml and report.html here (default reports/out)",
    )
    group.addoption(
        "--ciba-no-report", action="store_true", default=False, help="write no report files"
    )
    group.addoption(
        "--ciba-strict",
        action="store_true",
        default=False,
        help="treat warnings (SHOULD, tolerated deviations) as failures",
    )
    group.addoption(
        "--ciba-profile",
        choices=("ciba", "fapi-ciba"),
        default=None,
        help="override the config's profile",
    )
    group.addoption(
        "--ciba-fault",
        metavar="NAME",
        action="append",
        default=[],
        help="start the embedded provider with this fault (repeatable; self-tests)",
    )
    group.addoption(
        "--ciba-run-timeout",
        metavar="SECONDS",
        type=float,
        default=None,
        help="wall-clock budget of the whole run (default [budgets] run_timeout, 300 s)",
    )
    group.addoption(
        "--ciba-no-early",
        action="store_true",
        default=False,
        help="run wait-bound tests (marker slow) in order, not started early in the background",
    )


PREFLIGHT_DONE = pytest.StashKey[bool]()  # set by `ciba-harness conformance` once it checked


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
    if not _is_worker(config):
        _stop_on_unusable_target(config)
    _configure_health(config)
    if not _is_worker(config) and not config.getoption("ciba_no_early", False):
        from ciba_harness.pytest_plugin._early import EarlyStart

        config.pluginmanager.register(EarlyStart(config), "ciba-early-start")
    if _is_worker(config):
        return
    if config.getoption("ciba_no_report", False):
        config.pluginmanager.register(RecordDropper(), "ciba-record-dropper")
        return
    collector = ResultCollector(config)
    config.stash[_collector_key] = collector
    config.pluginmanager.register(collector, "ciba-results")
    report_dir = collector.report_dir
    if report_dir is not None and not getattr(config.option, "xmlpath", None):
        # JUnit XML for CI systems, next to our JSON, unless the user chose a path.
        config.option.xmlpath = str(report_dir / "junit.xml")


_health_key: pytest.StashKey[SessionHealth] = pytest.StashKey()


def _configure_health(config: pytest.Config) -> None:
    """The session's endpoint breakers and run budget: made by the controller, shared with
    the xdist workers through a state file whose path each worker gets in `workerinput`."""
    from ciba_harness.client._health import SessionHealth
    from ciba_harness.core._config import Budgets

    workerinput = getattr(config, "workerinput", None)
    shared = workerinput.get("ciba_health") if isinstance(workerinput, dict) else None
    if shared:
        config.stash[_health_key] = SessionHealth(Path(shared))
        return
    timeout = config.getoption("ciba_run_timeout", None)
    if timeout is None:
        loaded = _configured(config) if config.getoption("ciba_config", None) else None
        timeout = (loaded.budgets if loaded is not None else Budgets()).run_timeout
    config.stash[_health_key] = SessionHealth.in_new_directory(run_timeout=float(timeout))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist (controller): hand each worker the shared health state file."""
    health = node.config.stash.get(_health_key, None)
    if health is not None:
        node.workerinput["ciba_health"] = str(health.path)


def pytest_unconfigure(config: pytest.Config) -> None:
    from ciba_harness.client._health import set_active_health

    health = config.stash.get(_health_key, None)
    set_active_health(None)
    if health is not None and not _is_worker(config):
        health.remove()


def _is_ciba_test(item: pytest.Item) -> bool:
    return "ciba_session" in getattr(item, "fixturenames", ()) or bool(
        item.get_closest_marker("requirement")
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Name the running test in breaker causes; once the run budget is out, stop each test."""
    health = item.config.stash.get(_health_key, None)
    if health is None or not _is_ciba_test(item):
        return
    health.test = item.nodeid
    message = health.budget_message()
    if message is not None:
        pytest.fail(message, pytrace=False)


def _stop_on_unusable_target(config: pytest.Config) -> None:
    """The user's provider description and provider are checked before anything runs (as
    `ciba-harness conformance` does): a mistake is one usage error (exit 4), not a setup
    error per test and a failed discovery verdict."""
    if config.stash.get(PREFLIGHT_DONE, False):
        return
    if config.option.help or config.option.collectonly:
        return
    config_path = config.getoption("ciba_config", None)
    issuer = config.getoption("ciba_issuer", None)
    if not config_path and not issuer:
        return  # the embedded reference provider with its own profile
    from ciba_harness.core._errors import CibaHarnessError, ConfigError
    from ciba_harness.pytest_plugin._preflight import describe_config_error, preflight

    try:
        # What a reachable provider's discovery says stays a verdict (CIBA-DISC-*).
        preflight(config_path, issuer=issuer, reachability_only=True)
    except ConfigError as exc:
        raise pytest.UsageError(f"ciba-harness: {describe_config_error(exc)}") from None
    except CibaHarnessError as exc:
        raise pytest.UsageError(f"ciba-harness: {exc}") from None
    config.stash[PREFLIGHT_DONE] = True


FAPI_NOT_SELECTED = "FAPI-CIBA profile not selected"


_fapi_deselected_key = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect by the keywords and marks set here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Requirement IDs become keywords (`-k CIBA-TOKEN-16`); a mode parameter (a `poll`,
    `ping` or `push` value of the test's parametrisation) becomes that mode's marker, so
    `-m ping` selects `test_status_200[ping]` and the report files it under ping. Tests
    marked `fapi` run only under the FAPI-CIBA profile (option or config file); otherwise
    they are deselected, with one line in the header."""
    for item in items:
        for marker in item.iter_markers("requirement"):
            item.extra_keyword_matches.update(str(arg) for arg in marker.args)
        _mark_mode_parameter(item)
    fapi_items = [item for item in items if item.get_closest_marker("fapi")]
    if not fapi_items:
        return
    profile = config.getoption("ciba_profile", None)
    if profile is None:
        loaded = _configured(config)
        profile = loaded.profile if loaded is not None else "ciba"
    if profile != "fapi-ciba":
        deselected = set(fapi_items)
        items[:] = [item for item in items if item not in deselected]
        config.hook.pytest_deselected(items=fapi_items)
        config.stash[_fapi_deselected_key] = len(fapi_items)


def _mark_mode_parameter(item: pytest.Item) -> None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return
    modes = {value for value in callspec.params.values()
             if isinstance(value, str) and value in {"poll", "ping", "push"}}
    if len(modes) == 1:
        mode = modes.pop()
        if not item.get_closest_marker(mode):
            item.add_marker(getattr(pytest.mark, mode))


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    count = config.stash.get(_fapi_deselected_key, 0)
    if not count:
        return []
    return [f"ciba-harness: {count} FAPI-CIBA tests deselected: {FAPI_NOT_SELECTED} "
            "(--ciba-profile fapi-ciba, or profile = \"fapi-ciba\" in the config, runs them)"]


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


# --- the session: provider, receiver, client ---------------------------------------------


@dataclass
class CibaSession:
    """Everything a conformance test needs, started once per session (per xdist worker)."""

    config: ProviderConfig
    client: CibaClient
    inbox: NotificationInbox
    receiver: NotificationReceiver | None = None
    provider: Any = None
    started_at: float = field(default_factory=time.time)
    _flows: list[Any] = field(default_factory=list)

    @property
    def metadata(self) -> ProviderMetadata:
        return self.client.metadata

    def close(self) -> None:
        self.client.close()
        # The provider first: it closes its keep-alive connections to the receiver, which
        # then stops without waiting for them.
        if self.provider is not None:
            self.provider.stop()
        if self.receiver is not None:
            self.receiver.stop()


def _start_session(pytest_config: pytest.Config) -> CibaSession:
    from ciba_harness.client._client import CibaClient
    from ciba_harness.client._drivers import WebhookDriver
    from ciba_harness.client._inbox import NotificationInbox
    from ciba_harness.client._receiver import NotificationReceiver
    from ciba_harness.core._config import default_profile_path, load_config

    path = pytest_config.getoption("ciba_config") or default_profile_path()
    config = load_config(path)
    issuer_override = pytest_config.getoption("ciba_issuer")
    profile_override = pytest_config.getoption("ciba_profile")
    if profile_override:
        from dataclasses import replace

        config = replace(config, profile=profile_override)
    if pytest_config.getoption("ciba_strict"):
        from dataclasses import replace

        config = replace(config, strict=True)
    provider = None
    if issuer_override:
        config = config.with_issuer(issuer_override.rstrip("/"))
    elif config.embedded:
        from ciba_harness.provider import start_provider

        provider = start_provider(
            config.source,
            faults=tuple(pytest_config.getoption("ciba_fault")),
            profile=config.profile,
        )
        config = config.with_issuer(provider.issuer)
    inbox = NotificationInbox()
    webhook = None
    if config.device.driver == "webhook":
        webhook = WebhookDriver(
            callback_url=f"{config.issuer}/ext/ciba/auth/callback",
            wait_timeout=config.budgets.approve_timeout,
        )
    receiver = NotificationReceiver(
        inbox,
        bind=config.receiver.bind,
        public_url=config.receiver.public_url,
        certificate=config.receiver.tls_certificate,
        key=config.receiver.tls_key,
        webhook=webhook,
    )
    client = CibaClient(config, inbox=inbox, notification_url=receiver.url, driver=webhook)
    health = pytest_config.stash.get(_health_key, None)
    if health is not None:
        from ciba_harness.client._health import set_active_health

        client.health = health
        health.receiver_url = receiver.url
        set_active_health(health)
    session = CibaSession(config, client, inbox, receiver, provider)
    # `config.embedded` is already False here (the issuer was replaced by the started one):
    # an embedded provider is recognised by `provider`.
    if provider is not None or (issuer_override and _is_reference(config)):
        _register_reference_endpoints(session)
    return session


def _is_reference(config: ProviderConfig) -> bool:
    """A profile of the reference provider (reference.toml, reference-tls.toml)."""
    return config.source.name.startswith("reference") and config.source.suffix == ".toml"


def _register_reference_endpoints(session: CibaSession) -> None:
    """Point the reference provider's ping/push clients at this session's receiver."""
    from ciba_harness.core._http import HttpRequest

    token = session.config.device.token or ""
    assert session.receiver is not None
    for client in session.config.clients:
        if client.delivery_mode in {"ping", "push"}:
            request = HttpRequest(
                "POST",
                f"{session.config.issuer}/admin/clients/{client.client_id}/notification-endpoint",
                (("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")),
                json.dumps({"url": session.receiver.url}).encode(),
                frozenset({token}),
            )
            session.client.send(request, label="admin: notification endpoint")


_session_key = pytest.StashKey["CibaSession | BaseException"]()
_collector_key = pytest.StashKey["ResultCollector"]()


@pytest.fixture(scope="session")
def ciba_session(request: pytest.FixtureRequest) -> Iterator[CibaSession]:
    """The started provider session. A setup problem becomes one clear error per test."""
    from ciba_harness.core._errors import CibaHarnessError
    from ciba_harness.pytest_plugin._session_once import start_once

    stash = request.config.stash
    cached, started_now = start_once(request.config, _session_key, _start_session,
                                     errors=(CibaHarnessError,), what="setup")
    if started_now:
        collector = stash.get(_collector_key, None)
        if collector is not None:
            collector.describe_session(cached)
        workeroutput = getattr(request.config, "workeroutput", None)
        if isinstance(workeroutput, dict):  # an xdist worker: tell the controller
            workeroutput["ciba_session"] = session_description(request.config, cached)
    yield cached


@pytest.fixture(scope="session")
def ciba_config(ciba_session: CibaSession) -> ProviderConfig:
    return ciba_session.config


@pytest.fixture(scope="session")
def ciba_metadata(ciba_session: CibaSession) -> ProviderMetadata:
    from ciba_harness.core._errors import CibaHarnessError

    try:
        return ciba_session.metadata
    except CibaHarnessError as exc:
        pytest.fail(f"discovery failed: {exc}", pytrace=False)


@pytest.fixture
def ciba(ciba_session: CibaSession, request: pytest.FixtureRequest) -> Iterator[CibaClient]:
    """The client for this test: its own check runner and recorder over the session's
    transport (`CibaClient.fork`: tests started early run concurrently); results go to the
    report. The teardown only reads what the test left (the body of a test started early
    may still be running then, see _early.py)."""
    from ciba_harness.checks._choices import reset_choices

    client = ciba_session.client.fork()
    reset_choices()
    yield client
    if any(getattr(e, "retried", None) for e in client.recorder.exchanges):
        from ciba_harness.checks._choices import record_choice

        # RFC 9112 §9.3: a server may close an idle connection (the client retried once).
        record_choice("keep_alive", "closes idle keep-alive connections",
                      "a reused connection failed before any answer; sent again on a new one")
    request.node.stash[_methods_key] = sorted(client.recorder.auth_methods)
    request.node.stash[_choices_key] = reset_choices()
    request.node.stash[_outcomes_key] = (
        list(client.runner.outcomes), list(client.recorder.exchanges)
    )


@pytest.fixture
def ciba_choices(ciba: CibaClient) -> Any:
    """`record_choice(latitude, choice, evidence)`: note a provider's choice (no verdict)."""
    from ciba_harness.checks._choices import record_choice

    return record_choice


@pytest.fixture(scope="session")
def ciba_inbox(ciba_session: CibaSession) -> NotificationInbox:
    return ciba_session.inbox


@pytest.fixture(scope="session")
def ciba_receiver(ciba_session: CibaSession) -> NotificationReceiver:
    assert ciba_session.receiver is not None
    return ciba_session.receiver


_outcomes_key = pytest.StashKey[tuple[list[Any], list[Any]]]()
_methods_key = pytest.StashKey[list[str]]()
_choices_key = pytest.StashKey[list[dict[str, str]]]()


def require_client(
    config: ProviderConfig,
    metadata: ProviderMetadata | None = None,
    *,
    feature: str | None = None,
    **criteria: Any,
) -> ClientConfig:
    """The configured client matching `criteria`, or skip naming what is missing."""
    mode = criteria.get("mode")
    if metadata is not None and mode and not metadata.supports_mode(mode):
        pytest.skip(
            f"not applicable: the provider does not advertise {mode} mode "
            "(backchannel_token_delivery_modes_supported)"
        )
    client = config.find_client(**criteria)
    if client is None:
        wanted = ", ".join(f"{k}={v}" for k, v in criteria.items())
        pytest.skip(f"not covered: no client configured for {feature or wanted}")
    return client


# --- results ------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "setup" and report.failed and call.excinfo is not None:
        from ciba_harness.core._errors import CheckFailure

        if isinstance(call.excinfo.value, CheckFailure):
            # A requirement the whole session rests on is broken (e.g. discovery without a
            # backchannel endpoint): each test shows that verdict, not the plugin's traceback.
            report.longrepr = f"ciba-harness setup failed: {call.excinfo.value}"
    _lead_with_requirement(report, call)
    if report.when == "teardown":
        # JUnit XML (written from the teardown report): one property per requirement ID.
        for marker in item.iter_markers("requirement"):
            report.user_properties += [("requirement", str(a)) for a in marker.args]
    if "ciba" not in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
        "requirement"
    ):
        return report
    if report.when == "setup" and report.outcome != "skipped" and not report.failed:
        return report
    if report.when == "teardown" and not report.failed:
        outcomes, exchanges = item.stash.get(_outcomes_key, ([], []))
        report.user_properties.append(
            (PROPERTY, _test_record(item, report, outcomes, exchanges, call))
        )
        return report
    if report.failed or report.skipped:
        report.user_properties.append((PROPERTY, _test_record(item, report, [], [], call)))
    return report


def _lead_with_requirement(report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
    """The one-line message of a check failure (short summary, JUnit failure message) starts
    with the requirement ID, not the exception's module path."""
    from ciba_harness.core._errors import CheckFailure

    failure = call.excinfo.value if call.excinfo is not None else None
    crash = getattr(report.longrepr, "reprcrash", None)
    if isinstance(failure, CheckFailure) and crash is not None:
        crash.message = f"{failure.requirement} {failure.title} ({type(failure).__name__})"


def _test_record(
    item: pytest.Item,
    report: pytest.TestReport,
    outcomes: list[Any],
    exchanges: list[Any],
    call: pytest.CallInfo[None],
) -> dict[str, Any]:
    from ciba_harness.core._errors import CheckFailure

    requirements: list[str] = []
    for marker in item.iter_markers("requirement"):
        requirements += [str(a) for a in marker.args]
    modes = [m for m in ("poll", "ping", "push") if item.get_closest_marker(m)]
    failure = None
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, CheckFailure):
        failure = excinfo.value.to_dict()
    elif excinfo is not None and report.failed:
        failure = {
            "kind": excinfo.typename,
            "requirement": None,
            "title": str(excinfo.value).splitlines()[0][:300]
            if str(excinfo.value)
            else excinfo.typename,
            "severity": "error",
            # an open breaker's first failing exchange (EndpointUnavailable)
            "exchanges": list(getattr(excinfo.value, "evidence", [])),
        }
    skip_reason = None
    if report.skipped and isinstance(report.longrepr, tuple):
        skip_reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    return {
        "nodeid": item.nodeid,
        "when": report.when,
        "requirements": requirements,
        "modes": modes,
        "doc": (getattr(item, "obj", None).__doc__ or "").strip().splitlines()[0]
        if getattr(getattr(item, "obj", None), "__doc__", None)
        else "",
        "failure": failure,
        "skip_reason": skip_reason,
        "auth_methods": item.stash.get(_methods_key, []),
        **_early_seconds(item),
        "choices": item.stash.get(_choices_key, []) if report.when == "teardown" else [],
        "checks": [
            {
                "check": o.check,
                "requirement": o.requirement,
                "severity": o.severity.value,
                "passed": o.passed,
                "message": o.message,
                "failure": o.failure.to_dict() if o.failure is not None else None,
            }
            for o in outcomes
        ],
        "exchanges": [e.to_dict() for e in exchanges[-12:]],
    }


def _early_seconds(item: pytest.Item) -> dict[str, float]:
    """How long the body of a test started early took (its `duration` is only the wait)."""
    from ciba_harness.pytest_plugin._early import early_seconds_key

    seconds = item.stash.get(early_seconds_key, None)
    return {} if seconds is None else {"early_seconds": round(seconds, 3)}


def take_records(report: pytest.TestReport) -> list[dict[str, Any]]:
    """The test records a report carries (from this process or an xdist worker), removed from
    its user properties: JUnit XML gets the requirement IDs, not whole records."""
    records = [v for n, v in report.user_properties if n == PROPERTY and isinstance(v, dict)]
    if records:
        report.user_properties = [(n, v) for n, v in report.user_properties if n != PROPERTY]
    return records


class RecordDropper:
    """Without a report (--ciba-no-report) the records still stay out of JUnit XML."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        take_records(report)


class ResultCollector:
    """Gathers per-test records (local or from xdist workers) and writes results.json."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        option = config.getoption("ciba_report")
        self.report_dir: Path | None = Path(option) if option else None
        self.tests: dict[str, dict[str, Any]] = {}
        self.durations: dict[str, float] = {}
        self.session_info: dict[str, Any] = {}
        self.started = time.time()
        self.uses_ciba = False
        if self.report_dir is None and _has_ciba_args(config):
            self.report_dir = Path("reports/out")

    def describe_session(self, session: CibaSession) -> None:
        self.session_info = session_description(self.config, session)

    @pytest.hookimpl(optionalhook=True)  # without pytest-xdist (-p no:xdist) the hook is unknown
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist: the session ran in the workers; take the first one's description."""
        info = getattr(node, "workeroutput", {}).get("ciba_session")
        if isinstance(info, dict) and not self.session_info.get("harness_version"):
            self.session_info = info

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes the properties
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Every phase counts toward a test's duration, whether or not it carries a record.
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        for value in take_records(report):
            self.uses_ciba = True
            record = self.tests.setdefault(
                report.nodeid, {"nodeid": report.nodeid, "outcome": "passed"}
            )
            _merge(record, value, report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        cached = self.config.stash.get(_session_key, None)
        if isinstance(cached, CibaSession):
            cached.close()
            self.stray_notifications = cached.inbox.rejected
        if self.report_dir is None or not self.uses_ciba:
            return
        self.write(exitstatus)

    def write(self, exitstatus: int) -> Path:
        from ciba_harness.reports._results import build_results

        assert self.report_dir is not None
        if "insecure_skip_verify" not in self.session_info:
            # Under xdist the session runs in the workers: read the TLS facts from the config.
            config = _configured(self.config)
            if config is not None:
                self.session_info.update(tls_session_info(config, None))
        self.report_dir.mkdir(parents=True, exist_ok=True)
        for nodeid, record in self.tests.items():
            record["duration"] = round(self.durations.get(nodeid, 0.0), 3)
        results = build_results(
            list(self.tests.values()),
            self.session_info,
            started=self.started,
            exitstatus=int(exitstatus),
        )
        health = self.config.stash.get(_health_key, None)
        if health is not None:
            results["endpoint_health"] = health.report()
        stray = getattr(self, "stray_notifications", 0)
        if stray and exitstatus == pytest.ExitCode.INTERRUPTED:
            # Ctrl-C dropped the run's transactions: their late callbacks are no fault of
            # the provider.
            results["session"]["stray_notifications_after_interrupt"] = stray
        elif stray:
            # Callbacks no transaction of this session asked for (unknown or missing bearer):
            # answered 401 by the receiver, and not attributable to one test.
            results["session"]["stray_notifications"] = stray
            results["warnings"].append(
                {
                    "requirement": "CIBA-PING-02",
                    "title": f"{stray} callbacks reached the notification endpoint without the "
                    "bearer client_notification_token of any transaction (answered 401)",
                    "nodeid": "(session: notification receiver)",
                    "failure": None,
                }
            )
        path = self.report_dir / "results.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=1), encoding="utf-8")
        os.replace(tmp, path)
        self.results = results
        try:
            from ciba_harness.reports import write_html_report
        except ImportError:
            return path
        write_html_report(results, self.report_dir / "report.html")
        return path

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        results = getattr(self, "results", None)
        if not results:
            return
        terminalreporter.section("CIBA conformance")
        for line in insecure_notice(results.get("session", {})):
            terminalreporter.write_line(line, red=True, bold=True)
        for entry in results["warnings"]:
            terminalreporter.write_line(
                f"WARNING [{entry['requirement']}] {entry['title']}  ({entry['nodeid']})"
            )
        counts = results["summary"]["requirements"]
        terminalreporter.write_line(
            "requirements: " + ", ".join(f"{counts[k]} {k}" for k in sorted(counts) if counts[k])
        )
        assert self.report_dir is not None
        html = self.report_dir / "report.html"
        terminalreporter.write_line(
            f"report: {html if html.exists() else self.report_dir / 'results.json'}"
        )


def _merge(record: dict[str, Any], value: dict[str, Any], report: pytest.TestReport) -> None:
    for key in ("requirements", "modes", "doc", "auth_methods", "early_seconds"):
        if value.get(key):
            record[key] = value[key]
    record.setdefault("checks", []).extend(value.get("checks", []))
    record.setdefault("exchanges", []).extend(value.get("exchanges", []))
    record.setdefault("choices", []).extend(value.get("choices", []))
    if report.failed:
        record["outcome"] = "failed" if report.when == "call" else "error"
        record["failure"] = value.get("failure")
    elif report.skipped:
        record["outcome"] = "skipped"
        record["skip_reason"] = value.get("skip_reason")


def session_description(pytest_config: pytest.Config, session: CibaSession) -> dict[str, Any]:
    """The session facts of results.json (config, clients, faults, TLS)."""
    from ciba_harness import __version__

    cfg = session.config
    return {
        "harness_version": __version__,
        "issuer": cfg.issuer,
        "profile": cfg.profile,
        "config_file": str(cfg.source),
        "embedded": session.provider is not None,
        "strict": cfg.strict,
        "device_driver": cfg.device.driver,
        "clients": [
            {
                "name": c.name,
                "client_id": c.client_id,
                "auth_method": c.auth_method,
                "delivery_mode": c.delivery_mode,
            }
            for c in cfg.clients
        ],
        "faults": list(pytest_config.getoption("ciba_fault")),
        **tls_session_info(cfg, session.receiver.url if session.receiver else None),
    }


INSECURE_NOTICE = (
    "WARNING: TLS certificate verification was DISABLED ([provider] insecure_skip_verify = "
    "true). Lab use only: these results say nothing about the provider's TLS certificates."
)


def tls_session_info(config: ProviderConfig, receiver_url: str | None) -> dict[str, Any]:
    """TLS facts of a run for results.json (session info)."""
    issuer = config.issuer
    info: dict[str, Any] = {
        "insecure_skip_verify": config.insecure_skip_verify,
        "tls": {
            "issuer_https": issuer.startswith("https://"),
            "ca_bundle": str(config.ca_bundle) if config.ca_bundle else None,
            "verification": "DISABLED" if config.insecure_skip_verify else "on",
            "receiver_https": (receiver_url or "").startswith("https://")
            if receiver_url
            else config.receiver.tls_certificate is not None,
            "client_certificates": sorted(
                c.name for c in config.clients if c.certificate_path is not None
            ),
        },
    }
    if config.profile == "fapi-ciba":
        info["fapi"] = {"fapi_ciba_version": config.fapi_ciba_version,
                        "fapi_base": config.fapi_base}
    if config.insecure_skip_verify:
        info["notices"] = [INSECURE_NOTICE]
    return info


def insecure_notice(session_info: dict[str, Any]) -> list[str]:
    return [INSECURE_NOTICE] if session_info.get("insecure_skip_verify") else []


def _configured(pytest_config: pytest.Config) -> ProviderConfig | None:
    """The provider description of this run (None when it cannot be read)."""
    from ciba_harness.core._config import default_profile_path, load_config
    from ciba_harness.core._errors import CibaHarnessError

    try:
        config = load_config(pytest_config.getoption("ciba_config") or default_profile_path())
    except CibaHarnessError:
        return None
    return config


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say at the start already when TLS verification is off (and again in the summary)."""
    if not config.getoption("ciba_config", None):
        return []
    loaded = _configured(config)
    return [INSECURE_NOTICE] if loaded is not None and loaded.insecure_skip_verify else []


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Without a report (--ciba-no-report) the collector is absent: still be loud."""
    if config.stash.get(_collector_key, None) is not None or _is_worker(config):
        return
    cached = config.stash.get(_session_key, None)
    if isinstance(cached, CibaSession) and cached.config.insecure_skip_verify:
        terminalreporter.write_line(INSECURE_NOTICE, red=True, bold=True)


def _has_ciba_args(config: pytest.Config) -> bool:
    args = [str(a) for a in config.args]
    return any("conformance" in a for a in args) or bool(config.getoption("ciba_config"))
