"""The `ciba_*` fixtures a conformance test asks for, and `require_client` (skip when no
configured client fits the test)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ciba_harness.checks._choices import record_choice, reset_choices
from ciba_harness.client._inbox import NotificationInbox
from ciba_harness.core._config import ClientConfig, ProviderConfig
from ciba_harness.core._discovery import ProviderMetadata
from ciba_harness.core._errors import CibaHarnessError
from ciba_harness.pytest_plugin._collector import (
    choices_key,
    collector_key,
    methods_key,
    outcomes_key,
    session_description,
)
from ciba_harness.pytest_plugin._session import CibaSession, session_key, start_session
from ciba_harness.pytest_plugin._session_once import start_once

if TYPE_CHECKING:
    from ciba_harness.client._client import CibaClient
    from ciba_harness.client._receiver import NotificationReceiver

__all__ = [
    "ciba",
    "ciba_choices",
    "ciba_config",
    "ciba_inbox",
    "ciba_metadata",
    "ciba_receiver",
    "ciba_session",
    "require_client",
]


@pytest.fixture(scope="session")
def ciba_session(request: pytest.FixtureRequest) -> Iterator[CibaSession]:
    """The started provider session. A setup problem becomes one clear error per test."""
    stash = request.config.stash
    cached, started_now = start_once(request.config, session_key, start_session,
                                     errors=(CibaHarnessError,), what="setup")
    if started_now:
        collector = stash.get(collector_key, None)
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
    client = ciba_session.client.fork()
    reset_choices()
    yield client
    if any(getattr(e, "retried", None) for e in client.recorder.exchanges):
        # RFC 9112 §9.3: a server may close an idle connection (the client retried once).
        record_choice("keep_alive", "closes idle keep-alive connections",
                      "a reused connection failed before any answer; sent again on a new one")
    request.node.stash[methods_key] = sorted(client.recorder.auth_methods)
    request.node.stash[choices_key] = reset_choices()
    request.node.stash[outcomes_key] = (
        list(client.runner.outcomes), list(client.recorder.exchanges)
    )


@pytest.fixture
def ciba_choices(ciba: CibaClient) -> Any:
    """`record_choice(latitude, choice, evidence)`: note a provider's choice (no verdict)."""
    return record_choice


@pytest.fixture(scope="session")
def ciba_inbox(ciba_session: CibaSession) -> NotificationInbox:
    return ciba_session.inbox


@pytest.fixture(scope="session")
def ciba_receiver(ciba_session: CibaSession) -> NotificationReceiver:
    assert ciba_session.receiver is not None
    return ciba_session.receiver


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
