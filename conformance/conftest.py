"""The conformance suites. The ciba-harness pytest plugin (entry point) provides the fixtures:
`ciba` (the client of this test), `ciba_config`, `ciba_metadata`, `ciba_inbox`, `ciba_receiver`.
Run: pytest conformance [--ciba-config my-provider.toml], or wherever the harness is installed
pytest --pyargs ciba_harness_conformance. The fuzz plugin (ciba_harness.pytest_plugin._fuzz) comes
with the harness's plugin; pytest refuses `pytest_plugins` in a conftest below the root.

The client fixtures the suites share are here; the send-and-judge sequences they share are
ciba_harness.pytest_plugin.sequences. That every acknowledged auth_req_id is new to the session
(CIBA-ACK-06) is checked by CibaClient.backchannel itself.
"""

from __future__ import annotations

import pytest

from ciba_harness import (
    ClientConfig,
    ProviderConfig,
    ProviderMetadata,
    fapi_client_for,
    require_client,
)

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
