"""Running the reference provider on a real socket (uvicorn in a background thread)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from .app import create_app
from .core import Provider
from .faults import unknown_faults
from .settings import ProviderSettings, load_profile


class ProviderStartError(RuntimeError):
    """The provider could not start (message names the cause)."""


class RunningProvider:
    """Handle of a provider served by uvicorn in a background thread."""

    def __init__(
        self, server: uvicorn.Server, thread: threading.Thread, app: Starlette, issuer: str,
        host: str, port: int,
    ):
        self._server = server
        self._thread = thread
        self.app = app
        self.issuer = issuer
        self.host = host
        self.port = port

    @property
    def provider(self) -> Provider:
        """The root provider instance (state is owned by the server's event loop)."""
        p: Provider = self.app.state.provider
        return p

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
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


def start_provider(
    config: ProviderSettings | str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    faults: Iterable[str] = (),
    fault_tenants: bool = False,
    device_webhook_url: str | None = None,
    startup_timeout: float = 10.0,
) -> RunningProvider:
    """Serve the provider on ``host:port`` (0 = a free port); returns once it accepts
    connections. Raises ProfileError (bad config), ValueError (unknown fault) or
    ProviderStartError (cannot listen)."""
    settings = config if isinstance(config, ProviderSettings) else load_profile(config)
    faults = frozenset(faults)
    unknown = unknown_faults(faults)
    if unknown:
        raise ValueError(f"unknown fault: {', '.join(sorted(unknown))}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ProviderStartError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    actual_port = int(sock.getsockname()[1])
    url_host = f"[{host}]" if ":" in host else host
    issuer = f"http://{url_host}:{actual_port}"
    try:
        app = create_app(settings, issuer=issuer, faults=faults, fault_tenants=fault_tenants,
                         device_webhook_url=device_webhook_url)
    except BaseException:
        sock.close()
        raise
    uv_config = uvicorn.Config(
        app, log_config=None, log_level="warning", access_log=False, lifespan="on",
        timeout_graceful_shutdown=2, backlog=2048,
    )
    server = uvicorn.Server(uv_config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True,
        name=f"ciba-provider-{actual_port}",
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise ProviderStartError(f"the provider on {host}:{actual_port} failed to start")
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(2)
            sock.close()
            raise ProviderStartError(f"the provider on {host}:{actual_port} did not start")
        time.sleep(0.005)
    return RunningProvider(server, thread, app, issuer, host, actual_port)
