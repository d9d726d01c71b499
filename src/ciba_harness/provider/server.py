"""Running the reference provider on a real socket (uvicorn in a background thread).

Plain http by default. With TLS (a server certificate in the profile, or ``tls=True`` for the
generated test PKI) the provider listens on two loopback sockets served by one event loop:

- the issuer's port: HTTPS, no client certificate requested;
- the mTLS port: HTTPS, a client certificate requested (optional at the TLS layer, judged by
  the provider: RFC 8705 client authentication and certificate-bound tokens), published as
  ``mtls_endpoint_aliases``.

Both accept TLS 1.2 and 1.3 only; below TLS 1.3 only the four FAPI cipher suites.
The client certificate reaches the ASGI app through the TLS extension of the scope
(``scope["extensions"]["tls"]``), which a small h11 protocol subclass fills in.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from ciba_harness.provider.app import create_app, effective_policy
from ciba_harness.provider.core import Provider
from ciba_harness.provider.faults import Faults
from ciba_harness.provider.policies import ProviderPolicy
from ciba_harness.provider.settings import ProviderSettings, load_profile

#: FAPI-CIBA-17: the only cipher suites below TLS 1.3
FAPI_TLS12_CIPHERS = (
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
)
#: what the fault tls_weak_cipher_accepted adds (TLS 1.2 suites only: no TLS 1.1 suite)
WEAK_TLS12_CIPHERS = ("AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256")
TLS_MINIMUM_VERSIONS = {
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


class ProviderStartError(RuntimeError):
    """The provider could not start (message names the cause)."""


class RunningProvider:
    """Handle of a provider served by uvicorn in a background thread."""

    def __init__(
        self, server: uvicorn.Server, thread: threading.Thread, app: Starlette, issuer: str,
        host: str, port: int, *, servers: list[uvicorn.Server] | None = None,
        mtls_port: int | None = None, mtls_base: str | None = None, profile: str = "ciba",
    ):
        self._server = server
        self._servers = servers or [server]
        self._thread = thread
        self.app = app
        self.issuer = issuer
        self.host = host
        self.port = port
        #: the mTLS port and base URL (None without TLS)
        self.mtls_port = mtls_port
        self.mtls_base = mtls_base
        self.profile = profile

    @property
    def provider(self) -> Provider:
        """The root provider instance (state is owned by the server's event loop)."""
        p: Provider = self.app.state.provider
        return p

    @property
    def tls(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        for server in self._servers:
            server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            for server in self._servers:
                server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> RunningProvider:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningProvider(issuer={self.issuer!r})"


# ------------------------------------------------------------------------------- TLS


def server_ssl_context(
    settings: ProviderSettings,
    *,
    faults: Iterable[str] | Faults = (),
    client_certificates: bool = False,
    minimum_version: str = "1.2",
) -> ssl.SSLContext:
    """The TLS context of the provider's HTTPS sockets.

    ``client_certificates``: request (not require) a client certificate, trusted when issued
    by ``tls_client_ca`` or registered by a self_signed_tls_client_auth client; the provider
    decides what a missing or unknown certificate means (RFC 8705).
    """
    if settings.tls_certificate is None or settings.tls_key is None:
        raise ProviderStartError("TLS needs [reference_provider] tls_certificate and tls_key")
    flags = Faults.of(faults)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(settings.tls_certificate), str(settings.tls_key))
    except (ssl.SSLError, OSError) as exc:
        raise ProviderStartError(f"cannot load the TLS certificate or key: {exc}") from None
    if minimum_version not in TLS_MINIMUM_VERSIONS:
        raise ProviderStartError(f"unsupported minimum TLS version {minimum_version!r}")
    context.minimum_version = TLS_MINIMUM_VERSIONS[minimum_version]
    ciphers = list(FAPI_TLS12_CIPHERS)
    if flags.tls_weak_cipher_accepted:
        ciphers += WEAK_TLS12_CIPHERS
    context.set_ciphers(":".join(ciphers))  # TLS 1.3 suites are configured separately
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    if client_certificates:
        trusted = [c.certificate_pem for c in settings.clients.values()
                   if c.auth_method == "self_signed_tls_client_auth" and c.certificate_pem]
        if settings.tls_client_ca is not None:
            context.load_verify_locations(cafile=str(settings.tls_client_ca))
        for pem in trusted:
            assert pem is not None
            context.load_verify_locations(cadata=pem.decode("ascii"))
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def tls_scope_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The ASGI TLS extension (asgiref spec) for one connection."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": ssl_object.version(),
        "cipher_suite": cipher[0] if cipher else None,
    }


class TlsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that hands the connection's TLS details to the app."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        extension = tls_scope_extension(transport.get_extra_info("ssl_object"))
        if extension is None:
            return
        app: Callable[..., Awaitable[None]] = self.app

        async def with_tls(scope: Any, receive: Any, send: Any) -> None:
            if scope.get("type") == "http":
                scope = dict(scope)
                scope["extensions"] = {**(scope.get("extensions") or {}), "tls": extension}
            await app(scope, receive, send)

        self.app = with_tls


# ------------------------------------------------------------------------------- start


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then (else ~44 ms per kept-alive reply).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ProviderStartError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return sock


