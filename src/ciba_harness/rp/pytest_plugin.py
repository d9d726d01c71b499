"""pytest plugin of the client plan (entry point `pytest11: ciba_client`).

Options are prefixed `--ciba-client-*`, fixtures `ciba_client_*` and `ciba_rp`. Without
`--ciba-client-config` the reference client is started and tested (zero-config). Every test's
check outcomes travel in `report.user_properties`, so results also come back from xdist
workers; the controller writes results.json, junit.xml and report.html at session end.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ciba_harness.pytest_plugin._collector import merge_record
from ciba_harness.rp._harness import ClientSession, ClientTest

__all__ = ["DEFAULT_REPORT_DIR"]

PROPERTY = "ciba_client"
DEFAULT_REPORT_DIR = Path("reports/client-out")
MARKERS = {
    "client_requirement(*ids)": "client requirement IDs (CIBA-RP-nn) this test checks",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ciba-client", "CIBA client conformance (ciba-harness)")
    group.addoption("--ciba-client-config", metavar="FILE", default=None,
                    help="client under test (TOML); default: the shipped reference client")
    group.addoption("--ciba-client-report", metavar="DIR", default=None,
                    help=f"write results.json, junit.xml, report.html here "
                    f"(default {DEFAULT_REPORT_DIR})")
    group.addoption("--ciba-client-no-report", action="store_true", default=False,
                    help="write no client report files")
    group.addoption("--ciba-client-strict", action="store_true", default=False,
                    help="treat client warnings (SHOULD, descriptive rules) as failures")
    group.addoption("--ciba-client-fault", metavar="NAME", action="append", default=[],
                    help="give the reference client this fault (repeatable; self-tests)")


def _uses_client_plan(config: pytest.Config) -> bool:
    if config.getoption("ciba_client_config") or config.getoption("ciba_client_fault"):
        return True
    if config.getoption("ciba_client_report"):
        return True
    return any("client_conformance" in str(a) for a in config.args)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    if hasattr(config, "workerinput") or config.getoption("ciba_client_no_report"):
        return
    if not _uses_client_plan(config):
        return
    collector = ClientResultCollector(config)
    config.stash[_collector_key] = collector
    config.pluginmanager.register(collector, "ciba-client-results")
    if not getattr(config.option, "xmlpath", None):
        # Before the provider plugin's configure, which would point JUnit at its own folder.
        config.option.xmlpath = str(collector.report_dir / "junit.xml")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Requirement IDs become keywords (`-k CIBA-RP-12`)."""
    for item in items:
        for marker in item.iter_markers("client_requirement"):
            item.extra_keyword_matches.update(str(a) for a in marker.args)


_session_key = pytest.StashKey["ClientSession | BaseException"]()
_collector_key = pytest.StashKey["ClientResultCollector"]()
_test_key = pytest.StashKey[ClientTest]()


def _start(config: pytest.Config) -> ClientSession:
    from ciba_harness.rp._config import load_client_config, reference_config
    from ciba_harness.rp._harness import start_client_session

    path = config.getoption("ciba_client_config")
    faults = frozenset(config.getoption("ciba_client_fault"))
    client = load_client_config(path) if path else reference_config(faults)
    if faults and not client.is_reference:
        from ciba_harness.core._errors import ConfigError

        raise ConfigError("--ciba-client-fault applies to the reference client only",
                          file=str(path))
    if faults and client.faults != faults:
        client = reference_config(faults)
    return start_client_session(client, strict=bool(config.getoption("ciba_client_strict")))


@pytest.fixture(scope="session")
def ciba_client_session(request: pytest.FixtureRequest) -> Iterator[ClientSession]:
    """The client test provider and the client under test, started once per session."""
    from ciba_harness.core._errors import CibaHarnessError
    from ciba_harness.pytest_plugin._session_once import start_once

    stash = request.config.stash
    cached, started_now = start_once(request.config, _session_key, _start,
                                     errors=(CibaHarnessError, ValueError),
                                     what="client setup")
    if started_now:
        collector = stash.get(_collector_key, None)
        if collector is not None:
            collector.session_info = cached.describe()
        workeroutput = getattr(request.config, "workeroutput", None)
        if isinstance(workeroutput, dict):
            workeroutput["ciba_client_session"] = cached.describe()
    yield cached


