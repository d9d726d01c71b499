"""What one load process sets up once per run: provider metadata and keys, the device driver,
the clients of each scenario, the notification receiver, the arrival schedule and the
run-wide checks. Built at Locust's `test_start` on every process that runs users.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ciba_harness.client._drivers import (
    DeviceDriver,
    EmbeddedDriver,
    ManualDriver,
    WebhookDriver,
    make_driver,
)
from ciba_harness.client._tls import provider_ssl_context
from ciba_harness.core._config import ClientConfig, ProviderConfig, load_config
from ciba_harness.core._discovery import ProviderMetadata, discovery_request, parse_metadata
from ciba_harness.core._errors import ConfigError, ProviderSetupError
from ciba_harness.core._http import HttpRequest, HttpResponse
from ciba_harness.core._idtoken import Jwks
from ciba_harness.core._notifications import Notification
from ciba_harness.load._metrics import AuthReqIdTracker, CibaError, EventSink, FlowCounters
from ciba_harness.load._pacing import ArrivalScheduler
from ciba_harness.load._profiles import FlowProfile
from ciba_harness.load._receiver import GeventReceiver, LoadInbox
from ciba_harness.load._settings import LoadSettings

__all__ = ["LoadContext", "fetch", "resolve_test_pki", "tls_factory"]

log = logging.getLogger("ciba_harness.load")

TLS_METHODS = {"tls_client_auth", "self_signed_tls_client_auth"}
MAX_SETUP_BYTES = 1024 * 1024  # discovery or a JWKS is a few KiB; more is a broken provider
JWKS_REFRESH_SECONDS = 10.0


def resolve_test_pki(reference: str) -> Path:
    """A `pki:NAME` file of the profile (load_config's `test_pki`): the generated test PKI,
    made here on first use. The provider package (Starlette) loads only for such a profile."""
    from ciba_harness.provider.pki import resolve_pki_path

    return resolve_pki_path(reference)


def tls_factory(config: ProviderConfig) -> Callable[..., ssl.SSLContext]:
    """An ssl_context_factory for FastHttpUser: the trust every transport uses
    (client._tls.provider_trust), not the cafile geventhttpclient offers (the system's)."""

    def factory(cafile: str | None = None) -> ssl.SSLContext:
        return provider_ssl_context(config)

    return factory


def fetch(request: HttpRequest, timeout: float, context: ssl.SSLContext | None = None) -> HttpResponse:
    """One setup request with urllib (cooperative under gevent), within `timeout` seconds in
    total: urllib bounds each socket operation only, and a provider trickling its answer a
    byte at a time would hold the setup past the run. Never used for load."""
    import gevent

    raw = urllib.request.Request(
        request.url, data=request.body or None, method=request.method, headers=dict(request.headers)
    )
    try:
        with gevent.Timeout(timeout):
            try:
                with urllib.request.urlopen(raw, timeout=timeout, context=context) as answer:  # noqa: S310
                    body = answer.read(MAX_SETUP_BYTES)
                    return HttpResponse(answer.status, tuple(answer.headers.items()), body)
            except urllib.error.HTTPError as error:
                body = error.read(MAX_SETUP_BYTES)
                return HttpResponse(error.code, tuple(error.headers.items()), body)
    except gevent.Timeout:
        raise ProviderSetupError(
            f"{request.method} {request.url}: no complete answer within {timeout:g} s "
            "(budgets.request_timeout)"
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        raise ProviderSetupError(
            f"{request.method} {request.url} failed: {type(error).__name__}: {error}"
        ) from None


@dataclass
class LoadContext:
    settings: LoadSettings
    config: ProviderConfig
    metadata: ProviderMetadata
    jwks: Jwks
    driver: DeviceDriver
    sink: EventSink
    clients: dict[str, ClientConfig]
    storm_clients: list[tuple[str, ClientConfig]]
    forward_ids: bool = False
    scheduler: ArrivalScheduler | None = None
    inbox: LoadInbox | None = None
    receiver: GeventReceiver | None = None
    tracker: AuthReqIdTracker = field(default_factory=AuthReqIdTracker)
    counters: FlowCounters = field(default_factory=FlowCounters)
    generic_profile: FlowProfile | None = None
    all_storm_clients: list[tuple[str, ClientConfig]] = field(default_factory=list)
    # per delivery mode, the clients whole flows take turns with: one per client
    # authentication method (and signing alg, signed requests), the primary one first
    flow_clients: dict[str, list[ClientConfig]] = field(default_factory=dict)
    _jwks_fetched_at: float = 0.0

    @classmethod
    def create(
        cls,
        settings: LoadSettings,
        fire: Callable[..., Any],
        *,
        processes: int = 1,
        distributed: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        event_factory: Callable[[], Any] | None = None,
    ) -> LoadContext:
        config = load_config(settings.config_path, test_pki=resolve_test_pki)
        issuer = settings.issuer or (None if config.embedded else config.issuer)
        if issuer is None:
            raise ConfigError(
                "the profile's issuer is 'embedded': run through `ciba-harness load` (which "
                "starts the reference provider), or pass --ciba-issuer URL",
                file=str(config.source),
                key="provider.issuer",
            )
        config = config.with_issuer(issuer)
        timeout = config.budgets.request_timeout
        discovery = discovery_request(issuer, config.discovery_url)
        tls = provider_ssl_context(config)
        metadata = parse_metadata(fetch(discovery, timeout, tls), url=discovery.url)
        driver = make_driver(config.device, issuer, config.secrets)
        if isinstance(driver, ManualDriver):
            raise ConfigError(
                "the manual device driver cannot approve under load; use embedded, http or webhook",
                file=str(config.source),
                key="device.driver",
            )
        clients: dict[str, ClientConfig] = {}
        for mode in ("poll", "ping", "push"):
            if metadata.delivery_modes and not metadata.supports_mode(mode):
                continue
            client = config.find_client(mode=mode)
            if client is not None and client.auth_method not in TLS_METHODS:
                clients[mode] = client
        if "poll" not in clients:
            raise ProviderSetupError(
                f"{config.source}: no poll-mode client (confidential, CIBA allowed, without "
                "user code or signed requests) to run the load scenarios with"
            )
        sink = EventSink(fire)
        context = cls(
            settings=settings,
            config=config,
            metadata=metadata,
            jwks=Jwks(),
            driver=driver,
            sink=sink,
            clients=clients,
            storm_clients=_storm_clients(config),
            forward_ids=distributed,
        )
        context.flow_clients = _flow_clients(config, clients, every=settings.flow_clients == "all")

        context.refresh_jwks(force=True)
        context.apply(settings, processes=processes, sleep=sleep, event_factory=event_factory)
        if "ping" in clients or "push" in clients or isinstance(driver, WebhookDriver):
            context.start_receiver()
        return context

    def apply(
        self, settings: LoadSettings, *, processes: int = 1,
        sleep: Callable[[float], None] = time.sleep,
        event_factory: Callable[[], Any] | None = None,
    ) -> None:
        """Take (new) options: at the first test start, and at each restart from the web UI."""
        if not self.all_storm_clients:
            self.all_storm_clients = list(self.storm_clients)
        if settings.storm_clients:
            labels = {label for label, _ in self.all_storm_clients}
            unknown = [label for label in settings.storm_clients if label not in labels]
            if unknown:
                raise ConfigError(
                    f"--ciba-storm-clients: no storm row {unknown[0]!r} "
                    f"(this profile has: {', '.join(sorted(labels))})"
                )
        self.storm_clients = [
            (label, client) for label, client in self.all_storm_clients
            if not settings.storm_clients or label in settings.storm_clients
        ]
        self.settings = settings
        self.scheduler = None
        # the capacity search starts at its first step's rate and retargets at every step
        rate = settings.capacity.start_rate if settings.capacity else settings.arrival_rate
        if rate > 0:
            self.scheduler = ArrivalScheduler(
                rate / max(1, processes),
                settings.arrival_process,
                clock=time.monotonic,
                sleep=sleep,
                event_factory=event_factory,
            )
        self.generic_profile = FlowProfile(
            name="flows",
            modes=(("poll", 1),),
            approval_delay=settings.approval_delay,
            deny_share=settings.deny_share,
            expire_share=settings.expire_share,
            expire_after=settings.expire_after or self.config.budgets.requested_expiry,
            think_time=settings.think_time,
            refresh_share=settings.refresh_share,
            refresh_after=settings.refresh_after,
        )

    # --- keys ---------------------------------------------------------------------------------
    def refresh_jwks(self, *, force: bool = False) -> None:
        """Fetch the provider's JWKS (at most every 10 s unless forced: key rotation)."""
        if self.metadata.jwks_uri is None:
            return
        now = time.monotonic()
        if not force and now - self._jwks_fetched_at < JWKS_REFRESH_SECONDS:
            return
        self._jwks_fetched_at = now
        request = HttpRequest("GET", self.metadata.jwks_uri, (("Accept", "application/json"),))
        response = fetch(request, self.config.budgets.request_timeout, provider_ssl_context(self.config))
        document = response.json_object()
        if response.status == 200 and document is not None:
            self.jwks.update(document)

    # --- notifications ---------------------------------------------------------------------
    def start_receiver(self) -> None:
        webhook = self.driver if isinstance(self.driver, WebhookDriver) else None
        self.inbox = LoadInbox(on_stray=self._stray)
        self.receiver = GeventReceiver(
            self.inbox,
            bind=self.config.receiver.bind,
            public_url=self.config.receiver.public_url,
            webhook=webhook,
            request_timeout=self.config.budgets.request_timeout,
        )
        log.info("notification receiver of this process at %s (direct %s)",
                 self.receiver.url, self.receiver.address)
        if isinstance(self.driver, EmbeddedDriver):
            self.register_receiver()

    def register_receiver(self) -> None:
        """Point the reference provider's ping and push clients at this process's receiver."""
        assert self.receiver is not None
        token = self.config.device.token or ""
        for client in [c for mode in ("ping", "push") for c in self.flow_clients.get(mode, [])]:
            url = f"{self.config.issuer}/admin/clients/{client.client_id}/notification-endpoint"
            request = HttpRequest(
                "POST",
                url,
                (("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")),
                json.dumps({"url": self.receiver.url}).encode(),
                frozenset({token}),
            )
            response = fetch(request, self.config.budgets.request_timeout, provider_ssl_context(self.config))
            if response.status >= 300:
                raise ProviderSetupError(
                    f"registering the notification endpoint of {client.client_id} failed: "
                    f"HTTP {response.status} {response.text(300)}"
                )

    def _stray(self, code: str, note: Notification) -> None:
        self.sink.failure("notification_unexpected", CibaError(code, kind=note.kind), length=len(note.body))

    def stop(self) -> None:
        if self.receiver is not None:
            self.counters.forwarded = self.receiver.forwarded
            self.receiver.stop()
            self.receiver = None


def _flow_clients(
    config: ProviderConfig, primary: dict[str, ClientConfig], *, every: bool
) -> dict[str, list[ClientConfig]]:
    """The clients of each mode's flows: the primary one, then (with `every`) one more per
    client authentication method / signing alg / signed requests the profile has."""
    out: dict[str, list[ClientConfig]] = {}
    for mode, first in primary.items():
        chosen = [first]
        labels = {_client_label(first)}
        for client in config.clients if every else ():
            if not client.ciba_allowed or client.delivery_mode != mode or client is first:
                continue
            if client.auth_method in TLS_METHODS or client.auth_method == "none":
                continue
            if client.user_code_required and not config.users.user_code:
                continue
            label = _client_label(client)
            if label not in labels:
                labels.add(label)
                chosen.append(client)
        out[mode] = chosen
    return out


def _client_label(client: ClientConfig) -> str:
    if client.sign_requests:
        label = f"signed {client.request_signing_alg or client.signing_alg or ''}".strip()
    elif client.auth_method == "private_key_jwt":
        label = f"private_key_jwt {client.signing_alg or ''}".strip()
    else:
        label = client.auth_method
    return label + (" user_code" if client.user_code_required else "")


def _storm_clients(config: ProviderConfig) -> list[tuple[str, ClientConfig]]:
    """One client per (client authentication method, signing alg), plus signed requests."""
    chosen: dict[str, ClientConfig] = {}
    for client in config.clients:
        if not client.ciba_allowed or client.delivery_mode != "poll":
            continue
        if client.auth_method in TLS_METHODS or client.auth_method == "none":
            continue
        if client.user_code_required and not config.users.user_code:
            continue
        chosen.setdefault(_client_label(client), client)
    return sorted(chosen.items())
