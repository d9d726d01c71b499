"""The deadline wait the tests use for state another thread writes soon (tests/waiting.py)."""

from __future__ import annotations

import threading
import time

from waiting import wait_until


def test_returns_what_another_thread_writes_as_soon_as_it_is_there() -> None:
    written: list[str] = []
    threading.Timer(0.1, written.append, ("delivery",)).start()
    started = time.monotonic()
    assert wait_until(lambda: list(written), timeout=30) == ["delivery"]
    assert time.monotonic() - started < 25  # long before the deadline


def test_returns_the_last_falsy_value_at_the_deadline() -> None:
    calls: list[float] = []

    def probe() -> list[str]:
        calls.append(time.monotonic())
        return []

    started = time.monotonic()
    assert wait_until(probe, timeout=0.2) == []
    assert time.monotonic() - started >= 0.2
    assert len(calls) >= 2  # polled, not asked once
