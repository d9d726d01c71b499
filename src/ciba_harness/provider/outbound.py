"""The HTTP client of the provider's outbound calls (pings, pushes, webhook)."""

from __future__ import annotations

import asyncio
import ssl

import httpx


class Outbound:
    """The httpx client used for pings, pushes and webhook calls (one per event loop)."""

    def __init__(
        self, transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ):
        self._transport = transport
        self._verify = verify
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                transport=self._transport, verify=self._verify, trust_env=False
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None
        self._loop = None


# --------------------------------------------------------------------------------------------
