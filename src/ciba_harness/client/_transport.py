"""The transport protocol: what carries a core `HttpRequest` and answers with the `Exchange`.

Two transports implement it: `HttpxTransport` (client/_httpx.py; pytest, the CLI) and
`LocustTransport` (load/_transport.py; Locust's FastHttpSession). This module imports no HTTP
library, so a load process may name the protocol without loading httpx.
"""

from __future__ import annotations

from typing import Protocol

from ciba_harness.core._http import Exchange, HttpRequest

__all__ = ["ClientCertificate", "Transport"]

#: (certificate PEM path, key PEM path) of a client certificate presented for one request
ClientCertificate = tuple[str, str]


class Transport(Protocol):
    """Sends one request and records what came back, or the transport error as text.

    `send` never raises for HTTP-level problems (timeout, refused, reset): the exchange
    carries them, so checks can turn them into verdicts. `cert` asks for a client
    certificate on this request (mTLS); None presents the transport's default, if any."""

    def send(
        self, request: HttpRequest, *, label: str = "", cert: ClientCertificate | None = None
    ) -> Exchange: ...

    def close(self) -> None: ...
