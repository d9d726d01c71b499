"""HTTP layer: routes of one provider instance, fault tenants, ``create_app``."""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ciba_harness.provider.core import Provider
from ciba_harness.provider.errors import OAuthError, invalid_request
from ciba_harness.provider.faults import FAULTS, Faults
from ciba_harness.provider.forms import read_json_object
from ciba_harness.provider.keys import KeyMaterial
from ciba_harness.provider.outbound import Outbound
from ciba_harness.provider.policies import COMBINATIONS, POLICIES, ProviderPolicy, resolve_policies
from ciba_harness.provider.protocol import valid_notification_url
from ciba_harness.provider.responses import json_response
from ciba_harness.provider.settings import PROFILES, ProviderSettings
from ciba_harness.provider.state import NO_STORE

log = logging.getLogger("ciba_harness.provider")

Handler = Callable[[Request], Awaitable[Response]]
#: every route accepts every method; the guard answers 405 in JSON for the wrong ones
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _plain_error(provider: Provider, err: OAuthError) -> Response:
    return json_response(provider.errors.body(err), err.status)


def _text_error(status: int, headers: dict[str, str] | None = None) -> Response:
    """Policy plain_text_wrong_method: what a gateway answers for a wrong method or path."""
    text = {404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
    return Response(text, status, headers, media_type="text/plain")


def _guard(provider: Provider, handler: Handler, kind: str, methods: Iterable[str]) -> Handler:
    allowed = frozenset(methods) | ({"HEAD"} if "GET" in methods else set())
    allow_header = ", ".join(sorted(allowed))

    async def endpoint(request: Request) -> Response:
        if request.method not in allowed:
            if provider.policy.plain_text_method_errors:
                return _text_error(405, {"Allow": allow_header})
            body = {"error": "invalid_request", "error_description": f"use {allow_header}"}
            if not provider.policy.error_description:
                del body["error_description"]
            return json_response(body, 405, {"Allow": allow_header, **NO_STORE})
        try:
            return await handler(request)
        except OAuthError as err:
            if kind in ("backchannel", "token"):
                return provider.errors.response(err, kind)
            return _plain_error(provider, err)
        except Exception:
            provider.server_errors += 1
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            return json_response({"error": "server_error"}, 500)

    return endpoint


def _routes(p: Provider) -> list[Route]:
    async def discovery(request: Request) -> Response:
        return Response(p.discovery_body, 200, media_type="application/json")

    async def jwks(request: Request) -> Response:
        return Response(p.signer.jwks_body, 200, media_type="application/json")

    def device_only(fn: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            if not p.device.authorized(request):
                return json_response(
                    {"error": "invalid_token", "error_description": "device token required"},
                    401, {"WWW-Authenticate": 'Bearer realm="device"'},
                )
            return await fn(request)
        return wrapped

    @device_only
    async def device_list(request: Request) -> Response:
        return json_response([p.device.describe(tx) for tx in p.device.pending_requests()])

    @device_only
    async def device_approve(request: Request) -> Response:
        return await p.device.handle_decision(request, request.path_params["auth_req_id"], True)

    @device_only
    async def device_deny(request: Request) -> Response:
        return await p.device.handle_decision(request, request.path_params["auth_req_id"], False)

    @device_only
    async def device_lookup(request: Request) -> Response:
        return await p.device.handle_lookup(request)

    async def _endpoint_body(request: Request) -> tuple[str | None, bool]:
        body = await read_json_object(request)
        url = body.get("url")
        if url is not None and not valid_notification_url(url):
            raise invalid_request("url must be https, or http on a loopback host")
        return url, bool(body.get("all_tenants", False))

    @device_only
    async def admin_client_endpoint(request: Request) -> Response:
        client_id = request.path_params["client_id"]
        if client_id not in p.clients:
            return json_response(
                {"error": "not_found", "error_description": "unknown client"}, 404
            )
        url, all_tenants = await _endpoint_body(request)
        if all_tenants:
            p.set_notification_endpoint(client_id, url)
        elif url is None:
            p.notification_endpoints.pop(client_id, None)
        else:
            p.notification_endpoints[client_id] = url
        return Response(status_code=204)

    @device_only
    async def admin_default_endpoint(request: Request) -> Response:
        url, all_tenants = await _endpoint_body(request)
        if all_tenants:
            p.set_notification_endpoint(None, url)
        else:
            p.default_notification_endpoint = url
        return Response(status_code=204)

    table: list[tuple[str, Handler, str, tuple[str, ...]]] = [
        ("/.well-known/openid-configuration", discovery, "other", ("GET",)),
        ("/jwks", jwks, "other", ("GET",)),
        ("/backchannel", p.backchannel.handle, "backchannel", ("POST",)),
        ("/token", p.token.handle, "token", ("POST",)),
        ("/userinfo", p.resources.handle_userinfo, "other", ("GET", "POST")),
        ("/introspect", p.resources.handle_introspect, "other", ("POST",)),
        ("/register", p.registration.handle, "other", ("POST",)),
        ("/device/requests", device_list, "other", ("GET",)),
        ("/device/requests/{auth_req_id}/approve", device_approve, "other", ("POST",)),
        ("/device/requests/{auth_req_id}/deny", device_deny, "other", ("POST",)),
        ("/device/lookup", device_lookup, "other", ("POST",)),
        ("/ext/ciba/auth/callback", p.device.handle_webhook_callback, "other", ("POST",)),
        ("/admin/clients/{client_id}/notification-endpoint", admin_client_endpoint, "other",
         ("POST",)),
        ("/admin/notification-endpoint", admin_default_endpoint, "other", ("POST",)),
    ]
    return [
        Route(path, _guard(p, handler, kind, methods), methods=_ALL_METHODS)
        for path, handler, kind, methods in table
    ]


async def _http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    provider = getattr(request.app.state, "provider", None)
    if provider is not None and provider.policy.plain_text_method_errors:
        return _text_error(status)
    error = "not_found" if status == 404 else "invalid_request"
    return json_response({"error": error, "error_description": f"HTTP {status}"}, status)


async def _server_error(request: Request, exc: Exception) -> Response:
    return json_response({"error": "server_error"}, 500)


def _starlette(p: Provider, routes: list[Any], lifespan: Any = None) -> Starlette:
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_exception, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.provider = p
    return app


class TenantDispatcher:
    """ASGI app mounted at ``/fault`` (or ``/policy``): ``/fault/NAME/...`` goes to the tenant
    NAME."""

    def __init__(self, apps: dict[str, ASGIApp], kind: str = "fault"):
        self.apps = apps
        self.kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - only http reaches a Mount
            return
        root = scope.get("root_path", "")
        path: str = scope["path"]
        route_path = path[len(root):] if root and path.startswith(root) else path
        name, _, _ = route_path.lstrip("/").partition("/")
        app = self.apps.get(name)
        if app is None:
            body = json.dumps({"error": "not_found", "error_description": f"unknown {self.kind}"})
            await Response(body, 404, media_type="application/json")(scope, receive, send)
            return
        child = dict(scope)
        child["root_path"] = f"{root}/{name}"
        await app(child, receive, send)


def create_app(
    settings: ProviderSettings,
    *,
    issuer: str,
    faults: Iterable[str] | Faults = frozenset(),
    fault_tenants: bool = False,
    device_webhook_url: str | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
    profile: str | None = None,
    mtls_base: str | None = None,
    policies: Iterable[str] | ProviderPolicy | None = None,
    policy_tenants: bool = False,
) -> Starlette:
    """The reference provider as an ASGI app.

    ``faults`` (names, or a Faults) apply to the provider served at the root; an unknown name
    raises FaultError (a ValueError, with a did-you-mean). With ``fault_tenants`` every fault of
    :data:`FAULTS` (but the TLS-server faults) also gets an independent provider under
    ``/fault/NAME`` (issuer ``{issuer}/fault/NAME``). ``http_transport`` replaces the network
    for outbound calls (pings, pushes, webhook), e.g. ``httpx.MockTransport`` in tests.
    ``profile`` ("ciba" or "fapi-ciba") overrides the profile's ``[reference_provider]
    profile``. ``mtls_base`` is the base URL of the mTLS endpoints (published as
    ``mtls_endpoint_aliases``); the client certificate of a request is read from the ASGI
    TLS extension (``scope["extensions"]["tls"]["client_cert_chain"]``).
    ``policies``: policy names (policies.py; added to the profile's ``[reference_provider]
    policies``) or a ProviderPolicy (replacing them); they apply to the root provider and
    to every fault tenant. An unknown name raises PolicyError (a ValueError). With
    ``policy_tenants`` every policy and combination NAME also gets an independent, faultless
    provider under ``/policy/NAME`` with that policy alone (server-level policies such as
    keep_alive_1s cannot apply to a tenant).
    """
    policy = effective_policy(settings, policies)
    flags = Faults.of(faults)
    issuer = issuer.rstrip("/")
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r} (one of {', '.join(PROFILES)})")
    keys = KeyMaterial(settings, profile)
    verify: ssl.SSLContext | bool = settings.notification_verify_tls
    if verify and settings.notification_ca_file is not None:
        verify = ssl.create_default_context(cafile=str(settings.notification_ca_file))
    outbound = Outbound(http_transport, verify)
    root = Provider(settings, keys, issuer=issuer, faults=flags, outbound=outbound,
                    device_webhook_url=device_webhook_url, mtls_base=mtls_base, policy=policy)
    routes: list[Any] = list(_routes(root))
    if fault_tenants:
        apps: dict[str, ASGIApp] = {}
        for name, fault in FAULTS.items():
            if fault.server_level:
                continue
            tenant = Provider(settings, keys, issuer=f"{issuer}/fault/{name}",
                              faults=Faults.of([name]), outbound=outbound,
                              device_webhook_url=device_webhook_url, mtls_base=mtls_base,
                              policy=policy)
            root.tenants[name] = tenant
            apps[name] = _starlette(tenant, _routes(tenant))
        routes.append(Mount("/fault", app=TenantDispatcher(apps)))
    if policy_tenants:
        policy_apps: dict[str, ASGIApp] = {}
        for name in (*POLICIES, *COMBINATIONS):
            if name in POLICIES and POLICIES[name].server_level:
                continue
            tenant = Provider(settings, keys, issuer=f"{issuer}/policy/{name}",
                              outbound=outbound, device_webhook_url=device_webhook_url,
                              mtls_base=mtls_base, policy=resolve_policies([name]))
            root.tenants[f"policy/{name}"] = tenant
            policy_apps[name] = _starlette(tenant, _routes(tenant))
        routes.append(Mount("/policy", app=TenantDispatcher(policy_apps, "policy")))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for p in (root, *root.tenants.values()):
            for tx in p.pending.values():
                if tx.timer is not None:
                    tx.timer.cancel()
            for task in list(p.tasks):
                task.cancel()
        await outbound.aclose()

    app = _starlette(root, routes, lifespan)
    app.state.tenants = root.tenants
    return app


def effective_policy(
    settings: ProviderSettings, policies: Iterable[str] | ProviderPolicy | None
) -> ProviderPolicy:
    """The profile's policies plus ``policies`` (a ProviderPolicy replaces them)."""
    if isinstance(policies, ProviderPolicy):
        return policies
    if isinstance(policies, str):
        policies = [policies]
    return resolve_policies([*settings.policies, *(policies or ())])
