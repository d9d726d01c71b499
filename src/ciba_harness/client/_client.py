"""The CIBA client façade: discovery, requests, device decisions and polling over a transport
(httpx by default, client/_httpx.py). Every exchange is recorded.

`send()` never raises for HTTP-level problems: an exchange with no response carries the
transport error (timeout, refused, reset) as text, so checks can turn it into a verdict.
"""

from __future__ import annotations

import copy
import itertools
import secrets as random_source
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec

from ciba_harness.checks._backchannel import auth_req_ids_unique, issuer_matches
from ciba_harness.checks._idtoken import validate_id_token
from ciba_harness.checks._registry import CheckRunner
from ciba_harness.checks._responses import (
    ack_has_auth_req_id,
    error_code_is,
    status_is,
    token_response_complete,
)
from ciba_harness.client._drivers import Decision, DeviceContext, DeviceDriver, make_driver
from ciba_harness.client._health import SessionHealth
from ciba_harness.client._httpx import HttpxTransport
from ciba_harness.client._inbox import NotificationInbox
from ciba_harness.client._tls import provider_trust
from ciba_harness.client._transport import ClientCertificate, Transport
from ciba_harness.core._clientauth import ClientAuthentication
from ciba_harness.core._config import ClientConfig, ProviderConfig
from ciba_harness.core._discovery import ProviderMetadata, discovery_request, parse_metadata
from ciba_harness.core._errors import (
    MissingMember,
    ProviderSetupError,
    ResponseTimeout,
    Severity,
    TransportError,
    hide_check_failure_frames,
)
from ciba_harness.core._http import Exchange, HttpRequest
from ciba_harness.core._idtoken import IdTokenExpectations, Jwks
from ciba_harness.core._notifications import EndpointBehaviour
from ciba_harness.core._poller import Poller, PollResult, PollStatus
from ciba_harness.core._requests import (
    Acknowledgement,
    BackchannelParams,
    RequestObjectSpec,
    build_backchannel_request,
    build_introspection_request,
    build_token_request,
    build_userinfo_request,
    new_notification_token,
    parse_acknowledgement,
)
from ciba_harness.core._verdict_rules import mandatory_requirements

__tracebackhide__ = hide_check_failure_frames  # pytest: check failures show the test's line

__all__ = ["CibaClient", "Flow", "Recorder"]

P = ParamSpec("P")

_flow_numbers = itertools.count(1)
#: `send(..., certificate=CLIENT_CERTIFICATE)`: the client's own certificate, if it has one
CLIENT_CERTIFICATE: Any = object()


def _no_certificate_without_auth(auth: ClientAuthentication | None) -> Any:
    """A request deliberately sent without client authentication (`method` "none" or "omit")
    presents no client certificate either; otherwise the client's own."""
    if auth is not None and auth.method in {"none", "omit"}:
        return None
    return CLIENT_CERTIFICATE


