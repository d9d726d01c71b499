"""`python -m ciba_harness.load._provider ARGS`: the reference provider's CLI, with TCP_NODELAY.

The provider hands uvicorn a socket made with ``socket.socket(family, SOCK_STREAM)``, whose
``proto`` is 0; asyncio only sets TCP_NODELAY on accepted connections whose proto is
IPPROTO_TCP (asyncio.base_events._set_nodelay). Without it every response on a kept-alive
connection waits for the client's delayed ACK: 44 ms per request here, which caps a load
connection at about 23 requests per second and hides every other effect. Until the provider
sets the option itself, load runs start it through this launcher, which relaxes the check to
(family, type). It changes nothing else.
"""

from __future__ import annotations

import asyncio.base_events
import socket
import sys


def _set_nodelay(sock: socket.socket) -> None:
    if sock.family in {socket.AF_INET, socket.AF_INET6} and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def main() -> int:
    asyncio.base_events._set_nodelay = _set_nodelay  # type: ignore[attr-defined]
    from ciba_harness.provider.__main__ import main as provider_main

    return provider_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
