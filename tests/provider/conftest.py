"""Fixtures of the reference provider's tests: in-process apps over httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from provider_helpers import PROFILE, Api, Env, make_env

from ciba_harness.provider import ProviderSettings, load_profile


@pytest.fixture(scope="session")
def settings() -> ProviderSettings:
    return load_profile(PROFILE)


@pytest_asyncio.fixture
async def env(settings: ProviderSettings) -> AsyncIterator[Env]:
    async with make_env(settings) as e:
        yield e


@pytest.fixture
def api(env: Env) -> Api:
    return env.api
