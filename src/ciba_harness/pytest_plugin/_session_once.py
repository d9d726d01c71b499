"""Start a plugin's session object once per pytest session, shared by the provider plugin
and the client plan's plugin (src/ciba_harness/rp/pytest_plugin.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

__all__ = ["start_once"]

SessionT = TypeVar("SessionT")


def start_once(
    config: pytest.Config,
    key: pytest.StashKey[SessionT | BaseException],
    start: Callable[[pytest.Config], SessionT],
    *,
    errors: tuple[type[BaseException], ...],
    what: str,
) -> tuple[SessionT, bool]:
    """The stashed session, started by `start` on first use: (session, started now).

    A setup error is stashed too, so every later test fails with the same one clear message
    (`ciba-harness <what> failed: ...`) instead of retrying the setup.
    """
    cached = config.stash.get(key, None)
    if isinstance(cached, BaseException):
        pytest.fail(f"ciba-harness {what} failed: {cached}", pytrace=False)
    if cached is not None:
        return cached, False
    try:
        started = start(config)
    except errors as exc:
        config.stash[key] = exc
        pytest.fail(f"ciba-harness {what} failed: {exc}", pytrace=False)
    config.stash[key] = started
    return started, True
