"""The client test provider: a CIBA provider that serves one test behaviour at a time and
records every request the client under test makes (with arrival and answer times).

It is lenient on purpose: a form sent as JSON, a wrong client secret, a missing hint are
recorded for the checks and the flow goes on, so one client defect costs one requirement and
not the rest of the plan. Token minting reuses the reference provider's JOSE helpers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ciba_harness.core._http import Exchange, HttpRequest, HttpResponse
from ciba_harness.provider.jose import b64url_encode, corrupt_signature, half_hash, public_jwk, sign
from ciba_harness.rp._behaviours import Behaviour
from ciba_harness.rp._serve import BackgroundServer, serve_in_thread

__all__ = [
    "CIBA_GRANT",
    "Callback",
    "ClientRegistration",
    "ClientTestProvider",
    "RecordedRequest",
    "Recording",
    "Transaction",
]

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
NO_STORE = {"Cache-Control": "no-store"}
FORGED_SUB = "mallory"


@dataclass(frozen=True)
class ClientRegistration:
    client_id: str
    secret: str
    mode: str
    auth_method: str = "client_secret_basic"
    notification_endpoint: str | None = None


@dataclass
class RecordedRequest:
    """One request of the client under test, as the provider saw it."""

    kind: str  # discovery, jwks, backchannel, token, outcome, other
    method: str
    path: str
    arrived: float  # time.monotonic()
    content_type: str
    encoding: str  # form, json, query, empty, other
    params: dict[str, list[str]]
    client_id: str | None = None
    auth_method: str | None = None
    auth_ok: bool = False
    finished: float = 0.0
    status: int = 0
    answer: dict[str, Any] = field(default_factory=dict)
    exchange: Exchange | None = None

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


@dataclass
class Callback:
    """A ping or push the provider sent to the client's notification endpoint."""

    kind: str  # ping, push
    label: str  # valid, wrong_bearer, unknown_auth_req_id, repeat, error
    auth_req_id: str
    sent: float
    answered: float = 0.0
    status: int | None = None
    error: str | None = None
    exchange: Exchange | None = None


@dataclass
class Transaction:
    auth_req_id: str
    client: ClientRegistration
    login_hint: str | None
    binding_message: str | None
    notification_token: str | None
    acked_at: float
    expires_in: int
    interval: int | None
    sub: str
    polls: int = 0
    approved: bool = False
    finished: bool = False
    access_token: str = ""
    refresh_token: str = ""


@dataclass
class Recording:
    behaviour: Behaviour
    started: float
    outcome_token: str
    requests: list[RecordedRequest] = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    outcome_arrived: threading.Event = field(default_factory=threading.Event)
    pending_tasks: int = 0

    def of_kind(self, kind: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == kind]


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


