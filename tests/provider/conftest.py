"""Fixtures of the reference provider's tests: in-process apps over httpx.ASGITransport."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from provider_helpers import ISSUER, PROFILE, RECEIVER, Api, Recorder
from starlette.applications import Starlette

from ciba_harness.provider import ProviderSettings, create_app, load_profile
from ciba_harness.provider.core import Provider


@pytest.fixture(scope="session")
def settings() -> ProviderSettings:
    return load_profile(PROFILE)


@dataclass
class Env:
    app: Starlette
    api: Api
    recorder: Recorder
    provider: Provider

    async def idle(self) -> None:
        await self.provider.wait_idle()


@contextlib.asynccontextmanager
async def make_env(
    settings: ProviderSettings, faults: Iterable[str] = (), **kwargs: Any
) -> AsyncIterator[Env]:
    recorder = Recorder()
    app = create_app(settings, issuer=ISSUER, faults=frozenset(faults),
                     http_transport=httpx.MockTransport(recorder), **kwargs)
    provider: Provider = app.state.provider
    provider.default_notification_endpoint = f"{RECEIVER}/cb"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=ISSUER) as http:
        env = Env(app, Api(http, ISSUER), recorder, provider)
        yield env
        for p in (provider, *provider.tenants.values()):
            assert p.server_errors == 0, "a request reached the catch-all 500 handler"
            for task in list(p.tasks):
                task.cancel()


@pytest_asyncio.fixture
async def env(settings: ProviderSettings) -> AsyncIterator[Env]:
    async with make_env(settings) as e:
        yield e


@pytest.fixture
def api(env: Env) -> Api:
    return env.api
