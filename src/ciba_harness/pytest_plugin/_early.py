"""Wait-bound tests started early: their waits run concurrently with the rest of the suite.

Most of a healthy run's wall time is waiting: a transaction left to expire, an interval
honoured, a window watched for callbacks that must not come. Those waits do not need the
CPU, so they need not come one after another. At the start of the run loop, each test marked
`slow` (the wait-bound ones) has its fixtures set up as pytest would, and its body starts in a
background thread with its own client view (`CibaClient.fork()`: own check runner and
recorder, shared transport and provider metadata). When pytest reaches the test in its
normal order it sets the fixtures up again and, instead of calling the body, waits for the
early run and hands over its outcome: the checks and exchanges it recorded, the provider
choices, and its exception (a verdict, a skip) with its traceback.

Off under pytest-xdist workers (items are handed out one by one there) and with
`--ciba-no-early`. Tests whose own function-scoped fixtures have a teardown are left alone:
that teardown would run while the body still runs.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ciba_harness.checks._choices import record_choice, reset_choices
from ciba_harness.client._health import active_health

__all__ = ["EarlyStart", "EARLY_MARKER", "early_seconds_key"]

EARLY_MARKER = "slow"
MAX_THREADS = 24
LEFTOVER_WAIT = 60.0  # seconds, at session end, for early bodies whose test never ran
#: seconds the body of an early-started test took (recorded in results.json)
early_seconds_key = pytest.StashKey[float]()
#: fixtures whose teardown only reads what the test left (safe while the body still runs)
_READ_ONLY_TEARDOWN = frozenset({"ciba"})


@dataclass
class _EarlyRun:
    nodeid: str
    client: Any
    thread: threading.Thread | None = None
    error: BaseException | None = None
    choices: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0


class EarlyStart:
    """The pytest plugin object (registered by the ciba plugin on the controller)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.runs: dict[str, _EarlyRun] = {}

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, Any, Any]:
        if not (session.config.option.collectonly or session.testsfailed):
            self._start(session)
        return (yield)

    def _start(self, session: pytest.Session) -> None:
        chosen = [item for item in session.items if _eligible(item)]
        if not chosen or len(session.items) < 2:
            return  # nothing to overlap
        for index, item in enumerate(chosen):
            if len(self.runs) >= MAX_THREADS:
                break
            following = chosen[index + 1] if index + 1 < len(chosen) else session.items[0]
            self._start_one(item, following)

    def _start_one(self, item: pytest.Item, following: pytest.Item) -> None:
        assert isinstance(item, pytest.Function)
        if not item._request:
            item._initrequest()
        ready = False
        try:
            item.ihook.pytest_runtest_setup(item=item)
            ready = True
        except (Exception, pytest.skip.Exception, pytest.fail.Exception):
            pass  # the normal run sets it up again and reports what happens then
        try:
            if ready:
                arguments = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
                client = arguments.get("ciba")
                if client is not None:
                    run = _EarlyRun(item.nodeid, client)
                    run.thread = threading.Thread(
                        target=_run_body, args=(item.obj, arguments, run),
                        name=f"ciba-early:{item.name}", daemon=True,
                    )
                    self.runs[item.nodeid] = run
                    run.thread.start()
        finally:
            item.ihook.pytest_runtest_teardown(item=item, nextitem=following)
            # as runtestprotocol does after a test: fixtures are set up anew for the real run
            item._request = False  # type: ignore[assignment]
            item.funcargs = None  # type: ignore[assignment]
            item._report_sections.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Bodies whose test never came (-x, an interrupted run) end before the session's
        client closes; an interrupted run does not wait for them."""
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return
        deadline = time.monotonic() + LEFTOVER_WAIT
        for run in self.runs.values():
            if run.thread is not None:
                run.thread.join(max(0.0, deadline - time.monotonic()))

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        run = self.runs.pop(pyfuncitem.nodeid, None)
        if run is None or run.thread is None:
            return None
        run.thread.join()
        pyfuncitem.stash[early_seconds_key] = run.seconds
        _hand_over(run, pyfuncitem.funcargs.get("ciba"))
        if run.error is not None:
            raise run.error
        return True


def _eligible(item: pytest.Item) -> bool:
    if not isinstance(item, pytest.Function) or item.get_closest_marker(EARLY_MARKER) is None:
        return False
    if any(item.iter_markers("skip")) or any(item.iter_markers("skipif")):
        return False
    info = item._fixtureinfo
    if "ciba" not in info.names_closure:
        return False
    for name, definitions in info.name2fixturedefs.items():
        definition = definitions[-1]
        if definition.scope != "function" or name in _READ_ONLY_TEARDOWN:
            continue
        if inspect.isgeneratorfunction(definition.func) or name in {"request", "monkeypatch"}:
            return False  # a teardown (or patches) would end while the body still runs
    return True


def _run_body(function: Any, arguments: dict[str, Any], run: _EarlyRun) -> None:
    health = active_health()
    if health is not None:
        health.test = run.nodeid
    started = time.monotonic()
    try:
        function(**arguments)
    except BaseException as exc:  # handed to the main thread, raised there
        run.error = exc
    finally:
        run.seconds = time.monotonic() - started
        run.choices = reset_choices()


def _hand_over(run: _EarlyRun, client: Any) -> None:
    """What the early body recorded goes to the client of the real run (its teardown stores
    it for the report)."""
    if client is not None and client is not run.client:
        client.runner.outcomes.extend(run.client.runner.outcomes)
        client.recorder.exchanges.extend(run.client.recorder.exchanges)
        client.recorder.auth_methods |= run.client.recorder.auth_methods
    for choice in run.choices:
        record_choice(choice["latitude"], choice["choice"], choice.get("evidence", ""))