class ClientTestProvider:
    """Serve with `start()`; run a test with `begin(behaviour)` ... `settle()` ... `end()`."""

    def __init__(self, clients: list[ClientRegistration], *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.clients = {c.client_id: c for c in clients}
        self.host, self.port = host, port
        self.issuer = ""
        self._signing = _new_key()
        self._rotated = _new_key()
        self._foreign = _new_key()
        self._rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._rotated_published = False
        self.run: Recording | None = None
        self._server: BackgroundServer | None = None
        self._http: httpx.AsyncClient | None = None
        self._transactions: dict[str, Transaction] = {}
        #: every client_notification_token seen this session, in order (reuse checks)
        self.notification_tokens: list[str] = []

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> ClientTestProvider:
        self._server = serve_in_thread(self._app(), host=self.host, port=self.port,
                                       name="ciba-client-test-provider")
        self.issuer = self._server.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def begin(self, behaviour: Behaviour) -> Recording:
        self.run = Recording(behaviour, time.monotonic(), secrets.token_urlsafe(16))
        return self.run

    def outcome_url(self, run: Recording) -> str:
        return f"{self.issuer}/rp-harness/outcome/{run.outcome_token}"

    def settle(self, run: Recording, *, grace: float = 0.05, timeout: float = 10.0) -> None:
        """Wait until the run's callbacks are all answered, then a short grace for late polls."""
        deadline = time.monotonic() + timeout
        while run.pending_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(grace)

    def end(self, run: Recording) -> None:
        if self.run is run:
            self.run = None

    # --- keys and tokens --------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        keys = [self._jwk(self._signing, "rp-test-1"),
                {**public_jwk(self._rsa.public_key()), "kid": "rp-test-rsa", "use": "sig"}]
        if self._rotated_published:
            keys.append(self._jwk(self._rotated, "rp-test-2"))
        return {"keys": keys}

    @staticmethod
    def _jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
        return {**public_jwk(key.public_key()), "kid": kid, "alg": "ES256", "use": "sig"}

    def id_token(self, txn: Transaction, variant: str, *, sub: str | None = None,
                 access_token: str, refresh_token: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub or txn.sub,
            "aud": txn.client.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "at_hash": half_hash(access_token, "ES256"),
        }
        if txn.client.mode == "push":
            claims["urn:openid:params:jwt:claim:auth_req_id"] = txn.auth_req_id
            claims["urn:openid:params:jwt:claim:rt_hash"] = half_hash(refresh_token, "ES256")
        key, kid = self._signing, "rp-test-1"
        if variant == "wrong_iss":
            claims["iss"] = self.issuer + "/other"
        elif variant == "wrong_aud":
            claims["aud"] = "another-client"
        elif variant == "expired":
            claims.update(iat=now - 900, exp=now - 600, auth_time=now - 900)
        elif variant == "missing_auth_req_id":
            claims.pop("urn:openid:params:jwt:claim:auth_req_id", None)
        elif variant == "bad_at_hash":
            claims["at_hash"] = half_hash(access_token + "x", "ES256")
        elif variant == "bad_rt_hash":
            claims["urn:openid:params:jwt:claim:rt_hash"] = half_hash(refresh_token + "x", "ES256")
        elif variant in ("missing_iss", "missing_aud", "missing_exp"):
            claims.pop(variant.removeprefix("missing_"))
        elif variant == "aud_array":
            claims["aud"] = [txn.client.client_id]
        elif variant == "secondary_aud":
            claims["aud"] = [txn.client.client_id, "https://untrusted.example"]
        elif variant == "foreign_kid":
            key, kid = self._foreign, "foreign-1"
        elif variant == "rotated_key" and self.run is not None and (
            txn is not self.run.transactions[0]
        ):
            # The first flow of the test lets the client cache the JWKS; then the key rolls.
            self._rotated_published = True
            key, kid = self._rotated, "rp-test-2"
        elif variant == "alternate_alg":
            claims["at_hash"] = half_hash(access_token, "RS256")
            return sign(claims, "RS256", self._rsa, "rp-test-rsa")
        if variant == "alg_none":
            head = b64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
            body = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
            return f"{head}.{body}."
        token = sign(claims, "ES256", key, kid)
        return corrupt_signature(token) if variant == "forged_signature" else token

    def _token_body(self, txn: Transaction, *, sub: str | None = None) -> dict[str, Any]:
        assert self.run is not None
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        if sub is None:
            txn.access_token, txn.refresh_token = access, refresh
        variant = "valid" if sub is not None else self.run.behaviour.id_token
        return {
            "access_token": access,
            "token_type": "Bearer",
            "refresh_token": refresh,
            "expires_in": 300,
            "id_token": self.id_token(txn, variant, sub=sub, access_token=access,
                                      refresh_token=refresh),
        }

    # --- recording --------------------------------------------------------------------------

    async def _record(self, request: Request, kind: str) -> RecordedRequest:
        body = await request.body()
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        params: dict[str, list[str]] = {}
        encoding = "empty"
        if body:
            encoding = "other"
            if content_type == "application/x-www-form-urlencoded":
                params, encoding = parse_qs(body.decode("utf-8", "replace"),
                                            keep_blank_values=True), "form"
            else:
                try:
                    decoded = json.loads(body)
                except ValueError:
                    decoded = None
                if isinstance(decoded, dict):
                    params = {k: [v if isinstance(v, str) else json.dumps(v)]
                              for k, v in decoded.items()}
                    encoding = "json"
        elif request.url.query:
            params, encoding = parse_qs(request.url.query, keep_blank_values=True), "query"
        record = RecordedRequest(kind, request.method, request.url.path, time.monotonic(),
                                 content_type, encoding, params)
        self._authenticate(request, record)
        secrets_ = {c.secret for c in self.clients.values()} | set(self.notification_tokens)
        record.exchange = Exchange(
            HttpRequest(request.method, str(request.url), tuple(request.headers.items()), body,
                        frozenset(secrets_)),
            label=f"client -> provider: {kind}",
        )
        if self.run is not None and kind not in ("discovery", "jwks"):
            self.run.requests.append(record)
        return record

    def _authenticate(self, request: Request, record: RecordedRequest) -> None:
        header = request.headers.get("authorization") or ""
        if header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:]).decode("utf-8")
                client_id, _, secret = decoded.partition(":")
            except ValueError:
                client_id, secret = "", ""
            from urllib.parse import unquote_plus

            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
            method = "client_secret_basic"
        else:
            client_id = record.param("client_id") or ""
            secret = record.param("client_secret") or ""
            method = "client_secret_post" if secret else "none"
        client = self.clients.get(client_id)
        record.client_id = client_id or None
        record.auth_method = method
        record.auth_ok = bool(
            client is not None and secrets.compare_digest(secret, client.secret)
            and method == client.auth_method
        )

    def _answer(self, record: RecordedRequest, body: dict[str, Any], status: int) -> Response:
        record.finished = time.monotonic()
        record.status = status
        record.answer = body
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **NO_STORE}
        if record.exchange is not None:
            record.exchange.response = HttpResponse(status, tuple(headers.items()), payload)
            record.exchange.elapsed = record.finished - record.arrived
        return Response(payload, status, headers=headers)

    # --- endpoints --------------------------------------------------------------------------

    def _app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            return JSONResponse({
                "issuer": self.issuer,
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "backchannel_authentication_endpoint": f"{self.issuer}/bc-authorize",
                "backchannel_token_delivery_modes_supported": ["poll", "ping", "push"],
                "backchannel_user_code_parameter_supported": False,
                "grant_types_supported": [CIBA_GRANT],
                "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                          "client_secret_post"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "scopes_supported": ["openid", "profile"],
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
            })

        async def jwks(request: Request) -> Response:
            return JSONResponse(self.jwks())

        async def outcome(request: Request) -> Response:
            run = self.run
            if run is None or request.path_params["token"] != run.outcome_token:
                return JSONResponse({"error": "unknown run"}, 404)
            try:
                body = json.loads(await request.body())
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return JSONResponse({"error": "a JSON object is expected"}, 400)
            run.outcomes.append(body)
            run.outcome_arrived.set()
            return Response(status_code=204)

        return Starlette(routes=[
            Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
            Route("/jwks", jwks, methods=["GET"]),
            Route("/bc-authorize", self._backchannel, methods=["GET", "POST", "PUT"]),
            Route("/token", self._token, methods=["GET", "POST", "PUT"]),
            Route("/rp-harness/outcome/{token}", outcome, methods=["POST"]),
        ])

    async def _backchannel(self, request: Request) -> Response:
        record = await self._record(request, "backchannel")
        run = self.run
        client = self.clients.get(record.client_id or "")
        if run is None or client is None:
            return self._answer(record, {"error": "invalid_client"}, 401)
        behaviour = run.behaviour
        login_hint = record.param("login_hint")
        txn = Transaction(
            auth_req_id=secrets.token_urlsafe(24),
            client=client,
            login_hint=login_hint,
            binding_message=record.param("binding_message"),
            notification_token=record.param("client_notification_token"),
            acked_at=time.monotonic(),
            expires_in=behaviour.expires_in,
            interval=behaviour.interval,
            sub=f"sub-{login_hint or 'unknown'}",
        )
        if txn.notification_token is not None:
            self.notification_tokens.append(txn.notification_token)
        self._transactions[txn.auth_req_id] = txn
        run.transactions.append(txn)
        body: dict[str, Any] = {"auth_req_id": txn.auth_req_id, "expires_in": txn.expires_in}
        if client.mode != "push" and behaviour.interval is not None:
            body["interval"] = behaviour.interval
        if behaviour.ack.startswith("error:"):
            txn.finished = True
            return self._answer(record, {"error": behaviour.ack.split(":", 1)[1]}, 400)
        if behaviour.ack.startswith("missing_"):
            body.pop(behaviour.ack.removeprefix("missing_"))
        response = self._answer(record, body, 200)
        if client.mode in ("ping", "push"):
            run.pending_tasks += 1
            asyncio.get_running_loop().create_task(self._notify(run, txn))
        return response

    async def _token(self, request: Request) -> Response:
        record = await self._record(request, "token")
        run = self.run
        txn = self._transactions.get(record.param("auth_req_id") or "")
        if run is None or txn is None or txn.finished or txn not in run.transactions:
            return self._answer(record, {"error": "invalid_grant"}, 400)
        if time.monotonic() > txn.acked_at + txn.expires_in + run.behaviour.expiry_grace:
            txn.finished = True
            return self._answer(record, {"error": "expired_token"}, 400)
        if txn.client.mode == "poll":
            polls = run.behaviour.polls
            answer = polls[min(txn.polls, len(polls) - 1)]
        else:
            answer = "tokens" if txn.approved else "pending"
        txn.polls += 1
        if run.behaviour.token_delay and answer == "tokens":
            txn.finished = True
            await asyncio.sleep(run.behaviour.token_delay)
        if answer == "pending":
            return self._answer(record, {"error": "authorization_pending"}, 400)
        if answer == "slow_down":
            return self._answer(record, {"error": "slow_down"}, 400)
        txn.finished = True
        if answer in ("access_denied", "invalid_request"):
            return self._answer(record, {"error": answer}, 400)
        tokens = self._token_body(txn)
        if answer == "error_with_tokens":
            return self._answer(record, {"error": "access_denied", **tokens}, 400)
        return self._answer(record, tokens, 200)

    # --- notifications ----------------------------------------------------------------------

    async def _notify(self, run: Recording, txn: Transaction) -> None:
        try:
            await self._notify_steps(run, txn)
        finally:
            run.pending_tasks -= 1

    async def _notify_steps(self, run: Recording, txn: Transaction) -> None:
        behaviour = run.behaviour
        await asyncio.sleep(behaviour.notify_after)
        kind = txn.client.mode
        right = txn.notification_token or ""
        variant = behaviour.notification
        if variant in ("wrong_bearer_first", "no_bearer_first"):
            payload = (self._token_body(txn, sub=FORGED_SUB) | {"auth_req_id": txn.auth_req_id}
                       if kind == "push" else {"auth_req_id": txn.auth_req_id})
            bearer = "wrong-" + secrets.token_urlsafe(24) if variant == "wrong_bearer_first" else None
            await self._send(run, kind, "wrong_bearer", txn, bearer, payload)
            await asyncio.sleep(0.5)
        elif variant == "unknown_auth_req_id_first" and kind == "ping":
            unknown = secrets.token_urlsafe(24)
            await self._send(run, kind, "unknown_auth_req_id", txn, right,
                             {"auth_req_id": unknown}, auth_req_id=unknown)
            await asyncio.sleep(0.5)
        if variant.startswith("error:"):
            txn.finished = True
            error = variant.split(":", 1)[1]
            await self._send(run, kind, "error", txn, right,
                             {"auth_req_id": txn.auth_req_id, "error": error,
                              "error_description": "the transaction ended without tokens"})
            return
        txn.approved = True
        if kind == "push":
            txn.finished = True
            payload = {"auth_req_id": txn.auth_req_id, **self._token_body(txn)}
        else:
            payload = {"auth_req_id": txn.auth_req_id}
        if variant == "twice":
            await asyncio.gather(
                self._send(run, kind, "valid", txn, right, payload),
                self._send(run, kind, "repeat", txn, right, payload),
            )
        else:
            await self._send(run, kind, "valid", txn, right, payload)

    async def _send(self, run: Recording, kind: str, label: str, txn: Transaction,
                    bearer: str | None, payload: dict[str, Any], *,
                    auth_req_id: str | None = None) -> None:
        url = txn.client.notification_endpoint
        callback = Callback(kind, label, auth_req_id or txn.auth_req_id, time.monotonic())
        run.callbacks.append(callback)
        if not url:
            callback.error = "the client registered no notification endpoint"
            return
        if self._http is None:
            # No keep-alive: the client's endpoint may close idle connections any time.
            self._http = httpx.AsyncClient(timeout=10.0, follow_redirects=False,
                                           limits=httpx.Limits(max_keepalive_connections=0))
        body = json.dumps(payload).encode()
        headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
        if bearer is not None:
            headers = (("Authorization", f"Bearer {bearer}"), *headers)
        exchange = Exchange(HttpRequest("POST", url, headers, body, frozenset({bearer or ""})),
                            label=f"provider -> client: {kind} ({label})")
        callback.exchange = exchange
        try:
            response = await self._http.post(url, content=body, headers=dict(headers))
        except httpx.HTTPError as exc:
            callback.error = f"{type(exc).__name__}: {exc}"
            exchange.error = callback.error
        else:
            callback.status = response.status_code
            exchange.response = HttpResponse(response.status_code,
                                             tuple(response.headers.items()), response.content)
        callback.answered = time.monotonic()
        exchange.elapsed = callback.answered - callback.sent
