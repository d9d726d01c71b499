"""The reference CIBA client (poll, ping, push; httpx) and its catalogue of client faults.

Faithful by default: the client plan's oracle. Each fault breaks one client duty, so the
client fault matrix can prove that the plan detects it through that duty's requirement only.
It shares no validation code with the harness: ID tokens are verified with PyJWT.

It is a small web service that speaks the client-driver contract (docs/client-conformance.md):
``POST /start`` with ``{"login_hint", "binding_message", "mode"}`` runs one flow and answers
``{"outcome": "tokens", "sub": ...}`` or ``{"outcome": "refused", "reason": ...}``;
``POST /notify`` is its client notification endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ciba_harness.rp._serve import BackgroundServer, serve_in_thread

__all__ = ["CLIENT_FAULTS", "ClientFault", "ReferenceClient", "RefusedFlow"]

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
AUTH_REQ_ID_CLAIM = "urn:openid:params:jwt:claim:auth_req_id"
RT_HASH_CLAIM = "urn:openid:params:jwt:claim:rt_hash"
SIGNING_ALGS = ["ES256", "PS256", "RS256"]


@dataclass(frozen=True)
class ClientFault:
    name: str
    description: str
    #: the requirement whose check must catch it (and no other)
    requirement: str


def _faults(*rows: tuple[str, str, str]) -> dict[str, ClientFault]:
    return {name: ClientFault(name, text, req) for name, text, req in rows}


CLIENT_FAULTS: dict[str, ClientFault] = _faults(
    ("json_body", "sends the authentication request as JSON instead of a form", "CIBA-RP-01"),
    ("no_openid_scope", "asks for scope 'profile' without openid", "CIBA-RP-02"),
    ("two_hints", "sends login_hint and id_token_hint together", "CIBA-RP-03"),
    ("wrong_secret", "authenticates with a wrong client secret", "CIBA-RP-04"),
    ("long_notification_token", "client_notification_token of 1100 characters", "CIBA-RP-05"),
    ("low_entropy_notification_token", "client_notification_token is a 6-digit counter",
     "CIBA-RP-06"),
    ("reuse_notification_token", "one client_notification_token for every request",
     "CIBA-RP-07"),
    ("drops_binding_message", "never sends the binding_message", "CIBA-RP-08"),
    ("defaults_missing_expires_in", "polls with a 120 s default when expires_in is missing",
     "CIBA-RP-09"),
    ("wrong_grant_type", "polls with grant_type=client_credentials", "CIBA-RP-10"),
    ("ignores_interval", "polls every 0.2 s whatever interval says", "CIBA-RP-12"),
    ("no_default_interval", "polls every second when interval is absent", "CIBA-RP-13"),
    ("ignores_slow_down", "keeps its interval after slow_down", "CIBA-RP-14"),
    ("polls_after_expiry", "ignores expires_in and polls until expired_token",
     "CIBA-RP-15"),
    ("polls_after_access_denied", "polls twice more after access_denied", "CIBA-RP-16"),
    ("redeems_every_ping", "starts a token request for every ping, in parallel", "CIBA-RP-17"),
    ("notification_answers_202", "answers valid callbacks 202 Accepted", "CIBA-RP-20"),
    ("accepts_any_ping_bearer", "acts on a ping without checking its bearer token",
     "CIBA-RP-21"),
    ("wrong_bearer_answers_400", "answers a callback with a wrong bearer 400", "CIBA-RP-22"),
    ("trusts_ping_auth_req_id", "redeems whatever auth_req_id a ping names", "CIBA-RP-23"),
    ("accepts_any_push_bearer", "accepts a push without checking its bearer token",
     "CIBA-RP-30"),
    ("skips_auth_req_id_claim", "does not check the pushed ID token's auth_req_id claim",
     "CIBA-RP-31"),
    ("skips_at_hash", "does not check at_hash", "CIBA-RP-32"),
    ("skips_rt_hash", "does not check rt_hash", "CIBA-RP-33"),
    ("ignores_push_errors", "waits for its own timeout after a push error", "CIBA-RP-34"),
    ("skips_signature", "looks the kid up in the JWKS but never verifies the signature",
     "CIBA-RP-40"),
    ("skips_signature_unknown_kid", "skips the signature check when the kid is unknown",
     "CIBA-RP-41"),
    ("never_refetches_jwks", "keeps the first JWKS forever", "CIBA-RP-42"),
    ("accepts_alg_none", "accepts unsigned ID tokens", "CIBA-RP-43"),
    ("skips_iss", "does not check iss", "CIBA-RP-44"),
    ("skips_aud", "does not check aud", "CIBA-RP-45"),
    ("skips_exp", "does not check exp", "CIBA-RP-46"),
    ("tokens_from_error_response", "takes tokens from any response that carries them",
     "CIBA-RP-47"),
    ("accepts_any_alg", "accepts any signing alg its JWKS key fits", "CIBA-RP-49"),
)


class RefusedFlow(Exception):
    """The flow ended without tokens; the message is the reason the client reports."""


@dataclass
class _Registration:
    client_id: str
    secret: str
    mode: str


@dataclass
class _Pending:
    auth_req_id: str
    notification_token: str
    mode: str
    callbacks: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


def _half_hash(value: str, alg: str) -> str:
    hasher = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]]
    digest = hasher(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


class ReferenceClient:
    """A CIBA client for one issuer, one registration per delivery mode."""

    def __init__(self, issuer: str, registrations: dict[str, tuple[str, str]], *,
                 faults: frozenset[str] = frozenset(), host: str = "127.0.0.1", port: int = 0,
                 push_error_timeout: float = 4.0) -> None:
        unknown = set(faults) - set(CLIENT_FAULTS)
        if unknown:
            raise ValueError(f"unknown client fault: {', '.join(sorted(unknown))}")
        self.issuer = issuer.rstrip("/")
        self.registrations = {m: _Registration(cid, sec, m)
                              for m, (cid, sec) in registrations.items()}
        self.faults = frozenset(faults)
        self.host, self.port = host, port
        self.push_error_timeout = push_error_timeout
        self._server: BackgroundServer | None = None
        self._metadata: dict[str, Any] | None = None
        self._jwks: dict[str, Any] | None = None
        self._by_token: dict[str, _Pending] = {}
        self._by_id: dict[str, _Pending] = {}
        self._counter = 0
        self._fixed_token = secrets.token_urlsafe(32)

    # --- service ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "the reference client is not started"
        return self._server.url

    @property
    def start_url(self) -> str:
        return f"{self.url}/start"

    @property
    def notification_endpoint(self) -> str:
        return f"{self.url}/notify"

    def start(self) -> ReferenceClient:
        self._server = serve_in_thread(self._app(), host=self.host, port=self.port,
                                       name="ciba-reference-client")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def _app(self) -> Starlette:
        async def start(request: Request) -> Response:
            try:
                body = json.loads(await request.body())
                mode = str(body.get("mode") or "poll")
                login_hint = str(body["login_hint"])
            except (ValueError, KeyError, AttributeError):
                return JSONResponse({"error": "send login_hint and mode as JSON"}, 400)
            binding_message = body.get("binding_message")
            try:
                sub = await self.run_flow(login_hint, binding_message, mode)
            except RefusedFlow as refused:
                return JSONResponse({"outcome": "refused", "reason": str(refused)})
            return JSONResponse({"outcome": "tokens", "sub": sub})

        return Starlette(routes=[Route("/start", start, methods=["POST"]),
                                 Route("/notify", self._notification, methods=["POST"])])

    # --- the flow ---------------------------------------------------------------------------

    async def run_flow(self, login_hint: str, binding_message: str | None, mode: str) -> str:
        """Run one CIBA flow; the ID token's sub, or RefusedFlow with the reason."""
        registration = self.registrations.get(mode)
        if registration is None:
            raise RefusedFlow(f"no registration for {mode} mode")
        async with httpx.AsyncClient(timeout=15.0) as http:
            metadata = await self._discover(http)
            form = {"scope": "profile" if "no_openid_scope" in self.faults else "openid",
                    "login_hint": login_hint}
            if "two_hints" in self.faults:
                form["id_token_hint"] = "eyJhbGciOiJub25lIn0.e30."
            if binding_message and "drops_binding_message" not in self.faults:
                form["binding_message"] = binding_message
            token = None
            if mode in ("ping", "push"):
                token = self._notification_token()
                form["client_notification_token"] = token
            response = await self._post(http, metadata["backchannel_authentication_endpoint"],
                                        form, registration,
                                        as_json="json_body" in self.faults)
            ack = _json(response)
            if response.status_code != 200 or not isinstance(ack.get("auth_req_id"), str):
                raise RefusedFlow(f"authentication request refused: {ack.get('error')}")
            auth_req_id = ack["auth_req_id"]
            expires_in = ack.get("expires_in")
            if not isinstance(expires_in, int | float) or expires_in <= 0:
                if "defaults_missing_expires_in" not in self.faults:
                    raise RefusedFlow("acknowledgement without a positive expires_in")
                expires_in = 120
            if mode == "poll":
                return await self._poll(http, metadata, registration, ack, auth_req_id,
                                        expires_in)
            assert token is not None
            pending = _Pending(auth_req_id, token, mode)
            self._by_token[token] = pending
            self._by_id[auth_req_id] = pending
            try:
                if mode == "ping":
                    return await self._await_ping(http, metadata, registration, pending,
                                                  expires_in)
                return await self._await_push(http, metadata, registration, pending, expires_in)
            finally:
                self._by_token.pop(token, None)
                self._by_id.pop(auth_req_id, None)

    def _notification_token(self) -> str:
        if "reuse_notification_token" in self.faults:
            return self._fixed_token
        if "low_entropy_notification_token" in self.faults:
            self._counter += 1
            return f"{self._counter:06d}"
        if "long_notification_token" in self.faults:
            return secrets.token_urlsafe(825)  # 1100 characters
        return secrets.token_urlsafe(32)

    async def _discover(self, http: httpx.AsyncClient) -> dict[str, Any]:
        if self._metadata is None:
            response = await http.get(f"{self.issuer}/.well-known/openid-configuration")
            metadata = _json(response)
            if metadata.get("issuer") != self.issuer:
                raise RefusedFlow("discovery: issuer mismatch")
            self._metadata = metadata
        return self._metadata

    async def _post(self, http: httpx.AsyncClient, url: str, fields: dict[str, str],
                    registration: _Registration, *, as_json: bool = False) -> httpx.Response:
        secret = registration.secret + ("-wrong" if "wrong_secret" in self.faults else "")
        auth = httpx.BasicAuth(registration.client_id, secret)
        if as_json:
            return await http.post(url, json=fields, auth=auth)
        return await http.post(url, data=fields, auth=auth)

    async def _token_request(self, http: httpx.AsyncClient, metadata: dict[str, Any],
                             registration: _Registration, auth_req_id: str) -> httpx.Response:
        grant = "client_credentials" if "wrong_grant_type" in self.faults else CIBA_GRANT
        return await self._post(http, metadata["token_endpoint"],
                                {"grant_type": grant, "auth_req_id": auth_req_id}, registration)

    async def _poll(self, http: httpx.AsyncClient, metadata: dict[str, Any],
                    registration: _Registration, ack: dict[str, Any], auth_req_id: str,
                    expires_in: float) -> str:
        announced = ack.get("interval")
        if isinstance(announced, int | float):
            interval = 0.2 if "ignores_interval" in self.faults else float(announced)
        else:
            interval = 1.0 if "no_default_interval" in self.faults else 5.0
        deadline = time.monotonic() + expires_in
        retries_after_denial = 0
        first = True
        while True:
            if not first:
                await asyncio.sleep(interval)
            first = False
            if time.monotonic() >= deadline and "polls_after_expiry" not in self.faults:
                raise RefusedFlow("expired: the auth_req_id outlived expires_in")
            response = await self._token_request(http, metadata, registration, auth_req_id)
            body = _json(response)
            if response.status_code == 200 or (
                "tokens_from_error_response" in self.faults and "id_token" in body
            ):
                return await self._accept_tokens(http, registration, body, None)
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                if "ignores_slow_down" not in self.faults:
                    interval += 5
                continue
            if (error == "access_denied" and "polls_after_access_denied" in self.faults
                    and retries_after_denial < 2):
                retries_after_denial += 1
                continue
            raise RefusedFlow(f"token endpoint: {error}")

    async def _await_ping(self, http: httpx.AsyncClient, metadata: dict[str, Any],
                          registration: _Registration, pending: _Pending,
                          expires_in: float) -> str:
        deadline = time.monotonic() + expires_in
        fetches: list[asyncio.Task[httpx.Response]] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RefusedFlow("expired: no ping before expires_in")
            try:
                callback = await asyncio.wait_for(pending.callbacks.get(), remaining)
            except TimeoutError:
                raise RefusedFlow("expired: no ping before expires_in") from None
            auth_req_id = str(callback.get("auth_req_id"))
            fetches.append(asyncio.ensure_future(
                self._token_request(http, metadata, registration, auth_req_id)))
            if "redeems_every_ping" in self.faults:
                await asyncio.sleep(0.05)  # a second ping arriving together gets its own fetch
                while not pending.callbacks.empty():
                    extra = pending.callbacks.get_nowait()
                    fetches.append(asyncio.ensure_future(self._token_request(
                        http, metadata, registration, str(extra.get("auth_req_id")))))
            response = await fetches[0]
            await asyncio.gather(*fetches[1:], return_exceptions=True)
            fetches.clear()
            body = _json(response)
            if response.status_code == 200:
                return await self._accept_tokens(http, registration, body, None)
            error = body.get("error")
            if error in ("authorization_pending", "slow_down", "invalid_grant") and (
                auth_req_id != pending.auth_req_id or error != "invalid_grant"
            ):
                continue  # not finished yet (or a foreign id); wait for the next ping
            raise RefusedFlow(f"token endpoint: {error}")

    async def _await_push(self, http: httpx.AsyncClient, metadata: dict[str, Any],
                          registration: _Registration, pending: _Pending,
                          expires_in: float) -> str:
        deadline = time.monotonic() + expires_in
        while True:
            remaining = deadline - time.monotonic()
            try:
                callback = await asyncio.wait_for(pending.callbacks.get(), max(remaining, 0))
            except TimeoutError:
                raise RefusedFlow("expired: no push before expires_in") from None
            if "error" in callback:
                if "ignores_push_errors" in self.faults:
                    deadline = min(deadline, time.monotonic() + self.push_error_timeout)
                    continue
                raise RefusedFlow(f"push error: {callback.get('error')}")
            return await self._accept_tokens(http, registration, callback, pending.auth_req_id)

    # --- notifications ----------------------------------------------------------------------

    async def _notification(self, request: Request) -> Response:
        header = request.headers.get("authorization") or ""
        bearer = header[7:] if header[:7].lower() == "bearer " else ""
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "invalid_request"}, 400)
        named = str(body.get("auth_req_id", ""))
        pending = self._by_token.get(bearer)
        if pending is not None and pending.auth_req_id != named and (
            "trusts_ping_auth_req_id" not in self.faults
        ):
            pending = None  # right token, but not for this auth_req_id
        if pending is None:
            lax = {"ping": "accepts_any_ping_bearer", "push": "accepts_any_push_bearer"}
            candidate = self._by_id.get(named)
            if candidate is not None and lax[candidate.mode] in self.faults:
                pending = candidate
        if pending is None:
            status = 400 if "wrong_bearer_answers_400" in self.faults else 401
            return JSONResponse({"error": "invalid_token"}, status,
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        pending.callbacks.put_nowait(body)
        return Response(status_code=202 if "notification_answers_202" in self.faults else 204)

    # --- token validation -------------------------------------------------------------------

    async def _accept_tokens(self, http: httpx.AsyncClient, registration: _Registration,
                             body: dict[str, Any], pushed_for: str | None) -> str:
        id_token = body.get("id_token")
        access_token = body.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise RefusedFlow("token response without id_token or access_token")
        pushed = pushed_for is not None
        claims = await self._verified_claims(http, id_token)
        now = time.time()
        if claims.get("iss") != self.issuer and "skips_iss" not in self.faults:
            raise RefusedFlow("id_token: iss is not the issuer")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if set(audiences) != {registration.client_id} and "skips_aud" not in self.faults:
            raise RefusedFlow("id_token: aud is not (only) the client_id")
        exp = claims.get("exp")
        if "skips_exp" not in self.faults and (not isinstance(exp, int | float) or exp < now - 30):
            raise RefusedFlow("id_token: expired")
        if not isinstance(claims.get("iat"), int | float):
            raise RefusedFlow("id_token: no iat")
        alg = str(jwt.get_unverified_header(id_token).get("alg"))
        if alg == "none":
            alg = "ES256"  # only with accepts_alg_none: hash as the provider signs
        at_hash = claims.get("at_hash")
        if (pushed or at_hash is not None) and "skips_at_hash" not in self.faults and (
            at_hash != _half_hash(access_token, alg)
        ):
            raise RefusedFlow("id_token: at_hash does not match the access token")
        if pushed:
            if (claims.get(AUTH_REQ_ID_CLAIM) != pushed_for
                    and "skips_auth_req_id_claim" not in self.faults):
                raise RefusedFlow("id_token: auth_req_id claim does not match")
            refresh = body.get("refresh_token")
            if isinstance(refresh, str) and "skips_rt_hash" not in self.faults and (
                claims.get(RT_HASH_CLAIM) != _half_hash(refresh, alg)
            ):
                raise RefusedFlow("id_token: rt_hash does not match the refresh token")
        sub = claims.get("sub")
        if not isinstance(sub, str):
            raise RefusedFlow("id_token: no sub")
        return sub

    async def _verified_claims(self, http: httpx.AsyncClient, id_token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise RefusedFlow("id_token: not a JWS") from None
        unverified: dict[str, Any] = jwt.decode(id_token, options={"verify_signature": False})
        if header.get("alg") == "none":
            if "accepts_alg_none" in self.faults:
                return unverified
            raise RefusedFlow("id_token: alg none")
        announced = (self._metadata or {}).get("id_token_signing_alg_values_supported", ["RS256"])
        if header.get("alg") not in announced and "accepts_any_alg" not in self.faults:
            raise RefusedFlow(f"id_token: alg {header.get('alg')} is not announced by the OP")
        kid = header.get("kid")
        key = await self._key(http, kid)
        if key is None:
            if "skips_signature_unknown_kid" in self.faults:
                return unverified
            raise RefusedFlow("id_token: kid not in the OP's JWKS")
        if "skips_signature" in self.faults:
            return unverified
        try:
            jwt.api_jws.PyJWS().decode_complete(id_token, key, algorithms=SIGNING_ALGS)
        except jwt.PyJWTError:
            raise RefusedFlow("id_token: signature does not verify") from None
        return unverified

    async def _key(self, http: httpx.AsyncClient, kid: Any) -> Any:
        for attempt in range(2):
            if self._jwks is None or attempt == 1:
                if attempt == 1 and "never_refetches_jwks" in self.faults:
                    return None
                response = await http.get(self._metadata["jwks_uri"] if self._metadata
                                          else f"{self.issuer}/jwks")
                self._jwks = _json(response)
            for jwk in self._jwks.get("keys", []):
                if isinstance(jwk, dict) and jwk.get("kid") == kid:
                    return jwt.PyJWK(jwk).key
        return None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