@pytest.fixture
def ciba_rp(ciba_client_session: ClientSession, request: pytest.FixtureRequest
            ) -> Iterator[ClientTest]:
    """One client test: observe a behaviour, run client checks, `conclude()` at the end."""
    from ciba_harness.checks._registry import CheckRunner

    test = ClientTest(ciba_client_session, CheckRunner(strict=ciba_client_session.strict))
    request.node.stash[_test_key] = test
    yield test


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, Any]:
    report = yield
    if "ciba_rp" not in getattr(item, "fixturenames", ()):
        return report
    if report.when == "setup" and not report.failed and not report.skipped:
        return report
    if report.when == "teardown" and not report.failed:
        report.user_properties.append((PROPERTY, _record(item, report, call)))
    elif report.failed or report.skipped:
        report.user_properties.append((PROPERTY, _record(item, report, call)))
    return report


def _record(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None]
            ) -> dict[str, Any]:
    from ciba_harness.core._errors import CheckFailure

    requirements = [str(a) for m in item.iter_markers("client_requirement") for a in m.args]
    test = item.stash.get(_test_key, None)
    failure = None
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, CheckFailure):
        failure = excinfo.value.to_dict()
    elif excinfo is not None and report.failed:
        failure = {"kind": excinfo.typename, "requirement": None,
                   "title": (str(excinfo.value).splitlines() or [excinfo.typename])[0][:300],
                   "severity": "error", "exchanges": []}
    skip_reason = None
    if report.skipped and isinstance(report.longrepr, tuple):
        skip_reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    checks, exchanges, modes, concluded = [], [], [], []
    if test is not None and report.when == "teardown":
        checks = [
            {"check": o.check, "requirement": o.requirement, "severity": o.severity.value,
             "passed": o.passed, "message": o.message,
             "failure": o.failure.to_dict() if o.failure is not None else None}
            for o in test.runner.outcomes
        ]
        for observation in test.observations:
            modes.append(observation.behaviour.mode)
            concluded += [o.describe() for o in observation.outcomes]
            recorded = [r.exchange for r in observation.run.requests if r.exchange is not None]
            recorded += [c.exchange for c in observation.run.callbacks if c.exchange is not None]
            exchanges += [e.to_dict() for e in recorded[-12:]]
    obj = getattr(item, "obj", None)
    doc = (obj.__doc__ or "").strip().splitlines()[0] if getattr(obj, "__doc__", None) else ""
    return {
        "nodeid": item.nodeid,
        "when": report.when,
        "requirements": requirements,
        "modes": sorted(set(modes)),
        "doc": doc,
        "failure": failure,
        "skip_reason": skip_reason,
        "auth_methods": [],
        "client_concluded": concluded,
        "checks": checks,
        "exchanges": exchanges,
    }


class ClientResultCollector:
    """Gathers the client tests' records (local or from xdist workers); writes the reports."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        option = config.getoption("ciba_client_report")
        self.report_dir = Path(option) if option else DEFAULT_REPORT_DIR
        self.tests: dict[str, dict[str, Any]] = {}
        self.durations: dict[str, float] = {}
        self.session_info: dict[str, Any] = {}
        self.started = time.time()
        self.results: dict[str, Any] | None = None

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        info = getattr(node, "workeroutput", {}).get("ciba_client_session")
        if isinstance(info, dict) and not self.session_info:
            self.session_info = info

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        for name, value in report.user_properties:
            if name != PROPERTY or not isinstance(value, dict):
                continue
            record = self.tests.setdefault(report.nodeid,
                                           {"nodeid": report.nodeid, "outcome": "passed"})
            merge_record(record, value, report, lists=("checks", "exchanges"),
                         fields=("requirements", "modes", "doc", "client_concluded",
                                 "auth_methods"))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.tests:
            return
        from ciba_harness.reports import write_html_report
        from ciba_harness.rp._results import build_client_results

        for nodeid, record in self.tests.items():
            record["duration"] = round(self.durations.get(nodeid, 0.0), 3)
        results = build_client_results(list(self.tests.values()), self.session_info,
                                       started=self.started, exitstatus=int(exitstatus))
        self.report_dir.mkdir(parents=True, exist_ok=True)
        path = self.report_dir / "results.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=1), encoding="utf-8")
        os.replace(tmp, path)
        write_html_report(results, self.report_dir / "report.html")
        self.results = results

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results:
            return
        terminalreporter.section("CIBA client conformance")
        for entry in self.results["warnings"]:
            terminalreporter.write_line(
                f"WARNING [{entry['requirement']}] {entry['title']}  ({entry['nodeid']})")
        counts = self.results["summary"]["requirements"]
        terminalreporter.write_line(
            "client requirements: "
            + ", ".join(f"{counts[k]} {k}" for k in sorted(counts) if counts[k]))
        terminalreporter.write_line(f"report: {self.report_dir / 'report.html'}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cached = session.config.stash.get(_session_key, None)
    if isinstance(cached, ClientSession):
        cached.close()