class Recorder:
    """Keeps the exchanges of the current test (and hands them to a listener, e.g. a report)."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.listeners: list[Callable[[Exchange], None]] = []
        self.auth_methods: set[str] = set()  # of the clients that sent requests (for reports)

    def add(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        for listener in self.listeners:
            listener(exchange)

    def reset(self) -> list[Exchange]:
        taken, self.exchanges = self.exchanges, []
        self.auth_methods = set()
        return taken


@dataclass
class Flow:
    """One started CIBA transaction, as the client knows it."""

    client: ClientConfig
    params: BackchannelParams
    exchange: Exchange
    acknowledgement: Acknowledgement | None
    notification_token: str | None
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def auth_req_id(self) -> str:
        if self.acknowledgement is None:
            raise AssertionError("the flow was not acknowledged: no auth_req_id")
        return self.acknowledgement.auth_req_id


class CibaClient:
    """Discovery, requests, device decisions and polling for one provider description."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        transport: Transport | None = None,
        inbox: NotificationInbox | None = None,
        notification_url: str | None = None,
        driver: DeviceDriver | None = None,
        runner: CheckRunner | None = None,
    ) -> None:
        self.config = config
        self.transport = transport or HttpxTransport(
            timeout=config.budgets.request_timeout, verify=provider_trust(config)
        )
        self.recorder = Recorder()
        self.inbox = inbox
        self.notification_url = notification_url
        self.driver = driver or make_driver(config.device, config.issuer, config.secrets)
        self.runner = runner or self.new_runner()
        self._metadata: ProviderMetadata | None = None
        # what one discovery or JWKS fetch learnt, shared with this client's forks
        self._shared: dict[str, Any] = {"lock": threading.Lock()}
        self.jwks = Jwks()
        self._jwks_loaded = False
        #: the session's endpoint breakers and run budget (set by the pytest plugin)
        self.health: SessionHealth | None = None

    def fork(self) -> CibaClient:
        """A view of this client for one test: the same transport, provider metadata, keys,
        inbox, driver and health; its own check runner and recorder (so tests can run
        concurrently without mixing their outcomes)."""
        twin = copy.copy(self)
        twin.recorder = Recorder()
        twin.runner = twin.new_runner()
        return twin

    def new_runner(self) -> CheckRunner:
        """A fresh check runner with this configuration's strictness and profile rules."""
        return CheckRunner(
            strict=self.config.strict, mandatory=mandatory_requirements(self.config.profile)
        )

    @property
    def signs_by_default(self) -> bool:
        """FAPI-CIBA (ID1 edition): every authentication request is signed (FAPI-CIBA-12)."""
        return self.config.fapi and self.config.fapi_ciba_version == "id1"

    def check(
        self, check_function: Callable[P, None], /, *args: P.args, **kwargs: P.kwargs
    ) -> bool:
        """Run a check at FAILURE (recorded for the report); mypy checks the arguments
        against the check. `check_at` runs it at another severity (a `severity=` keyword is
        still honoured at run time for untyped suites)."""
        return self.runner(check_function, *args, **kwargs)

    def check_at(
        self,
        severity: Severity,
        check_function: Callable[P, None],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> bool:
        """Run a check at the severity this call site chooses (recorded for the report)."""
        return self.runner.at(severity, check_function, *args, **kwargs)

    # --- plumbing ---
    def send(
        self,
        request: HttpRequest,
        *,
        label: str = "",
        client: ClientConfig | None = None,
        certificate: Any = CLIENT_CERTIFICATE,
    ) -> Exchange:
        """Send one request. A `client` with a certificate presents it (mTLS);
        `certificate` overrides that: None = no certificate, or (cert path, key path)."""
        cert: ClientCertificate | None = None
        if certificate is not CLIENT_CERTIFICATE:
            cert = (str(certificate[0]), str(certificate[1])) if certificate else None
        elif client is not None and client.certificate_path and client.certificate_key_path:
            cert = (str(client.certificate_path), str(client.certificate_key_path))
        endpoint = self._endpoint_of(request.url) if self.health is not None else None
        if self.health is not None:
            if endpoint is None:
                self.health.check_budget()
            else:
                self.health.before(endpoint)
        exchange = self.transport.send(request, label=label, cert=cert)
        if self.health is not None and endpoint is not None:
            self.health.after(endpoint, exchange)
        if client is not None:
            self.recorder.auth_methods.add(client.auth_method)
        self.recorder.add(exchange)
        return exchange

    def _endpoint_of(self, url: str) -> str | None:
        """The breaker a request belongs to: the endpoint of the metadata it goes to."""
        metadata = self._metadata or self._shared.get("metadata")
        if metadata is None:
            return None
        base = url.partition("?")[0]
        named = {
            "backchannel": metadata.backchannel_authentication_endpoint,
            "token": metadata.token_endpoint,
            "userinfo": metadata.userinfo_endpoint,
            "jwks": metadata.jwks_uri,
        }
        aliases = metadata.mtls_endpoint_aliases
        for name, key in (
            ("backchannel", "backchannel_authentication_endpoint"),
            ("token", "token_endpoint"),
            ("userinfo", "userinfo_endpoint"),
        ):
            if base == aliases.get(key):
                return name
        for name, endpoint in named.items():
            if endpoint and base == endpoint:
                return name
        return None

    def close(self) -> None:
        self.transport.close()

    @property
    def metadata(self) -> ProviderMetadata:
        if self._metadata is None:
            self._metadata = self._shared.get("metadata") or self.discover()
            self._shared["metadata"] = self._metadata
        return self._metadata

    def discover(self) -> ProviderMetadata:
        request = discovery_request(self.config.issuer, self.config.discovery_url)
        exchange = self.send(request, label="discovery")
        if exchange.response is None:
            raise ProviderSetupError(f"provider unreachable: {exchange.error}")
        document = exchange.response.json_object() if exchange.response.status == 200 else None
        if document is not None:
            # Metadata that names no backchannel endpoint, or another issuer, must not be
            # used (OIDC Discovery §4.3): every test then fails with that requirement.
            if not isinstance(document.get("backchannel_authentication_endpoint"), str):
                raise MissingMember(
                    requirement="CIBA-DISC-02",
                    title="backchannel_authentication_endpoint missing from the provider metadata",
                    exchanges=[exchange],
                )
            issuer_matches(document, self.config.issuer, exchange=exchange)
        return parse_metadata(exchange.response, url=request.url)

    def load_jwks(self, *, force: bool = False) -> Jwks:
        loaded = self._jwks_loaded or self._shared.get("jwks_loaded", False)
        if (loaded and not force) or not self.metadata.jwks_uri:
            return self.jwks
        exchange = self.send(HttpRequest("GET", self.metadata.jwks_uri), label="jwks")
        body = exchange.response.json_object() if exchange.response else None
        if body is None:
            raise TransportError(
                f"JWKS at {self.metadata.jwks_uri} is not usable: "
                f"{exchange.error or exchange.response and exchange.response.status}",
                exchange=exchange,
            )
        self.jwks.update(body)
        self._jwks_loaded = True
        self._shared["jwks_loaded"] = True
        return self.jwks

    # --- requests ---
    def default_params(self, client: ClientConfig, **overrides: Any) -> BackchannelParams:
        """A valid request for `client`: the configured user, a unique binding message,
        a fresh notification token for ping/push, the user code where the client needs it."""
        values: dict[str, Any] = {
            "scope": "openid",
            "login_hint": self.config.users.login_hint,
            "binding_message": f"T{next(_flow_numbers)}{random_source.randbelow(10**4):04d}",
        }
        if client.delivery_mode in {"ping", "push"}:
            values["client_notification_token"] = new_notification_token()
        if client.user_code_required and self.config.users.user_code:
            values["user_code"] = self.config.users.user_code
        values.update(overrides)
        return BackchannelParams(**values)

    def backchannel(
        self,
        client: ClientConfig,
        params: BackchannelParams,
        *,
        auth: ClientAuthentication | None = None,
        signed: RequestObjectSpec | Literal[False] | None = None,
        label: str = "backchannel",
        **options: Any,
    ) -> Exchange:
        """Send an authentication request. `signed`: a RequestObjectSpec, None (signed when
        the client registered for it, or under FAPI-CIBA ID1), or False (never signed).
        Every acknowledgement's auth_req_id must be new to the session (CIBA-ACK-06)."""
        if signed is False:
            signed = None  # explicitly unsigned (e.g. FAPI-CIBA-06 tests)
        elif signed is None and (
            client.sign_requests or (self.signs_by_default and client.can_sign)
        ):
            signed = RequestObjectSpec()
        certificate = options.pop("certificate", _no_certificate_without_auth(auth))
        request = build_backchannel_request(
            client, self.metadata, params, auth=auth, signed=signed, **options
        )
        exchange = self.send(request, label=label, client=client, certificate=certificate)
        ack = parse_acknowledgement(exchange.response) if exchange.response is not None else None
        if ack is not None:
            self._require_new_auth_req_id(ack.auth_req_id, exchange)
        return exchange

    def token(
        self,
        client: ClientConfig,
        auth_req_id: str | None,
        *,
        auth: ClientAuthentication | None = None,
        label: str = "token",
        **options: Any,
    ) -> Exchange:
        certificate = options.pop("certificate", _no_certificate_without_auth(auth))
        request = build_token_request(client, self.metadata, auth_req_id, auth=auth, **options)
        return self.send(request, label=label, client=client, certificate=certificate)

    def userinfo(
        self,
        client: ClientConfig,
        access_token: str,
        *,
        certificate: Any = CLIENT_CERTIFICATE,
        url: str | None = None,
        label: str = "userinfo",
    ) -> Exchange:
        """GET userinfo with `access_token` (the mTLS alias and the client's certificate for
        clients that have one; `certificate` as in `send`)."""
        request = build_userinfo_request(self.metadata, access_token, client=client, url=url)
        return self.send(request, label=label, client=client, certificate=certificate)

    def introspect(
        self, client: ClientConfig, token: str, *, label: str = "introspect"
    ) -> Exchange:
        """RFC 7662 introspection of `token` (needs introspection_endpoint in the metadata)."""
        request = build_introspection_request(client, self.metadata, token)
        return self.send(request, label=label, client=client)

    def start(
        self,
        client: ClientConfig,
        params: BackchannelParams | None = None,
        *,
        behaviour: EndpointBehaviour | None = None,
        signed: RequestObjectSpec | None = None,
        **overrides: Any,
    ) -> Flow:
        """Send a valid authentication request and require an acknowledgement (CIBA-ACK-01)."""
        params = params or self.default_params(client, **overrides)
        token = params.client_notification_token
        if token and self.inbox is not None:
            self.inbox.expect(token, client.delivery_mode, behaviour)
        exchange = self.backchannel(client, params, signed=signed)
        # Lenient on purpose: the exact status, content type and member types are judged by
        # the acknowledgement tests; here any 2xx with an auth_req_id lets the flow go on.
        self.runner(status_is, exchange, set(range(200, 300)), requirement="CIBA-ACK-01")
        assert exchange.response is not None
        ack = parse_acknowledgement(exchange.response)
        if ack is None:
            self.runner(ack_has_auth_req_id, exchange)
        return Flow(client, params, exchange, ack, token, [exchange])

    def _require_new_auth_req_id(self, auth_req_id: str, exchange: Exchange) -> None:
        """An auth_req_id the provider already issued for another request of this session
        (any test, any thread) fails CIBA-ACK-06 here, in the test that got it twice: two
        flows sharing one transaction would otherwise break each other's verdicts."""
        with self._shared["lock"]:
            issued: dict[str, Exchange] = self._shared.setdefault("auth_req_ids", {})
            earlier = issued.setdefault(auth_req_id, exchange)
        if earlier is not exchange:
            self.runner(auth_req_ids_unique, [auth_req_id, auth_req_id], exchanges=[earlier, exchange])

    def decide(self, flow: Flow, action: Decision, *, delay: float = 0.0) -> Exchange | None:
        context = DeviceContext(
            flow.auth_req_id,
            flow.params.login_hint,
            flow.params.binding_message,
            delay or self.config.device.approve_delay,
        )
        try:
            request = self.driver.decision_request(action, context)
        except TimeoutError as exc:  # the webhook driver waited for the provider's device call
            raise TransportError(f"device driver '{self.driver.name}': {exc}") from None
        if request is None:
            return None
        exchange = self.send(request, label=f"device {action}")
        if exchange.response is None or exchange.response.status >= 300:
            raise TransportError(
                f"device driver '{self.driver.name}' could not {action} {flow.params.binding_message}: "
                f"{exchange.error or exchange.response and exchange.response.status}",
                exchange=exchange,
            )
        return exchange

    def approve(self, flow: Flow, *, delay: float = 0.0) -> Exchange | None:
        return self.decide(flow, "approve", delay=delay)

    def deny(self, flow: Flow, *, delay: float = 0.0) -> Exchange | None:
        return self.decide(flow, "deny", delay=delay)

    def poll(
        self,
        flow: Flow,
        *,
        max_wait: float | None = None,
        auth: ClientAuthentication | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> tuple[PollResult, Poller]:
        """Poll at the provider's interval until tokens or a terminal error (CIBA §10.1, §11)."""
        assert flow.acknowledgement is not None
        poller = Poller(flow.client, self.metadata, flow.acknowledgement, auth=auth)
        budget = max_wait if max_wait is not None else self.config.budgets.max_wait
        deadline = time.monotonic() + budget
        while True:
            exchange = self.send(poller.request(), label="token poll", client=flow.client)
            answered = time.monotonic()  # the interval runs from the answer the provider sent
            flow.exchanges.append(exchange)
            if exchange.response is None:
                raise TransportError(f"token endpoint: {exchange.error}", exchange=exchange)
            result = poller.handle(exchange.response)
            if result.status in {PollStatus.TOKENS, PollStatus.FAILED}:
                return result, poller
            wait = poller.delay() - (time.monotonic() - answered)
            if time.monotonic() + max(wait, 0) > deadline:
                raise ResponseTimeout(
                    requirement="CIBA-TOKEN-05",
                    title="No final answer from the token endpoint within the time budget",
                    expected=f"tokens or a terminal error within {budget:g} s",
                    actual=f"{poller.polls} polls, last {result.status.value}",
                    exchanges=[exchange],
                )
            if wait > 0:
                sleep(wait)

    def expect_tokens(self, flow: Flow, exchange: Exchange | None = None) -> dict[str, Any]:
        """Check a token response and validate its ID token; returns the response body."""
        exchange = exchange or flow.exchanges[-1]
        self.runner(token_response_complete, exchange)
        assert exchange.response is not None
        body = exchange.response.json_object() or {}
        self.check_id_token(flow, body, exchange=exchange)
        return body

    def check_id_token(
        self,
        flow: Flow,
        tokens: dict[str, Any],
        *,
        exchange: Exchange | None = None,
        push: bool = False,
    ) -> dict[str, Any]:
        jwks = self.load_jwks()
        id_token = str(tokens.get("id_token", ""))
        if jwks.refresh_needed(id_token):
            jwks = self.load_jwks(force=True)  # key rotation: fetch once more
        expectations = IdTokenExpectations(
            issuer=self.metadata.issuer,
            client_id=flow.client.client_id,
            access_token=tokens.get("access_token"),
            refresh_token=tokens.get("refresh_token"),
            auth_req_id=flow.auth_req_id,
            push=push,
        )
        return validate_id_token(id_token, jwks, expectations, exchange=exchange)

    def expect_error(
        self,
        exchange: Exchange,
        codes: set[str] | str,
        *,
        requirement: str,
        statuses: set[int] | None = None,
    ) -> None:
        codes = {codes} if isinstance(codes, str) else codes
        self.runner(error_code_is, exchange, codes, requirement=requirement)
        self.runner(status_is, exchange, statuses or {400}, requirement=requirement)
