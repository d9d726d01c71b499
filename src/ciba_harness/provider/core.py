"""The reference OpenID Provider (CIBA Core 1.0, OP side): one :class:`Provider` is one
independent provider instance (own clients, transactions, tokens) with one issuer.

It is its shared state (:class:`ProviderState`) plus one collaborator per endpoint; the HTTP
layer (``app.py``) routes requests to them:

- ``discovery`` (discovery.py): the metadata document; the JWKS is the signer's (keys.py);
- ``backchannel`` (backchannel.py): the authentication request, with ``auth``
  (clientauth.py) and ``users`` (hints.py);
- ``token`` (token_endpoint.py) and ``resources`` (resources.py: userinfo, introspection), with
  ``tokens`` (tokens.py);
- ``notifier`` (notifications.py): decisions, pings, pushes, the device webhook;
- ``device`` (device.py): the device API and webhook callback;
- ``registration`` (registration.py), ``errors`` (responses.py).

Faults (``faults.py``) are typed switches read where the behaviour lives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from ciba_harness.provider.backchannel import BackchannelEndpoint
from ciba_harness.provider.clientauth import ClientAuthenticator
from ciba_harness.provider.device import DeviceApi
from ciba_harness.provider.discovery import Discovery
from ciba_harness.provider.faults import Faults
from ciba_harness.provider.hints import UserResolver
from ciba_harness.provider.keys import KeyMaterial
from ciba_harness.provider.notifications import Notifier
from ciba_harness.provider.outbound import Outbound
from ciba_harness.provider.policies import ProviderPolicy
from ciba_harness.provider.registration import RegistrationEndpoint
from ciba_harness.provider.resources import TokenResources
from ciba_harness.provider.responses import ErrorResponses
from ciba_harness.provider.settings import ProviderSettings
from ciba_harness.provider.state import ProviderState
from ciba_harness.provider.token_endpoint import TokenEndpoint
from ciba_harness.provider.tokens import TokenIssuer


class Provider(ProviderState):
    """One provider instance: its state and its endpoints."""

    def __init__(
        self,
        settings: ProviderSettings,
        keys: KeyMaterial,
        *,
        issuer: str,
        faults: Iterable[str] | Faults = (),
        outbound: Outbound | None = None,
        device_webhook_url: str | None = None,
        mtls_base: str | None = None,
        policy: ProviderPolicy | None = None,
    ):
        super().__init__(
            settings, keys, issuer=issuer, faults=faults, outbound=outbound,
            device_webhook_url=device_webhook_url, mtls_base=mtls_base, policy=policy,
        )
        self.tenants: dict[str, Provider] = {}
        self.errors = ErrorResponses(self)
        self.auth = ClientAuthenticator(self)
        self.users = UserResolver(self)
        self.tokens = TokenIssuer(self)
        self.notifier = Notifier(self, self.tokens)
        self.backchannel = BackchannelEndpoint(
            self, self.auth, self.users, self.notifier, self.errors
        )
        self.token = TokenEndpoint(self, self.auth, self.tokens, self.errors)
        self.resources = TokenResources(self, self.auth, self.errors)
        self.registration = RegistrationEndpoint(self, self.errors)
        self.device = DeviceApi(self, self.notifier)
        self.discovery_body = Discovery(self).document()

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every background task (deliveries, delayed decisions) has finished."""
        deadline = time.monotonic() + timeout
        while True:
            pending = [t for p in (self, *self.tenants.values()) for t in p.tasks]
            if not pending:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("background tasks still running")
            await asyncio.wait(pending, timeout=remaining)

    def set_notification_endpoint(self, client_id: str | None, url: str | None) -> None:
        targets = [self, *self.tenants.values()]
        for p in targets:
            if client_id is None:
                p.default_notification_endpoint = url
            elif url is None:
                p.notification_endpoints.pop(client_id, None)
            else:
                p.notification_endpoints[client_id] = url
