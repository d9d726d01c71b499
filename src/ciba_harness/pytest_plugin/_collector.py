"""Results of a run: each test's check outcomes and exchanges (redacted) travel in
`report.user_properties`, so they also come back from pytest-xdist workers; the controller
gathers them and writes results.json, report.html (and points junitxml beside them) at
session end, also when the run is interrupted."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from ciba_harness import __version__
from ciba_harness.core._config import ProviderConfig
from ciba_harness.core._errors import CheckFailure
from ciba_harness.pytest_plugin._early import early_seconds_key
from ciba_harness.pytest_plugin._options import configured
from ciba_harness.pytest_plugin._session import CibaSession, health_key, is_worker, session_key
from ciba_harness.reports import write_html_report
from ciba_harness.reports._results import build_results

__all__ = [
    "INSECURE_NOTICE",
    "PROPERTY",
    "ResultCollector",
    "choices_key",
    "collector_key",
    "merge_record",
    "methods_key",
    "outcomes_key",
    "register_collector",
    "session_description",
    "tls_session_info",
]

PROPERTY = "ciba"
# What the `ciba` fixture's teardown leaves on the test item for its record.
outcomes_key = pytest.StashKey[tuple[list[Any], list[Any]]]()
methods_key = pytest.StashKey[list[str]]()
choices_key = pytest.StashKey[list[dict[str, str]]]()
collector_key = pytest.StashKey["ResultCollector"]()


def register_collector(config: pytest.Config) -> None:
    """The controller's collector (or, with --ciba-no-report, the record dropper)."""
    if config.getoption("ciba_no_report", False):
        config.pluginmanager.register(RecordDropper(), "ciba-record-dropper")
        return
    collector = ResultCollector(config)
    config.stash[collector_key] = collector
    config.pluginmanager.register(collector, "ciba-results")
    report_dir = collector.report_dir
    if report_dir is not None and not getattr(config.option, "xmlpath", None):
        # JUnit XML for CI systems, next to our JSON, unless the user chose a path.
        config.option.xmlpath = str(report_dir / "junit.xml")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "setup" and report.failed and call.excinfo is not None:
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
        outcomes, exchanges = item.stash.get(outcomes_key, ([], []))
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
        "auth_methods": item.stash.get(methods_key, []),
        **_early_seconds(item),
        "choices": item.stash.get(choices_key, []) if report.when == "teardown" else [],
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
            merge_record(record, value, report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        cached = self.config.stash.get(session_key, None)
        if isinstance(cached, CibaSession):
            cached.close()
            self.stray_notifications = cached.inbox.rejected
        if self.report_dir is None or not self.uses_ciba:
            return
        self.write(exitstatus)

    def write(self, exitstatus: int) -> Path:
        assert self.report_dir is not None
        if "insecure_skip_verify" not in self.session_info:
            # Under xdist the session runs in the workers: read the TLS facts from the config.
            config = configured(self.config)
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
        health = self.config.stash.get(health_key, None)
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


def merge_record(
    record: dict[str, Any],
    value: dict[str, Any],
    report: pytest.TestReport,
    *,
    fields: tuple[str, ...] = ("requirements", "modes", "doc", "auth_methods", "early_seconds"),
    lists: tuple[str, ...] = ("checks", "exchanges", "choices"),
) -> None:
    """Fold one phase's record (setup, call, teardown) into the test's: the last non-empty
    `fields` win, `lists` add up; a failed or skipped phase sets the outcome."""
    for key in fields:
        if value.get(key):
            record[key] = value[key]
    for key in lists:
        record.setdefault(key, []).extend(value.get(key, []))
    if report.failed:
        record["outcome"] = "failed" if report.when == "call" else "error"
        record["failure"] = value.get("failure")
    elif report.skipped:
        record["outcome"] = "skipped"
        record["skip_reason"] = value.get("skip_reason")


def session_description(pytest_config: pytest.Config, session: CibaSession) -> dict[str, Any]:
    """The session facts of results.json (config, clients, faults, TLS)."""
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


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say at the start already when TLS verification is off (and again in the summary)."""
    if not config.getoption("ciba_config", None):
        return []
    loaded = configured(config)
    return [INSECURE_NOTICE] if loaded is not None and loaded.insecure_skip_verify else []


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Without a report (--ciba-no-report) the collector is absent: still be loud."""
    if config.stash.get(collector_key, None) is not None or is_worker(config):
        return
    cached = config.stash.get(session_key, None)
    if isinstance(cached, CibaSession) and cached.config.insecure_skip_verify:
        terminalreporter.write_line(INSECURE_NOTICE, red=True, bold=True)


def _has_ciba_args(config: pytest.Config) -> bool:
    args = [str(a) for a in config.args]
    return any("conformance" in a for a in args) or bool(config.getoption("ciba_config"))