def _test_pki_settings(settings: ProviderSettings) -> ProviderSettings:
    """The settings with the generated test PKI's server certificate (and CA for clients)."""
    from dataclasses import replace

    from ciba_harness.provider.pki import ensure_test_pki

    pki = ensure_test_pki()
    return replace(
        settings,
        tls_certificate=pki.server_cert,
        tls_key=pki.server_key,
        tls_client_ca=settings.tls_client_ca or pki.ca,
    )


def start_provider(
    config: ProviderSettings | str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    faults: Iterable[str] | Faults = (),
    fault_tenants: bool = False,
    device_webhook_url: str | None = None,
    startup_timeout: float = 10.0,
    tls: bool | None = None,
    mtls_port: int = 0,
    profile: str | None = None,
    tls_minimum_version: str = "1.2",
    policies: Iterable[str] | ProviderPolicy | None = None,
    policy_tenants: bool = False,
) -> RunningProvider:
    """Serve the provider on ``host:port`` (0 = a free port); returns once it accepts
    connections. Raises ProfileError (bad config), ValueError (unknown profile; FaultError, a
    ValueError, for an unknown fault) or ProviderStartError (cannot listen, bad TLS material).

    ``tls``: None = HTTPS when the profile names a ``tls_certificate``; True = HTTPS (with the
    generated test PKI when the profile names no certificate); False = plain http. With TLS a
    second socket (``mtls_port``, 0 = free) serves the mTLS endpoint aliases.
    ``profile`` overrides ``[reference_provider] profile`` ("ciba" or "fapi-ciba").
    ``tls_minimum_version`` ("1.2" or "1.3") exists for experiments; FAPI wants >= 1.2.
    ``policies``: policy names added to the profile's (or a ProviderPolicy replacing them),
    docs/policies.md; an unknown name raises PolicyError (a ValueError) before listening.
    ``policy_tenants``: also one provider per policy under ``/policy/NAME`` (create_app).
    """
    settings = config if isinstance(config, ProviderSettings) else load_profile(config)
    policies = effective_policy(settings, policies)
    flags = Faults.of(faults)  # an unknown name: FaultError before listening
    use_tls = settings.tls if tls is None else tls
    if use_tls and not settings.tls:
        settings = _test_pki_settings(settings)
    main_context = mtls_context = None
    if use_tls:
        main_context = server_ssl_context(
            settings, faults=flags, minimum_version=tls_minimum_version
        )
        mtls_context = server_ssl_context(
            settings, faults=flags, client_certificates=True,
            minimum_version=tls_minimum_version,
        )
    sock = _bind(host, port)
    msock: socket.socket | None = None
    if use_tls:
        try:
            msock = _bind(host, mtls_port)
        except ProviderStartError:
            sock.close()
            raise
    sockets = [s for s in (sock, msock) if s is not None]
    scheme = "https" if use_tls else "http"
    url_host = f"[{host}]" if ":" in host else host
    actual_port = int(sock.getsockname()[1])
    issuer = f"{scheme}://{url_host}:{actual_port}"
    actual_mtls_port = int(msock.getsockname()[1]) if msock is not None else None
    mtls_base = f"https://{url_host}:{actual_mtls_port}" if msock is not None else None
    try:
        app = create_app(settings, issuer=issuer, faults=flags, fault_tenants=fault_tenants,
                         device_webhook_url=device_webhook_url, profile=profile,
                         mtls_base=mtls_base, policies=policies,
                         policy_tenants=policy_tenants)
    except BaseException:
        for s in sockets:
            s.close()
        raise
    servers: list[uvicorn.Server] = []
    pairs: list[tuple[uvicorn.Server, socket.socket]] = []
    for index, (listen, context) in enumerate(((sock, main_context), (msock, mtls_context))):
        if listen is None:
            continue
        uv_config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False,
            lifespan="on" if index == 0 else "off",
            timeout_graceful_shutdown=2, backlog=2048,
            timeout_keep_alive=app.state.provider.policy.keep_alive_timeout,
            http=TlsH11Protocol if context is not None else "auto",
        )
        if context is not None:
            uv_config.load()
            uv_config.ssl = context  # our context: TLS >= 1.2, FAPI suites, client certs
        server = uvicorn.Server(uv_config)
        servers.append(server)
        pairs.append((server, listen))

    def run() -> None:
        if len(pairs) == 1:
            pairs[0][0].run(sockets=[pairs[0][1]])
            return

        async def serve_all() -> None:
            await asyncio.gather(*(srv.serve(sockets=[s]) for srv, s in pairs))

        asyncio.run(serve_all())

    thread = threading.Thread(target=run, daemon=True, name=f"ciba-provider-{actual_port}")
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not all(srv.started for srv in servers):
        if not thread.is_alive():
            for s in sockets:
                s.close()
            raise ProviderStartError(f"the provider on {host}:{actual_port} failed to start")
        if time.monotonic() > deadline:
            for srv in servers:
                srv.should_exit = True
            thread.join(2)
            for s in sockets:
                s.close()
            raise ProviderStartError(f"the provider on {host}:{actual_port} did not start")
        time.sleep(0.005)
    return RunningProvider(
        servers[0], thread, app, issuer, host, actual_port, servers=servers,
        mtls_port=actual_mtls_port, mtls_base=mtls_base,
        profile=app.state.provider.keys.profile,
    )
