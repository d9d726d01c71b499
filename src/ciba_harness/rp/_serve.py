"""Serving a Starlette app with uvicorn in a background thread on a loopback socket."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette

from ciba_harness.core._errors import CibaHarnessError

__all__ = ["BackgroundServer", "serve_in_thread"]


class BackgroundServer:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str) -> None:
        self._server = server
        self._thread = thread
        self.url = url

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)


def serve_in_thread(
    app: Starlette, *, host: str = "127.0.0.1", port: int = 0, name: str = "server",
    startup_timeout: float = 10.0,
) -> BackgroundServer:
    """Serve `app` on host:port (0 = a free port); returns once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CibaHarnessError(
            f"{name}: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    actual = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=1,
        # Longer than any client's idle keep-alive (httpx: 5 s), so a poll after a 5 s
        # interval never races the server closing that connection.
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: server.run(sockets=[sock]), daemon=True, name=f"{name}-{actual}"
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise CibaHarnessError(f"{name} on {host}:{actual} did not start")
        time.sleep(0.005)
    return BackgroundServer(server, thread, f"http://{host}:{actual}")
