"""Waiting for state another thread or process writes "soon" (a provider's delivery record, an
inbox, a counter, a file): poll a condition until a deadline, never sleep a fixed time. Under
CPU load the write comes late, not never; a deadline wait returns as soon as it is there."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL = 0.02
#: seconds a loaded 2-core CI machine may add to a wait that is prompt on a quiet one. Upper
#: bounds in tests tell "returned" from "waited out a longer timeout or hung" with it; they do
#: not measure speed (bench/ and tests/hostile/measure.py do).
LOAD_SLACK = 3.0


def wait_until(probe: Callable[[], T], *, timeout: float, interval: float = POLL_INTERVAL) -> T:
    """Call `probe` until it returns a truthy value or `timeout` seconds have passed.

    Returns the last value seen (falsy at the deadline), so the caller's own assertion shows
    what was there instead of a bare timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
