"""Ping and push alike: how the provider treats the client's notification endpoint (CIBA §10.2,
§10.3; CIBA-SEC-10). Each test runs once per delivery mode (`-m ping` / `-m push` select one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ciba_harness import (
    EndpointBehaviour,
    expect_callback,
    no_callback_for_flow,
    redirected_callbacks,
    require_client,
)

if TYPE_CHECKING:
    from ciba_harness import (
        CibaClient,
        NotificationInbox,
        NotificationReceiver,
        ProviderConfig,
        ProviderMetadata,
    )

QUIET_WINDOW = 1.0  # seconds to watch for callbacks that must not come

#: the requirement that forbids following a redirect of the notification endpoint, per mode
REDIRECT_RULE = {"ping": "CIBA-PING-06", "push": "CIBA-PUSH-07"}


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param("ping", marks=pytest.mark.requirement("CIBA-PING-06", "CIBA-SEC-10")),
        pytest.param("push", marks=pytest.mark.requirement("CIBA-PUSH-07", "CIBA-SEC-10")),
    ],
)
def test_redirect_not_followed(
    ciba: CibaClient,
    ciba_config: ProviderConfig,
    ciba_metadata: ProviderMetadata,
    ciba_inbox: NotificationInbox,
    ciba_receiver: NotificationReceiver,
    mode: str,
) -> None:
    """The notification endpoint answers 307 to another harness URL: the provider never
    calls or delivers there (SSRF guard)."""
    client = require_client(ciba_config, ciba_metadata, mode=mode)
    behaviour = EndpointBehaviour(status=307, redirect_to=ciba_receiver.redirect_target)
    flow = ciba.start(client, behaviour=behaviour)
    ciba.approve(flow)
    expect_callback(ciba, ciba_config, ciba_inbox, flow)
    hits = redirected_callbacks(ciba_inbox, flow, timeout=QUIET_WINDOW)
    ciba.check(
        no_callback_for_flow,
        hits,
        requirement=REDIRECT_RULE[mode],
        title="The provider followed the notification endpoint's redirect",
    )
