"""The conformance suites. The ciba-harness pytest plugin (entry point) provides the fixtures:
`ciba` (the client of this test), `ciba_config`, `ciba_metadata`, `ciba_inbox`, `ciba_receiver`.
Run: pytest conformance [--ciba-config my-provider.toml], or wherever the harness is installed
pytest --pyargs ciba_harness_conformance. The fuzz plugin (ciba_harness.pytest_plugin._fuzz) comes
with the harness's plugin; pytest refuses `pytest_plugins` in a conftest below the root.

The client fixtures of the suites are here (a module that needs other clients defines its own
fixture of the same name); the sequences they share are ciba_harness.pytest_plugin.sequences.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ciba_harness.checks._backchannel import auth_req_ids_unique
from ciba_harness.client._client import CibaClient
from ciba_harness.core._config import ClientConfig, ProviderConfig
from ciba_harness.core._discovery import ProviderMetadata
from ciba_harness.core._http import Exchange
from ciba_harness.core._requests import parse_acknowledgement
from ciba_harness.pytest_plugin import require_client
from ciba_harness.pytest_plugin.sequences import fapi_client_for

#: every auth_req_id a flow of this session was started with (tests run concurrently, so
#: a provider handing one id to two requests would otherwise let one test's deny or redeem
#: break another test under the wrong row)
_ISSUED: set[str] = set()
_ISSUED_LOCK = threading.Lock()

#: the certification suite's FAPI-CIBA variants: delivery mode and client authentication
FAPI_VARIANTS = [
    pytest.param(("poll", "private_key_jwt"), id="poll-private_key_jwt"),
    pytest.param(("poll", "mtls"), id="poll-mtls"),
    pytest.param(("ping", "private_key_jwt"), id="ping-private_key_jwt"),
    pytest.param(("ping", "mtls"), id="ping-mtls"),
]
FAPI_AUTH_VARIANTS = ["private_key_jwt", "mtls"]


@pytest.fixture
def poll_client(ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata) -> ClientConfig:
    """A poll-mode client (skips when none is configured or the mode is not advertised)."""
    return require_client(ciba_config, ciba_metadata, mode="poll")


@pytest.fixture
def ping_client(ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata) -> ClientConfig:
    """A ping-mode client (skips when none is configured or the mode is not advertised)."""
    return require_client(ciba_config, ciba_metadata, mode="ping")


@pytest.fixture
def push_client(ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata) -> ClientConfig:
    """A push-mode client (skips when none is configured or the mode is not advertised)."""
    return require_client(ciba_config, ciba_metadata, mode="push")


@pytest.fixture(params=["poll", "ping", "push"])
def any_client(
    request: pytest.FixtureRequest, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
) -> ClientConfig:
    """One client per advertised delivery mode."""
    return require_client(ciba_config, ciba_metadata, mode=request.param)


@pytest.fixture(params=["ping", "push"])
def notified_client(
    request: pytest.FixtureRequest, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
) -> ClientConfig:
    """A ping or a push client (client_notification_token is REQUIRED for them)."""
    return require_client(ciba_config, ciba_metadata, mode=request.param)


@pytest.fixture
def user_code_client(ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata) -> ClientConfig:
    """A client registered for user codes, with the test user's code configured; or skip."""
    if not ciba_metadata.user_code_supported:
        pytest.skip(
            "not applicable: the provider does not advertise "
            "backchannel_user_code_parameter_supported=true"
        )
    client = require_client(ciba_config, ciba_metadata, user_code=True, feature="user codes")
    if not ciba_config.users.user_code:
        pytest.skip("not covered: no [users] user_code configured for the test user")
    return client


@pytest.fixture(scope="module")
def fapi_profile(ciba_config: ProviderConfig) -> None:
    """Skip the module unless the FAPI-CIBA profile is selected (`pytestmark` of the FAPI
    modules: `pytest.mark.usefixtures("fapi_profile")`)."""
    if not ciba_config.fapi:
        pytest.skip("FAPI-CIBA profile not selected")


@pytest.fixture(params=FAPI_VARIANTS)
def fapi_client(
    request: pytest.FixtureRequest, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
) -> ClientConfig:
    """A FAPI-CIBA client of each variant (poll / ping, private_key_jwt / mTLS)."""
    mode, auth = request.param
    return fapi_client_for(ciba_config, ciba_metadata, mode, auth)


@pytest.fixture(params=FAPI_AUTH_VARIANTS)
def fapi_poll_client(
    request: pytest.FixtureRequest, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
) -> ClientConfig:
    """A FAPI-CIBA poll client of each authentication variant."""
    return fapi_client_for(ciba_config, ciba_metadata, "poll", request.param)


@pytest.fixture(params=FAPI_AUTH_VARIANTS)
def fapi_ping_client(
    request: pytest.FixtureRequest, ciba_config: ProviderConfig, ciba_metadata: ProviderMetadata
) -> ClientConfig:
    """A FAPI-CIBA ping client of each authentication variant."""
    return fapi_client_for(ciba_config, ciba_metadata, "ping", request.param)


@pytest.fixture(autouse=True)
def _auth_req_ids_never_shared(request: pytest.FixtureRequest) -> None:
    """Each acknowledged auth_req_id is new to the session (CIBA §7.3: it identifies one
    authentication request, CIBA-ACK-06): checked on every backchannel answer of the test's
    client (flows started with ciba.start go through it too). No teardown: tests started
    early stay eligible."""
    if "ciba" not in request.fixturenames:
        return
    ciba: CibaClient = request.getfixturevalue("ciba")
    backchannel = ciba.backchannel

    def backchannel_checked(*args: Any, **kwargs: Any) -> Exchange:
        exchange = backchannel(*args, **kwargs)
        ack = parse_acknowledgement(exchange.response) if exchange.response is not None else None
        if ack is not None:
            with _ISSUED_LOCK:
                repeated = ack.auth_req_id in _ISSUED
                _ISSUED.add(ack.auth_req_id)
            if repeated:
                ciba.check(auth_req_ids_unique, [ack.auth_req_id] * 2, exchanges=[exchange])
        return exchange

    ciba.backchannel = backchannel_checked  # type: ignore[method-assign]
