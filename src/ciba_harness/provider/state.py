"""The state of one provider instance, shared by its endpoints (the collaborators, each a
:class:`Part`): its configuration (settings, keys, issuer, faults, policy) and what it
remembers (clients, transactions, tokens, replay caches, outbound deliveries)."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ciba_harness.provider.faults import Faults
from ciba_harness.provider.keys import Client, KeyMaterial, Signer
from ciba_harness.provider.outbound import Outbound
from ciba_harness.provider.policies import ProviderPolicy
from ciba_harness.provider.protocol import FAPI
from ciba_harness.provider.settings import ProviderSettings

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
NO_STORE_ONLY = {"Cache-Control": "no-store"}


@dataclass(slots=True, eq=False)
class Transaction:
    auth_req_id: str
    client_id: str
    user_id: str
    scope: str
    mode: str
    created_at: float  # wall clock
    expires_at: float  # monotonic
    expires_in: int
    interval: int
    acr_values: str | None = None
    binding_message: str | None = None
    notification_token: str | None = None
    state: str = "pending"  # pending approved denied expired redeemed
    last_poll: float | None = None
    auth_time: float | None = None
    webhook_token: str | None = None
    timer: asyncio.TimerHandle | None = None
    #: the scope values the client asked for (policy no_scope_when_as_requested)
    requested_scope: str = ""
    #: policy invalid_grant_after_denial: access_denied was answered once
    denial_reported: bool = False
    #: access and refresh token issued from it (policy replay_revokes_tokens)
    issued: tuple[str, ...] = ()


@dataclass(slots=True)
class Grant:
    """An access or refresh token."""

    sub: str
    client_id: str
    scope: str
    expires_at: float  # monotonic
    #: x5t#S256 of the client certificate the token is bound to (RFC 8705 §3)
    cnf: str | None = None
    issued_at: float = field(default_factory=time.time)
    #: when the user authenticated (epoch seconds; policy id_token_on_refresh)
    auth_time: float = field(default_factory=time.time)


@dataclass
class Delivery:
    """One outbound call (for tests and diagnostics)."""

    kind: str  # ping | push | webhook
    url: str
    auth_req_id: str
    payload: dict[str, Any]
    authorization: str | None
    status: int | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    done: float = field(default_factory=time.time)


# --------------------------------------------------------------------------------------------


class ProviderState:
    """What the endpoints of one provider instance share."""

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
        self.settings = settings
        self.keys = keys
        self.issuer = issuer.rstrip("/")
        self.faults = Faults.of(faults)
        self.policy = policy or ProviderPolicy()
        self.signer = Signer(keys, self.policy)
        #: Cache-Control (and Pragma unless the policy no_pragma) of sensitive responses
        self.no_store = NO_STORE if self.policy.pragma_no_cache else NO_STORE_ONLY
        self.outbound = outbound or Outbound()
        self.webhook_url = device_webhook_url or settings.device_webhook_url
        self.fapi = keys.profile == FAPI
        self.token_endpoint = f"{self.issuer}/token"
        self.backchannel_endpoint = f"{self.issuer}/backchannel"
        #: where the mTLS endpoints are served (RFC 8705 §5 aliases), e.g. a second port
        self.mtls_base = mtls_base.rstrip("/") if mtls_base else None
        self.clients: dict[str, Client] = dict(keys.clients)
        self.notification_endpoints: dict[str, str] = {
            c.client_id: c.notification_endpoint
            for c in settings.clients.values() if c.notification_endpoint
        }
        self.default_notification_endpoint: str | None = None
        self.transactions: dict[str, Transaction] = {}
        self.pending: dict[str, Transaction] = {}
        self.access_tokens: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.assertion_jtis: dict[tuple[str, str], float] = {}
        self.request_jtis: dict[tuple[str, str], float] = {}
        self.webhook_tokens: dict[str, str] = {}
        self.issued_id_tokens: OrderedDict[str, tuple[str, str]] | None = (
            OrderedDict() if self.faults.break_own_id_tokens else None
        )
        self._stores: dict[str, dict[Any, Any]] = {
            "tx": self.transactions, "at": self.access_tokens, "rt": self.refresh_tokens,
            "aj": self.assertion_jtis, "rj": self.request_jtis,
        }
        self._expiry_heap: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.deliveries: deque[Delivery] = deque(maxlen=2000)
        self.server_errors = 0

    def remember(self, store: str, key: Any, when: float) -> None:
        """Forget ``key`` of ``store`` ("tx", "at", "rt", "aj", "rj") at monotonic ``when``."""
        self._seq += 1
        heapq.heappush(self._expiry_heap, (when, self._seq, store, key))

    def purge(self, now: float) -> None:
        """Forget what is due by ``now`` (a transaction only after its retention)."""
        heap = self._expiry_heap
        while heap and heap[0][0] <= now:
            when, _, store, key = heapq.heappop(heap)
            target = self._stores[store]
            if store == "tx":
                tx = target.get(key)
                if tx is not None and tx.expires_at + self.settings.transaction_retention <= now:
                    del target[key]
                    self.pending.pop(key, None)
                    if tx.webhook_token:
                        self.webhook_tokens.pop(tx.webhook_token, None)
            else:
                target.pop(key, None)

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background (awaited by Provider.wait_idle, cancelled on stop)."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def retire(self, tx: Transaction) -> None:
        """Leave the pending state: stop the expiry timer, forget the webhook token."""
        self.pending.pop(tx.auth_req_id, None)
        if tx.timer is not None:
            tx.timer.cancel()
            tx.timer = None
        if tx.webhook_token is not None:
            self.webhook_tokens.pop(tx.webhook_token, None)
            tx.webhook_token = None

    def check_expiry(self, tx: Transaction, now: float | None = None) -> None:
        if tx.state == "pending" and not (tx.mode == "poll" and self.faults.never_expires):
            if (time.monotonic() if now is None else now) >= tx.expires_at:
                tx.state = "expired"
                self.retire(tx)

    def mtls_url(self, path: str) -> str:
        """The mTLS alias of an endpoint path: the same path under the mTLS base URL."""
        base = self.mtls_base or self.issuer
        prefix = urlsplit(self.issuer).path.rstrip("/")
        return f"{base}{prefix}{path}"

    @property
    def clock_skew(self) -> int:
        """How far iat / nbf of JWTs may lie in the future (FAPI-CIBA-24: >= 10 s)."""
        if self.fapi and self.faults.fapi_future_jwt_refused:
            return 0
        return self.settings.clock_skew

    def mtls_audiences(self) -> tuple[str, ...]:
        if self.mtls_base is None:
            return ()
        return (self.mtls_url("/token"), self.mtls_url("/backchannel"))


class Part:
    """A collaborator of one provider instance: the instance's fixed configuration at hand, what
    changes in ``self.state``."""

    def __init__(self, state: ProviderState):
        self.state = state
        self.settings = state.settings
        self.keys = state.keys
        self.issuer = state.issuer
        self.faults = state.faults
        self.policy = state.policy
        self.fapi = state.fapi
        self.signer = state.signer
        self.no_store = state.no_store
