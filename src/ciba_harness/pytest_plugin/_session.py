"""The session a conformance run rests on: the provider description checked before anything
runs, the endpoint breakers and run budget (shared with xdist workers), and `CibaSession`
(provider, receiver, client), started once per session (per xdist worker)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ciba_harness.client._drivers import WebhookDriver
from ciba_harness.client._health import SessionHealth, set_active_health
from ciba_harness.client._inbox import NotificationInbox
from ciba_harness.core._config import Budgets, ProviderConfig, default_profile_path, load_config
from ciba_harness.core._discovery import ProviderMetadata
from ciba_harness.core._errors import CibaHarnessError, ConfigError
from ciba_harness.core._http import HttpRequest
from ciba_harness.pytest_plugin._options import configured
from ciba_harness.pytest_plugin._preflight import describe_config_error, preflight

if TYPE_CHECKING:
    from ciba_harness.client._client import CibaClient
    from ciba_harness.client._receiver import NotificationReceiver

__all__ = [
    "PREFLIGHT_DONE",
    "CibaSession",
    "configure_health",
    "health_key",
    "is_worker",
    "session_key",
    "start_session",
    "stop_on_unusable_target",
]

PREFLIGHT_DONE = pytest.StashKey[bool]()  # set by `ciba-harness conformance` once it checked
health_key: pytest.StashKey[SessionHealth] = pytest.StashKey()


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


session_key = pytest.StashKey["CibaSession | BaseException"]()


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def stop_on_unusable_target(config: pytest.Config) -> None:
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
    try:
        # What a reachable provider's discovery says stays a verdict (CIBA-DISC-*).
        preflight(config_path, issuer=issuer, reachability_only=True)
    except ConfigError as exc:
        raise pytest.UsageError(f"ciba-harness: {describe_config_error(exc)}") from None
    except CibaHarnessError as exc:
        raise pytest.UsageError(f"ciba-harness: {exc}") from None
    config.stash[PREFLIGHT_DONE] = True


def configure_health(config: pytest.Config) -> None:
    """The session's endpoint breakers and run budget: made by the controller, shared with
    the xdist workers through a state file whose path each worker gets in `workerinput`."""
    workerinput = getattr(config, "workerinput", None)
    shared = workerinput.get("ciba_health") if isinstance(workerinput, dict) else None
    if shared:
        config.stash[health_key] = SessionHealth(Path(shared))
        return
    timeout = config.getoption("ciba_run_timeout", None)
    if timeout is None:
        loaded = configured(config) if config.getoption("ciba_config", None) else None
        timeout = (loaded.budgets if loaded is not None else Budgets()).run_timeout
    config.stash[health_key] = SessionHealth.in_new_directory(run_timeout=float(timeout))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist (controller): hand each worker the shared health state file."""
    health = node.config.stash.get(health_key, None)
    if health is not None:
        node.workerinput["ciba_health"] = str(health.path)


def pytest_unconfigure(config: pytest.Config) -> None:
    health = config.stash.get(health_key, None)
    set_active_health(None)
    if health is not None and not is_worker(config):
        health.remove()


def _is_ciba_test(item: pytest.Item) -> bool:
    return "ciba_session" in getattr(item, "fixturenames", ()) or bool(
        item.get_closest_marker("requirement")
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Name the running test in breaker causes; once the run budget is out, stop each test."""
    health = item.config.stash.get(health_key, None)
    if health is None or not _is_ciba_test(item):
        return
    health.test = item.nodeid
    message = health.budget_message()
    if message is not None:
        pytest.fail(message, pytrace=False)


def start_session(pytest_config: pytest.Config) -> CibaSession:
    # Lazy: the entry point loads in every pytest process; httpx, uvicorn and starlette load
    # only when a CIBA session starts.
    from ciba_harness.client._client import CibaClient
    from ciba_harness.client._receiver import NotificationReceiver
    from ciba_harness.provider.pki import resolve_pki_path

    path = pytest_config.getoption("ciba_config") or default_profile_path()
    config = load_config(path, test_pki=resolve_pki_path)
    issuer_override = pytest_config.getoption("ciba_issuer")
    profile_override = pytest_config.getoption("ciba_profile")
    if profile_override:
        config = replace(config, profile=profile_override)
    if pytest_config.getoption("ciba_strict"):
        config = replace(config, strict=True)
    provider = None
    if issuer_override:
        config = config.with_issuer(issuer_override.rstrip("/"))
    elif config.embedded:
        from ciba_harness.provider import start_provider  # lazy: starlette, uvicorn (above)

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
    health = pytest_config.stash.get(health_key, None)
    if health is not None:
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
